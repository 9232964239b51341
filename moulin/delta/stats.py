"""Per-file Delta statistics from Parquet footers (no second pass over the data).

The footer bytes of each data file are read through the Hadoop ``FileSystem``
(one small read at the end of the file) and decoded with pyarrow's Parquet
metadata reader: this costs a few py4j calls per file instead of several per
column chunk with ``ParquetFileReader``/``ColumnChunkMetaData`` walked from
Python, and gives typed min/max values (dates, timestamps, UTF-8 strings).

Row-group statistics are merged into Delta's ``numRecords``, ``minValues``,
``maxValues`` and ``nullCount`` for top-level columns of these Spark types:
byte/short/integer/long, float/double (min only: Spark orders NaN above every
number and Parquet min/max ignore NaN, so a max would be unsafe), string (min
truncated to a prefix, which is still a lower bound; max dropped when too long),
date, timestamp (UTC; min floored and max ceiled to milliseconds, the precision
of Delta stats) and boolean.  Other types (decimal, binary, timestamp_ntz,
nested) get a null count only, or nothing: a missing statistic means "unknown"
to every Delta reader, never a wrong skip.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import struct
from typing import Any

from moulin.delta.errors import DeltaStoreError

STRING_PREFIX = 32  # characters kept of a string minimum (Delta Lake's default)
_TAIL = 4096  # bytes read at the end of a file first: the whole footer, usually
_INT_TYPES = ("byte", "short", "integer", "long")


def parse_footer(tail: bytes, uri: str):
    """pyarrow ``FileMetaData`` of a Parquet file from its last bytes."""
    if len(tail) < 12 or tail[-4:] != b"PAR1":
        raise DeltaStoreError(f"{uri} is not a Parquet file (no PAR1 magic at its end)")
    footer_len = struct.unpack("<I", tail[-8:-4])[0]
    if footer_len + 8 > len(tail):
        return None  # the caller reads more
    import pyarrow.parquet as pq

    footer = tail[-8 - footer_len :]
    return pq.read_metadata(io.BytesIO(b"PAR1" + footer))


def read_file_metadata(fs, uri: str, size: int):
    """pyarrow ``FileMetaData`` of the Parquet file ``uri`` through a :class:`HadoopFS`."""
    tail = fs.read_tail(uri, size, _TAIL)
    meta = parse_footer(tail, uri)
    if meta is None:
        footer_len = struct.unpack("<I", tail[-8:-4])[0]
        meta = parse_footer(fs.read_tail(uri, size, footer_len + 8), uri)
    return meta


def _ts_ms(value: dt.datetime, ceil: bool) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    value = value.astimezone(dt.UTC)
    micros = value.microsecond
    value = value.replace(microsecond=(micros // 1000) * 1000)
    if ceil and micros % 1000:
        value += dt.timedelta(milliseconds=1)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _convert(type_name: str, value: Any, is_max: bool) -> Any:
    """A Parquet statistic as a Delta JSON stats value, or None when unsafe/unknown."""
    if value is None:
        return None
    if type_name in _INT_TYPES:
        return int(value) if isinstance(value, int) and not isinstance(value, bool) else None
    if type_name in ("float", "double"):
        if is_max or not isinstance(value, float) or not math.isfinite(value):
            return None
        return value
    if type_name == "boolean":
        return value if isinstance(value, bool) else None
    if type_name == "string":
        if not isinstance(value, str):
            return None
        if len(value) <= STRING_PREFIX:
            return value
        return None if is_max else value[:STRING_PREFIX]
    if type_name == "date":
        return (
            value.isoformat() if isinstance(value, dt.date) and not isinstance(value, dt.datetime) else None
        )
    if type_name == "timestamp":
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            return _ts_ms(value, ceil=is_max)
        return None
    return None


def _better(type_name: str, current: Any, new: Any, is_max: bool) -> Any:
    if current is None:
        return new
    return max(current, new) if is_max else min(current, new)


def file_stats(meta, data_types: dict[str, str]) -> dict[str, Any]:
    """Delta stats of one file from its pyarrow ``FileMetaData``.

    ``data_types`` maps each top-level data column to its Spark type name
    (``DataType.typeName()``, e.g. ``long``, ``timestamp``).
    """
    num_records = int(meta.num_rows)
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    bad_minmax: set[str] = set()
    bad_nulls: set[str] = set()
    for r in range(meta.num_row_groups):
        rg = meta.row_group(r)
        if rg.num_rows == 0:
            continue
        for c in range(rg.num_columns):
            col = rg.column(c)
            name = col.path_in_schema
            type_name = data_types.get(name)
            if type_name is None:  # nested leaf, or a column not in the table
                continue
            st = col.statistics
            if st is None:
                bad_minmax.add(name)
                bad_nulls.add(name)
                continue
            if st.has_null_count:
                nulls[name] = nulls.get(name, 0) + int(st.null_count)
            else:
                bad_nulls.add(name)
            if not st.has_min_max:
                # A row group of nulls only has no min/max and needs none.
                if not (st.has_null_count and st.null_count == rg.num_rows):
                    bad_minmax.add(name)
                continue
            try:
                lo = _convert(type_name, st.min, False)
                hi = _convert(type_name, st.max, True)
            except (ValueError, UnicodeDecodeError, OverflowError):
                lo = hi = None
            if lo is None:
                bad_minmax.add(name + "\0min")
            else:
                mins[name] = _better(type_name, mins.get(name), lo, False)
            if hi is None:
                bad_minmax.add(name + "\0max")
            else:
                maxs[name] = _better(type_name, maxs.get(name), hi, True)
    for name in list(mins):
        if name in bad_minmax or name + "\0min" in bad_minmax:
            del mins[name]
    for name in list(maxs):
        if name in bad_minmax or name + "\0max" in bad_minmax:
            del maxs[name]
    for name in bad_nulls:
        nulls.pop(name, None)
    return {"numRecords": num_records, "minValues": mins, "maxValues": maxs, "nullCount": nulls}


def stats_json(stats: dict[str, Any]) -> str:
    """Delta's ``stats`` string of an add action."""
    # Raw UTF-8, not \\u escapes: deltalake 1.6 mis-decodes escaped surrogate pairs.
    return json.dumps(stats, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
