"""``moulin table``: inspect a Delta table without Spark."""

from __future__ import annotations

import argparse

from moulin.command_line import add_action, add_actions, add_command, add_limit
from moulin.settings import load_settings
from moulin.spark import act_as_hdfs_user
from moulin.table_cli import table_cli

#: The actions of ``moulin table``: (action, one-line help, description, its options of
#: ``version``, ``limit``, ``json``).
ACTIONS = (
    (
        "show",
        "print the first rows",
        "Print the first rows of the table (the read of a personal-data table is audited).",
        ("version", "limit"),
    ),
    (
        "history",
        "one line per version",
        "Print one line per version: version, UTC time, operation, rows and files added or removed, writer.",
        ("json",),
    ),
    (
        "count",
        "the number of rows",
        "Print the number of rows (from the Delta log's statistics when every file has them).",
        ("version",),
    ),
    (
        "schema",
        "the columns and their types",
        "Print each column and its type, and the partition columns.",
        ("version",),
    ),
    (
        "describe",
        "description, owner, personal data, partitions",
        "Print the table's version, files, rows, description, owner, personal data and partitions.",
        (),
    ),
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``moulin table``."""
    p = add_command(
        sub,
        "table",
        help="inspect a Delta table",
        description="Inspect a Delta table (without Spark); <table> is a URI or a path relative to the warehouse.",
        run=_cmd_table,
    )
    actions = add_actions(p)
    for action, what, description, options in ACTIONS:
        a = add_action(actions, action, help=what, description=description)
        a.add_argument("table", help="table URI, or a path relative to the warehouse")
        if "version" in options:
            a.add_argument("--version", type=int, help="read this table version (default: the latest)")
        if "limit" in options:
            add_limit(a, "rows to show", default=10)
        if "json" in options:
            a.add_argument("--json", action="store_true", help="print each commit's raw JSON")


def _cmd_table(args: argparse.Namespace) -> int:
    settings = load_settings(args.profile)
    act_as_hdfs_user(settings)
    return table_cli(args, settings)
