"""Checkpoint files of a training run, written off the training loop's critical path.

The rank serialises the checkpoint (a consistent copy of the weights and optimizer
state, taken between two steps) and :class:`CheckpointWriter` writes the bytes in
a background thread while training goes on; the run waits for the writes only at
the end.  A write that fails is not lost: :meth:`CheckpointWriter.failure` says so
at the next epoch boundary (the trainer then stops every rank) and
:meth:`CheckpointWriter.close` raises it.  Files are written atomically by
:class:`moulin.storage.WarehouseFS`, so :func:`latest_checkpoint` finds complete
checkpoints only, and a run started again resumes after the last one.

A checkpoint belongs to one training identity: :func:`fingerprint` digests what
the training depends on (the snapshot and files it reads, the feature encoding or
vocabulary, the network and its hyper-parameters, the code version, the weights
it starts from), every checkpoint carries it, and a run resumes only a checkpoint
of its own fingerprint.  The others are moved out of the way by :func:`set_aside`
(to ``<checkpoint folder>/superseded/<their fingerprint>/``), never resumed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import queue
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from moulin.training import TrainingError


class CheckpointWriteError(TrainingError):
    """A checkpoint could not be written: the run stops rather than train on unsaved."""


def checkpoint_uri(checkpoint_dir: str, epoch: int) -> str:
    """URI of epoch ``epoch``'s checkpoint under ``checkpoint_dir``."""
    return f"{checkpoint_dir.rstrip('/')}/epoch-{epoch:03d}.pt"


#: Sub-folder of a checkpoint folder where checkpoints of another training identity go.
SUPERSEDED = "superseded"


def _canonical(value: Any) -> Any:
    """``value`` as JSON-able data with one spelling: sets sorted, tuples as lists, dataclasses as dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((_canonical(v) for v in value), key=repr)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", None) == 0:
        return value.item()  # a numpy scalar
    return value


def fingerprint(identity: Any) -> str:
    """A short digest (16 hex digits) of ``identity``: JSON-able data (dicts, lists, tuples,
    sets, dataclasses, numbers, strings) naming what a training run depends on."""
    text = json.dumps(_canonical(identity), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def state_digest(data: bytes) -> str:
    """Digest of the tensors in a serialised state dict (their names, types, shapes and values),
    independent of how the file that holds them was written."""
    import torch

    digest = hashlib.sha256()
    state = deserialise(data)
    for name in sorted(state):
        tensor = state[name]
        if not isinstance(tensor, torch.Tensor):
            digest.update(f"{name}={tensor!r};".encode())
            continue
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def epoch_checkpoints(fs, checkpoint_dir: str) -> list[tuple[int, str]]:
    """``(epoch, uri)`` of every checkpoint directly under ``checkpoint_dir``, by epoch."""
    epochs = []
    for info in fs.list(checkpoint_dir):
        name = info.uri.rstrip("/").rsplit("/", 1)[-1]
        if not info.is_dir and name.startswith("epoch-") and name.endswith(".pt") and name[6:-3].isdigit():
            epochs.append((int(name[6:-3]), info.uri))
    return sorted(epochs)


def latest_checkpoint(fs, checkpoint_dir: str) -> tuple[int, str] | None:
    """``(epoch, uri)`` of the last checkpoint written under ``checkpoint_dir``, if any
    (checkpoint writes are atomic: a file that exists is complete).  Whose it is, the
    caller checks (its ``"fingerprint"``)."""
    epochs = epoch_checkpoints(fs, checkpoint_dir)
    return epochs[-1] if epochs else None


def set_aside(fs, checkpoint_dir: str, label: str) -> list[str]:
    """Move every checkpoint under ``checkpoint_dir`` to ``<checkpoint_dir>/superseded/<label>/``
    (replacing what an earlier move put there); their new URIs.

    Local files are renamed; on other file systems each is copied (atomically) and
    then deleted, so an interrupted move leaves every checkpoint somewhere complete.
    """
    target = f"{checkpoint_dir.rstrip('/')}/{SUPERSEDED}/{label}"
    moved = []
    for _epoch, uri in epoch_checkpoints(fs, checkpoint_dir):
        name = uri.rstrip("/").rsplit("/", 1)[-1]
        dest = f"{target}/{name}"
        parsed = urlparse(uri)
        if parsed.scheme in ("", "file"):
            source = Path(parsed.path if parsed.scheme else uri)
            destination = Path(urlparse(dest).path if parsed.scheme else dest)
            destination.parent.mkdir(parents=True, exist_ok=True)
            source.replace(destination)
        else:
            fs.write_bytes(dest, fs.read_bytes(uri))
            fs.delete(uri)
        moved.append(dest)
    return moved


def serialise(obj: Any) -> bytes:
    """``torch.save`` of ``obj`` into bytes (call it on the rank: it copies the tensors' values now)."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def deserialise(data: bytes) -> Any:
    """The object :func:`serialise` wrote, tensors on the CPU (weights only: no code runs)."""
    import torch

    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


class CheckpointWriter:
    """Writes ``(uri, bytes)`` pairs in order, in one background thread, through ``fs``."""

    def __init__(self, fs) -> None:
        self._fs = fs
        self._queue: queue.Queue = queue.Queue()
        self._error: CheckpointWriteError | None = None
        self.written: list[str] = []
        self._thread = threading.Thread(target=self._run, name="moulin-checkpoints", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            uri, data = item
            if self._error is not None:
                continue  # after a failure, later checkpoints are not written either
            try:
                self._fs.write_bytes(uri, data)
                self.written.append(uri)
            except BaseException as exc:
                self._error = CheckpointWriteError(
                    f"writing the checkpoint {uri} failed: {type(exc).__name__}: {exc}; check that the "
                    "checkpoint folder is writable and has space, then run again (it resumes from the "
                    "last checkpoint written)"
                )
                self._error.__cause__ = exc

    def submit(self, uri: str, data: bytes) -> None:
        """Queue ``data`` to be written to ``uri``; raises a previous write's error first."""
        self.raise_failure()
        self._queue.put((uri, data))

    def failure(self) -> CheckpointWriteError | None:
        """The error of a write that failed so far, if any (does not wait)."""
        return self._error

    def raise_failure(self) -> None:
        if self._error is not None:
            raise self._error

    def close(self) -> list[str]:
        """Wait for every queued write; the URIs written, or the first write's error."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self.raise_failure()
        return list(self.written)
