"""Petastorm's reader feeding moulin's trainer: :class:`PetastormLoader`, chosen with
``LoaderOptions(reader="petastorm")`` (``"loader": {"reader": "petastorm"}`` in a
training job, ``--reader petastorm`` on the training stages).

It reads the same pinned snapshot as moulin's loader: the exact Parquet files of
one Delta version, handed to ``petastorm.make_batch_reader`` as a list of URLs,
never the table's folder (which also holds the files that later or earlier
versions removed).  Each row group Petastorm returns is encoded by the same codec
and goes through the same shuffle buffer and batcher
(:mod:`moulin.training.batching`), so the trainer gets the same kind of batches.
What stays Petastorm's:

* **sharding**: whole row groups, round-robin (``cur_shard`` / ``shard_count``),
  so ranks hold unequal rows.  DistributedDataParallel needs the same number of
  batches on every rank: every rank reads as many rows as the smallest shard
  holds and leaves the rest of its shard out of that epoch (the plan's
  ``tail_rows``).  A split with fewer row groups than ranks cannot be sharded;
* **order**: row groups are shuffled by Petastorm each epoch (a seed made from
  the options' seed and the epoch); with more than one worker its pool hands
  them over in completion order, so an epoch's batches are not reproducible;
* **conversion**: Petastorm turns each row group into numpy arrays (through
  pandas; a null string becomes the string ``'None'``), which the loader turns
  back into an Arrow table for the codec;
* **files**: ``file://`` paths; ``hdfs://`` through Petastorm's libhdfs driver,
  which needs a JVM and the Hadoop client libraries on the host.

docs/guides/petastorm.md says when to choose it; ``benchmarks/input_pipeline.py``
measures both readers side by side.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from moulin.training import TrainingError
from moulin.training.batching import EpochBatches, mixed_batches
from moulin.training.loader_options import LoaderOptions
from moulin.training.parquet_files import local_path
from moulin.training.sharding import EpochPlan
from moulin.training.slice_reader import split_reader


def petastorm_url(uri: str) -> str:
    """The URL Petastorm is given for a snapshot file: ``file://`` and the absolute path,
    not percent-encoded (Petastorm takes a URL's path as it is: ``split%3Dtrain`` would
    not be found), for local files and plain paths; the URI itself otherwise."""
    path = local_path(uri)
    return "file://" + str(Path(path).resolve()) if path is not None else uri


def _quiet_petastorm() -> None:
    """Petastorm 0.12 uses pyarrow's legacy ParquetDataset API (uber/petastorm#806) and
    warns about it on every reader: those warnings say nothing about the data."""
    warnings.filterwarnings("ignore", category=FutureWarning, module="petastorm")
    warnings.filterwarnings("ignore", category=UserWarning, module="petastorm")


def _unreadable(uri: str, exc: Exception) -> TrainingError:
    hint = (
        " Petastorm opens hdfs:// files through libhdfs (a JVM and the Hadoop client libraries on this "
        "host); where there are none, use the default reader (LoaderOptions(reader='moulin'): WebHDFS "
        "range reads)."
        if uri.startswith("hdfs://")
        else ""
    )
    return TrainingError(f"petastorm cannot read the snapshot's files ({uri} ...): {exc}.{hint}")


class PetastormLoader:
    """One rank's batches of one split read by Petastorm's ``make_batch_reader``, epoch
    after epoch (see the module's docstring).  Same arguments and interface as
    :class:`moulin.training.loader.SnapshotLoader`: ``rows``, :meth:`epoch`,
    :meth:`close`, a context manager."""

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
        if not uris:
            raise TrainingError("the loader was given no files: the split has no data files")
        if options.tail != "drop":
            raise TrainingError(
                f"tail={options.tail!r} needs reader='moulin': petastorm shards whole row groups, and "
                "its reader leaves out the rows past the smallest shard (tail='drop')"
            )
        if world < 1 or not 0 <= rank < world:
            raise TrainingError(f"rank {rank} is not one of {world} rank(s)")
        self.codec, self.reader = split_reader(uris, codec, settings, sample)  # as moulin's loader
        self.options = options
        self.rank, self.world = rank, world
        self.urls = [petastorm_url(u) for u in uris]
        # Petastorm's row groups in its own order: shard r reads those at positions r, r + world, ...
        pieces = self._row_groups()
        self.schema = self.reader.opener.open(0).schema_arrow
        kept = [self.reader.count(file) for file in range(len(uris))]
        if len(pieces) < world:
            raise TrainingError(
                f"petastorm shards whole row groups: the split's {len(uris)} file(s) hold {len(pieces)} "
                f"row group(s), fewer than the {world} ranks; use reader='moulin' (equal row ranges) "
                "or fewer processes"
            )
        shards = [sum(kept[f][g] for f, g in pieces[r::world]) for r in range(world)]
        self.rows = sum(shards)
        self.shard_rows = shards[rank]
        #: What every rank reads per epoch: the smallest shard's rows.
        self.rank_rows = min(shards)

    def _row_groups(self) -> list[tuple[int, int]]:
        """(file number, row group) of every row group, in the order Petastorm's reader lists them."""
        _quiet_petastorm()
        import pyarrow.parquet as pq
        from petastorm.etl.dataset_metadata import load_row_groups
        from petastorm.fs_utils import get_filesystem_and_path_or_paths

        try:
            filesystem, paths = get_filesystem_and_path_or_paths(self.urls)
            with warnings.catch_warnings():  # the legacy API's deprecation, as in Petastorm's own reader
                warnings.simplefilter("ignore", FutureWarning)
                dataset = pq.ParquetDataset(
                    paths, filesystem=filesystem, validate_schema=False, metadata_nthreads=10
                )
            pieces = load_row_groups(dataset)
        except Exception as exc:
            raise _unreadable(self.urls[0], exc) from exc
        number = {path: i for i, path in enumerate(paths)}
        try:
            return [(number[piece.path], piece.row_group) for piece in pieces]
        except KeyError as exc:
            raise TrainingError(f"petastorm listed a file it was not given: {exc}") from None

    def plan(self, epoch: int) -> EpochPlan:
        """This rank's rows and batch count in ``epoch`` (the same in every epoch; Petastorm
        picks the row groups, so the plan lists no slices)."""
        rows = self.rank_rows
        return EpochPlan(
            slices=(),
            rows=rows,
            batches=math.ceil(rows / self.options.batch_size),
            tail_rows=self.rows - rows * self.world,
            tail="drop",
        )

    def epoch(self, epoch: int) -> EpochBatches:
        """The batches of ``epoch``: an iterable of CPU tensor tuples ``(*inputs, targets)``
        (before the codec's last step: see :func:`moulin.training.loader.device_batches`)."""
        plan = self.plan(epoch)
        return EpochBatches(
            lambda stop: self._batches(epoch, stop), plan, epoch, self.rank, self.options.ready_batches
        )

    def _batches(self, epoch: int, stop: threading.Event) -> Iterator[tuple]:
        rng = np.random.default_rng([self.options.seed, epoch, self.rank, 1])
        return mixed_batches(self._chunks(epoch, stop), self.options, rng)

    def _chunks(self, epoch: int, stop: threading.Event) -> Iterator[tuple[np.ndarray, ...]]:
        """The codec's arrays of each row group Petastorm reads for this rank, up to
        :attr:`rank_rows` rows; an error when the shard holds fewer."""
        _quiet_petastorm()
        import pyarrow as pa
        from petastorm import make_batch_reader

        from moulin.training.batches import codec_arrays

        o = self.options
        columns = list(self.reader.columns)
        sharded = {"cur_shard": self.rank, "shard_count": self.world} if self.world > 1 else {}
        try:
            reader = make_batch_reader(
                self.urls,
                schema_fields=columns,
                reader_pool_type=o.pool,
                workers_count=o.workers,
                results_queue_size=max(1, o.workers * o.read_ahead),
                shuffle_row_groups=o.shuffle,
                # Petastorm's seed also shuffles which row groups a shard gets the order of (not which).
                seed=int(np.random.default_rng([o.seed, epoch, 0x5EED]).integers(2**31))
                if o.shuffle
                else None,
                num_epochs=1,
                **sharded,
            )
        except Exception as exc:
            raise _unreadable(self.urls[0], exc) from exc
        left = self.rank_rows
        augment = o.shuffle  # training epochs draw augmentations; evaluation passes do not
        with reader:
            for number, batch in enumerate(reader):
                table = pa.table(
                    {c: pa.array(getattr(batch, c), type=self.schema.field(c).type, from_pandas=True)
                     for c in columns}
                )  # fmt: skip
                table = self.reader._kept(table)
                if table.num_rows > left:
                    table = table.slice(0, left)
                left -= table.num_rows
                seed = np.random.default_rng([o.seed, epoch, self.rank, number]) if augment else None
                yield codec_arrays(self.codec, table, seed)
                if left == 0 or stop.is_set():
                    break
        if left > 0 and not stop.is_set():
            raise TrainingError(
                f"petastorm gave rank {self.rank} {self.rank_rows - left} rows in epoch {epoch}, "
                f"{self.rank_rows} were planned: the split's files changed while training?"
            )

    def close(self) -> None:
        """Nothing to stop between epochs: each epoch's Petastorm reader is stopped when it ends."""

    def __enter__(self) -> PetastormLoader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
