"""Counting the records of a raw file with a reader independent of Spark's.

The landing records these counts in its manifest; the quality gate compares
them with the rows Spark read and the rows committed to bronze and quarantine,
so a reader that drops or splits rows is caught.  Blank lines are not records
(Spark skips them too); quoted newlines belong to their record.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from functools import partial

from moulin.ingest.formats import formats_text

RowCounter = Callable[[bytes], int]


def count_csv_rows(data: bytes, encoding: str = "utf-8", delimiter: str = ",", header: bool = True) -> int:
    """Data records of a CSV file (header excluded, blank lines skipped, quoted newlines handled)."""
    text = data.decode(encoding, errors="replace")
    records = sum(1 for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if row)
    return max(records - 1, 0) if header else records


def count_jsonl_rows(data: bytes, encoding: str = "utf-8") -> int:
    """Records (non-blank lines) of a JSON-lines file."""
    return sum(1 for line in data.decode(encoding, errors="replace").splitlines() if line.strip())


def count_parquet_rows(data: bytes) -> int:
    """Rows of a Parquet file, from its footer."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(io.BytesIO(data)).metadata.num_rows


def row_counter(fmt: str, encoding: str = "utf-8", delimiter: str = ",", header: bool = True) -> RowCounter:
    """The counter of raw format ``fmt`` (:data:`moulin.ingest.formats.RAW_FORMATS`)."""
    if fmt == "csv":
        return partial(count_csv_rows, encoding=encoding, delimiter=delimiter, header=header)
    if fmt == "jsonl":
        return partial(count_jsonl_rows, encoding=encoding)
    if fmt == "parquet":
        return count_parquet_rows
    if fmt == "mbox":
        from moulin.ingest.mail import count_mbox_messages

        return count_mbox_messages
    if fmt == "idx":
        from moulin.ingest.idx import count_idx_records

        return count_idx_records
    raise ValueError(f"unknown raw format {fmt!r}: {formats_text()}")


def decode_error(data: bytes, encoding: str) -> str | None:
    """Where ``data`` does not decode as ``encoding`` (line and byte), or None."""
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return f"byte {data[exc.start]:#04x} at offset {exc.start} (line {line}) is not valid {encoding}"
    return None
