"""The Spark stage of the text use case: bronze posts -> silver (label index, post id,
stored split), with copies of a post and conflicting labels counted."""

from __future__ import annotations

from moulin.usecases.sentiment.params import CLASS_NAMES, PARAMS


def to_silver(bronze, params=PARAMS):
    """Bronze posts -> silver rows: ``post_id`` = SHA-256 of the normalised text
    (lower case, spaces collapsed), the label as an index, the split by a seeded hash
    of the post id (copies of a post share a split)."""
    from pyspark.sql import functions as F

    normalised = F.lower(F.trim(F.regexp_replace(F.col("text"), r"\s+", " ")))
    post_id = F.sha2(normalised, 256)
    bucket = F.pmod(F.xxhash64(post_id, F.lit(params.split_seed)), F.lit(1000)) / 1000.0
    split = (
        F.when(bucket < params.train_share, "train")
        .when(bucket < params.train_share + params.validation_share, "validation")
        .otherwise("test")
    )
    index = F.array_position(F.array(*[F.lit(n) for n in CLASS_NAMES]), F.col("sentiment")) - 1
    return bronze.select(
        post_id.alias("post_id"),
        F.col("text"),
        index.cast("int").alias("label"),
        F.col("sentiment").alias("label_name"),
        F.col("confidence"),
        split.alias("split"),
        F.col("ds"),
    )


def duplicates(silver) -> dict[str, int]:
    """Copies of one post: ids held by several rows, by several splits, with different labels."""
    from pyspark.sql import functions as F

    per_post = silver.groupBy("post_id").agg(
        F.count("*").alias("n"),
        F.countDistinct("split").alias("splits"),
        F.countDistinct("label").alias("labels"),
    )
    row = per_post.agg(
        F.sum(F.when(F.col("n") > 1, 1).otherwise(0)).alias("repeated_posts"),
        F.sum(F.when(F.col("n") > 1, F.col("n") - 1).otherwise(0)).alias("extra_copies"),
        F.sum(F.when(F.col("splits") > 1, 1).otherwise(0)).alias("across_splits"),
        F.sum(F.when(F.col("labels") > 1, 1).otherwise(0)).alias("conflicting_labels"),
    ).collect()[0]
    return {k: int(row[k] or 0) for k in row.asDict()}
