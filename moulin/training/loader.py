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
* **batch in the background** (:mod:`moulin.training.batching`): a thread mixes
  the rows of consecutive slices in a bounded shuffle buffer (seeded per epoch and
  rank) and copies each window once, chunk by chunk, into (on CUDA: page-locked)
  tensors laid out batch after batch, ``ready_batches`` ahead of the loop;
* **to the device**: :func:`device_batches` copies one batch ahead with
  ``non_blocking=True``.

The files are read where they lie (:mod:`moulin.training.parquet_files`:
local paths, or WebHDFS range reads for ``hdfs://``): nothing is copied to
local disk.

Petastorm's ``make_batch_reader`` can feed the same trainer instead
(``LoaderOptions(reader="petastorm")``, :mod:`moulin.training.petastorm_loader`;
:func:`open_loader` builds the one the options name).  It is not the default: it
shards by whole row groups, round-robin (unequal rows per rank, and no data at
all for some ranks when a split has fewer row groups than ranks), cannot read a
chosen part of a row group, its pool returns results in completion order, and it
opens ``hdfs://`` only through libhdfs.  docs/guides/petastorm.md has the
reasons; ``benchmarks/input_pipeline.py`` measures both.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import numpy as np

from moulin.training import TrainingError
from moulin.training.batching import EpochBatches, mixed_batches
from moulin.training.loader_options import LoaderOptions, Pool, Reader
from moulin.training.petastorm_loader import PetastormLoader
from moulin.training.sharding import EpochPlan, RowGroup, RowSlice, plan_epoch
from moulin.training.slice_reader import SliceReader, split_reader

__all__ = [
    "EpochBatches",
    "LoaderOptions",
    "Pool",
    "Reader",
    "SliceReader",
    "SnapshotLoader",
    "device_batches",
    "open_loader",
]


_WORKER_READER: SliceReader | None = None


def _start_worker(reader: SliceReader) -> None:
    global _WORKER_READER
    _WORKER_READER = reader


def _read_in_worker(part: RowSlice, rng_seed) -> tuple[np.ndarray, ...]:
    return _WORKER_READER.read(part, rng_seed)


def _count_in_worker(file: int) -> list[int]:
    return _WORKER_READER.count(file)


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
        self.codec, self.reader = split_reader(uris, codec, settings, sample)
        self.options = options
        self.rank, self.world = rank, world
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
        plan = self.plan(epoch)
        return EpochBatches(
            lambda stop: self._batches(plan, epoch, stop), plan, epoch, self.rank, self.options.ready_batches
        )

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
        rng = np.random.default_rng([self.options.seed, epoch, self.rank, 1])
        return mixed_batches(self._slices(plan, epoch, stop), self.options, rng)


def open_loader(
    uris: Sequence[str],
    codec: Any,
    options: LoaderOptions,
    rank: int = 0,
    world: int = 1,
    settings: Any = None,
    sample: float | None = None,
):
    """The loader ``options.reader`` names, over the same files with the same arguments:
    :class:`SnapshotLoader` (``"moulin"``) or
    :class:`~moulin.training.petastorm_loader.PetastormLoader` (``"petastorm"``)."""
    loader = PetastormLoader if options.reader == "petastorm" else SnapshotLoader
    return loader(uris, codec, options, rank=rank, world=world, settings=settings, sample=sample)


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
