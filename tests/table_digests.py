"""Content digests of tables: a row count and a checksum of the sorted rows, so that
a change meant to be faster can be shown to write the same tables.

Columns that depend on where or when a run happened (names starting with ``_``,
``run_id``, ``source_file``) are left out; floating values are rounded to 9
significant digits (summation order may change the last bits).
"""

from __future__ import annotations

import hashlib
import json
import math

VOLATILE = ("run_id", "source_file")


def _value(value):
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value) or value == 0:
            return str(value)
        return f"{value:.9g}"
    if isinstance(value, list):
        return [_value(v) for v in value]
    return str(value) if value is not None else None


def table_digest(store, uri: str) -> dict:
    """``{rows, sha256}`` of the table at ``uri`` (sorted rows, stable columns only)."""
    df = store.read(uri)
    columns = sorted(c for c in df.columns if not c.startswith("_") and c not in VOLATILE)
    lines = sorted(json.dumps([_value(r[c]) for c in columns]) for r in df.select(*columns).collect())
    return {"rows": len(lines), "sha256": hashlib.sha256("\n".join(lines).encode()).hexdigest()}
