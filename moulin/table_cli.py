"""``moulin table``: inspect a Delta table from the shell (count, show, schema, history)."""

from __future__ import annotations

import argparse
import json

from moulin.errors import MoulinError
from moulin.settings import Settings


def resolve_table_uri(settings: Settings, table: str) -> str:
    """A table argument as a URI: kept if it has a scheme, else under the warehouse."""
    return table if "://" in table else settings.table_uri(table)


def table_cli(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``moulin table <action> <table>``; prints to stdout, returns the exit code."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    uri = resolve_table_uri(settings, args.table)
    try:
        table = DeltaTable(uri, version=args.version) if args.version is not None else DeltaTable(uri)
    except TableNotFoundError:
        raise MoulinError(f"no Delta table at {uri}: check the path (a folder with a _delta_log)") from None
    if args.action == "history":
        for entry in table.history():
            print(json.dumps(entry, default=str))
    elif args.action == "schema":
        print(table.schema().to_arrow())
    else:
        # Count and show read only the files' data through Arrow; the process
        # exits through moulin.cli.main (os._exit), so deltalake's native
        # thread pools are never torn down by the interpreter.
        data = table.to_pyarrow_table()
        if args.action == "count":
            print(data.num_rows)
        else:
            print(data.slice(0, args.limit).to_pandas().to_string())
        del data
    if args.action != "count":
        print(f"# table {uri} version {table.version()}")
    return 0
