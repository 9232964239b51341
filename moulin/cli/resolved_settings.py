"""``moulin settings``: print the resolved settings."""

from __future__ import annotations

import argparse
import json

from moulin.command_line import add_command
from moulin.settings import describe, load_settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``moulin settings``."""
    add_command(
        sub, "settings", help="print the resolved settings", description="Print the resolved settings (JSON).",
        run=_cmd_settings,
    )  # fmt: skip


def _cmd_settings(args: argparse.Namespace) -> int:
    print(json.dumps(describe(load_settings(args.profile)), indent=2, default=str))
    return 0
