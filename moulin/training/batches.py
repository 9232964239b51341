"""From stored rows to model inputs: one codec per kind of data, so one trainer
(:mod:`moulin.training.ddp`) serves tabular, image and text models.

A codec names the columns it reads, turns a frame of rows into the model's
input arrays (:meth:`inputs`) and the targets (:meth:`targets`), and describes
itself as a plain dict for the job (:meth:`to_dict`, :func:`codec_from_dict`).
:func:`minibatches` cuts a stream of frames into fixed-size tensor batches.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
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
    """Categorical codes and scaled numeric columns (:class:`Preprocessor`), binary 0/1 target."""

    preprocessor: Any
    key: str
    label: str
    kind: str = field(default="tabular", init=False)

    @property
    def columns(self) -> list[str]:
        p = self.preprocessor
        return [self.key, self.label, *p.categorical, *p.numeric]

    def inputs(self, frame: pd.DataFrame, rng: np.random.Generator | None = None) -> tuple[np.ndarray, ...]:
        return tuple(self.preprocessor.transform(frame))

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        return frame[self.label].to_numpy(dtype=np.float32)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "preprocessor": self.preprocessor.to_dict(),
            "key": self.key,
            "label": self.label,
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

        return TabularCodec(Preprocessor.from_dict(data["preprocessor"]), data["key"], data["label"])
    if kind == "image":
        return ImageCodec(**data)
    if kind == "text":
        from moulin.training.text import TextCodec

        return TextCodec(**data)
    raise ValueError(f"unknown input kind {kind!r}: tabular, image or text")


def _join(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Row-wise concatenation; 2-D arrays of different widths (token ids and masks of a
    text codec, padded per frame) are right-padded with 0 to the widest first."""
    if len(arrays) == 1:
        return arrays[0]
    if arrays[0].ndim == 2 and len({a.shape[1] for a in arrays}) > 1:
        width = max(a.shape[1] for a in arrays)
        arrays = [np.pad(a, ((0, 0), (0, width - a.shape[1]))) for a in arrays]
    return np.concatenate(arrays)


def minibatches(
    frames: Iterable[pd.DataFrame],
    codec: Codec,
    batch_size: int,
    device: Any,
    rng: np.random.Generator | None = None,
    keep: Any = None,
) -> Iterator[tuple]:
    """Tensor batches ``(*inputs, targets)`` of ``batch_size`` rows (the last one smaller)
    from a stream of frames; ``keep(frame) -> bool mask`` filters rows first."""
    import torch

    parts: list[tuple[np.ndarray, ...]] = []
    buffered = 0

    def emit(arrays: list[tuple[np.ndarray, ...]]) -> tuple:
        joined = [_join(col) for col in zip(*arrays, strict=True)]
        return tuple(torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in joined)

    for frame in frames:
        if keep is not None:
            frame = frame[keep(frame)]
        if len(frame) == 0:
            continue
        parts.append((*codec.inputs(frame, rng), codec.targets(frame)))
        buffered += len(frame)
        while buffered >= batch_size:
            joined = [_join(col) for col in zip(*parts, strict=True)]
            head = tuple(a[:batch_size] for a in joined)
            tail = tuple(a[batch_size:] for a in joined)
            yield emit([head])
            parts = [tail] if len(tail[0]) else []
            buffered = len(tail[0])
    if buffered:
        yield emit(parts)
