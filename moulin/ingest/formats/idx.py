"""IDX: the image and label files of MNIST-like sets, one record per image (:mod:`moulin.ingest.idx`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from moulin.ingest.formats import (
    CORRUPT,
    CORRUPT_REASON,
    FormatOptions,
    RawFileError,
    RawFileFormat,
    RawFiles,
    RecordContract,
    RowCounter,
    record_schema,
)
from moulin.ingest.idx import IDX_FIELDS, IdxFormatError, count_idx_records, file_role, idx_records

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def read_idx(spark: SparkSession, uris: list[str], contract: RecordContract) -> DataFrame:
    """IDX image files as one record per image (:mod:`moulin.ingest.idx`), labelled
    from the labels file of the same prefix; an image cut short or without a label
    keeps only ``_corrupt_record`` (its reason)."""
    schema = record_schema(contract, IDX_FIELDS, "image", "idx")
    fields = schema.fieldNames()

    def pair(pdf):
        import pandas as pd

        roles = dict(zip(pdf["role"], zip(pdf["path"], pdf["content"], strict=True), strict=True))
        if "images" not in roles:
            path = roles["labels"][0]
            return pd.DataFrame(
                [{CORRUPT: f"{path}: labels without their images file", CORRUPT_REASON: f"{path}: labels without "
                  "their images file", "_source_file": path}],
                columns=fields,
            )  # fmt: skip
        images_path, images = roles["images"]
        labels_path, labels = roles.get("labels", (None, None))
        rows = []
        for record in idx_records(
            bytes(images), bytes(labels) if labels is not None else None, images_path, labels_path
        ):
            if CORRUPT in record:
                record = {CORRUPT: record[CORRUPT], CORRUPT_REASON: record[CORRUPT]}
            rows.append({**{c: record.get(c) for c in fields}, "_source_file": images_path})
        return pd.DataFrame(rows, columns=fields)

    paths = [r["path"] for r in spark.read.format("binaryFile").load(uris).select("path").collect()]
    try:
        prefixes = {p: file_role(p) for p in paths}
    except IdxFormatError as exc:
        raise RawFileError(str(exc)) from None
    roles = spark.createDataFrame(
        [(p, prefix, role) for p, (prefix, role) in prefixes.items()],
        "path string, prefix string, role string",
    )
    files = spark.read.format("binaryFile").load(uris).select("path", "content").join(roles, "path")
    return files.groupBy("prefix").applyInPandas(pair, schema)


class Idx(RawFileFormat):
    """IDX files (gzip-compressed or not): images files paired with the labels file of
    the same prefix; binary files that detect cuts themselves."""

    name = "idx"

    def counter(self, options: FormatOptions) -> RowCounter:
        return count_idx_records

    def read(self, spark: SparkSession, files: RawFiles) -> DataFrame:
        return read_idx(spark, files.uris, files.contract)
