"""Plain result objects returned by :class:`moulin.delta.DeltaTableStore`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class WriteResult:
    """Outcome of a write or merge.

    ``version`` is the table version after the call; ``committed`` is False when the
    call changed nothing (an idempotent retry of an ``(app_id, app_version)`` pair
    already in the log).
    """

    table_uri: str
    version: int
    committed: bool
    num_files: int = 0
    num_rows: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TableMetadata:
    """What a table says about itself (stored in its Delta metadata)."""

    table_uri: str
    description: str | None
    owner: str | None
    personal_data: list[str]
    partition_by: list[str]
    version: int
    num_files: int
    schema: Any  # pyspark.sql.types.StructType (pure Python, no session needed)
    num_rows: int | None = None
    configuration: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CompactionPolicy:
    """When a write compacts the small files of the partitions it wrote (auto-compaction).

    After a data commit, a partition holding ``min_small_files`` or more files
    smaller than ``small_file_bytes`` is compacted toward ``target_size`` bytes in
    one extra commit (rows unchanged, ``dataChange=false``).  Delta Lake on Spark
    uses the same threshold (``minNumFiles`` 50) for its auto-compaction.
    """

    min_small_files: int = 50
    small_file_bytes: int = 16 * 2**20
    target_size: int = 128 * 2**20
