"""Checks of the names that reach SQL text and warehouse paths.

Names come from source specs, contracts, job arguments and Airflow run ids:
whoever can write one of those must not be able to change a query's meaning
(``x; DROP TABLE t``) or write outside the folder a name is meant to select
(``../../etc``).  Both checks are allow-lists and raise
:class:`~moulin.errors.UnsafeNameError` naming the thing and what is allowed.

* :func:`check_identifier` -- a plain SQL identifier (``[A-Za-z_][A-Za-z0-9_]*``),
  optionally schema-qualified (``schema.table``); callers still quote it with
  the database dialect's identifier preparer (:func:`quote_identifier`);
* :func:`check_path_part` -- one folder or file name: letters, digits, ``_ . = -``,
  not ``.`` or ``..``;
* :func:`check_relative_path` -- ``a/b/c`` made of such parts (a table such as
  ``gold/flight_features`` or a file such as ``quality/runs/x/ds=2024-01-01.json``).
"""

from __future__ import annotations

import re
from typing import Any

from moulin.errors import UnsafeNameError

__all__ = [
    "UnsafeNameError",
    "check_identifier",
    "check_path_part",
    "check_relative_path",
    "quote_identifier",
]

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PATH_PART = re.compile(r"[A-Za-z0-9_.=-]+")

IDENTIFIER_RULE = "a plain SQL identifier: letters, digits and _, not starting with a digit"
PATH_PART_RULE = "letters, digits, '_', '.', '=' and '-' (not empty, not '.' or '..')"


def check_identifier(value: Any, where: str, *, qualified: bool = False) -> str:
    """``value`` if it is a plain SQL identifier (``schema.table`` too when ``qualified``),
    else :class:`UnsafeNameError` naming ``where`` (e.g. ``"source spec orders: sql.table"``)."""
    rule = IDENTIFIER_RULE + (", optionally schema-qualified as schema.table" if qualified else "")
    if not isinstance(value, str):
        raise UnsafeNameError(f"{where}: expected {rule}, got {value!r} ({type(value).__name__})")
    parts = value.split(".") if qualified else [value]
    if len(parts) > 2 or not all(IDENTIFIER.fullmatch(p) for p in parts):
        raise UnsafeNameError(f"{where}: {value!r} is not allowed; expected {rule}")
    return value


def quote_identifier(value: str, preparer: Any, where: str, *, qualified: bool = False) -> str:
    """``value`` checked by :func:`check_identifier`, then quoted by SQLAlchemy's identifier
    ``preparer`` (``dialect.identifier_preparer``) part by part: names that need it (reserved
    words, capitals) get the dialect's quotes, plain ones stay as they are."""
    check_identifier(value, where, qualified=qualified)
    return ".".join(preparer.quote(part) for part in value.split("."))


def _part_problem(value: str) -> str | None:
    if value == "":
        return "it is empty"
    if value in (".", ".."):
        return f"{value!r} is a relative folder reference"
    if value.startswith("/"):
        return "it is an absolute path"
    if "\\" in value:
        return "it holds a backslash"
    if "\x00" in value:
        return "it holds a NUL character"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "it holds a control character"
    if "/" in value:
        return "it holds '/' (one name only, not a path)"
    if not PATH_PART.fullmatch(value):
        bad = sorted({c for c in value if not PATH_PART.fullmatch(c)})
        return f"it holds {', '.join(repr(c) for c in bad)}"
    return None


def check_path_part(value: Any, what: str) -> str:
    """``value`` if it is safe as one folder or file name in the warehouse, else
    :class:`UnsafeNameError` naming ``what`` (e.g. ``"run id"``) and what is allowed."""
    if not isinstance(value, str):
        raise UnsafeNameError(f"{what}: expected a name of {PATH_PART_RULE}, got {value!r}")
    problem = _part_problem(value)
    if problem:
        raise UnsafeNameError(f"{what} {value!r} is not a safe name ({problem}): use {PATH_PART_RULE}")
    return value


def check_relative_path(value: Any, what: str) -> str:
    """``value`` if it is ``part/part/...`` of :func:`check_path_part` parts (relative,
    no ``..``, no empty parts), else :class:`UnsafeNameError` naming ``what``."""
    if not isinstance(value, str):
        raise UnsafeNameError(f"{what}: expected a relative path, got {value!r}")
    if value.startswith("/"):
        raise UnsafeNameError(f"{what} {value!r} is an absolute path: give a path relative to the warehouse")
    for part in value.split("/"):
        problem = _part_problem(part)
        if problem:
            raise UnsafeNameError(
                f"{what} {value!r} is not a safe path: its part {part!r} is refused ({problem}); "
                f"use parts of {PATH_PART_RULE}, separated by '/'"
            )
    return value
