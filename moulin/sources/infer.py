"""Drafting a bronze contract and a source spec from a sample file (``moulin source infer``).

Every record of the sample file is read.  Types are inferred from its values
(``boolean``, ``int``, ``bigint``, ``double``, ``date``, ``timestamp``, else
``string``), nullability from missing values, candidate keys from columns (or
pairs) unique and never null, and ``between`` expectations from the numeric
ranges of columns that are not identifiers (keys, ``id``, ``*_id``, ...; whole
numbers as whole numbers).  The spec's glob puts ``{ds}`` where the file name
holds a date, and its ``start_date`` is the one given, else a placeholder that
``validate`` refuses.  The draft is a start: a data engineer reviews it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
from pathlib import Path
from typing import Any

import yaml

from moulin.ingest.formats import FormatOptions, RawFileError, UnknownFormatError, raw_format
from moulin.sources.spec import SourceSpecError

INT32 = 2**31 - 1
#: ``start_date`` of a draft when none was given: ``validate`` refuses it until it is set
START_DATE_PLACEHOLDER = "YYYY-MM-DD"
#: column names that identify rows rather than measure them: no range is drafted for them
_IDENTIFIER = re.compile(r"(^|_)(id|uuid|guid|key|code|number|no)$", re.IGNORECASE)
_INT = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _is_float(text: str) -> bool:
    """Whether ``text`` is a finite decimal number, as the quality gate reads a double."""
    if not _DECIMAL.fullmatch(text.strip()):
        return False
    return math.isfinite(float(text))


def _is_timestamp(text: str) -> bool:
    if not re.match(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", text):
        return False
    try:
        dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def infer_type(values: list[str]) -> str:
    """The narrowest contract type that parses every (non-null) text of ``values``."""
    if not values:
        return "string"
    if all(v.lower() in ("true", "false") for v in values):
        return "boolean"
    if all(_INT.fullmatch(v) for v in values):
        return "int" if all(abs(int(v)) <= INT32 for v in values) else "bigint"
    if all(_is_float(v) for v in values):
        return "double"
    if all(_DATE.fullmatch(v) for v in values):
        return "date"
    if all(_is_timestamp(v) for v in values):
        return "timestamp"
    return "string"


def read_sample(
    path: Path, fmt: str, encoding: str = "utf-8", delimiter: str = ",", limit: int | None = None
) -> tuple[list[str], list[dict[str, Any]]]:
    """``(columns, rows)`` of the records of ``path`` (the first ``limit`` when given),
    values as text (None: missing), read by format ``fmt``'s
    :meth:`~moulin.ingest.formats.RawFileFormat.sample`."""
    try:
        return raw_format(fmt).sample(path, FormatOptions(encoding, delimiter), limit)
    except (RawFileError, UnknownFormatError) as exc:
        raise SourceSpecError(str(exc)) from None


def draft(
    path: Path,
    name: str,
    fmt: str = "csv",
    encoding: str = "utf-8",
    delimiter: str = ",",
    null_values: tuple[str, ...] = ("", "NA"),
    limit: int | None = None,
    start_date: dt.date | None = None,
) -> tuple[dict, dict]:
    """``(contract, spec)`` drafts (plain dicts, ready for YAML) for a sample file, from all
    its records (the first ``limit`` when given); ``start_date`` is the date of the
    first drop to load (else :data:`START_DATE_PLACEHOLDER`)."""
    columns, rows = read_sample(path, fmt, encoding, delimiter, limit)
    nulls = set(null_values)
    contract_cols, expectations, present = [], [], {}
    for col in columns:
        values = [r.get(col) for r in rows]
        kept = [v for v in values if v is not None and v not in nulls]
        present[col] = kept
        kind = infer_type(kept)
        nullable = len(kept) < len(values)
        contract_cols.append({"name": col, "type": kind, "nullable": nullable})
    complete = [c for c in columns if len(present[c]) == len(rows) and rows]
    keys: list[str] = next(([c] for c in complete if len(set(present[c])) == len(rows)), [])
    if not keys:
        for a, b in itertools.combinations(complete, 2):
            if len(set(zip(present[a], present[b], strict=True))) == len(rows):
                keys = [a, b]
                break
    for col in contract_cols:
        column, kind, kept = col["name"], col["type"], present[col["name"]]
        if (
            kind not in ("int", "bigint", "double")
            or not kept
            or column in keys
            or _IDENTIFIER.search(column)
        ):
            continue
        nums: list[int] | list[float] = (
            [int(v) for v in kept] if kind != "double" else [float(v) for v in kept]
        )
        expectations.append({"type": "between", "column": column, "min": min(nums), "max": max(nums)})
    contract = {
        "name": f"bronze_{name}",
        "layer": "bronze",
        "table": f"bronze/{name}",
        "description": f"Drafted by `moulin source infer` from {path.name} ({len(rows)} rows sampled): review it.",
        "owner": "",
        "keys": keys,
        "partition_by": ["ds"],
        "personal_data": [],
        "columns": contract_cols,
        "expectations": expectations,
        "quarantine_threshold": 0.01,
    }
    spec = {
        "name": name,
        "kind": "file",
        "contract": f"bronze_{name}",
        "schedule": "@daily",
        "start_date": start_date.isoformat() if start_date else START_DATE_PLACEHOLDER,
        "mode": "partition",
        "null_values": list(null_values),
        "file": {
            "path": str(path.resolve().parent / drop_glob(path.name)),
            "format": fmt,
            "encoding": encoding,
            "delimiter": delimiter,
            "header": True,
        },  # fmt: skip
    }
    for option in ("delimiter", "header"):
        if option not in raw_format(fmt).options:
            del spec["file"][option]
    return contract, spec


def drop_glob(file_name: str) -> str:
    """The glob of a source's drops drafted from one file's name: the date it holds
    (``2024-03-01`` or ``20240301``) becomes ``{ds}`` / ``{ds_nodash}``, else every file
    with its suffix (``validate`` warns about a glob without a date)."""
    stem, dot, suffix = file_name.rpartition(".")
    stem, suffix = (stem, f"{dot}{suffix}") if dot else (file_name, "")
    for pattern, field in ((r"\d{4}-\d{2}-\d{2}", "{ds}"), (r"(?<!\d)\d{8}(?!\d)", "{ds_nodash}")):
        match = re.search(pattern, stem)
        if match:
            return f"{stem[: match.start()]}{field}*{suffix}"
    return f"*{suffix}"


def to_yaml(data: dict) -> str:
    """YAML text of a draft, fields in their written order."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)
