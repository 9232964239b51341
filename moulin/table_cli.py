"""``moulin table``: inspect a Delta table from the shell (count, show, schema, history, describe).

Goes through :class:`moulin.delta.DeltaTableStore` without Spark: ``count`` sums
the per-file row counts of the Delta log (no data read) when every file has
statistics, ``show`` reads through deltalake/Arrow.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

from moulin.settings import Settings
from moulin.storage import WarehouseFS

#: commit metrics shown by ``history``, as Delta writers name them (delta-rs, Spark)
_METRICS = (
    ("num_added_rows", "+{} rows"),
    ("numOutputRows", "+{} rows"),
    ("num_deleted_rows", "-{} rows"),
    ("numDeletedRows", "-{} rows"),
    ("num_added_files", "+{} files"),
    ("numFiles", "+{} files"),
    ("num_removed_files", "-{} files"),
    ("numRemovedFiles", "-{} files"),
)


def history_line(entry: dict[str, Any], rows: tuple[int, int] | None = None) -> str:
    """One readable line for a commit of ``DeltaTableStore.history``: version, UTC time,
    operation with its mode and predicate, rows and files added or removed, writer.

    ``rows``: (added, removed) rows of the commit, for a commit whose metrics hold no row
    counts (moulin's own commits of files Spark wrote): see :func:`commit_rows`."""
    stamp = entry.get("timestamp")
    when = (
        dt.datetime.fromtimestamp(int(stamp) / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        if isinstance(stamp, int | float)
        else str(stamp or "?")
    )
    params = entry.get("operationParameters") or {}
    details = [f"{key} {params[key]}" for key in ("mode", "predicate") if params.get(key) not in (None, "")]
    replaced = entry.get("moulin.replaceWhere")  # moulin's own overwrite of some partitions
    if replaced:
        try:
            terms = [" ".join(str(part) for part in term) for term in json.loads(replaced)]
        except (TypeError, ValueError):
            terms = [str(replaced)]
        details.append(f"replacing {' and '.join(terms)}")
    metrics = entry.get("operationMetrics") or {}
    counts = [text.format(metrics[key]) for key, text in _METRICS if metrics.get(key) not in (None, 0, "0")]
    if rows is not None and not any(text.endswith("rows") for key, text in _METRICS if key in metrics):
        counts = [f"+{rows[0]} rows"] * bool(rows[0]) + [f"-{rows[1]} rows"] * bool(rows[1]) + counts
    parts = [
        f"v{entry.get('version', '?')}",
        when,
        str(entry.get("operation", "?")) + (f" ({', '.join(details)})" if details else ""),
        ", ".join(counts) or "-",
        str(entry.get("engineInfo") or entry.get("clientVersion") or ""),
    ]
    return "  ".join(p for p in parts if p)


def commit_rows(settings: Settings, uri: str, version: int) -> tuple[int, int] | None:
    """(added, removed) rows of commit ``version``, from the table's own log: the records
    of the files it added (their ``numRecords`` statistics) and the change of the
    snapshot's row count.  None when a file has no record count."""
    from moulin.delta.commits import commit_uri
    from moulin.delta.log import open_delta

    def rows_at(v: int) -> int | None:
        if v < 0:
            return 0
        counts = open_delta(uri, version=v).get_add_actions(flatten=True).column("num_records").to_pylist()
        return None if any(c is None for c in counts) else sum(counts)

    added = 0
    lines = WarehouseFS(settings).read_bytes(commit_uri(uri, version)).decode("utf-8").splitlines()
    for action in (json.loads(line) for line in lines if line.strip()):
        if "add" in action:
            stats = json.loads((action["add"] or {}).get("stats") or "{}")
            if "numRecords" not in stats:
                return None
            added += int(stats["numRecords"])
    before, after = rows_at(version - 1), rows_at(version)
    if before is None or after is None:
        return None
    return added, before + added - after


def resolve_table_uri(settings: Settings, table: str) -> str:
    """A table argument as a URI: kept if it has a scheme, else under the warehouse."""
    return table if "://" in table else settings.table_uri(table)


def table_cli(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``moulin table <action> <table>``; prints to stdout, returns the exit code.

    Errors (no table, corrupt log...) are :class:`moulin.delta.DeltaStoreError`s,
    printed by the CLI as one line.  The process exits through
    ``moulin.cli.main`` (``os._exit``), so deltalake's native thread pools are
    never torn down by the interpreter (delta-io/delta-rs#2184).
    """
    from moulin.delta import DeltaTableStore
    from moulin.delta.log import normalize_uri

    store = DeltaTableStore(None)
    uri = normalize_uri(resolve_table_uri(settings, args.table))
    if args.action == "history":
        for entry in store.history(uri):
            if args.json:
                print(json.dumps(entry, default=str))
                continue
            metrics = entry.get("operationMetrics") or {}
            counted = any(key in metrics for key, text in _METRICS if text.endswith("rows"))
            version = entry.get("version")
            rows = None if counted or not isinstance(version, int) else commit_rows(settings, uri, version)
            print(history_line(entry, rows))
        return 0
    if args.action == "count":
        print(store.count(uri, version=args.version))
        return 0
    if args.action == "describe":
        meta = store.metadata(uri)
        print(f"table:         {uri} (version {meta.version}, {meta.num_files} files, {meta.num_rows} rows)")
        print(f"description:   {meta.description or '-'}")
        print(f"owner:         {meta.owner or '-'}")
        print(f"personal data: {', '.join(meta.personal_data) or 'none'}")
        print(f"partitioned:   {', '.join(meta.partition_by) or 'no'}")
        return 0
    snap = store.snapshot(uri, args.version)
    if args.action == "schema":
        for field in snap.schema.fields:
            print(f"{field.name}: {field.dataType.simpleString()}")
        if snap.partition_by:
            print(f"# partitioned by {', '.join(snap.partition_by)}")
    else:
        data = store.to_arrow(uri, version=args.version)
        print(data.slice(0, args.limit).to_pandas().to_string())
        del data
    print(f"# table {uri} version {snap.version}")
    return 0
