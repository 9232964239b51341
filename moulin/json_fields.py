"""Readers of the fields of a JSON document (a dict read from its JSON), each naming the
field it reads in its error.

One :class:`FieldReader` per kind of document: it raises that document's error type
(``error``) and adds ``missing_hint`` (what a document without a required field is
likely to be) to the message of a missing field.  Numbers that are not finite read
as None, as they are written (NaN is written as null).  Standard library only: the
training environment and the platform environment both load it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldReader:
    """Reads fields of one kind of document; every error is an ``error`` naming the field."""

    #: The exception raised on a malformed field (called with the message).
    error: type[Exception]
    #: Appended to the message of a missing required field: what the document then likely is.
    missing_hint: str = ""

    def fail(self, what: str, problem: str) -> Exception:
        """The error for field ``what``: ``<what>: <problem>``."""
        return self.error(f"{what}: {problem}")

    def mapping(self, value: Any, what: str) -> Mapping[str, Any]:
        """An object (empty when missing)."""
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(what, f"expected an object, got {type(value).__name__}")
        return value

    def items(self, value: Any, what: str) -> list[Any]:
        """A list (empty when missing)."""
        if value is None:
            return []
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
            raise self.fail(what, f"expected a list, got {type(value).__name__}")
        return list(value)

    def require(self, obj: Mapping[str, Any], key: str, what: str) -> Any:
        """``obj[key]``, which must be there and not null."""
        if obj.get(key) is None:
            hint = f": {self.missing_hint}" if self.missing_hint else ""
            raise self.fail(what, f"missing required field {key!r}{hint}")
        return obj[key]

    def number(self, value: Any, what: str) -> int | float | None:
        """A finite number as written (a whole number stays an int); None when missing or not finite."""
        if value is None:
            return None
        if isinstance(value, bool | str | bytes):
            raise self.fail(what, f"expected a number, got {value!r}")
        if isinstance(value, int):
            return value
        try:
            out = float(value)
        except (TypeError, ValueError) as exc:
            raise self.fail(what, f"expected a number, got {value!r}") from exc
        return out if math.isfinite(out) else None

    def num(self, value: Any, what: str) -> float | None:
        """A finite number as float; None when missing or not finite."""
        out = self.number(value, what)
        return None if out is None else float(out)

    def int(self, value: Any, what: str) -> int | None:
        """A whole number; None when missing."""
        out = self.number(value, what)
        if out is None:
            return None
        if out != round(out):
            raise self.fail(what, f"expected a whole number, got {value!r}")
        return int(out)

    def str(self, value: Any, what: str) -> str | None:
        """A text; None when missing."""
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(what, f"expected a text, got {type(value).__name__}")
        return value

    def bool(self, value: Any, what: str) -> bool | None:
        """True or false; None when missing."""
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self.fail(what, f"expected true or false, got {value!r}")
        return value

    def json(self, value: Any, what: str) -> Any:
        """A free-form JSON value (settings, a record kept as written), checked to be JSON-ready."""
        try:
            json.dumps(value, allow_nan=True)
        except (TypeError, ValueError) as exc:
            raise self.fail(what, f"not a JSON value ({exc})") from exc
        return value
