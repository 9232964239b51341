"""The model leaderboard: an unpartitioned Delta table, one row per (run_id, model).

Appended with ``deltalake.write_deltalake(mode="append")`` (works on pyarrow 14);
read back through the snapshot's file list and pyarrow (no deltalake scan).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import pyarrow as pa

METRICS = ("roc_auc", "pr_auc", "f1", "brier", "ece")

SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("features_uri", pa.string()),
        pa.field("features_version", pa.int64()),
        pa.field("n_train", pa.int64()),
        pa.field("n_validation", pa.int64()),
        pa.field("n_test", pa.int64()),
        pa.field("base_rate", pa.float64()),
        pa.field("threshold", pa.float64()),
        *[
            f
            for m in METRICS
            for f in (
                pa.field(m, pa.float64()),
                pa.field(f"{m}_lo", pa.float64()),
                pa.field(f"{m}_hi", pa.float64()),
            )
        ],
        pa.field("hyperparams", pa.string()),
        pa.field("train_seconds", pa.float64()),
        pa.field("model_uri", pa.string()),
        pa.field("results_uri", pa.string()),
    ]
)


def _num(value):
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def make_row(
    *,
    run_id: str,
    model: str,
    created_at,
    features_uri: str,
    features_version: int,
    rows: dict,
    test_metrics: dict,
    hyperparams: dict,
    train_seconds: float,
    model_uri: str,
    results_uri: str,
) -> dict:
    row = {
        "run_id": run_id,
        "model": model,
        "created_at": created_at,
        "features_uri": features_uri,
        "features_version": int(features_version),
        "n_train": int(rows["train"]),
        "n_validation": int(rows["validation"]),
        "n_test": int(rows["test"]),
        "base_rate": _num(test_metrics["base_rate"]),
        "threshold": _num(test_metrics["threshold"]),
        "hyperparams": json.dumps(hyperparams, sort_keys=True, default=str),
        "train_seconds": float(train_seconds),
        "model_uri": model_uri,
        "results_uri": results_uri,
    }
    for m in METRICS:
        row[m] = _num(test_metrics[m])
        lo, hi = test_metrics[f"{m}_ci"]
        row[f"{m}_lo"], row[f"{m}_hi"] = _num(lo), _num(hi)
    return row


def append(
    uri: str, rows: Sequence[dict], storage_options: dict | None = None, run_id: str | None = None
) -> int:
    """Append ``rows`` to the leaderboard at ``uri`` (created on first use); the new version.

    With ``run_id``, the append is idempotent: it carries the Delta app
    transaction ``moulin.leaderboard.<run_id>``, and a retried run whose rows
    are already in the table commits nothing.
    """
    from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

    app_id = f"moulin.leaderboard.{run_id}" if run_id else None
    if app_id and DeltaTable.is_deltatable(uri, storage_options=storage_options):
        existing = DeltaTable(uri, storage_options=storage_options)
        if (existing.transaction_version(app_id) or 0) >= 1:
            return int(existing.version())
    table = pa.Table.from_pylist(list(rows), schema=SCHEMA)
    props = CommitProperties(app_transactions=[Transaction(app_id, 1)]) if app_id else None
    write_deltalake(uri, table, mode="append", storage_options=storage_options, commit_properties=props)
    dt = DeltaTable(uri, storage_options=storage_options)
    version = dt.version()
    del dt
    return int(version)


def read(uri: str, settings=None) -> list[dict]:
    """All rows of the leaderboard (latest version)."""
    from deltalake import DeltaTable

    from moulin.training.data import _absolute, read_split_pandas

    dt = DeltaTable(uri)
    actions = pa.table(dt.get_add_actions(flatten=True))
    del dt
    files = [_absolute(uri, p) for p in actions.column("path").to_pylist()]
    if not files:
        return []
    frame = read_split_pandas(files, SCHEMA.names, settings=settings)
    return frame.sort_values(["created_at", "run_id", "model"]).to_dict("records")
