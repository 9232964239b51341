"""``moulin sql``: query the warehouse's tables by name from the shell, or list them.

``moulin sql "SELECT ..." [--as-of V|TS] [--format table|csv|parquet] [--out FILE]
[--limit N]`` runs the query with :func:`moulin.sql.run_query`; ``moulin sql
--tables`` lists the catalog (:mod:`moulin.catalog`).  Errors are printed by
``moulin.cli`` as one line, exit code 1.
"""

from __future__ import annotations

import argparse
import io
import sys
from typing import TYPE_CHECKING

from moulin.catalog import SqlError, load_catalog
from moulin.command_line import add_command, add_limit
from moulin.settings import Settings, load_settings
from moulin.spark import act_as_hdfs_user
from moulin.sql import run_query

if TYPE_CHECKING:
    import pyarrow as pa

    from moulin.catalog import CatalogEntry

#: Rows the table format shows when no --limit is given.
SHOWN_ROWS = 100
_DESCRIPTION_WIDTH = 70


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``moulin sql``."""
    p = add_command(
        sub,
        "sql",
        help="query tables by name with SQL (DuckDB); --tables lists them",
        description="Run one SELECT query (DuckDB) over the tables by name, <layer>.<table> "
        "(personal-data tables through their analysts' views), or list them with --tables.",
        run=_run,
    )
    p.add_argument(
        "query", nargs="?", help='one SELECT query, tables named <layer>.<table>: "SELECT * FROM gold.x"'
    )
    p.add_argument("--tables", action="store_true", help="list the tables and views queryable by name")
    p.add_argument("--as-of", help="read every table at this version number or ISO timestamp (UTC)")
    p.add_argument("--format", choices=("table", "csv", "parquet"), default="table", help="output format")
    p.add_argument("--out", help="write the rows to this file (csv, parquet: required)")
    add_limit(p, f"keep the first N rows (table format: {SHOWN_ROWS} by default)", default=None)


def _run(args: argparse.Namespace) -> int:
    settings = load_settings(args.profile)
    act_as_hdfs_user(settings)
    return sql_cli(args, settings)


def sql_cli(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``moulin sql``; prints to stdout (or writes ``--out``), returns the exit code."""

    if args.tables:
        if args.query or args.as_of:
            raise SqlError("--tables lists the tables: give it without a query or --as-of")
        print_tables(settings)
        return 0
    if not args.query or not args.query.strip():
        raise SqlError('give a query (moulin sql "SELECT ... FROM gold.<table>") or --tables')
    if args.format == "parquet" and not args.out:
        raise SqlError("--format parquet writes a file: give --out FILE")

    terminal = args.format == "table" and not args.out
    shown = args.limit if args.limit is not None else SHOWN_ROWS
    limit = shown + 1 if terminal and args.limit is None else args.limit  # one more: are there others?
    result = run_query(args.query, as_of=args.as_of, settings=settings, limit=limit)
    read = ", ".join(f"{name} v{version}" for name, version in result.versions.items()) or "no table"
    if args.format == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(result.table, args.out)
    elif args.format == "csv":
        data = _csv(result.table)
        if not args.out:
            sys.stdout.write(data.decode())
            return 0
        with open(args.out, "wb") as out:
            out.write(data)
    elif args.out:
        with open(args.out, "w") as out:
            out.write(_text(result.table) + "\n")
    else:
        print(_text(result.table.slice(0, shown)))
        if result.table.num_rows > shown:
            count = f"first {shown} rows shown (--limit N for more)"
        else:
            count = _rows(result.table.num_rows) + (
                f" (--limit {args.limit})" if args.limit is not None else ""
            )
        print(f"# {count}; read {read}")
        return 0
    print(f"wrote {_rows(result.table.num_rows)} to {args.out} ({args.format}); read {read}")
    return 0


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def _csv(table: pa.Table) -> bytes:
    import pyarrow as pa
    import pyarrow.csv

    sink = io.BytesIO()
    try:
        pyarrow.csv.write_csv(table, sink)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SqlError(
            f"the rows cannot be written as CSV ({exc}): cast nested columns to text in the query, "
            "or use --format parquet"
        ) from None
    return sink.getvalue()


def _text(table: pa.Table) -> str:
    """The rows as aligned text: NULL shown as <NA> (NaN stays NaN)."""
    import pandas as pd

    if table.num_rows == 0:
        return "  ".join(table.column_names) + "\n(no rows)"
    frame = table.to_pandas(types_mapper=pd.ArrowDtype)
    return frame.to_string(index=False, max_colwidth=60)


def personal_marking(entry: CatalogEntry) -> str:
    """What ``--tables`` says of an entry's personal data and whether analysts may query it."""
    if entry.kind == "view":
        return "pseudonyms/masked" if entry.personal else "-"
    if entry.personal:
        return f"personal: query {entry.view}" if entry.view else "personal: not queryable"
    if entry.refusal is not None:
        return f"{entry.zone} zone: not queryable"
    return "-"


def _state(entry: CatalogEntry) -> tuple[str, str]:
    """(version, rows) of a queryable entry, read now from its Delta log."""
    from moulin.delta import DeltaStoreError, DeltaTableStore

    if entry.refusal is not None:
        return "-", "-"
    store = DeltaTableStore(None)
    if not store.exists(entry.uri):
        return "not written", "-"
    try:
        meta = store.metadata(entry.uri)
    except DeltaStoreError:
        return "unreadable", "-"
    return f"v{meta.version}", "?" if meta.num_rows is None else str(meta.num_rows)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _DESCRIPTION_WIDTH else text[: _DESCRIPTION_WIDTH - 3] + "..."


def print_tables(settings: Settings) -> None:
    """Print the catalog: name, version (or "not written"), rows, personal data, description."""

    catalog = load_catalog(settings)
    rows = [("NAME", "VERSION", "ROWS", "PERSONAL", "DESCRIPTION")]
    for name in catalog.names():
        entry = catalog.entries[name]
        version, count = _state(entry)
        rows.append((name, version, count, personal_marking(entry), _short(entry.description)))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join([*(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)), row[4]]).rstrip())
    print(
        f"# {len(rows) - 1} tables and views; personal-data tables are queried through their "
        "analysts' views (views.*)"
    )
