"""JSON lines: one JSON object per line (what SQL and HTTP sources land too)."""

from __future__ import annotations

import itertools
import json
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moulin.ingest.formats import (
    CORRUPT,
    FormatOptions,
    RawFiles,
    RowCounter,
    SparkTextFormat,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def count_jsonl_rows(data: bytes, encoding: str = "utf-8") -> int:
    """Records (non-blank lines) of a JSON-lines file."""
    return sum(1 for line in data.decode(encoding, errors="replace").splitlines() if line.strip())


def _text(value: Any) -> str | None:
    """A JSON value as the text a raw row holds (booleans lower-case, nested values as JSON)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


class Jsonl(SparkTextFormat):
    """JSON lines; a file of 0 bytes is a drop without records (an empty extract)."""

    name = "jsonl"
    empty_file_valid = True
    suffixes = (".jsonl", ".json")

    def counter(self, options: FormatOptions) -> RowCounter:
        return partial(count_jsonl_rows, encoding=options.encoding)

    def read(self, spark: SparkSession, files: RawFiles) -> DataFrame:
        from pyspark.sql import functions as F
        from pyspark.sql import types as T

        strings = [T.StructField(c, T.StringType()) for c in files.contract.column_names]
        df = spark.read.json(
            files.uris,
            schema=T.StructType([*strings, T.StructField(CORRUPT, T.StringType())]),
            encoding=self.charset(files.options),
            mode="PERMISSIVE",
            columnNameOfCorruptRecord=CORRUPT,
        )
        return df.select(*df.columns, F.col("_metadata.file_path").alias("_source_file"))

    def sample(
        self, path: Path, options: FormatOptions, limit: int | None = None
    ) -> tuple[list[str], list[dict[str, Any]]]:
        text = path.read_text(encoding=options.encoding, errors="replace")
        rows, columns = [], {}
        for line in itertools.islice((ln for ln in text.splitlines() if ln.strip()), limit):
            record = json.loads(line)
            columns.update(dict.fromkeys(record))
            rows.append({k: _text(v) for k, v in record.items()})
        return list(columns), rows
