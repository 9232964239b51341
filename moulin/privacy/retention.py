"""Retention: each contract's ``privacy.retention_days`` drives the deletion of the
partitions of its table (and, for a bronze table, of the source's quarantine
partitions and raw drops) older than the retention, then a vacuum so the
deleted files are gone from disk.  ``dry_run`` says what would be deleted.

A partition is expired when its ``retention_column`` value (a date
``YYYY-MM-DD``, the logical date ``ds`` by default) is before ``today`` minus
the retention.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from moulin.contracts import load_all_contracts
from moulin.errors import DataError
from moulin.settings import Settings
from moulin.storage import WarehouseFS


class RetentionError(DataError):
    """A contract's retention cannot be applied (its column is not a date partition)."""


@dataclass
class RetentionAction:
    """What retention does (or would do) to one table or raw folder."""

    target: str
    kind: str  # "table" or "raw"
    retention_days: int
    cutoff: str
    expired: list[str] = field(default_factory=list)
    rows: int = 0
    files_vacuumed: int = 0
    version: int | None = None


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
        if contract.layer == "bronze" and contract.source is not None:
            tables.append(settings.table_uri("quarantine", contract.source.name))
        for uri in tables:
            if not store.exists(uri):
                continue
            snap = store._snapshot(uri)
            values = sorted({f.partition_values.get(column) for f in snap.files()} - {None})
            expired = _expired(values, cutoff, uri)
            rows = sum(
                int(f.num_records or 0) for f in snap.files() if f.partition_values.get(column) in expired
            )
            plan.append(
                RetentionAction(uri, "table", policy.retention_days, cutoff.isoformat(), expired, rows)
            )
        if contract.layer == "bronze" and contract.source is not None:
            raw = settings.table_uri("raw", contract.source.name)
            drops = [
                e.uri.rsplit("/", 1)[-1][3:]
                for e in fs.list(raw)
                if e.is_dir and e.uri.rsplit("/", 1)[-1].startswith("ds=")
            ]
            plan.append(
                RetentionAction(
                    raw, "raw", policy.retention_days, cutoff.isoformat(), _expired(drops, cutoff, raw)
                )
            )
    return plan


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
            continue
        column = store.metadata(action.target).partition_by[0]
        empty = store.read(action.target).limit(0)
        res = store.write(empty, action.target, mode="overwrite", replace_where=[(column, "in", action.expired)],
                          commit_info={"moulin.operation": "retention"})  # fmt: skip
        action.version = res.version
        action.files_vacuumed = len(store.vacuum(action.target, retention_hours=0, force=True))
        audit.record("retention", action.target, res.version, detail={"partitions": action.expired,
                     "rows": action.rows}, settings=settings)  # fmt: skip
    return [asdict(a) for a in plan]
