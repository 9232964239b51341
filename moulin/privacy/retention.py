"""Retention: each contract's ``privacy.retention_days`` drives the deletion of
everything older than the retention that holds its rows: the partitions of its
table and of its analysts' view (:mod:`moulin.privacy.views`), and for a bronze
table the source's quarantine partitions, raw drops and local staging copies
(``$MOULIN_HOME/staging/<source>/<source>_<ds>.*``); then a vacuum so the
deleted files are gone from disk.  ``dry_run`` says what would be deleted.

A partition is expired when its ``retention_column`` value (a date
``YYYY-MM-DD``, the logical date ``ds`` by default) is before ``today`` minus
the retention; partitions are deleted by that column, whatever the table's
other partition columns.  What was deleted is appended to the Delta table
``ops/retention`` (one row per table, raw folder or staging folder), besides the
audit trail's ``retention`` rows.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from moulin.contracts import load_all_contracts
from moulin.delta.rows import append_row
from moulin.errors import DataError
from moulin.privacy.views import view_uri
from moulin.settings import Settings
from moulin.sources.spec import sources_by_contract
from moulin.storage import WarehouseFS


class RetentionError(DataError):
    """A contract's retention cannot be applied (its column is not a date partition)."""


@dataclass
class RetentionAction:
    """What retention does (or would do) to one table or raw folder."""

    target: str
    kind: str  # "table", "raw" or "staging"
    retention_days: int
    cutoff: str
    #: The partition column deleted by (the contract's ``retention_column``); tables only.
    column: str | None = None
    expired: list[str] = field(default_factory=list)
    rows: int = 0
    files_vacuumed: int = 0
    version: int | None = None
    #: The table version the expired partitions and rows were read from; tables only.
    read_version: int | None = None


def _expired(values: list[str], cutoff: dt.date, where: str) -> list[str]:
    out = []
    for value in values:
        try:
            day = dt.date.fromisoformat(str(value)[:10])
        except ValueError:
            raise RetentionError(f"{where}: partition value {value!r} is not a date YYYY-MM-DD") from None
        if day < cutoff:
            out.append(value)
    return sorted(out)


def plan_retention(settings: Settings, today: dt.date | None = None) -> list[RetentionAction]:
    """The expired partitions and raw drops of every contract with a retention."""
    from moulin.delta import DeltaTableStore

    today = today or dt.date.today()
    store = DeltaTableStore(None)
    fs = WarehouseFS(settings)
    plan: list[RetentionAction] = []
    sources = sources_by_contract()
    for name, contract in sorted(load_all_contracts().items()):
        policy = contract.privacy
        if policy is None or policy.retention_days is None or "<" in contract.table:
            continue
        cutoff = today - dt.timedelta(days=policy.retention_days)
        column = policy.retention_column
        if column not in contract.partition_by:
            raise RetentionError(
                f"contract {name} ({contract.path}): retention_column {column!r} is not a partition column "
                f"({list(contract.partition_by)}): retention deletes whole partitions"
            )
        tables = [settings.table_uri(contract.table)]
        if contract.personal_columns:
            tables.append(view_uri(settings, contract))
        source = sources.get(name) if contract.layer == "bronze" else None
        if source is not None:
            tables.append(settings.table_uri("quarantine", source))
        for uri in tables:
            if not store.exists(uri):
                continue
            snap = store.snapshot(uri)
            if column not in snap.partition_by:
                raise RetentionError(
                    f"contract {name} ({contract.path}): table {uri} is not partitioned by its "
                    f"retention_column {column!r} (but by {snap.partition_by or 'nothing'}): rebuild it "
                    "partitioned by that column, or change retention_column"
                )
            plan.append(_table_action(uri, snap, column, policy.retention_days, cutoff))
        if source is not None:
            raw = settings.table_uri("raw", source)
            drops = [
                e.uri.rsplit("/", 1)[-1][3:]
                for e in fs.list(raw)
                if e.is_dir and e.uri.rsplit("/", 1)[-1].startswith("ds=")
            ]
            plan.append(
                RetentionAction(
                    raw, "raw", policy.retention_days, cutoff.isoformat(), None, _expired(drops, cutoff, raw)
                )
            )
            staging = _staging_action(settings, source, policy.retention_days, cutoff)
            if staging is not None:
                plan.append(staging)
    return plan


def _table_action(uri: str, snap, column: str, days: int, cutoff: dt.date) -> RetentionAction:
    """The expired partitions (by ``column``) and their rows in one snapshot of table ``uri``."""
    files = snap.files()
    values = sorted({f.partition_values.get(column) for f in files} - {None})
    expired = _expired(values, cutoff, uri)
    rows = sum(int(f.num_records or 0) for f in files if f.partition_values.get(column) in expired)
    return RetentionAction(
        uri, "table", days, cutoff.isoformat(), column, expired, rows, read_version=snap.version
    )


def _delete_expired(store, action: RetentionAction) -> None:
    """Delete the expired partitions of a table in one commit pinned to the version they were
    read from; when another commit landed in between, read the table again (its expired
    partitions and rows) and retry, so what is recorded is what was deleted."""
    from moulin.delta import retry_on_conflict

    def once(attempt: int) -> None:
        if attempt:  # a concurrent commit: the plan of this table is stale
            snap = store.snapshot(action.target)
            cutoff = dt.date.fromisoformat(action.cutoff)
            fresh = _table_action(action.target, snap, str(action.column), action.retention_days, cutoff)
            action.expired, action.rows, action.read_version = fresh.expired, fresh.rows, fresh.read_version
        if not action.expired:
            return
        empty = store.read(action.target, version=action.read_version).limit(0)
        res = store.write(
            empty,
            action.target,
            mode="overwrite",
            replace_where=[(action.column, "in", action.expired)],
            commit_info={"moulin.operation": "retention"},
            expected_version=action.read_version,
        )
        action.version = res.version

    retry_on_conflict(action.target, "retention", once)


def _staging_action(settings: Settings, source: str, days: int, cutoff: dt.date) -> RetentionAction | None:
    """The local staging copies of ``source`` (``<source>_<ds>.<ext>``) older than ``cutoff``;
    None when the source has no staging folder (file sources land their drops directly)."""
    folder = settings.home / "staging" / source
    if not folder.is_dir():
        return None
    names = sorted(p.name for p in folder.glob(f"{source}_*") if p.is_file())
    by_ds: dict[str, list[str]] = {}
    for file_name in names:
        ds = file_name[len(source) + 1 :].split(".", 1)[0]
        by_ds.setdefault(ds, []).append(file_name)
    dated = {ds: files for ds, files in by_ds.items() if _is_date(ds)}
    expired = _expired(list(dated), cutoff, str(folder))
    return RetentionAction(
        str(folder), "staging", days, cutoff.isoformat(), None, [f for ds in expired for f in dated[ds]]
    )


def _is_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def apply_retention(
    spark,
    settings: Settings,
    today: dt.date | None = None,
    dry_run: bool = False,
    say: Callable[[str], None] = lambda line: None,
) -> list[dict[str, Any]]:
    """Delete what :func:`plan_retention` finds expired (unless ``dry_run``); returns the actions."""
    from moulin.delta import DeltaTableStore
    from moulin.privacy import audit

    plan = plan_retention(settings, today)
    store = DeltaTableStore(spark)
    fs = WarehouseFS(settings)
    for action in plan:
        if not action.expired:
            say(f"{action.target}: nothing older than {action.cutoff}")
            continue
        verb = "would delete" if dry_run else "deleting"
        say(f"{action.target}: {verb} {len(action.expired)} partition(s) before {action.cutoff}: "
            f"{', '.join(action.expired[:5])}{' ...' if len(action.expired) > 5 else ''}")  # fmt: skip
        if dry_run:
            continue
        if action.kind == "raw":
            for ds in action.expired:
                fs.delete(f"{action.target}/ds={ds}", recursive=True)
        elif action.kind == "staging":
            for file_name in action.expired:
                (Path(action.target) / file_name).unlink(missing_ok=True)
        else:
            _delete_expired(store, action)
            if not action.expired:  # a concurrent commit removed them first: nothing deleted here
                continue
            action.files_vacuumed = len(store.vacuum(action.target, retention_hours=0, force=True))
            audit.record("retention", action.target, action.version, detail={"partitions": action.expired,
                         "rows": action.rows}, settings=settings)  # fmt: skip
        record_deletion(settings, action)
    return [asdict(a) for a in plan]


RETENTION_TABLE = ("ops", "retention")


def record_deletion(settings: Settings, action: RetentionAction) -> None:
    """Append what ``action`` deleted to ``ops/retention`` (one row)."""
    import pyarrow as pa

    row = {
        "at": dt.datetime.now(dt.UTC),
        "target": action.target,
        "kind": action.kind,
        "column": action.column,
        "retention_days": action.retention_days,
        "cutoff": action.cutoff,
        "deleted": json.dumps(action.expired),
        "rows": action.rows,
        "version": action.version,
        "files_vacuumed": action.files_vacuumed,
    }
    schema = pa.schema(
        [
            ("at", pa.timestamp("us", tz="UTC")),
            ("target", pa.string()),
            ("kind", pa.string()),
            ("column", pa.string()),
            ("retention_days", pa.int64()),
            ("cutoff", pa.string()),
            ("deleted", pa.string()),
            ("rows", pa.int64()),
            ("version", pa.int64()),
            ("files_vacuumed", pa.int64()),
        ]
    )
    append_row(settings.table_uri(*RETENTION_TABLE), row, f"the retention record of {action.target}", schema)


def read_retention(settings: Settings) -> list[dict]:
    """The rows of ``ops/retention``, oldest first."""
    from moulin.delta.rows import read_rows

    return read_rows(settings.table_uri(*RETENTION_TABLE), "at")
