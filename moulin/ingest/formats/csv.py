"""CSV: delimited text with an optional header line; records may span lines (quoted newlines)."""

from __future__ import annotations

import csv
import io
import itertools
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moulin.ingest.formats import (
    CORRUPT,
    FormatOptions,
    RawFileError,
    RawFiles,
    RowCounter,
    SparkTextFormat,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def count_csv_rows(data: bytes, encoding: str = "utf-8", delimiter: str = ",", header: bool = True) -> int:
    """Data records of a CSV file (header excluded, blank lines skipped, quoted newlines handled)."""
    text = data.decode(encoding, errors="replace")
    records = sum(1 for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if row)
    return max(records - 1, 0) if header else records


def read_csv_columns(
    spark: SparkSession,
    uris: list[str],
    names: list[str],
    charset: str = "utf-8",
    delimiter: str = ",",
    header: bool = True,
    file_columns: dict[str, list[str]] | None = None,
) -> DataFrame:
    """CSV files as the string columns ``names`` (in that order), ``_corrupt_record`` and
    ``_source_file``, with each value exactly as Python's ``csv`` module reads it;
    ``charset`` is Spark's name of the files' encoding.

    Columns are taken by position, in the order ``file_columns[uri]`` gives for a
    file (its header's, when the spec maps columns by name) or else ``names``.
    Records end at ``\\n``: Spark's reader, left to detect the line end, turns a
    ``\\r\\n`` inside a quoted field into ``\\n``; with ``\\n`` it keeps the field's
    bytes and leaves the ``\\r`` of a CRLF record end on the record's last value
    when unquoted, which is removed here (Python's reader never puts a ``\\r``
    at the end of an unquoted value).  A quoted last value that itself ends with
    ``\\r`` loses that ``\\r`` too: the one case this does not keep.
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    orders: dict[tuple[str, ...], list[str]] = {}
    for uri in uris:
        orders.setdefault(tuple((file_columns or {}).get(uri) or names), []).append(uri)
    frames = []
    for order, group in orders.items():
        fields = [T.StructField(c, T.StringType()) for c in order]
        df = spark.read.csv(
            group,
            header=header,
            schema=T.StructType([*fields, T.StructField(CORRUPT, T.StringType())]),
            sep=delimiter,
            encoding=charset,
            escape='"',  # RFC 4180: a quote inside a quoted field is doubled (as Python's csv reads it)
            multiLine=True,
            lineSep="\n",
            mode="PERMISSIVE",
            columnNameOfCorruptRecord=CORRUPT,
            enforceSchema=True,
        )
        last = F.col(order[-1])
        cols = {c: F.col(c) for c in order}
        cols[order[-1]] = F.when(
            last.endswith("\r"), F.expr(f"substring(`{order[-1]}`, 1, length(`{order[-1]}`) - 1)")
        ).otherwise(last)
        frames.append(
            df.select(
                *[cols[c].alias(c) for c in names],
                F.col(CORRUPT),
                F.col("_metadata.file_path").alias("_source_file"),
            )
        )
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out


class Csv(SparkTextFormat):
    """Comma (or ``file.delimiter``) separated values, RFC 4180 quoting, read by position."""

    name = "csv"
    options = ("encoding", "delimiter", "header")
    suffixes = (".csv",)

    def counter(self, options: FormatOptions) -> RowCounter:
        return partial(
            count_csv_rows, encoding=options.encoding, delimiter=options.delimiter, header=options.header
        )

    def has_header(self, options: FormatOptions) -> bool:
        return options.header

    def read(self, spark: SparkSession, files: RawFiles) -> DataFrame:
        options = files.options
        return read_csv_columns(
            spark,
            files.uris,
            files.contract.column_names,
            self.charset(options),
            options.delimiter,
            options.header,
            files.file_columns,
        )

    def sample(
        self, path: Path, options: FormatOptions, limit: int | None = None
    ) -> tuple[list[str], list[dict[str, Any]]]:
        text = path.read_text(encoding=options.encoding, errors="replace")
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=options.delimiter)
        header = next(reader, None)
        if header is None:
            raise RawFileError(f"{path} is empty: infer needs a header line and some rows")
        rows = [dict(zip(header, r, strict=False)) for r in itertools.islice((r for r in reader if r), limit)]
        return header, rows
