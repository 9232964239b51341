"""Counting the records of a raw file with a reader independent of Spark's.

The landing records these counts in its manifest; the quality gate compares
them with the rows Spark read and the rows committed to bronze and quarantine,
so a reader that drops or splits rows is caught.  Blank lines are not records
(Spark skips them too); quoted newlines belong to their record.  Each format's
counter is declared by its class in :mod:`moulin.ingest.formats`.
"""

from __future__ import annotations

from moulin.ingest.formats import FormatOptions, RowCounter, raw_format
from moulin.ingest.formats.csv import count_csv_rows
from moulin.ingest.formats.jsonl import count_jsonl_rows
from moulin.ingest.formats.parquet import count_parquet_rows

__all__ = [
    "RowCounter",
    "count_csv_rows",
    "count_jsonl_rows",
    "count_parquet_rows",
    "decode_error",
    "row_counter",
]


def row_counter(fmt: str, encoding: str = "utf-8", delimiter: str = ",", header: bool = True) -> RowCounter:
    """The counter of raw format ``fmt`` (:func:`moulin.ingest.formats.raw_format`)."""
    return raw_format(fmt).counter(FormatOptions(encoding, delimiter, header))


def decode_error(data: bytes, encoding: str) -> str | None:
    """Where ``data`` does not decode as ``encoding`` (line and byte), or None."""
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return f"byte {data[exc.start]:#04x} at offset {exc.start} (line {line}) is not valid {encoding}"
    return None
