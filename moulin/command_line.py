"""What each ``moulin`` command's module declares its parser with.

A command's module (``moulin.cli.<group>``, :mod:`moulin.privacy.cli`, :mod:`moulin.sql_cli`,
:mod:`moulin.sql_endpoint.cli`) defines ``add_parser(sub)``, which adds the command through
:func:`add_command`, its actions through :func:`add_actions` and :func:`add_action`, and
the option shapes several commands share through :func:`add_limit`, :func:`add_ds` and
:func:`add_run_profile`.  Every parser is a :class:`Parser`: its help gives an option's
default, and a command with actions reads options written before its action as if
written after it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from moulin.settings import PROFILES

#: What a command runs: the parsed arguments in, the exit code out.
Handler = Callable[[argparse.Namespace], int]


class HelpFormatter(argparse.HelpFormatter):
    """Help that gives an option's default when it has one: not for a flag, an option
    without default, or one whose help already says what its default is."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            action.option_strings
            and action.nargs != 0
            and action.default is not None
            and action.default is not argparse.SUPPRESS
            and "default" not in text
        ):
            text += " (default: %(default)s)"
        return text


def action_parsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    """The actions of a command's parser (``moulin privacy`` -> key, erase, ...), or None."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def options_after_action(args: list[str], actions: argparse._SubParsersAction) -> list[str]:
    """``args`` of a command with options written before its action moved after it:
    ``table --limit 5 show x`` is ``table show --limit 5 x``.  Each command was one parser
    before its actions had their own, and took its options on either side of the action."""
    takes_value: dict[str, bool] = {}
    for parser in actions.choices.values():
        for action in parser._actions:
            for option in action.option_strings:
                takes_value[option] = takes_value.get(option, False) or action.nargs != 0
    before: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in actions.choices:
            return [arg, *before, *args[i + 1 :]]
        if arg == "--" or not arg.startswith("-") or arg == "-":
            break  # no action after options only: argparse says what is wrong
        before.append(arg)
        name = arg.split("=", 1)[0]
        if name in takes_value:
            value = takes_value[name]
        else:  # an abbreviation (--req for --request) takes a value if each option it may be does
            found = [
                v for option, v in takes_value.items() if name.startswith("--") and option.startswith(name)
            ]
            value = bool(found) and all(found)
        if value and "=" not in arg and i + 1 < len(args):
            i += 1
            before.append(args[i])
        i += 1
    return args


class Parser(argparse.ArgumentParser):
    """The parser of a command (``moulin privacy``, ``moulin sql``) or of an action
    (``moulin privacy erase``): help through :class:`HelpFormatter`.

    A parser without actions refuses any argument it does not declare, naming it under
    its own usage (``moulin privacy key --dry-run``).  A command with actions reads
    options written before the action as if written after it.  ``console_actions`` are
    the actions of a command that run a chain in a console run (:mod:`moulin.console`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.console_actions: tuple[str, ...] = ()

    def parse_known_args(
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        arguments = list(sys.argv[1:] if args is None else args)
        actions = action_parsers(self)
        if actions is not None:
            return super().parse_known_args(options_after_action(arguments, actions), namespace)
        parsed, extras = super().parse_known_args(arguments, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def add_command(
    sub: argparse._SubParsersAction,
    name: str,
    help: str,  # noqa: A002 - argparse's own word
    description: str,
    run: Handler,
    console_actions: tuple[str, ...] = (),
) -> Parser:
    """Add ``moulin <name>``, run by ``run``; ``console_actions`` run a chain in a console run."""
    parser = sub.add_parser(name, help=help, description=description)
    parser.set_defaults(func=run)
    parser.console_actions = console_actions
    return parser


def add_actions(parser: argparse.ArgumentParser, dest: str = "action") -> argparse._SubParsersAction:
    """The actions of ``parser`` (``moulin cluster up``...), read into ``args.<dest>``: each
    action a parser of its own with only its options (``moulin cluster up --help``)."""
    return parser.add_subparsers(dest=dest, required=True)


def add_action(
    actions: argparse._SubParsersAction,
    name: str,
    help: str,  # noqa: A002 - argparse's own word
    description: str,
) -> Parser:
    """Add the action ``name`` to a command's ``actions``: a one-line ``help`` in the command's
    listing, its ``description`` atop its own ``--help``."""
    return actions.add_parser(name, help=help, description=description)


def add_limit(parser: argparse.ArgumentParser, help: str, default: int | None = 0) -> None:  # noqa: A002
    """``--limit N``: how many rows, messages or records (``help`` says which; 0: all by default)."""
    parser.add_argument("--limit", type=int, default=default, help=help)


def add_ds(parser: argparse.ArgumentParser, help: str, default: str | None = None) -> None:  # noqa: A002
    """``--ds YYYY-MM-DD``: the logical date of a drop (``help`` says of what)."""
    parser.add_argument("--ds", default=default, help=help)


def add_run_profile(parser: argparse.ArgumentParser) -> None:
    """``--profile`` after the action (``moulin flights run --profile hdfs-local``), read into
    ``args.run_profile``: it wins over ``moulin --profile``."""
    parser.add_argument("--profile", dest="run_profile", choices=PROFILES, help="settings profile")
