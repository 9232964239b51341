"""The model leaderboard: an unpartitioned Delta table, one row per (run_id, model)
and training of the run (a run trained again on another snapshot adds its rows).

Appended with ``deltalake.write_deltalake(mode="append")`` (works on pyarrow 14);
read back through the snapshot's file list and pyarrow (no deltalake scan).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import pyarrow as pa

from moulin.training.training_results import METRIC_NAMES

#: The test metrics of a row, each with its interval's bounds (``<metric>_lo``, ``<metric>_hi``).
METRICS = METRIC_NAMES

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


def app_id(run_id: str, fingerprint: str | None = None) -> str:
    """The Delta app transaction of the rows of run ``run_id`` trained as ``fingerprint``
    (:func:`moulin.training.checkpoints.fingerprint` of what the training depended on)."""
    return f"moulin.leaderboard.{run_id}" + (f".{fingerprint}" if fingerprint else "")


def recorded_version(uri: str, app: str, storage_options: dict | None = None) -> int:
    """The version of app transaction ``app`` in the leaderboard at ``uri`` (0: none, or no table)."""
    from deltalake import DeltaTable

    if not DeltaTable.is_deltatable(uri, storage_options=storage_options):
        return 0
    dt = DeltaTable(uri, storage_options=storage_options)
    version = int(dt.transaction_version(app) or 0)
    del dt
    return version


def append(
    uri: str,
    rows: Sequence[dict],
    storage_options: dict | None = None,
    run_id: str | None = None,
    fingerprint: str | None = None,
    app_version: int = 1,
) -> int:
    """Append ``rows`` to the leaderboard at ``uri`` (created on first use); the new version.

    With ``run_id``, the append is idempotent: it carries the Delta app transaction
    :func:`app_id` (``moulin.leaderboard.<run_id>[.<fingerprint>]``) at
    ``app_version``, and an append whose transaction is already there at that
    version or a later one commits nothing.  The fingerprint makes a run trained
    again on other data (another snapshot, other hyper-parameters) a record of its
    own; a later ``app_version`` records the same training again (after the run's
    results were replaced by another training's).
    """
    from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

    app = app_id(run_id, fingerprint) if run_id else None
    if app and recorded_version(uri, app, storage_options) >= app_version:
        dt = DeltaTable(uri, storage_options=storage_options)
        version = dt.version()
        del dt
        return int(version)
    table = pa.Table.from_pylist(list(rows), schema=SCHEMA)
    props = CommitProperties(app_transactions=[Transaction(app, app_version)]) if app else None
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
