"""Reading a framing file field by field: a YAML loader that records the line of every
field, and a reader that notes each mistake as a :class:`~moulin.framing.model.Problem`
(``file:line:field: message — what to do``) and goes on, so that one check reports them all."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from moulin.framing.model import FramingError, Problem


class LineLoader(yaml.SafeLoader):
    """A safe YAML loader that also records the line of every field: ``lines["a.b[2].c"]``
    is the 1-based line where that key (or list item) starts."""

    def load_with_lines(self) -> tuple[Any, dict[str, int]]:
        try:
            node = self.get_single_node()
            lines: dict[str, int] = {}
            if node is not None:
                self._walk(node, "", lines)
            return (self.construct_document(node) if node is not None else None), lines
        finally:
            self.dispose()

    def _walk(self, node: yaml.Node, prefix: str, lines: dict[str, int]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                where = f"{prefix}.{key.value}" if prefix else str(key.value)
                lines[where] = key.start_mark.line + 1
                self._walk(value, where, lines)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                where = f"{prefix}[{i}]"
                lines[where] = item.start_mark.line + 1
                self._walk(item, where, lines)


def _parent(where: str) -> str:
    if where.endswith("]"):
        return where[: where.rindex("[")]
    return where.rpartition(".")[0]


class Reader:
    """Reads the parsed YAML field by field, recording a :class:`Problem` for each
    mistake and going on, so that one run reports them all."""

    def __init__(self, path: Path, lines: Mapping[str, int]) -> None:
        self.path, self.lines = path, lines
        self.problems: list[Problem] = []

    def line(self, where: str) -> int | None:
        while where:
            if where in self.lines:
                return self.lines[where]
            where = _parent(where)
        return None

    def problem(self, where: str, message: str, todo: str) -> None:
        self.problems.append(Problem(self.path, self.line(where), where, message, todo))

    def mapping(self, data: Any, where: str, allowed: tuple[str, ...], required: tuple[str, ...]) -> dict:
        """``data`` as a mapping with only ``allowed`` keys and all ``required`` ones ({} if not one)."""
        if data is None:
            return {}  # a missing section: reported by its parent's required fields
        if not isinstance(data, dict):
            self.problem(
                where or "(top)", f"expected a mapping, got {shown(data)}", f"give {', '.join(allowed)}"
            )
            return {}
        for key in data:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f"did you mean {close[0]}?" if close else f"allowed: {', '.join(allowed)}"
                self.problem(_join(where, str(key)), "unknown field", f"remove it ({hint})")
        for key in required:
            if key not in data or data[key] is None:
                self.problem(_join(where, key), "missing required field", f"add {key}")
        return data

    def text(self, data: dict, key: str, where: str, required: bool = True) -> str:
        value = data.get(key)
        at = _join(where, key)
        if value is None:
            return ""  # a missing required field is reported by mapping()
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.problem(at, f"expected a text, got {shown(value)}", "write it as a sentence")
            return ""
        text = " ".join(str(value).split())
        if required and not text:
            self.problem(at, "is empty", f"say what {key.replace('_', ' ')} is")
        return text

    def texts(self, data: dict, key: str, where: str, required: bool = True) -> tuple[str, ...]:
        value = data.get(key)
        at = _join(where, key)
        if value is None:
            if required and key in data:
                self.problem(at, "is empty", "give a list of texts")
            return ()
        if not isinstance(value, list):
            self.problem(
                at, f"expected a list of texts, got {shown(value)}", "write a list (- item per line)"
            )
            return ()
        if required and not value:
            self.problem(at, "is empty", "give at least one item")
        good = True
        for i, v in enumerate(value):
            if isinstance(v, bool) or not isinstance(v, str | int | float):
                good = False
                hint = (
                    "quote the text: a ': ' or ', ' inside makes YAML read a mapping or a list"
                    if isinstance(v, dict | list)
                    else "write it as a text"
                )
                self.problem(f"{at}[{i}]", f"expected a text, got {shown(v)}", hint)
        if not good:
            return ()
        return tuple(" ".join(str(v).split()) for v in value)

    def flag(self, data: dict, key: str, where: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            self.problem(
                _join(where, key), f"expected true or false, got {shown(value)}", "write true or false"
            )
            return default
        return value

    def number(self, data: dict, key: str, where: str) -> float | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            self.problem(
                _join(where, key), f"expected a number, got {shown(value)}", "write a number, e.g. 0.7"
            )
            return None
        return float(value)

    def choice(self, data: dict, key: str, where: str, options: tuple[str, ...]) -> str | None:
        value = data.get(key)
        if value is None:
            return None
        if value not in options:
            self.problem(
                _join(where, key), f"{shown(value)} is not one of {', '.join(options)}", "use one of them"
            )
            return None
        return str(value)

    def items(self, data: dict, key: str, where: str) -> list[tuple[str, Any]]:
        """``(where, item)`` of the list under ``key`` (a problem if it is not a non-empty list)."""
        value = data.get(key)
        at = _join(where, key)
        if value is None:
            return []
        if not isinstance(value, list) or not value:
            self.problem(
                at, f"expected a non-empty list, got {shown(value)}", "write a list (- item per line)"
            )
            return []
        return [(f"{at}[{i}]", item) for i, item in enumerate(value)]


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def shown(value: Any) -> str:
    """``value`` as written in a problem's message (cut at 60 characters)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read_framing_file(path: Path) -> tuple[Any, dict[str, int]]:
    """``(data, lines)`` of the YAML file ``path``: lines maps each field to its line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FramingError(
            [Problem(path, None, "(file)", f"cannot read the file: {exc.strerror}", "check the path")]
        ) from None
    try:
        return LineLoader(text).load_with_lines()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise FramingError(
            [Problem(path, line, "(yaml)", f"invalid YAML: {reason}", "fix the syntax at that line")]
        ) from None
