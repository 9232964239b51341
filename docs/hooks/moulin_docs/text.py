"""Docstrings and comments of moulin's code, turned into Markdown."""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from pathlib import Path

_ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|exc|obj):`~?([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")


def rst_to_md(text: str) -> str:
    """A reST docstring as Markdown: ``code`` and :role:`target` become `code`, and a
    paragraph ending in ``::`` introduces an indented literal block, which becomes a fence."""
    text = inspect.cleandoc(text or "")
    text = _ROLE.sub(
        lambda m: f"`{m.group(1).rsplit('.', 1)[-1] if '~' in m.group(0) else m.group(1)}`", text
    )
    text = _LITERAL.sub(r"`\1`", text)
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip().endswith("::") and not line.strip().startswith(".."):
            head = line.rstrip()[:-1].rstrip()
            out.append(head if head.endswith(":") or not head else head + ":")
            i += 1
            block: list[str] = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
                block.append(lines[i])
                i += 1
            body = textwrap.dedent("\n".join(block)).strip("\n")
            out += ["", "```yaml" if ":" in body.splitlines()[0] else "```text", body, "```", ""]
            continue
        out.append(escape_tags(line))
        i += 1
    return "\n".join(out)


def escape_tags(line: str) -> str:
    """``<`` and ``>`` outside code spans as entities (``file://<home>`` is no HTML tag)."""
    parts = line.split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def first_paragraph(text: str | None) -> str:
    """The first paragraph of a docstring, on one line, as Markdown."""
    para = inspect.cleandoc(text or "").split("\n\n")[0]
    return " ".join(rst_to_md(para).split())


def field_comments(path: Path, class_name: str) -> dict[str, str]:
    """The comment of each field of class ``class_name`` in ``path``: the ``#`` or ``#:``
    lines right above the field, joined (a field without one gets nothing)."""
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    above: list[str] = []
                    row = item.lineno - 2
                    while row >= 0 and lines[row].strip().startswith("#"):
                        above.insert(0, lines[row].strip().lstrip("#:").strip())
                        row -= 1
                    if above:
                        out[item.target.id] = rst_to_md(" ".join(above))
    return out


def cell(text: object) -> str:
    """``text`` fit for a Markdown table cell (pipes escaped, one line)."""
    return escape_tags(" ".join(str(text).split()).replace("|", "\\|"))
