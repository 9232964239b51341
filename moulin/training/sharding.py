"""Which rows of a split each rank reads in an epoch: row groups shuffled by a seed
all ranks share, then cut into equal contiguous row ranges, one per rank.

Every rank reads the same number of rows, so every rank makes the same number of
batches (no ``Join``, no rank waiting on another's extra batches).  A rank reads
only the row groups its range covers (at most two of them in part: a row group is
read whole and sliced), never the whole split filtered by a hash.

The rows that do not divide evenly among the ranks (fewer than ``world``) are
the epoch's *tail*: ``tail="drop"`` leaves them out of that epoch (they are the
last rows of the epoch's shuffled order, so other rows each epoch), ``"pad"``
gives the short ranks the first rows of the order again (as
``torch.utils.data.DistributedSampler`` does).  With one rank there is no tail.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Tail = Literal["drop", "pad"]


@dataclass(frozen=True)
class RowGroup:
    """One row group of one file of a split: ``rows`` rows are kept from it (all of
    them, or those a sample keeps)."""

    file: int
    index: int
    rows: int


@dataclass(frozen=True)
class RowSlice:
    """Rows ``start:stop`` (among the row group's kept rows) of row group ``index`` of ``file``."""

    file: int
    index: int
    start: int
    stop: int

    @property
    def rows(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class EpochPlan:
    """What one rank reads in one epoch, in order, and how it is cut into batches."""

    slices: tuple[RowSlice, ...]
    rows: int
    batches: int
    tail_rows: int
    tail: Tail

    @property
    def dropped_rows(self) -> int:
        return self.tail_rows if self.tail == "drop" else 0


def epoch_order(groups: Sequence[RowGroup], seed: int, epoch: int, shuffle: bool) -> list[RowGroup]:
    """The row groups in the epoch's order: shuffled by ``(seed, epoch)`` (the same on every rank)."""
    if not shuffle:
        return list(groups)
    permutation = np.random.default_rng([seed, epoch, 0x5EED]).permutation(len(groups))
    return [groups[i] for i in permutation]


def plan_epoch(
    groups: Sequence[RowGroup],
    rank: int,
    world: int,
    batch_size: int,
    seed: int = 0,
    epoch: int = 0,
    shuffle: bool = True,
    tail: Tail = "drop",
) -> EpochPlan:
    """Rank ``rank``'s share of ``groups`` in epoch ``epoch`` (see the module's docstring)."""
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"rank {rank} is not one of {world} rank(s)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    if tail not in ("drop", "pad"):
        raise ValueError(f"tail must be 'drop' or 'pad', not {tail!r}")
    order = [g for g in epoch_order(groups, seed, epoch, shuffle) if g.rows > 0]
    total = sum(g.rows for g in order)
    per_rank = total // world if tail == "drop" else math.ceil(total / world)
    tail_rows = total - per_rank * world if tail == "drop" else per_rank * world - total
    # Positions start .. start + per_rank - 1 of the epoch's order, wrapping around
    # to the first rows where "pad" asks for more rows than there are.
    ranges: list[tuple[int, int]] = []
    position, remaining = rank * per_rank, per_rank
    while remaining > 0 and total > 0:
        lo = position % total
        hi = min(total, lo + remaining)
        ranges.append((lo, hi))
        remaining -= hi - lo
        position += hi - lo
    slices: list[RowSlice] = []
    for lo, hi in ranges:
        offset = 0
        for group in order:
            g_lo, g_hi = offset, offset + group.rows
            offset = g_hi
            a, b = max(lo, g_lo), min(hi, g_hi)
            if a < b:
                slices.append(RowSlice(group.file, group.index, a - g_lo, b - g_lo))
            if g_lo >= hi:
                break
    rows = sum(s.rows for s in slices)
    return EpochPlan(
        slices=tuple(slices),
        rows=rows,
        batches=math.ceil(rows / batch_size),
        tail_rows=tail_rows,
        tail=tail,
    )
