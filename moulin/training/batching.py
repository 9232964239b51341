"""From decoded chunks of rows to an epoch's batches: the shuffle buffer
(:func:`mixed_batches`) and the background thread that prepares batches ahead of
the training loop (:class:`EpochBatches`).  Both readers of the training loader
use them (:mod:`moulin.training.loader`, :mod:`moulin.training.petastorm_loader`),
so the same chunks make the same batches whichever reader read them.

A chunk is a tuple of numpy arrays, one per model input plus the targets, with
one row per item of the first axis (a codec's arrays, :mod:`moulin.training.batches`).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from moulin.training import TrainingError
from moulin.training.loader_options import LoaderOptions

Chunk = tuple[np.ndarray, ...]


def _rows(array: np.ndarray) -> np.ndarray:
    """``array`` as a 1-D array with one item per row: itself when 1-D, else a view
    with one opaque item per row (so a row is copied whole, as one ``memcpy``)."""
    array = np.ascontiguousarray(array)
    if array.ndim == 1:
        return array
    width = array[:1].nbytes if len(array) else max(array.itemsize, 1)
    return array.reshape(len(array), -1).view(np.dtype((np.void, width))).reshape(len(array))


def _same_widths(chunks: list[Chunk]) -> list[Chunk]:
    """Chunks whose 2-D columns (a text codec's token ids and masks, padded per slice)
    are right-padded with 0 to the widest, so rows of any chunk fit one batch."""
    widths = [max((c[i].shape[1] for c in chunks), default=0) if chunks[0][i].ndim == 2 else None
              for i in range(len(chunks[0]))]  # fmt: skip
    if all(w is None or all(c[i].shape[1] == w for c in chunks) for i, w in enumerate(widths)):
        return chunks
    return [
        tuple(a if w is None or a.shape[1] == w else np.pad(a, ((0, 0), (0, w - a.shape[1])))
              for a, w in zip(c, widths, strict=True))
        for c in chunks
    ]  # fmt: skip


def batch_positions(order: np.ndarray, size: int) -> np.ndarray:
    """Where each row of a window goes in the window's batches laid end to end.

    Batch ``b`` holds the rows ``order[b * size:(b + 1) * size]`` in increasing
    position (a batch is a set of rows: its order changes nothing a step computes,
    and sorted positions read each chunk forwards).  Returns ``dest`` with
    ``dest[p]`` the place of window row ``p``, so all batches are filled by one
    scatter per chunk instead of one gather per batch and chunk."""
    n = len(order)
    batches = -(-n // size)
    kind = np.int16 if batches <= np.iinfo(np.int16).max else np.int64  # int16: numpy's radix sort
    batch_of = np.empty(n, dtype=kind)
    batch_of[order] = (np.arange(n) // size).astype(kind)
    grouped = np.argsort(batch_of, kind="stable")  # by batch, positions increasing within one
    dest = np.empty(n, dtype=np.int64)
    dest[grouped] = np.arange(n)
    return dest


def mixed_batches(
    chunks: Iterable[Chunk], options: LoaderOptions, rng: np.random.Generator
) -> Iterator[tuple]:
    """Batches of ``options.batch_size`` rows (the last one smaller) as CPU tensors
    (page-locked with ``pin_memory``), rows mixed in a shuffle buffer of
    ``options.shuffle_buffer`` rows drawn by ``rng`` (in chunk order without ``shuffle``).

    Each window of the buffer is copied once, chunk by chunk, into one tensor per
    column laid out batch after batch (:func:`batch_positions`); the batches are
    views of it.  The rows that do not fill a batch wait, as a view too, for the
    next window."""
    import torch

    size = options.batch_size
    window = max(options.shuffle_buffer, size) if options.shuffle else size
    held: list[Chunk] = []
    held_rows = 0

    def drain(final: bool) -> list[tuple]:
        nonlocal held, held_rows
        parts = _same_widths(held)
        n = held_rows
        full = -(-n // size) if final else n // size
        placed = n if final else full * size
        offsets = np.cumsum([0] + [len(c[0]) for c in parts])
        dest = batch_positions(rng.permutation(n), size) if options.shuffle else None
        out = []
        for column in range(len(parts[0])):
            first = parts[0][column]
            target = torch.empty(
                (n, *first.shape[1:]), dtype=torch.from_numpy(first[:0]).dtype, pin_memory=options.pin_memory
            )
            rows = _rows(target.numpy())
            for j, part in enumerate(parts):
                source = _rows(part[column])
                if dest is None:
                    rows[offsets[j] : offsets[j + 1]] = source
                else:
                    rows[dest[offsets[j] : offsets[j + 1]]] = source
            out.append(target)
        held_rows = n - placed
        held = [tuple(t[placed:].numpy() for t in out)] if held_rows else []
        return [tuple(t[b * size : min(placed, (b + 1) * size)] for t in out) for b in range(full)]

    for arrays in chunks:
        if len(arrays[0]) == 0:
            continue
        held.append(arrays)
        held_rows += len(arrays[0])
        if held_rows >= window:
            yield drain(final=False)
    if held_rows:
        yield drain(final=True)


class EpochBatches:
    """One epoch's batches for one rank, prepared by a background thread.  ``len()``
    is the plan's batch count (the same on every rank).

    ``produce(stop)`` yields the batches in groups (lists: a shuffle window's
    batches, :func:`mixed_batches`) and should end soon once ``stop`` is set;
    ``plan`` has ``batches`` (how many it must yield), ``rows`` and ``tail_rows``;
    ``rank`` names the rank in errors.

    The thread hands a group over once fewer than ``ready_batches`` batches wait
    for the loop, and the loop wakes the thread only then: one hand-over per
    group, not per batch (a batch is a view of its window's tensors, already
    made, so holding the group costs no memory)."""

    def __init__(
        self,
        produce: Callable[[threading.Event], Iterator[list[tuple]]],
        plan,
        epoch: int,
        rank: int,
        ready_batches: int,
    ) -> None:
        self.plan, self.epoch, self.rank = plan, epoch, rank
        self._produce_groups = produce
        self._ready = ready_batches
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._waiting: deque[tuple] = deque()
        self._end: tuple[str, BaseException | None] | None = None
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        return self.plan.batches

    def _produce(self) -> None:
        end: tuple[str, BaseException | None] = ("end", None)
        try:
            for group in self._produce_groups(self._stop):
                with self._changed:
                    while len(self._waiting) >= self._ready and not self._stop.is_set():
                        self._changed.wait(0.1)
                    if self._stop.is_set():
                        return
                    self._waiting.extend(group)
                    self._changed.notify_all()
        except BaseException as exc:  # handed to the consumer
            end = ("error", exc)
        with self._changed:
            self._end = end
            self._changed.notify_all()

    def __iter__(self) -> Iterator[tuple]:
        if self._thread is not None:
            raise TrainingError("an epoch's batches can be iterated once: ask the loader for the epoch again")
        self._thread = threading.Thread(target=self._produce, name="moulin-batches", daemon=True)
        self._thread.start()
        made = 0
        try:
            while True:
                with self._changed:
                    while not self._waiting and self._end is None:
                        self._changed.wait()
                    if not self._waiting:
                        kind, error = self._end  # type: ignore[misc]
                        if kind == "error":
                            raise error  # type: ignore[misc]
                        break
                    batch = self._waiting.popleft()
                    if len(self._waiting) == self._ready - 1:
                        self._changed.notify_all()  # room for the next group
                made += 1
                yield batch
        finally:
            self.close()
        if made != self.plan.batches:
            raise TrainingError(
                f"rank {self.rank} made {made} batches in epoch {self.epoch}, "
                f"the plan says {self.plan.batches}: the split's files changed while training?"
            )

    def close(self) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._waiting.clear()
