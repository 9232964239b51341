"""From stored rows to model inputs: one codec per kind of data, so one trainer
(:mod:`moulin.training.ddp`) serves tabular, image and text models.

A codec names the columns it reads, turns a frame of rows into the model's
input arrays (:meth:`inputs`) and the targets (:meth:`targets`), and describes
itself as a plain dict for the job (:meth:`to_dict`, :func:`codec_from_dict`).
:func:`codec_arrays` encodes a ``pyarrow.Table`` (the training loader's fast path,
:mod:`moulin.training.loader`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

Task = Literal["binary", "multiclass"]


class Codec(Protocol):
    key: str
    label: str

    @property
    def columns(self) -> list[str]: ...

    def inputs(
        self, frame: pd.DataFrame, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, ...]: ...

    def targets(self, frame: pd.DataFrame) -> np.ndarray: ...

    def to_dict(self) -> dict: ...


@dataclass
class TabularCodec:
    """Categorical codes and scaled numeric columns (:class:`Preprocessor`); the target is
    0/1 as floats (``task="binary"``, one logit) or class indices (``"multiclass"``)."""

    preprocessor: Any
    key: str
    label: str
    task: Task = "binary"
    kind: str = field(default="tabular", init=False)

    @property
    def _target_type(self) -> type:
        return np.int64 if self.task == "multiclass" else np.float32

    @property
    def columns(self) -> list[str]:
        p = self.preprocessor
        return [self.key, self.label, *p.categorical, *p.numeric]

    def inputs(self, frame: pd.DataFrame, rng: np.random.Generator | None = None) -> tuple[np.ndarray, ...]:
        return tuple(self.preprocessor.transform(frame))

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        return frame[self.label].to_numpy(dtype=self._target_type)

    def arrays_from_arrow(self, table, rng: np.random.Generator | None = None) -> tuple[np.ndarray, ...]:
        """``(*inputs, targets)`` of a ``pyarrow.Table`` without pandas (the loader's fast path)."""
        label = table.column(self.label).to_numpy(zero_copy_only=False).astype(self._target_type)
        return (*self.preprocessor.transform_arrow(table), label)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "preprocessor": self.preprocessor.to_dict(),
            "key": self.key,
            "label": self.label,
            "task": self.task,
        }


@dataclass
class ImageCodec:
    """Raw 8-bit grey pixels (``height x width`` bytes per row) as ``(N, 1, H, W)``
    floats in [0, 1], class-index targets.  With ``augment`` and a random
    generator, training images are shifted by up to ``shift`` pixels (zero fill)
    and, with ``flip``, mirrored left-right with probability 1/2."""

    key: str
    label: str
    pixels: str = "pixels"
    height: int = 28
    width: int = 28
    augment: bool = False
    shift: int = 2
    flip: bool = True
    kind: str = field(default="image", init=False)

    @property
    def columns(self) -> list[str]:
        return [self.key, self.label, self.pixels]

    def decode(self, values: Sequence[bytes]) -> np.ndarray:
        """``(N, H, W)`` uint8 images; a value of the wrong size is an error naming its row."""
        size = self.height * self.width
        blob = b"".join(bytes(v) for v in values)
        if len(blob) != size * len(values):
            bad = next(i for i, v in enumerate(values) if len(bytes(v)) != size)
            raise ValueError(
                f"column {self.pixels!r}: row {bad} holds {len(bytes(values[bad]))} bytes, "
                f"not {size} ({self.height}x{self.width})"
            )
        return np.frombuffer(blob, dtype=np.uint8).reshape(len(values), self.height, self.width)

    def inputs(self, frame: pd.DataFrame, rng: np.random.Generator | None = None) -> tuple[np.ndarray, ...]:
        images = self.decode(frame[self.pixels].tolist())
        if self.augment and rng is not None and len(images):
            images = self._augment(images, rng)
        return ((images.astype(np.float32) / 255.0)[:, None, :, :],)

    def _augment(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n, h, w = images.shape
        s = self.shift
        out = images
        if s > 0:
            padded = np.pad(images, ((0, 0), (s, s), (s, s)))
            dy = rng.integers(0, 2 * s + 1, size=n)
            dx = rng.integers(0, 2 * s + 1, size=n)
            rows = dy[:, None] + np.arange(h)[None, :]
            cols = dx[:, None] + np.arange(w)[None, :]
            out = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
        if self.flip:
            mirror = rng.random(n) < 0.5
            out = out.copy()
            out[mirror] = out[mirror, :, ::-1]
        return out

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        return frame[self.label].to_numpy(dtype=np.int64)

    def arrays_from_arrow(self, table, rng: np.random.Generator | None = None) -> tuple[np.ndarray, ...]:
        """``(images, targets)`` of a ``pyarrow.Table``: the pixel column's bytes are
        viewed in place (no copy per row, no copy of the column) when every value has
        the image's size; the images stay ``uint8`` ``(N, 1, H, W)`` until :meth:`finish`.

        The column is viewed chunk by chunk: ``ChunkedArray.combine_chunks()`` copies
        every byte even of a single chunk (pyarrow 14), which cost more than the read."""
        column = table.column(self.pixels)
        n = len(column)
        views = [self._view(chunk) for chunk in column.chunks if len(chunk)]
        if any(view is None for view in views):  # wrong sizes or nulls: decode() names the row
            images = self.decode(column.to_pylist())
        elif not views:
            images = np.zeros((0, self.height, self.width), dtype=np.uint8)
        else:
            images = views[0] if len(views) == 1 else np.concatenate(views)
        if self.augment and rng is not None and n:
            images = self._augment(images, rng)
        labels = table.column(self.label).to_numpy(zero_copy_only=False).astype(np.int64)
        # Still 8-bit: a quarter of the bytes to batch and copy; finish() scales on the device.
        return (images.reshape(n, 1, self.height, self.width), labels)

    def _view(self, chunk) -> np.ndarray | None:
        """``(N, H, W)`` uint8 view of one Arrow chunk's pixel bytes; None when a value is
        null or not of the image's size (or the type is not binary)."""
        import pyarrow as pa

        if chunk.null_count or not (pa.types.is_binary(chunk.type) or pa.types.is_large_binary(chunk.type)):
            return None
        size, n = self.height * self.width, len(chunk)
        width = np.int64 if pa.types.is_large_binary(chunk.type) else np.int32
        _, offsets_buffer, data_buffer = chunk.buffers()
        offsets = np.frombuffer(offsets_buffer, dtype=width)[chunk.offset : chunk.offset + n + 1]
        if not np.all(np.diff(offsets) == size):
            return None
        data = np.frombuffer(data_buffer, dtype=np.uint8)
        return data[offsets[0] : offsets[0] + n * size].reshape(n, self.height, self.width)

    def finish(self, batch: tuple) -> tuple:
        """A batch of :meth:`arrays_from_arrow` (as tensors, on the device) as the model's
        input: pixels as floats in [0, 1], the same values :meth:`inputs` gives."""
        images, *rest = batch
        return (images.float() / 255.0, *rest)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "key": self.key,
            "label": self.label,
            "pixels": self.pixels,
            "height": self.height,
            "width": self.width,
            "augment": self.augment,
            "shift": self.shift,
            "flip": self.flip,
        }


def codec_from_dict(data: dict) -> Codec:
    """The codec a job describes (``kind``: tabular, image or text)."""
    data = dict(data)
    kind = data.pop("kind")
    if kind == "tabular":
        from moulin.training.preprocessing import Preprocessor

        task = data.get("task", "binary")
        return TabularCodec(Preprocessor.from_dict(data["preprocessor"]), data["key"], data["label"], task)
    if kind == "image":
        return ImageCodec(**data)
    if kind == "text":
        from moulin.training.text import TextCodec

        return TextCodec(**data)
    raise ValueError(f"unknown input kind {kind!r}: tabular, image or text")


def codec_arrays(codec: Codec, table, rng: np.random.Generator | None = None) -> tuple[np.ndarray, ...]:
    """``(*inputs, targets)`` of a ``pyarrow.Table`` of rows: the codec's Arrow path
    where it has one (tabular, image), else through a pandas frame (text).  Pass the
    batches made of them through :func:`finish_batch`."""
    fast = getattr(codec, "arrays_from_arrow", None)
    if fast is not None:
        return fast(table, rng)
    frame = table.to_pandas()
    return (*codec.inputs(frame, rng), codec.targets(frame))


def finish_batch(codec: Codec, batch: tuple) -> tuple:
    """The model's ``(*inputs, targets)`` from a batch of :func:`codec_arrays` tensors
    (the codec's last step, run where the batch is: on the device in training)."""
    finish = getattr(codec, "finish", None)
    return finish(batch) if finish is not None else batch
