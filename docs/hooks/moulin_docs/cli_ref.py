"""The command-line reference: every ``moulin`` command and action with its help as
``--help`` prints it, and the ``bin/`` scripts with their header comments."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator

from moulin_docs import REPO_ROOT
from moulin_docs.text import cell

#: Width of the rendered help (argparse reads $COLUMNS).
HELP_COLUMNS = "100"
#: The scripts of bin/, in the order a newcomer meets them.
SCRIPTS = ("run-flights", "test", "setup", "platform", "docs")


def action_parsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    """The sub-parsers of ``parser`` (``moulin privacy`` -> key, erase, ...), or None."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def walk(
    parser: argparse.ArgumentParser, words: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """(words after ``moulin``, parser) of the top parser, every command and every action."""
    yield words, parser
    actions = action_parsers(parser)
    for name, child in (actions.choices if actions else {}).items():
        yield from walk(child, (*words, name))


def _help(parser: argparse.ArgumentParser) -> str:
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    try:
        return parser.format_help().rstrip()
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def _summaries(parser: argparse.ArgumentParser) -> dict[str, str]:
    """The one-line help of each sub-command of ``parser``."""
    actions = action_parsers(parser)
    if actions is None:
        return {}
    return {a.dest: a.help or "" for a in actions._choices_actions}


def anchor(words: tuple[str, ...]) -> str:
    """The heading anchor of ``moulin <words>`` on the page."""
    return "-".join(("moulin", *words))


def script_header(name: str) -> str:
    """The comment block at the top of ``bin/<name>``, without the ``#`` marks."""
    lines = (REPO_ROOT / "bin" / name).read_text().splitlines()[1:]
    out = []
    for line in lines:
        if not line.startswith("#"):
            break
        out.append(line[2:] if line.startswith("# ") else line[1:])
    return "\n".join(out).rstrip()


def page() -> str:
    """The Markdown of ``reference/cli.md``."""
    from moulin.cli import build_parser

    top = build_parser()
    lines = [
        "# Command line",
        "",
        "Generated from the code when the site is built: the scripts' header comments "
        "(`bin/`) and the help of every `moulin` command and action, as "
        "`moulin <command> [<action>] --help` prints it (parsers built by `moulin.cli.build_parser`).",
        "",
        "## Scripts",
        "",
    ]
    for name in SCRIPTS:
        if (REPO_ROOT / "bin" / name).exists():
            lines += [f"### bin/{name}", "", "```text", script_header(name), "```", ""]
    lines += ["## moulin", "", "| command | what |", "|---|---|"]
    for name, what in _summaries(top).items():
        lines.append(f"| [`moulin {name}`](#{anchor((name,))}) | {cell(what)} |")
    lines += ["", "```text", _help(top), "```", ""]
    for words, parser in walk(top):
        if not words:
            continue
        level = "##" if len(words) == 1 else "###"
        lines += [f"{level} moulin {' '.join(words)} {{#{anchor(words)}}}", ""]
        summaries = _summaries(parser)
        if summaries:
            lines += ["| action | what |", "|---|---|"]
            for name, what in summaries.items():
                lines.append(f"| [`{name}`](#{anchor((*words, name))}) | {cell(what)} |")
            lines.append("")
        lines += ["```text", _help(parser), "```", ""]
    return "\n".join(lines)
