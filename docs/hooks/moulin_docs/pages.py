"""The code blocks of the documentation's Markdown pages, and the shell commands in them."""

from __future__ import annotations

import re
import shlex
import textwrap
from dataclasses import dataclass
from pathlib import Path

_FENCE = re.compile(
    r"^(?P<indent> *)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.S | re.M
)
#: The comment that marks the next code block as one ``bin/docs run-tutorial`` runs.
RUN_MARK = "<!-- tutorial: run -->"
SHELL = ("bash", "sh", "shell", "console")
#: Words that join or redirect commands on one line.
_OPERATORS = {"|", "||", "&&", ";", "&"}
_REDIRECTS = {">", ">>", "<", "&>"}


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    body: str
    marked: bool  # preceded by RUN_MARK

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


@dataclass(frozen=True)
class Command:
    """One simple command of a shell block: its words, environment assignments left out."""

    block: Block
    words: tuple[str, ...]
    text: str


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of ``page``, in order."""
    text = page.read_text()
    out = []
    for m in _FENCE.finditer(text):
        before = text[: m.start()].rstrip().rsplit("\n", 1)[-1].strip()
        out.append(
            Block(
                page,
                text.count("\n", 0, m.start()) + 1,
                m["lang"].lower(),
                textwrap.dedent(m["body"]),
                before == RUN_MARK,
            )
        )
    return out


def _lines(body: str) -> list[str]:
    """The logical lines of a shell block (backslash continuations joined, blank lines dropped)."""
    return [line for line in body.replace("\\\n", " ").splitlines() if line.strip()]


def commands(block: Block) -> list[Command]:
    """The simple commands of a shell block, split at ``|``, ``&&``, ``;``; redirections
    and leading ``NAME=value`` assignments left out."""
    if block.lang not in SHELL:
        return []
    out = []
    for line in _lines(block.body):
        if block.lang == "console":
            if not line.startswith("$ "):
                continue
            line = line[2:]
        line = re.sub(r"(^|\s)\d*>&\d+", " ", line)  # 2>&1
        line = re.sub(r"(^|\s)\d+(>>?)", r" \2", line)  # 2> file
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words: list[str] = []
        skip = False
        for token in list(lexer) + [";"]:
            if skip:
                skip = False
                continue
            if token in _REDIRECTS:
                skip = True  # the file name after it
                continue
            if token in _OPERATORS:
                while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
                    words.pop(0)
                if words:
                    out.append(Command(block, tuple(words), line))
                words = []
                continue
            words.append(token)
    return out
