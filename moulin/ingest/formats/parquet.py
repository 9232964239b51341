"""Parquet: columnar binary files whose columns are the contract's, by name."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moulin.ingest.formats import (
    FormatOptions,
    RawFileError,
    RawFileFormat,
    RawFiles,
    RowCounter,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def count_parquet_rows(data: bytes) -> int:
    """Rows of a Parquet file, from its footer."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(io.BytesIO(data)).metadata.num_rows


class Parquet(RawFileFormat):
    """Parquet files; values are read as text (cast to string), columns matched by name."""

    name = "parquet"
    decoded_at_landing = False
    suffixes = (".parquet",)
    erased_as = "parquet"

    def counter(self, options: FormatOptions) -> RowCounter:
        return count_parquet_rows

    def read(self, spark: SparkSession, files: RawFiles) -> DataFrame:
        from pyspark.sql import functions as F

        df = spark.read.parquet(*files.uris)
        missing = [c for c in files.contract.column_names if c not in df.columns]
        extra = [c for c in df.columns if c not in files.contract.column_names]
        if missing or extra:
            raise RawFileError(
                f"Parquet files {files.uris[:3]}: columns do not match contract {files.contract.name} ({files.contract.path}): "
                f"missing {missing}, unexpected {extra}"
            )
        return df.select(
            *[F.col(c).cast("string").alias(c) for c in files.contract.column_names],
            F.col("_metadata.file_path").alias("_source_file"),
        )

    def sample(
        self, path: Path, options: FormatOptions, limit: int | None = None
    ) -> tuple[list[str], list[dict[str, Any]]]:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        table = table.slice(0, limit) if limit is not None else table
        rows = [{k: None if v is None else str(v) for k, v in r.items()} for r in table.to_pylist()]
        return table.column_names, rows
