"""Checkpoint files of a training run, written off the training loop's critical path.

The rank serialises the checkpoint (a consistent copy of the weights and optimizer
state, taken between two steps) and :class:`CheckpointWriter` writes the bytes in
a background thread while training goes on; the run waits for the writes only at
the end.  A write that fails is not lost: :meth:`CheckpointWriter.failure` says so
at the next epoch boundary (the trainer then stops every rank) and
:meth:`CheckpointWriter.close` raises it.  Files are written atomically by
:class:`moulin.storage.WarehouseFS`, so :func:`latest_checkpoint` finds complete
checkpoints only, and a run started again resumes after the last one.
"""

from __future__ import annotations

import io
import queue
import threading
from typing import Any

from moulin.training import TrainingError


class CheckpointWriteError(TrainingError):
    """A checkpoint could not be written: the run stops rather than train on unsaved."""


def checkpoint_uri(checkpoint_dir: str, epoch: int) -> str:
    """URI of epoch ``epoch``'s checkpoint under ``checkpoint_dir``."""
    return f"{checkpoint_dir.rstrip('/')}/epoch-{epoch:03d}.pt"


def latest_checkpoint(fs, checkpoint_dir: str) -> tuple[int, str] | None:
    """``(epoch, uri)`` of the last checkpoint written under ``checkpoint_dir``, if any
    (checkpoint writes are atomic: a file that exists is complete)."""
    epochs = []
    for info in fs.list(checkpoint_dir):
        name = info.uri.rstrip("/").rsplit("/", 1)[-1]
        if name.startswith("epoch-") and name.endswith(".pt") and name[6:-3].isdigit():
            epochs.append((int(name[6:-3]), info.uri))
    return max(epochs) if epochs else None


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
