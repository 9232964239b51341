"""Checks of the commands and code that the documentation's pages show: each command's
program exists, and its command, action and options are those its parser accepts
(moulin's own argparse parsers, not a copy); Python blocks compile; YAML blocks parse."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from moulin_docs import DOCS_DIR, REPO_ROOT
from moulin_docs.pages import Block, Command, blocks, commands

#: Programs the pages may run that are not moulin's: checked for nothing but their name.
OTHER_PROGRAMS = frozenset(
    "export echo cd cat ls cp mv mkdir rm head tail grep less sudo apt-get source docker hdfs curl "
    "xdg-open open git kill ssh scp chmod nvidia-smi torchrun spark-submit airflow pip tar du wc "
    "python python3 sqlite3 psql".split()
)


@dataclass(frozen=True)
class Problem:
    """What is wrong with one command or block of a page."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def _parse(parser, argv: list[str]) -> str | None:
    """None when ``parser`` accepts ``argv``, else what it printed (its error)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            if exc.code not in (0, None):
                return (
                    err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else f"exit {exc.code}"
                )
    return None


def _moulin(argv: list[str]) -> str | None:
    from moulin.cli import build_parser

    return _parse(build_parser(), argv)


def _docs(argv: list[str]) -> str | None:
    from moulin_docs.__main__ import build_parser

    return _parse(build_parser(), argv)


def _test(argv: list[str]) -> str | None:
    for word in argv:
        if word.startswith("tests/") and not (REPO_ROOT / word.split("::")[0]).exists():
            return f"no such test file {word}"
    return None


def _platform(argv: list[str]) -> str | None:
    return _moulin(["platform", *(argv or ["up"])])


def _none(argv: list[str]) -> str | None:
    return None if not argv else f"takes no arguments, got {' '.join(argv)}"


def _python(argv: list[str]) -> str | None:
    if argv and argv[0].endswith(".py") and not (REPO_ROOT / argv[0]).is_file():
        return f"no such script {argv[0]}"
    return None


#: moulin's programs (paths relative to the repository) -> how their arguments are checked.
PROGRAMS: dict[str, Callable[[list[str]], str | None]] = {
    "moulin": _moulin,
    ".venv/bin/moulin": _moulin,
    "bin/run-flights": lambda argv: _moulin(["flights", "run", *argv]),
    "bin/platform": _platform,
    "bin/test": _test,
    "bin/setup": _none,
    "bin/docs": _docs,
    ".venv/bin/python": _python,
    ".venv-train/bin/python": _python,
}


def check_command(command: Command) -> Problem | None:
    """What is wrong with ``command`` (None: its program exists and accepts its arguments)."""
    program, *argv = command.words
    where = f"{command.block.where}: {command.text.strip()}"
    if program in PROGRAMS:
        error = PROGRAMS[program](argv)
        return Problem(where, error) if error else None
    if "/" in program:  # a script of the repository: it must exist
        return None if (REPO_ROOT / program).is_file() else Problem(where, f"no such program {program}")
    if program in OTHER_PROGRAMS:
        return None
    return Problem(
        where, f"unknown program {program!r}: add it to moulin_docs.checks.OTHER_PROGRAMS if it is right"
    )


def check_block(block: Block) -> list[Problem]:
    """Problems of one block: its commands (shell), syntax (Python) or YAML."""
    if block.lang == "python":
        try:
            compile(block.body, block.where, "exec")
        except SyntaxError as exc:
            return [Problem(f"{block.page}:{block.line + (exc.lineno or 0)}", f"Python syntax: {exc.msg}")]
        return []
    if block.lang == "yaml":
        try:
            yaml.safe_load(block.body)
        except yaml.YAMLError as exc:
            return [Problem(block.where, f"YAML: {' '.join(str(exc).split())}")]
        return []
    return [p for p in map(check_command, commands(block)) if p is not None]


def pages(folder: Path = DOCS_DIR) -> list[Path]:
    """Every written Markdown page under ``folder`` (the hooks' folder left out)."""
    return sorted(p for p in folder.rglob("*.md") if "hooks" not in p.relative_to(folder).parts)


def check_pages(paths: Iterable[Path]) -> list[Problem]:
    """Every problem of the commands and code blocks of ``paths``."""
    return [problem for page in paths for block in blocks(page) for problem in check_block(block)]
