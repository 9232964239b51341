"""``moulin <command> <action> --help``: each action of a command is a parser of its own,
with only the options its handler reads.

Nothing here is a hand-written list of which option belongs to which action: the
parsers are walked (``_actions``, the sub-parsers), and what each handler reads of
``args`` for an action is read from its syntax tree (:func:`_reads`).  The command
lines that worked before actions had their own parsers (README.md and docs/, bin/*, .ci/run,
docker/compose.yaml, tests) are kept with what the one parser of each command made of
them, and must parse to the same values.
"""

from __future__ import annotations

import argparse
import ast
import copy
import importlib
import inspect
import re
import shlex
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from moulin.cli import build_parser
from moulin.usecases.fashion.params import PARAMS as FASHION
from moulin.usecases.flights.params import PARAMS as FLIGHTS
from moulin.usecases.sentiment.params import PARAMS as SENTIMENT

ROOT = Path(__file__).resolve().parents[2]

#: What ``moulin`` takes before the command, and what every handler may read besides its options.
TOP_LEVEL = {"profile", "command", "func"}


def _action_parsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return found[0] if found else None


def _parsers() -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """(words after ``moulin``, parser) of every command and action: (("privacy", "erase"), ...)."""

    def walk(words: tuple[str, ...], parser: argparse.ArgumentParser):
        yield words, parser
        actions = _action_parsers(parser)
        for name, child in (actions.choices if actions else {}).items():
            yield from walk((*words, name), child)

    yield from walk((), build_parser())


def _commands() -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser that runs something: an action, or a command without actions."""
    return [(words, p) for words, p in _parsers() if words and _action_parsers(p) is None]


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def _dests(parser: argparse.ArgumentParser) -> set[str]:
    """What ``parser``'s own arguments (not --help) set on ``args``."""
    return {
        a.dest
        for a in parser._actions
        if not isinstance(a, argparse._HelpAction | argparse._SubParsersAction)
    }


def _help_without_description(parser: argparse.ArgumentParser) -> str:
    """Usage and arguments of ``parser``'s help: its description may name other commands' options."""
    bare = copy.copy(parser)
    bare.description = None
    return bare.format_help()


def _option_words(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w/<-])(--?[A-Za-z][\w-]*)", text))


COMMANDS = _commands()
IDS = [" ".join(words) for words, _ in COMMANDS]


@pytest.mark.parametrize(("words", "parser"), COMMANDS, ids=IDS)
def test_help_lists_only_the_actions_own_options(
    words: tuple[str, ...], parser: argparse.ArgumentParser, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([*words, "--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    assert shown == parser.format_help()
    assert shown.startswith(f"usage: moulin {' '.join(words)} ")
    assert parser.description, f"moulin {' '.join(words)} has no description"
    listed = _option_words(_help_without_description(parser))
    assert listed == _options(parser), f"moulin {' '.join(words)} --help"


def test_every_action_has_its_one_line_help_and_commands_no_shared_options() -> None:
    for words, parser in _parsers():
        actions = _action_parsers(parser)
        if actions is None:
            continue
        if words:  # a command's own options would be every action's
            assert _options(parser) == {"-h", "--help"}, f"moulin {' '.join(words)} declares options"
            assert parser.description
        assert actions.required
        helps = {choice.dest: choice.help for choice in actions._choices_actions}
        assert set(helps) == set(actions.choices)
        for name, text in helps.items():
            assert text and "\n" not in text, f"moulin {' '.join(words)} {name}: no one-line help"


def test_no_option_shown_for_an_action_that_does_not_declare_it() -> None:
    for words, parser in _parsers():
        actions = _action_parsers(parser)
        if not words or actions is None:
            continue
        declared = {name: _options(child) for name, child in actions.choices.items()}
        for name, child in actions.choices.items():
            shown = _option_words(_help_without_description(child))
            for other, options in declared.items():
                foreign = (options & shown) - declared[name]
                assert not foreign, f"moulin {' '.join(words)} {name} --help shows {other}'s {foreign}"


# -- what each handler reads of args ---------------------------------------------------------


def _arg_reads(node: ast.AST, args: str) -> set[str]:
    """``args.x`` and ``getattr(args, "x", ...)`` under ``node``."""
    found = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and sub.value.id == args:
            found.add(sub.attr)
        elif (
            isinstance(sub, ast.Call)
            and isinstance(sub.func, ast.Name)
            and sub.func.id == "getattr"
            and len(sub.args) >= 2
            and isinstance(sub.args[0], ast.Name)
            and sub.args[0].id == args
            and isinstance(sub.args[1], ast.Constant)
        ):
            found.add(sub.args[1].value)
    return found


def _callee(func: Callable, tree: ast.AST, name: str) -> Callable | None:
    """What ``name`` is in ``func``: a local ``from m import name``, else a global of its module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    return getattr(importlib.import_module(node.module), alias.name)
    found = func.__globals__.get(name)
    return found if callable(found) else None


def _reads(func: Callable, dest: str | None, action: str | None, args: str | None = None) -> set[str]:
    """The attributes of ``args`` that ``func`` reads when ``args.<dest> == action``.

    Statements are followed in order: an ``if`` on the action (``args.action == "x"``,
    ``action in ("x", "y")``, also through a local ``action = args.action``) follows its
    branch, any other ``if`` both, and a ``return`` or ``raise`` on the way ends the
    path.  A call handed ``args`` (``source_cli(args, settings)``) is read the same way."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    definition = tree.body[0]
    assert isinstance(definition, ast.FunctionDef)
    args = args or definition.args.args[0].arg
    selectors: set[str] = set()

    def is_selector(node: ast.AST) -> bool:
        return (
            isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == args and node.attr == dest
        ) or (isinstance(node, ast.Name) and node.id in selectors)  # fmt: skip

    def decide(test: ast.AST) -> bool | None:
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and is_selector(test.left)):
            return None
        (op,), (value,) = test.ops, test.comparators
        if isinstance(value, ast.Constant):
            choices = {value.value}
        elif isinstance(value, ast.Tuple | ast.List | ast.Set) and all(
            isinstance(e, ast.Constant) for e in value.elts
        ):
            choices = {e.value for e in value.elts}
        else:
            return None
        if isinstance(op, ast.Eq | ast.In):
            return action in choices
        if isinstance(op, ast.NotEq | ast.NotIn):
            return action not in choices
        return None

    def reads_of(node: ast.AST) -> set[str]:
        found = _arg_reads(node, args)
        for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
            handed = [i for i, a in enumerate(call.args) if isinstance(a, ast.Name) and a.id == args]
            if handed and isinstance(call.func, ast.Name) and call.func.id != "getattr":
                callee = _callee(func, definition, call.func.id)
                assert callee is not None, f"{func.__qualname__} hands args to unknown {call.func.id}"
                params = list(inspect.signature(callee).parameters)
                found |= _reads(callee, dest, action, params[handed[0]])
        return found

    def walk(statements: list[ast.stmt]) -> tuple[set[str], bool]:
        found: set[str] = set()
        for statement in statements:
            if isinstance(statement, ast.If):
                found |= reads_of(statement.test)
                taken = decide(statement.test)
                if taken is not None:
                    branch, ends = walk(statement.body if taken else statement.orelse)
                    found |= branch
                else:
                    body, body_ends = walk(statement.body)
                    other, other_ends = walk(statement.orelse)
                    found |= body | other
                    ends = body_ends and other_ends
                if ends:
                    return found, True
            elif isinstance(statement, ast.Return | ast.Raise):
                return found | reads_of(statement), True
            elif isinstance(statement, ast.With | ast.For | ast.While | ast.Try):
                for field in ("items", "iter", "test"):
                    for part in (lambda v: v if isinstance(v, list) else [v])(getattr(statement, field, [])):
                        found |= reads_of(part)
                for field in ("body", "orelse", "finalbody"):
                    found |= walk(getattr(statement, field, []))[0]
                for handler in getattr(statement, "handlers", []):
                    found |= walk(handler.body)[0]
            else:
                if (
                    isinstance(statement, ast.Assign)
                    and len(statement.targets) == 1
                    and isinstance(statement.targets[0], ast.Name)
                    and is_selector(statement.value)
                ):
                    selectors.add(statement.targets[0].id)
                found |= reads_of(statement)
        return found, False

    return walk(definition.body)[0]


def _handler_case(words: tuple[str, ...]) -> tuple[Callable, str | None, str | None, set[str], set[str]]:
    """(handler, action dest, action, options' dests, constants) of ``moulin <words>``."""
    parser = build_parser()
    chain = [parser]
    for word in words:
        chain.append(_action_parsers(chain[-1]).choices[word])
    constants = {key for p in chain for key in p._defaults}
    handler = next(p._defaults["func"] for p in reversed(chain) if "func" in p._defaults)
    dest = action = None
    if len(words) == 2:
        dest, action = _action_parsers(chain[1]).dest, words[1]
    return handler, dest, action, _dests(chain[-1]), constants


@pytest.mark.parametrize("words", [words for words, _ in COMMANDS], ids=IDS)
def test_each_action_declares_what_its_handler_reads(words: tuple[str, ...]) -> None:
    handler, dest, action, declared, constants = _handler_case(words)
    read = _reads(handler, dest, action)
    given = declared | constants | TOP_LEVEL | ({dest} if dest else set())
    assert read <= given, f"moulin {' '.join(words)}: the handler reads {read - given}, not declared"
    assert declared <= read, f"moulin {' '.join(words)}: options the handler never reads: {declared - read}"


def test_the_reading_of_handlers_follows_the_action() -> None:
    """The analysis itself: a handler's other branches are not counted."""
    handler, dest, action, *_ = _handler_case(("privacy", "retention"))
    assert _reads(handler, dest, action) == {"profile", "action", "today", "dry_run"}
    handler, dest, action, *_ = _handler_case(("table", "show"))
    assert _reads(handler, dest, action) == {"profile", "table", "action", "version", "limit"}
    handler, dest, action, *_ = _handler_case(("source", "list"))
    assert _reads(handler, dest, action) == {"profile", "action"}


# -- concrete checks ---------------------------------------------------------------------------


def test_privacy_erase_help_shows_erase_options_only(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["privacy", "erase", "--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    assert "usage: moulin privacy erase [-h] [--request REQUEST_ID] [--subject SUBJECT]" in shown
    for foreign in ("--dry-run", "--today", "--drop-landing", "--limit", "--owner", "--as-user", "--out"):
        assert foreign not in shown
    with pytest.raises(SystemExit):
        build_parser().parse_args(["privacy", "--help"])
    listing = capsys.readouterr().out
    assert "--dry-run" not in listing and "--today" not in listing
    assert all(f"\n    {name} " in listing for name in ("key", "erase", "retention", "views"))


@pytest.mark.parametrize(
    "argv",
    [
        ["privacy", "key", "--dry-run"],
        ["privacy", "--dry-run", "key"],  # before the action: read as after it
        ["table", "history", "bronze/x", "--limit", "5"],
        ["cluster", "status", "--spark"],
        ["source", "list", "--ds", "2024-03-01"],
        ["fashion", "prepare", "--models", "cnn"],
        ["daemon", "namenode", "--index", "1"],
    ],
)
def test_an_option_of_another_action_is_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(argv)
    assert done.value.code == 2
    error = capsys.readouterr().err
    option = next(word for word in argv if word.startswith("--"))
    action = next(word for word in argv[1:] if not word.startswith("-"))
    assert f"usage: moulin {argv[0]} {action} " in error
    assert f"unrecognized arguments: {option}" in error


def test_a_missing_action_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["privacy"])
    assert done.value.code == 2 and "required: action" in capsys.readouterr().err


#: The handler of each command (in the module that declares its parser).
HANDLERS = {
    "settings": "moulin.cli.resolved_settings._cmd_settings",
    "cluster": "moulin.cli.cluster._cmd_cluster",
    "platform": "moulin.cli.platform._cmd_platform",
    "daemon": "moulin.cli.daemon._cmd_daemon",
    "flights": "moulin.cli.flights._cmd_flights",
    "source": "moulin.cli.source._cmd_source",
    "mail": "moulin.cli.declared_usecases._cmd_declared_usecase",
    "fashion": "moulin.cli.declared_usecases._cmd_declared_usecase",
    "sentiment": "moulin.cli.declared_usecases._cmd_declared_usecase",
    "privacy": "moulin.privacy.cli._run",
    "sql": "moulin.sql_cli._run",
    "package": "moulin.cli.jobs._cmd_package",
    "jobs": "moulin.cli.jobs._cmd_jobs",
    "table": "moulin.cli.table._cmd_table",
}

#: Command lines of README.md, bin/*, .ci/run, docker/compose.yaml and the tests (argv after
#: ``moulin``), and what the one parser of each command (before actions had their own) made
#: of them, recorded by running that parser (moulin/cli.py, moulin/privacy/cli.py and
#: moulin/sql_cli.py as they were): every attribute the parser sets now, with the value it had
#: then (``command`` is argv's command; ``profile`` None unless given).  The attributes it
#: no longer sets held their defaults, and the handler does not read them for that action
#: (test_each_action_declares_what_its_handler_reads).
LINES: list[tuple[list[str], dict]] = [
    (["settings"], {}),
    (["--profile", "hdfs-local", "platform", "up"], {"profile": "hdfs-local", "action": "up"}),
    (["platform", "up"], {"action": "up"}),
    (["platform", "status"], {"action": "status"}),
    (["platform", "down"], {"action": "down"}),
    (["platform", "secrets"], {"action": "secrets"}),
    (["cluster", "up"], {"action": "up", "spark": False, "hosts": 0, "kerberos": False}),
    (["cluster", "up", "--spark"], {"action": "up", "spark": True, "hosts": 0, "kerberos": False}),
    (["cluster", "status"], {"action": "status"}),
    (["cluster", "down"], {"action": "down", "leftovers": False}),
    (["daemon", "namenode"], {"role": "namenode", "index": 0}),
    (["daemon", "datanode", "--index", "1"], {"role": "datanode", "index": 1}),
    (["daemon", "spark-master"], {"role": "spark-master", "index": 0}),
    (["daemon", "spark-worker", "--index", "0"], {"role": "spark-worker", "index": 0}),
    (
        ["flights", "run"],
        {"action": "run", "run_profile": None, "sample": 0, "months": "1-12", "epochs": FLIGHTS.train.epochs},
    ),
    (
        ["flights", "run", "--profile", "hdfs-local"],
        {
            "action": "run",
            "run_profile": "hdfs-local",
            "sample": 0,
            "months": "1-12",
            "epochs": FLIGHTS.train.epochs,
        },
    ),
    (
        ["flights", "run", "--sample", "500"],
        {
            "action": "run",
            "run_profile": None,
            "sample": 500,
            "months": "1-12",
            "epochs": FLIGHTS.train.epochs,
        },
    ),
    (
        ["flights", "run", "--sample", "300", "--months", "1,9,11", "--epochs", "1"],
        {"action": "run", "run_profile": None, "sample": 300, "months": "1,9,11", "epochs": 1},
    ),
    (["source", "list"], {"action": "list"}),
    (["source", "validate", "orders"], {"action": "validate", "target": "orders"}),
    (
        [
            "source",
            "infer",
            "/data/drops/orders_2024-03-01.csv",
            "--name",
            "orders",
            "--start-date",
            "2024-03-01",
            "--out",
            "/tmp/shop-contracts",
        ],
        {
            "action": "infer",
            "target": "/data/drops/orders_2024-03-01.csv",
            "name": "orders",
            "format": None,
            "delimiter": ",",
            "encoding": "utf-8",
            "out": "/tmp/shop-contracts",
            "start_date": "2024-03-01",
        },
    ),
    (
        ["source", "infer", "sample.csv", "--format", "csv", "--delimiter", ";", "--encoding", "latin-1"],
        {
            "action": "infer",
            "target": "sample.csv",
            "name": None,
            "format": "csv",
            "delimiter": ";",
            "encoding": "latin-1",
            "out": None,
            "start_date": None,
        },
    ),
    (
        ["source", "run", "orders", "--ds", "2024-03-01"],
        {
            "action": "run",
            "target": "orders",
            "ds": "2024-03-01",
            "replace": False,
            "redelivery": False,
            "run_ge": True,
        },
    ),
    (
        ["source", "run", "orders", "--ds", "2024-03-01", "--replace"],
        {
            "action": "run",
            "target": "orders",
            "ds": "2024-03-01",
            "replace": True,
            "redelivery": False,
            "run_ge": True,
        },
    ),
    (
        ["source", "run", "orders", "--ds", "2024-03-02", "--redelivery"],
        {
            "action": "run",
            "target": "orders",
            "ds": "2024-03-02",
            "replace": False,
            "redelivery": True,
            "run_ge": True,
        },
    ),
    (
        ["source", "run", "orders", "--ds", "2024-03-01", "--no-ge"],
        {
            "action": "run",
            "target": "orders",
            "ds": "2024-03-01",
            "replace": False,
            "redelivery": False,
            "run_ge": False,
        },
    ),
    (
        ["source", "unland", "orders", "--ds", "2024-03-01"],
        {"action": "unland", "target": "orders", "ds": "2024-03-01"},
    ),
    (["mail", "prepare"], {"action": "prepare", "declared_usecase": True, "limit": 0}),
    (
        ["mail", "run", "--limit", "50"],
        {
            "action": "run",
            "declared_usecase": True,
            "ds": None,
            "limit": 50,
            "sample": None,
            "models": "text,text_sender",
            "epochs_scale": 1.0,
        },
    ),
    (["fashion", "prepare"], {"action": "prepare", "declared_usecase": True, "limit": 0}),
    (
        ["fashion", "run"],
        {
            "action": "run",
            "declared_usecase": True,
            "ds": None,
            "limit": 0,
            "sample": None,
            "models": ",".join(FASHION.models),
            "epochs_scale": 1.0,
        },
    ),
    (
        ["fashion", "run", "--limit", "2000", "--models", "logreg,cnn", "--epochs-scale", "0.5"],
        {
            "action": "run",
            "declared_usecase": True,
            "ds": None,
            "limit": 2000,
            "sample": None,
            "models": "logreg,cnn",
            "epochs_scale": 0.5,
        },
    ),
    (
        ["sentiment", "run"],
        {
            "action": "run",
            "declared_usecase": True,
            "ds": None,
            "limit": 0,
            "sample": None,
            "models": ",".join(SENTIMENT.models),
            "epochs_scale": 1.0,
        },
    ),
    (
        ["sentiment", "run", "--limit", "3000", "--models", "tfidf_logreg,text_cnn"],
        {
            "action": "run",
            "declared_usecase": True,
            "ds": None,
            "limit": 3000,
            "sample": None,
            "models": "tfidf_logreg,text_cnn",
            "epochs_scale": 1.0,
        },
    ),
    (
        ["sentiment", "run", "--sample", "0.1"],
        {
            "action": "run",
            "declared_usecase": True,
            "ds": None,
            "limit": 0,
            "sample": 0.1,
            "models": ",".join(SENTIMENT.models),
            "epochs_scale": 1.0,
        },
    ),
    (["privacy", "key"], {"action": "key"}),
    (["privacy", "rotate-key"], {"action": "rotate-key", "drop_landing": None}),
    (
        ["privacy", "rotate-key", "--drop-landing", "mail/2003-02-28", "--drop-landing", "mail/2003-03-31"],
        {"action": "rotate-key", "drop_landing": ["mail/2003-02-28", "mail/2003-03-31"]},
    ),
    (["privacy", "request"], {"action": "request", "subject": None}),
    (
        ["privacy", "request", "--subject", "alice@example.org"],
        {"action": "request", "subject": ["alice@example.org"]},
    ),
    (
        ["privacy", "erase", "--request", "erase-20261207T101500-1a2b3c4d"],
        {"action": "erase", "request_id": "erase-20261207T101500-1a2b3c4d", "subject": None},
    ),
    (
        ["privacy", "erase", "--subject", "alice@example.org"],
        {"action": "erase", "request_id": None, "subject": ["alice@example.org"]},
    ),
    (["privacy", "requests"], {"action": "requests"}),
    (["privacy", "retention"], {"action": "retention", "dry_run": False, "today": None}),
    (
        ["privacy", "retention", "--dry-run", "--today", "2024-06-01"],
        {"action": "retention", "dry_run": True, "today": "2024-06-01"},
    ),
    (["privacy", "register"], {"action": "register", "out": None}),
    (["privacy", "register", "--out", "register.html"], {"action": "register", "out": "register.html"}),
    (["privacy", "audit"], {"action": "audit", "limit": 50}),
    (["privacy", "audit", "--limit", "5"], {"action": "audit", "limit": 5}),
    (["privacy", "permissions"], {"action": "permissions", "owner": None, "as_user": None}),
    (
        ["privacy", "permissions", "--owner", "svc", "--as-user", "hdfs"],
        {"action": "permissions", "owner": "svc", "as_user": "hdfs"},
    ),
    (["privacy", "views"], {"action": "views"}),
    (
        ["sql", "--tables"],
        {"query": None, "tables": True, "as_of": None, "format": "table", "out": None, "limit": None},
    ),
    (
        ["sql", "SELECT * FROM silver.flights WHERE dep_delay > 60", "--format", "csv", "--out", "late.csv"],
        {
            "query": "SELECT * FROM silver.flights WHERE dep_delay > 60",
            "tables": False,
            "as_of": None,
            "format": "csv",
            "out": "late.csv",
            "limit": None,
        },
    ),
    (
        ["sql", "SELECT count(*) FROM bronze.flights", "--as-of", "3"],
        {
            "query": "SELECT count(*) FROM bronze.flights",
            "tables": False,
            "as_of": "3",
            "format": "table",
            "out": None,
            "limit": None,
        },
    ),
    (["package"], {"out": None, "environments": "platform,training"}),
    (
        ["package", "--out", "dist", "--environments", "platform,training"],
        {"out": "dist", "environments": "platform,training"},
    ),
    (["jobs", "list"], {"action": "list"}),
    (["jobs", "stop"], {"action": "stop"}),
    (["table", "count", "bronze/mail"], {"action": "count", "table": "bronze/mail", "version": None}),
    (
        ["table", "count", "bronze/mail", "--version", "2"],
        {"action": "count", "table": "bronze/mail", "version": 2},
    ),
    (
        ["table", "show", "views/bronze_mail", "--limit", "1"],
        {"action": "show", "table": "views/bronze_mail", "version": None, "limit": 1},
    ),
    (
        ["table", "show", "ops/alerts"],
        {"action": "show", "table": "ops/alerts", "version": None, "limit": 10},
    ),
    (["table", "history", "bronze/orders"], {"action": "history", "table": "bronze/orders", "json": False}),
    (
        ["table", "history", "file:///tmp/t", "--json"],
        {"action": "history", "table": "file:///tmp/t", "json": True},
    ),
    (
        ["table", "schema", "silver/flights", "--version", "0"],
        {"action": "schema", "table": "silver/flights", "version": 0},
    ),
    (["table", "describe", "bronze/orders"], {"action": "describe", "table": "bronze/orders"}),
    # options before the action, taken by the one parser of each command before actions had their own
    (["privacy", "--dry-run", "retention"], {"action": "retention", "dry_run": True, "today": None}),
    (
        ["privacy", "--request=erase-1", "erase"],
        {"action": "erase", "request_id": "erase-1", "subject": None},
    ),
    (
        ["table", "--limit", "5", "show", "gold/x"],
        {"action": "show", "table": "gold/x", "version": None, "limit": 5},
    ),
    (
        ["source", "--ds", "2024-03-01", "run", "orders"],
        {
            "action": "run",
            "target": "orders",
            "ds": "2024-03-01",
            "replace": False,
            "redelivery": False,
            "run_ge": True,
        },
    ),
    (
        ["flights", "--profile", "hdfs-local", "--sample", "300", "run"],
        {
            "action": "run",
            "run_profile": "hdfs-local",
            "sample": 300,
            "months": "1-12",
            "epochs": FLIGHTS.train.epochs,
        },
    ),
    (["cluster", "--spark", "up"], {"action": "up", "spark": True, "hosts": 0, "kerberos": False}),
    (["fashion", "--limit", "10", "prepare"], {"action": "prepare", "declared_usecase": True, "limit": 10}),
    (["privacy", "--req", "erase-1", "erase"], {"action": "erase", "request_id": "erase-1", "subject": None}),
    (
        ["source", "--start-date=2024-03-01", "infer", "s.csv", "--name", "run"],
        {
            "action": "infer",
            "target": "s.csv",
            "name": "run",
            "format": None,
            "delimiter": ",",
            "encoding": "utf-8",
            "out": None,
            "start_date": "2024-03-01",
        },
    ),
]


@pytest.mark.parametrize(("argv", "expected"), LINES, ids=[" ".join(argv) for argv, _ in LINES])
def test_command_lines_of_today_parse_as_before(argv: list[str], expected: dict) -> None:
    parsed = vars(build_parser().parse_args(argv))
    expected = dict(expected)
    func = parsed.pop("func")
    assert parsed.pop("profile") == expected.pop("profile", None)
    command = parsed.pop("command")
    assert command == next(word for word in argv if word in HANDLERS)
    assert f"{func.__module__}.{func.__qualname__}" == HANDLERS[command]
    assert parsed == expected


def _documented_commands() -> Iterator[list[str]]:
    """The words after ``moulin`` of each command README.md and the documentation's pages
    (docs/**/*.md) show (code spans, code blocks)."""
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        yield from _commands_in(page.read_text())


def _commands_in(text: str) -> Iterator[list[str]]:
    """The words after ``moulin`` of each command ``text`` shows (code spans, code blocks)."""
    pieces = []
    for i, part in enumerate(text.split("```")):
        if i % 2:
            pieces += part.replace("\\\n", " ").splitlines()
        else:
            pieces += re.findall(r"`([^`]+)`", part)
    for piece in pieces:
        for found in re.finditer(r"(?:^|[\s/])moulin\s+([^#|;&]*)", piece.replace("\n", " ")):
            try:
                words = shlex.split(found.group(1))
            except ValueError:
                words = found.group(1).split()
            if words:
                yield words


def test_documented_options_are_those_of_their_action() -> None:
    parser = build_parser()
    top = _action_parsers(parser)
    checked = 0
    for words in _documented_commands():
        while words and words[0] == "--profile":
            words = words[2:]
        if not words or words[0] not in top.choices:
            continue
        target = top.choices[words[0]]
        rest = words[1:]
        actions = _action_parsers(target)
        if actions is not None:
            if not rest or rest[0] not in actions.choices:
                continue  # moulin table count|show|... <table>
            target, rest = actions.choices[rest[0]], rest[1:]
        for word in rest:
            if word == "--":  # what follows is another program's command line
                break
            option = word.strip("[]").split("=")[0]
            if option.startswith("--"):
                assert option in _options(target), f"docs: moulin {' '.join(words)}: {option}"
                checked += 1
    assert checked >= 15


def test_every_command_module_of_the_cli_package_is_declared() -> None:
    """A module of ``moulin/cli/`` that adds commands is listed in ``COMMAND_MODULES``, and
    each listed module adds some: a command module left out of the list is no command."""
    from moulin.cli import COMMAND_MODULES

    package = ROOT / "moulin" / "cli"
    adding = {
        f"moulin.cli.{path.stem}"
        for path in package.glob("*.py")
        if any(
            isinstance(node, ast.FunctionDef) and node.name == "add_parser"
            for node in ast.parse(path.read_text()).body
        )
    }
    assert adding <= set(COMMAND_MODULES)
    for module in COMMAND_MODULES:
        assert callable(getattr(importlib.import_module(module), "add_parser", None)), module


#: Packages ``moulin --help`` must not import: it answers at once, and these serve commands
#: (Spark jobs, training, checks, Airflow, charts), not the parser.
NOT_IMPORTED_BY_HELP = (
    "pyspark",
    "torch",
    "great_expectations",
    "airflow",
    "sklearn",
    "matplotlib",
    "deltalake",
)


def test_moulin_help_imports_no_heavy_package() -> None:
    """``moulin --help`` in a fresh interpreter imports none of :data:`NOT_IMPORTED_BY_HELP`."""
    import subprocess
    import sys

    code = (
        "import contextlib, io, sys\n"
        "from moulin.cli import run\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    run(['--help'])\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1].split(','))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, ",".join(NOT_IMPORTED_BY_HELP)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]", (
        f"moulin --help imports {done.stdout.strip()}: import them in the commands"
    )
