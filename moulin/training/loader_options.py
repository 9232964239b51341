"""How the training loader reads, shuffles and batches a split: :class:`LoaderOptions`,
the ``loader`` entry of a training job (:func:`moulin.training.ddp.train_worker`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from moulin.training import TrainingError
from moulin.training.sharding import Tail

Pool = Literal["thread", "process"]
#: Which reader feeds the trainer: moulin's loader (:class:`moulin.training.loader.SnapshotLoader`,
#: the default) or Petastorm's ``make_batch_reader`` (:class:`moulin.training.petastorm_loader.PetastormLoader`).
Reader = Literal["moulin", "petastorm"]


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
    # Which reader reads the snapshot's files (docs/guides/petastorm.md says why moulin's is the default).
    reader: Reader = "moulin"

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.workers < 1 or self.read_ahead < 1 or self.ready_batches < 1:
            raise ValueError(
                "batch_size, workers, read_ahead and ready_batches must be at least 1, not "
                f"{self.batch_size}, {self.workers}, {self.read_ahead}, {self.ready_batches}"
            )
        if self.pool not in get_args(Pool):
            raise ValueError(f"pool must be 'thread' or 'process', not {self.pool!r}")
        if self.reader not in get_args(Reader):
            raise ValueError(f"reader must be 'moulin' or 'petastorm', not {self.reader!r}")

    @classmethod
    def from_dict(cls, data: dict | None, **defaults: Any) -> LoaderOptions:
        """Options from a job's plain dict (unknown keys are an error naming them)."""
        data = {**defaults, **(data or {})}
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise TrainingError(f"unknown loader option(s) {unknown}: {sorted(cls.__dataclass_fields__)}")
        return cls(**data)
