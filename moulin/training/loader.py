"""From a pinned Delta snapshot's files to batches on the device, fast enough to
keep an accelerator busy.  For any of moulin's codecs (tabular, image, text).

One :class:`SnapshotLoader` per rank and split, built once and reused every epoch:

* **plan** (:mod:`moulin.training.sharding`): the row groups of the split are
  listed once from the files' footers, shuffled each epoch by a seed all ranks
  share, and cut into equal row ranges, one per rank: every rank makes the same
  number of batches, and reads only its rows;
* **read and decode in a pool**: each row-group slice is read with
  ``pyarrow.parquet`` and turned into the codec's arrays (categories through
  integer lookup tables, images viewed from the pixel bytes, text tokenised) by
  a worker of a thread or process pool, ``read_ahead`` slices per worker ahead
  of the batcher, results taken in plan order (same seed, same batches);
* **batch in the background**: a thread mixes the rows of consecutive slices in a
  bounded shuffle buffer (seeded per epoch and rank) and gathers batches straight
  into (on CUDA: page-locked) tensors, ``ready_batches`` ahead of the loop;
* **to the device**: :func:`device_batches` copies one batch ahead with
  ``non_blocking=True``.

The files are read where they lie (:mod:`moulin.training.parquet_files`:
local paths, or WebHDFS range reads for ``hdfs://``): nothing is copied to
local disk.

Why not petastorm's ``make_batch_reader``: it shards by whole row groups,
round-robin (unequal rows per rank, and no data at all for some ranks when a
split has fewer row groups than ranks), cannot read a chosen part of a row group,
and its pool returns results in completion order.  Its per-row-group pandas
conversion also costs: see ``benchmarks/input_pipeline.py``, which measures both.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from moulin.training import TrainingError
from moulin.training.parquet_files import ParquetOpener
from moulin.training.sharding import EpochPlan, RowGroup, RowSlice, Tail, plan_epoch

Pool = Literal["thread", "process"]


@dataclass(frozen=True)
class LoaderOptions:
    """How a split is read, shuffled and batched (the defaults suit training)."""

    batch_size: int = 512
    # Workers reading and decoding row-group slices, threads or processes.
    workers: int = 2
    pool: Pool = "thread"
    # Slices read ahead per worker; batches prepared ahead of the training loop.
    read_ahead: int = 2
    ready_batches: int = 4
    # Row groups shuffled every epoch, rows mixed in a buffer of this many rows.
    shuffle: bool = True
    shuffle_buffer: int = 16384
    # Rows that do not divide among the ranks (see moulin.training.sharding).
    tail: Tail = "drop"
    seed: int = 0
    # Page-locked host batches (for non_blocking copies to a CUDA device).
    pin_memory: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.workers < 1 or self.read_ahead < 1 or self.ready_batches < 1:
            raise ValueError(
                "batch_size, workers, read_ahead and ready_batches must be at least 1, not "
                f"{self.batch_size}, {self.workers}, {self.read_ahead}, {self.ready_batches}"
            )
        if self.pool not in ("thread", "process"):
            raise ValueError(f"pool must be 'thread' or 'process', not {self.pool!r}")

    @classmethod
    def from_dict(cls, data: dict | None, **defaults: Any) -> LoaderOptions:
        """Options from a job's plain dict (unknown keys are an error naming them)."""
        data = {**defaults, **(data or {})}
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise TrainingError(f"unknown loader option(s) {unknown}: {sorted(cls.__dataclass_fields__)}")
        return cls(**data)


@dataclass
class SliceReader:
    """Reads a row-group slice and encodes it with the codec (runs in the pool's workers)."""

    opener: ParquetOpener
    codec_spec: dict
    columns: tuple[str, ...]
    sample: float | None = None
    key: str | None = None

    def __post_init__(self) -> None:
        self._codec = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_codec"] = None
        return state

    @property
    def codec(self):
        if self._codec is None:
            from moulin.training.batches import codec_from_dict

            self._codec = codec_from_dict(self.codec_spec)
        return self._codec

    def _kept(self, table):
        if self.sample is None or self.sample >= 1.0:
            return table
        import pyarrow as pa

        from moulin.training.data import sample_mask

        keys = table.column(self.key).to_numpy(zero_copy_only=False)
        return table.filter(pa.array(sample_mask(keys, self.sample)))

    def count(self, file: int) -> list[int]:
        """Rows kept of each row group of ``file`` (reads the key column when sampling)."""
        parquet = self.opener.open(file)
        metadata = parquet.metadata
        if self.sample is None or self.sample >= 1.0:
            return [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
        return [
            self._kept(parquet.read_row_group(i, columns=[self.key])).num_rows
            for i in range(metadata.num_row_groups)
        ]

    def read(self, part: RowSlice, rng_seed: Sequence[int] | None) -> tuple[np.ndarray, ...]:
        """``(*inputs, targets)`` of the slice's rows."""
        from moulin.training.batches import codec_arrays

        try:
            table = self.opener.open(part.file).read_row_group(part.index, columns=list(self.columns))
        except TrainingError:
            raise
        except Exception as exc:
            raise TrainingError(
                f"cannot read row group {part.index} of {self.opener.uris[part.file]}: {exc}"
            ) from exc
        table = self._kept(table).slice(part.start, part.rows)
        rng = np.random.default_rng(list(rng_seed)) if rng_seed is not None else None
        return codec_arrays(self.codec, table, rng)


_WORKER_READER: SliceReader | None = None


def _start_worker(reader: SliceReader) -> None:
    global _WORKER_READER
    _WORKER_READER = reader


def _read_in_worker(part: RowSlice, rng_seed) -> tuple[np.ndarray, ...]:
    return _WORKER_READER.read(part, rng_seed)


def _count_in_worker(file: int) -> list[int]:
    return _WORKER_READER.count(file)


def _row_view(array: np.ndarray) -> np.ndarray:
    """A 1-D view of ``array`` with one opaque item per row (for whole-row copies)."""
    array = np.ascontiguousarray(array)
    width = array[:1].nbytes if len(array) else max(array.itemsize, 1)
    return array.reshape(len(array), -1).view(np.dtype((np.void, width))).reshape(len(array))


def _same_widths(chunks: list[tuple[np.ndarray, ...]]) -> list[tuple[np.ndarray, ...]]:
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


class SnapshotLoader:
    """One rank's batches of one split, epoch after epoch (see the module's docstring).

    ``uris``: the split's Parquet files; ``codec``: a codec or its dict; ``sample``:
    a fraction of rows kept by a hash of ``codec.key`` (the same rows in every
    process).  Use as a context manager, or call :meth:`close`, to stop the pool.
    """

    def __init__(
        self,
        uris: Sequence[str],
        codec: Any,
        options: LoaderOptions,
        rank: int = 0,
        world: int = 1,
        settings: Any = None,
        sample: float | None = None,
    ) -> None:
        spec = codec if isinstance(codec, dict) else codec.to_dict()
        from moulin.training.batches import codec_from_dict

        self.codec = codec_from_dict(spec) if isinstance(codec, dict) else codec
        self.options = options
        self.rank, self.world = rank, world
        # The key column only decides a sample: not read otherwise (codecs with an Arrow path).
        columns = [
            c
            for c in self.codec.columns
            if c != self.codec.key or sample is not None or not hasattr(self.codec, "arrays_from_arrow")
        ]
        self.reader = SliceReader(
            ParquetOpener(tuple(uris), settings), spec, tuple(columns), sample, self.codec.key
        )
        if not uris:
            raise TrainingError("the loader was given no files: the split has no data files")
        self._pool: Executor
        if options.pool == "process":
            import multiprocessing

            self._pool = ProcessPoolExecutor(
                options.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(self.reader,),
            )
            self._read, self._count = _read_in_worker, _count_in_worker
        else:
            self._pool = ThreadPoolExecutor(options.workers, thread_name_prefix="moulin-loader")
            self._read, self._count = self.reader.read, self.reader.count
        try:
            counts = list(self._pool.map(self._count, range(len(uris))))
        except BaseException:
            self.close()
            raise
        self.groups = tuple(
            RowGroup(file, index, rows)
            for file, per_file in enumerate(counts)
            for index, rows in enumerate(per_file)
        )
        self.rows = sum(g.rows for g in self.groups)

    def plan(self, epoch: int) -> EpochPlan:
        """This rank's slices and batch count in ``epoch``."""
        o = self.options
        return plan_epoch(self.groups, self.rank, self.world, o.batch_size, o.seed, epoch, o.shuffle, o.tail)

    def epoch(self, epoch: int) -> EpochBatches:
        """The batches of ``epoch``: an iterable of CPU tensor tuples ``(*inputs, targets)``
        (before the codec's last step: see :func:`device_batches`)."""
        return EpochBatches(self, self.plan(epoch), epoch)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> SnapshotLoader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- used by EpochBatches
    def _slices(self, plan: EpochPlan, epoch: int, stop: threading.Event) -> Iterator[tuple[np.ndarray, ...]]:
        """The plan's slices as arrays, in plan order, ``workers * read_ahead`` in flight."""
        o = self.options
        augment = o.shuffle  # training epochs draw augmentations; evaluation passes do not
        pending: deque[Future] = deque()
        parts = iter(enumerate(plan.slices))
        limit = o.workers * o.read_ahead
        try:
            while True:
                while len(pending) < limit:
                    item = next(parts, None)
                    if item is None:
                        break
                    number, part = item
                    seed = (o.seed, epoch, self.rank, number) if augment else None
                    pending.append(self._pool.submit(self._read, part, seed))
                if not pending or stop.is_set():
                    return
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()

    def _batches(self, plan: EpochPlan, epoch: int, stop: threading.Event) -> Iterator[tuple]:
        """Batches of ``batch_size`` rows (the last one smaller), rows mixed in the shuffle buffer."""
        import torch

        o = self.options
        size = o.batch_size
        window = max(o.shuffle_buffer, size) if o.shuffle else size
        rng = np.random.default_rng([o.seed, epoch, self.rank, 1])
        held: list[tuple[np.ndarray, ...]] = []
        held_rows = 0

        def gather(chunks: list[tuple], offsets: np.ndarray, rows: np.ndarray) -> tuple:
            """Rows ``rows`` (sorted positions in the window) copied once, chunk by chunk,
            into new (pinned) tensors: no concatenation of the window first.  Sorting a
            batch's rows changes nothing a step computes (a batch is a set of rows).
            Rows are copied as whole items (``np.take`` on a row view, no intra-op threads)."""
            starts = np.searchsorted(rows, offsets)
            out = []
            for column in range(len(chunks[0])):
                first = chunks[0][column]
                target = torch.empty(
                    (len(rows), *first.shape[1:]),
                    dtype=torch.from_numpy(first[:0]).dtype,
                    pin_memory=o.pin_memory,
                )
                target_rows = _row_view(target.numpy())
                for j, chunk in enumerate(chunks):
                    a, b = starts[j], starts[j + 1]
                    if a == b:
                        continue
                    local = rows[a:b] - offsets[j]
                    source = _row_view(chunk[column])
                    if local[-1] - local[0] == b - a - 1:  # a run of consecutive rows
                        target_rows[a:b] = source[local[0] : local[-1] + 1]
                    else:
                        np.take(source, local, out=target_rows[a:b], mode="clip")  # "clip": not buffered
                out.append(target)
            return tuple(out)

        def drain(final: bool) -> Iterator[tuple]:
            nonlocal held, held_rows
            chunks = _same_widths(held)
            offsets = np.cumsum([0] + [len(c[0]) for c in chunks])
            n = held_rows
            order = rng.permutation(n) if o.shuffle else np.arange(n)
            full = n // size if not final else -(-n // size)
            for b in range(full):
                yield gather(chunks, offsets, np.sort(order[b * size : min(n, (b + 1) * size)]))
            rest = n - full * size if not final else 0
            if rest > 0:
                kept = gather(chunks, offsets, np.sort(order[full * size :]))
                held = [tuple(t.numpy() for t in kept)]
            else:
                held = []
            held_rows = max(rest, 0)

        for arrays in self._slices(plan, epoch, stop):
            if len(arrays[0]) == 0:
                continue
            held.append(arrays)
            held_rows += len(arrays[0])
            if held_rows >= window:
                yield from drain(final=False)
        if held_rows:
            yield from drain(final=True)


class EpochBatches:
    """One epoch's batches for one rank, prepared by a background thread.  ``len()``
    is the plan's batch count (the same on every rank)."""

    def __init__(self, loader: SnapshotLoader, plan: EpochPlan, epoch: int) -> None:
        self.loader, self.plan, self.epoch = loader, plan, epoch
        self._stop = threading.Event()
        self._queue: queue.Queue = queue.Queue(maxsize=loader.options.ready_batches)
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        return self.plan.batches

    def _produce(self) -> None:
        try:
            for batch in self.loader._batches(self.plan, self.epoch, self._stop):
                while not self._stop.is_set():
                    try:
                        self._queue.put(("batch", batch), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
            self._put(("end", None))
        except BaseException as exc:  # handed to the consumer
            self._put(("error", exc))

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[tuple]:
        if self._thread is not None:
            raise TrainingError("an epoch's batches can be iterated once: ask the loader for the epoch again")
        self._thread = threading.Thread(target=self._produce, name="moulin-batches", daemon=True)
        self._thread.start()
        made = 0
        try:
            while True:
                kind, value = self._queue.get()
                if kind == "end":
                    break
                if kind == "error":
                    raise value
                made += 1
                yield value
        finally:
            self.close()
        if made != self.plan.batches:
            raise TrainingError(
                f"rank {self.loader.rank} made {made} batches in epoch {self.epoch}, "
                f"the plan says {self.plan.batches}: the split's files changed while training?"
            )

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()


def device_batches(batches, device, codec: Any = None) -> Iterator[tuple]:
    """``batches`` on ``device``, one batch ahead: the next batch's (``non_blocking``)
    copy is issued before the current one is handed to the loop; then the codec's
    last step (:func:`moulin.training.batches.finish_batch`, e.g. pixels to floats)
    runs there.  On the CPU the tensors are not copied."""
    from moulin.training.batches import finish_batch

    if getattr(device, "type", str(device)) == "cpu":
        for batch in batches:
            yield finish_batch(codec, batch)
        return

    def move(batch):
        return finish_batch(codec, tuple(t.to(device, non_blocking=True) for t in batch))

    iterator = iter(batches)
    ahead = next(iterator, None)
    ahead = move(ahead) if ahead is not None else None
    while ahead is not None:
        current = ahead
        following = next(iterator, None)
        ahead = move(following) if following is not None else None
        yield current
