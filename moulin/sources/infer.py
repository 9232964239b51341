"""Drafting a bronze contract and a source spec from a sample file (``moulin source infer``).

Types are inferred from the sample's values (``boolean``, ``int``, ``bigint``,
``double``, ``date``, ``timestamp``, else ``string``), nullability from
missing values, candidate keys from columns (or pairs) unique and never null
in the sample, and ``between`` expectations from numeric ranges.  The draft
is a start: a data engineer reviews it before using it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import re
from pathlib import Path
from typing import Any

import yaml

from moulin.sources.spec import SourceSpecError

INT32 = 2**31 - 1
_INT = re.compile(r"[+-]?\d+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip().lower() not in ("nan", "inf", "-inf", "infinity")


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


def _text(value: Any) -> str | None:
    """A JSON value as the text a raw row holds (booleans lower-case, nested values as JSON)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def read_sample(
    path: Path, fmt: str, encoding: str = "utf-8", delimiter: str = ",", limit: int = 10_000
) -> tuple[list[str], list[dict[str, Any]]]:
    """``(columns, rows)`` of the first ``limit`` records of ``path``, values as text (None: missing)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path).slice(0, limit)
        rows = [{k: None if v is None else str(v) for k, v in r.items()} for r in table.to_pylist()]
        return table.column_names, rows
    text = path.read_text(encoding=encoding, errors="replace")
    if fmt == "jsonl":
        rows, columns = [], {}
        for line in itertools.islice((ln for ln in text.splitlines() if ln.strip()), limit):
            record = json.loads(line)
            columns.update(dict.fromkeys(record))
            rows.append({k: _text(v) for k, v in record.items()})
        return list(columns), rows
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        raise SourceSpecError(f"{path} is empty: infer needs a header line and some rows")
    rows = [dict(zip(header, r, strict=False)) for r in itertools.islice((r for r in reader if r), limit)]
    return header, rows


def draft(
    path: Path,
    name: str,
    fmt: str = "csv",
    encoding: str = "utf-8",
    delimiter: str = ",",
    null_values: tuple[str, ...] = ("", "NA"),
    limit: int = 10_000,
) -> tuple[dict, dict]:
    """``(contract, spec)`` drafts (plain dicts, ready for YAML) for a sample file."""
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
        if kind in ("int", "bigint", "double") and kept:
            nums = [float(v) for v in kept]
            expectations.append({"type": "between", "column": col, "min": min(nums), "max": max(nums)})
    complete = [c for c in columns if len(present[c]) == len(rows) and rows]
    keys: list[str] = next(([c] for c in complete if len(set(present[c])) == len(rows)), [])
    if not keys:
        for a, b in itertools.combinations(complete, 2):
            if len(set(zip(present[a], present[b], strict=True))) == len(rows):
                keys = [a, b]
                break
    contract = {
        "name": f"bronze_{name}",
        "layer": "bronze",
        "table": f"bronze/{name}",
        "description": f"Drafted by `moulin source infer` from {path.name} ({len(rows)} rows sampled): review it.",
        "owner": "",
        "source": {"name": name, "format": fmt, "null_values": list(null_values)},
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
        "start_date": dt.date.today().isoformat(),
        "mode": "partition",
        "null_values": list(null_values),
        "file": {
            "path": str(path.resolve().parent / f"*{path.suffix}"),
            "format": fmt,
            "encoding": encoding,
            "delimiter": delimiter,
            "header": True,
        },  # fmt: skip
    }
    if fmt != "csv":
        del spec["file"]["delimiter"], spec["file"]["header"]
    return contract, spec


def to_yaml(data: dict) -> str:
    """YAML text of a draft, fields in their written order."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)
