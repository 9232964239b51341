"""The ``moulin`` command line."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from moulin.command_line import HelpFormatter, Parser, action_parsers
from moulin.console import console_run
from moulin.errors import MoulinError
from moulin.settings import PROFILES, SettingsError, load_settings

#: The modules that declare ``moulin``'s commands, in the order ``moulin --help`` lists
#: them: each defines ``add_parser(sub)``, which adds its commands with their parsers
#: and handlers (:mod:`moulin.command_line`).  ``moulin.cli.declared_usecases`` adds one
#: command per use case found in its folder, unless a module before it took the name.
COMMAND_MODULES = (
    "moulin.cli.resolved_settings",
    "moulin.cli.cluster",
    "moulin.cli.platform",
    "moulin.cli.daemon",
    "moulin.cli.flights",
    "moulin.cli.source",
    "moulin.cli.usecase",
    "moulin.cli.declared_usecases",
    "moulin.privacy.cli",
    "moulin.sql_cli",
    "moulin.sql_endpoint.cli",
    "moulin.cli.jobs",
    "moulin.cli.table",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``moulin``: the commands of :data:`COMMAND_MODULES`.

    Each command with actions (``moulin privacy erase``) has a parser per action with
    only that action's options; the action is ``args.action`` (``args.role`` for
    ``moulin daemon``)."""
    parser = argparse.ArgumentParser(prog="moulin", description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument(
        "--profile", choices=PROFILES, help="settings profile (default: $MOULIN_PROFILE or local)"
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_parser(sub)
    return parser


def command_names() -> frozenset[str]:
    """The names of ``moulin``'s commands (a new use case may take none of them)."""
    commands = action_parsers(build_parser())
    assert commands is not None
    return frozenset(commands.choices)


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command; return its exit code.

    The actions a command declares as console actions (``source run|unland``,
    ``flights run`` and every declared use case's ``run``: ``fashion``, ``sentiment``, ``mail``, those
    of ``moulin usecase new``) show moulin's lines and errors on the console and log the
    libraries' output (Spark, Great Expectations, ...) to a file they name at the end
    (:func:`moulin.console.console_run`), <logs_dir>/<command>/<timestamp>.log.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    commands = action_parsers(parser)
    assert commands is not None
    command = commands.choices[args.command]
    if getattr(args, "action", None) not in getattr(command, "console_actions", ()):
        return _dispatch(args)

    try:
        settings = load_settings(getattr(args, "run_profile", None) or args.profile)
    except SettingsError as exc:
        return _settings_error(exc)
    with console_run(settings, str(args.command)) as console:
        console.exit_code = _dispatch(args)
    return console.exit_code


def _settings_error(exc: SettingsError) -> int:
    print(f"moulin: settings error: {exc}", file=sys.stderr)
    return 2


def _dispatch(args: argparse.Namespace) -> int:
    """Run the parsed command's handler; errors of moulin are printed and turned into exit codes."""
    try:
        return args.func(args)
    except SettingsError as exc:
        return _settings_error(exc)
    except MoulinError as exc:
        print(f"moulin: {exc}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point.

    The process ends with ``os._exit`` after flushing: deltalake's and Arrow's
    native thread pools can abort the interpreter at teardown (exit code 134,
    delta-io/delta-rs#2184) after all work succeeded; skipping the teardown
    keeps the exit code the command's own.
    """
    try:
        code = run(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        if exc.code not in (None, 0) and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
