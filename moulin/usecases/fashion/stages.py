"""The Spark stage of the image use case: bronze images -> silver (labelled, split,
hashed), with the duplicate images across splits counted."""

from __future__ import annotations

from moulin.errors import DataError
from moulin.usecases.fashion.params import CLASS_NAMES, PARAMS

#: IDX file prefix -> the official set's split
OFFICIAL_SETS = {"train": "train", "t10k": "test"}


class ImageSetNameError(DataError):
    """A landed images file is named neither train-* nor t10k-*: its official set is unknown."""


def to_silver(bronze, seed: int = PARAMS.split_seed, validation_share: float = PARAMS.validation_share):
    """Bronze images -> silver rows: ``image_id`` (set and index), the class name, a
    SHA-256 of the pixels, and the split: the official test set as ``test``, the
    training set divided by a seeded hash of the content (copies share a split)."""
    from pyspark.sql import functions as F

    prefix = F.regexp_extract(F.col("_source_file"), r"([^/]+)-images-idx3-ubyte(\.gz)?$", 1)
    sha = F.sha2(F.col("pixels"), 256)
    bucket = F.pmod(F.xxhash64(sha, F.lit(seed)), F.lit(1000)) / 1000.0
    split = F.when(prefix == "t10k", "test").when(bucket < validation_share, "validation").otherwise("train")
    names = F.array(*[F.lit(n) for n in CLASS_NAMES])
    return bronze.select(
        F.concat(prefix, F.lit("-"), F.col("item").cast("string")).alias("image_id"),
        F.col("label"),
        F.element_at(names, F.col("label") + 1).alias("label_name"),
        F.col("pixels"),
        sha.alias("image_sha256"),
        split.alias("split"),
        F.col("ds"),
    )


def duplicates(silver) -> dict[str, int]:
    """Copies of one image (same pixels): hashes held by several rows, by several
    splits, by train and test together, and with different labels."""
    from pyspark.sql import functions as F

    per_hash = silver.groupBy("image_sha256").agg(
        F.count("*").alias("n"),
        F.countDistinct("split").alias("splits"),
        F.max(F.when(F.col("split") == "test", 1).otherwise(0)).alias("in_test"),
        F.max(F.when(F.col("split") != "test", 1).otherwise(0)).alias("in_train"),
        F.countDistinct("label").alias("labels"),
    )
    row = per_hash.agg(
        F.sum(F.when(F.col("n") > 1, 1).otherwise(0)).alias("repeated_images"),
        F.sum(F.when(F.col("n") > 1, F.col("n") - 1).otherwise(0)).alias("extra_copies"),
        F.sum(F.when(F.col("splits") > 1, 1).otherwise(0)).alias("across_splits"),
        F.sum(F.when((F.col("in_test") == 1) & (F.col("in_train") == 1), 1).otherwise(0)).alias(
            "train_and_test"
        ),
        F.sum(F.when(F.col("labels") > 1, 1).otherwise(0)).alias("conflicting_labels"),
    ).collect()[0]
    return {k: int(row[k] or 0) for k in row.asDict()}


def check_set_names(bronze, bronze_uri: str) -> None:
    unknown = [
        r["_source_file"]
        for r in bronze.select("_source_file").distinct().collect()
        if r["_source_file"].rsplit("/", 1)[-1].split("-images-", 1)[0] not in OFFICIAL_SETS
    ]
    if unknown:
        raise ImageSetNameError(
            f"images file(s) {unknown[:3]} in {bronze_uri} are named neither train-* nor t10k-*: the split "
            "comes from the official set in the file name; land them under one of those names"
        )
