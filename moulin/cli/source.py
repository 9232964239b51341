"""``moulin source``: sources as configuration from the shell (list, validate, infer, run, unland)."""

from __future__ import annotations

import argparse

from moulin.command_line import add_action, add_actions, add_command, add_ds
from moulin.ingest.formats import discover
from moulin.settings import load_settings
from moulin.sources.cli import source_cli


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``moulin source``; ``run`` and ``unland`` run in a console run."""
    p = add_command(
        sub,
        "source",
        help="sources as configuration: list, validate, infer, run, unland",
        description="Sources as configuration (a spec and its bronze contract per source).",
        run=_cmd_source,
        console_actions=("run", "unland"),
    )
    actions = add_actions(p)
    add_action(
        actions,
        "list",
        help="the sources' names and spec files",
        description="Print each source's name and spec file.",
    )
    a = add_action(
        actions,
        "validate",
        help="check a source's spec and its contract",
        description="Check a source's spec and its bronze contract; print what it lands, where, and "
        "its DAG, then any warning.",
    )
    _add_target(a)
    a = add_action(
        actions,
        "infer",
        help="draft a contract and a spec from a sample file",
        description="Draft a bronze contract and a source spec from a sample file (columns, keys, "
        "ranges inferred from every record): printed, or written under --out for review.",
    )
    a.add_argument("target", help="a sample file (CSV, JSON lines or Parquet)")
    a.add_argument("--name", help="the source's name (default: the file's stem)")
    a.add_argument(
        "--format",
        choices=[f.name for f in discover().values() if f.drafts_from_samples()],
        help="default from the suffix",
    )
    a.add_argument("--delimiter", default=",", help="CSV delimiter")
    a.add_argument("--encoding", default="utf-8", help="text encoding")
    a.add_argument("--out", help="write <out>/bronze_<name>.yaml and <out>/sources/<name>.yaml")
    a.add_argument("--start-date", help="logical date YYYY-MM-DD of the first drop to load")
    a = add_action(
        actions,
        "run",
        help="land and gate one drop outside Airflow",
        description="Land one drop of a source and gate it into bronze outside Airflow, printing a "
        "line per step and the accounting.",
    )
    _add_target(a)
    add_ds(a, "logical date YYYY-MM-DD of the drop (required)")
    a.add_argument(
        "--replace",
        action="store_true",
        help="land changed files as a new landing version and withdraw files no longer in the drop",
    )
    a.add_argument(
        "--redelivery",
        action="store_true",
        help="land files whose bytes already landed under another date (a deliberate redelivery)",
    )
    a.add_argument("--no-ge", dest="run_ge", action="store_false", help="skip Great Expectations")
    a = add_action(
        actions,
        "unland",
        help="take the landing of one date back",
        description="Take the landing of one date back: its files leave the landing (they stay in "
        "raw), its bronze and quarantine partitions are removed; `moulin source run` lands the date "
        "again from its drop.",
    )
    _add_target(a)
    add_ds(a, "logical date YYYY-MM-DD of the landing (required)")


def _add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", help="spec file or source name")


def _cmd_source(args: argparse.Namespace) -> int:
    return source_cli(args, load_settings(args.profile))
