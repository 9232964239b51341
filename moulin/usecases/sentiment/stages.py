"""The Spark stage of the text use case: bronze posts -> silver (label index, post id,
stored split), with copies of a post and conflicting labels counted."""

from __future__ import annotations

from typing import Any

from moulin.contracts import load_contract
from moulin.errors import DataError
from moulin.lineage import run_key
from moulin.settings import Settings
from moulin.usecases.sentiment.params import CLASS_NAMES, PARAMS, PIPELINE


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


def silver_sentiment(spark, settings: Settings) -> dict[str, Any]:
    """Rebuild ``silver/sentiment_posts`` from every bronze partition (one checked,
    idempotent commit keyed on the bronze version); counts checked against the Delta
    log on both sides."""
    from moulin.delta import DeltaTableStore
    from moulin.quality.tables import check_table

    store = DeltaTableStore(spark)
    contract = load_contract("silver_sentiment")
    bronze_uri = settings.table_uri(load_contract("bronze_sentiment").table)
    version = store.version(bronze_uri)
    bronze = store.read(bronze_uri, version=version)
    bronze_rows = store.count(bronze_uri, version)  # from the Delta log's file statistics
    silver = to_silver(bronze).cache()
    try:
        checked = check_table(silver, contract, settings, f"bronze_v{version}")
        counts = {
            (r["label_name"], r["split"]): int(r["count"])
            for r in silver.groupBy("label_name", "split").count().collect()
        }
        copies = duplicates(silver)
        key = run_key(bronze_uri, version, PARAMS.split_seed, PARAMS.train_share, PARAMS.validation_share)
        silver_uri = settings.table_uri(contract.table)
        res = store.write(
            silver,
            silver_uri,
            mode="overwrite",
            partition_by=list(contract.partition_by),
            app_id=f"{PIPELINE}.silver_sentiment.{key}",
            app_version=1,
            **contract.delta_metadata,
        )
    finally:
        silver.unpersist()
    rows = sum(counts.values())
    committed = store.count(silver_uri, res.version)
    if not bronze_rows == rows == committed:
        raise DataError(
            f"silver_sentiment: bronze {bronze_uri} v{version} holds {bronze_rows} posts, Spark split {rows}, "
            f"but {silver_uri} v{res.version} holds {committed}: rows were lost or duplicated; do not use it"
        )
    by_split: dict[str, int] = {}
    for (_, split), n in counts.items():
        by_split[split] = by_split.get(split, 0) + n
    return {
        "table": contract.table,
        "uri": silver_uri,
        "bronze_version": version,
        "rows": committed,
        "by_split": dict(sorted(by_split.items())),
        "by_label_split": {f"{label}/{split}": n for (label, split), n in sorted(counts.items())},
        "duplicates": copies,
        "version": res.version,
        "committed": res.committed,
        "data_docs_uri": checked.get("data_docs_uri", ""),
    }
