"""The feature table's Delta snapshot as files per split, and readers for it.

Training runs with pyarrow 14 (petastorm), which cannot read partitioned Delta
tables through deltalake; ``DeltaTable.get_add_actions()`` still works, so the
snapshot (one pinned version) is resolved to its data files and their partition
values, and the files are read directly: by the training loader
(:mod:`moulin.training.loader`) for the networks, with ``pyarrow.parquet`` into
pandas for the baselines.  Partition
columns are not inside Delta data files: a file's split comes from its add action.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd

from moulin.storage import WarehouseFS
from moulin.training import TrainingDataError, TrainingError
from moulin.training.contract import SPLITS
from moulin.training.parquet_files import local_path


@dataclass(frozen=True)
class FeatureSnapshot:
    """One version of the feature table: data file URIs and row counts per split."""

    table_uri: str
    version: int
    files: dict[str, tuple[str, ...]]
    rows: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "table_uri": self.table_uri,
            "version": self.version,
            "files": {k: list(v) for k, v in self.files.items()},
            "rows": dict(self.rows),
        }


def _absolute(table_uri: str, rel_path: str) -> str:
    """URI of a data file from its (possibly URL-encoded) path in the Delta log."""
    if "://" in rel_path:
        return rel_path
    rel = unquote(rel_path)
    base = table_uri.rstrip("/")
    if base.startswith("/"):
        base = Path(base).resolve().as_uri()
    return f"{base}/{rel}"


def _add_actions(table_uri: str, version: int | None):
    """The version ``table_uri`` resolves to at ``version`` (default: latest) and its add actions."""
    import pyarrow as pa
    from deltalake import DeltaTable

    try:
        table = DeltaTable(table_uri, version=version) if version is not None else DeltaTable(table_uri)
    except Exception as exc:  # TableNotFoundError, version missing, unreachable
        at = f" at version {version}" if version is not None else ""
        raise TrainingError(f"cannot open the feature table {table_uri}{at}: {exc}") from exc
    resolved = table.version()
    actions = pa.table(table.get_add_actions(flatten=True))
    del table
    return resolved, actions


def resolve_snapshot(table_uri: str, split_column: str, version: int | None = None) -> FeatureSnapshot:
    """Files of each split of ``table_uri`` at ``version`` (default: latest)."""
    resolved, actions = _add_actions(table_uri, version)
    part_col = f"partition.{split_column}"
    if part_col not in actions.column_names:
        raise TrainingDataError(
            f"feature table {table_uri} (version {resolved}) is not partitioned by {split_column!r}: "
            f"the contract says it should be"
        )
    paths = actions.column("path").to_pylist()
    parts = actions.column(part_col).to_pylist()
    counts = actions.column("num_records").to_pylist() if "num_records" in actions.column_names else None
    files: dict[str, list[str]] = {s: [] for s in SPLITS}
    rows: dict[str, int] = {s: 0 for s in SPLITS}
    for i, (path, split) in enumerate(zip(paths, parts, strict=True)):
        files.setdefault(split, []).append(_absolute(table_uri, path))
        rows[split] = rows.get(split, 0) + int(counts[i] or 0) if counts else rows.get(split, 0)
    missing = [s for s in SPLITS if not files.get(s)]
    if missing:
        raise TrainingDataError(
            f"feature table {table_uri} (version {resolved}) has no data for split(s) {missing}"
        )
    return FeatureSnapshot(
        table_uri=table_uri,
        version=int(resolved),
        files={k: tuple(sorted(v)) for k, v in files.items()},
        rows=rows,
    )


#: The one group of :func:`resolve_table_files`: every file of the version.
ALL_FILES = "all"


def resolve_table_files(table_uri: str, version: int | None = None) -> FeatureSnapshot:
    """Every data file of ``table_uri`` at ``version`` (default: latest), whatever its
    partitioning, as the one group :data:`ALL_FILES` (``files`` and ``rows``): for a table
    whose rows carry their split in a column (partitioned by date, for retention)."""
    resolved, actions = _add_actions(table_uri, version)
    paths = actions.column("path").to_pylist()
    counts = actions.column("num_records").to_pylist() if "num_records" in actions.column_names else None
    if not paths:
        raise TrainingDataError(f"table {table_uri} (version {resolved}) has no data files")
    return FeatureSnapshot(
        table_uri=table_uri,
        version=int(resolved),
        files={ALL_FILES: tuple(sorted(_absolute(table_uri, p) for p in paths))},
        rows={ALL_FILES: sum(int(c or 0) for c in counts)} if counts else {},
    )


# -- deterministic row sampling (same rows on the driver and in every rank)


def sample_mask(keys: Sequence | np.ndarray, fraction: float | None) -> np.ndarray:
    """Rows kept by a ``fraction`` sample, decided by a hash of the key (stable across processes)."""
    keys = np.asarray(keys)
    if fraction is None or fraction >= 1.0:
        return np.ones(len(keys), dtype=bool)
    hashed = pd.util.hash_array(keys.astype(str).astype(object), categorize=False)
    return (hashed % np.uint64(1_000_000)) < np.uint64(int(fraction * 1_000_000))


def check_fraction(sample: float | None) -> float | None:
    if sample is None:
        return None
    if not 0.0 < float(sample) <= 1.0:
        raise TrainingError(f"sample must be a fraction in (0, 1], got {sample}")
    return float(sample)


# -- reading files


def _local_path(uri: str) -> str | None:
    return local_path(uri)


def read_split_pandas(
    uris: Sequence[str],
    columns: Sequence[str],
    settings=None,
    sample: float | None = None,
    key: str | None = None,
) -> pd.DataFrame:
    """The rows of ``uris`` (Parquet files of one split) as one pandas frame."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    fs = None
    for uri in uris:
        path = _local_path(uri)
        if path is not None:
            tables.append(pq.read_table(path, columns=list(columns)))
            continue
        if fs is None:
            if settings is None:
                raise TrainingError(f"reading {uri} needs settings (for the warehouse file system)")

            fs = WarehouseFS(settings)
        tables.append(pq.read_table(pa.BufferReader(fs.read_bytes(uri)), columns=list(columns)))
    if not tables:
        return pd.DataFrame({c: [] for c in columns})
    frame = pa.concat_tables(tables).to_pandas()
    if sample is not None and key is not None:
        frame = frame[sample_mask(frame[key].to_numpy(), sample)].reset_index(drop=True)
    return frame
