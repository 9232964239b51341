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


def history_line(entry: dict[str, Any]) -> str:
    """One readable line for a commit of ``DeltaTableStore.history``: version, UTC time,
    operation with its mode and predicate, rows and files added or removed, writer."""
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
    parts = [
        f"v{entry.get('version', '?')}",
        when,
        str(entry.get("operation", "?")) + (f" ({', '.join(details)})" if details else ""),
        ", ".join(counts) or "-",
        str(entry.get("engineInfo") or entry.get("clientVersion") or ""),
    ]
    return "  ".join(p for p in parts if p)


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
            print(json.dumps(entry, default=str) if args.json else history_line(entry))
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
    snap = store._snapshot(uri, args.version)
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
