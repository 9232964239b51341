"""Gold delay statistics as an explicit MapReduce over Arrow batches.

Each MapReduce phase is spelled out, on columnar partitions (pandas frames of
Arrow record batches) rather than one pickled Python row at a time:

1. **map**: every flight of a batch -> ``(key, 1, cancelled, departed, delayed_15, delay, delay², delay)``,
   vectorised;
2. **combine**: each partition folds its mapped rows into one partial value per
   key (a map-side combiner, so only one record per key and partition is shuffled);
3. **shuffle**: ``repartition`` hash-partitions the partial values by key;
4. **reduce**: each partition merges the partials of its keys and derives the statistics.

:func:`delay_stats_df` computes the same with ``groupBy().agg()`` and
:func:`compare_stats` raises :class:`StatsMismatchError` if the two differ: the
tests cross-check the MapReduce with them; the gold stage computes it once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from moulin.errors import MoulinError

#: Grouping keys of each gold statistics table.
STAT_KEYS: dict[str, list[str]] = {
    "route": ["month", "origin", "dest"],
    "carrier": ["month", "carrier"],
    "hour": ["month", "sched_dep_hour"],
}
STAT_COLUMNS = [
    ("n_flights", T.LongType()),
    ("n_cancelled", T.LongType()),
    ("n_departed", T.LongType()),
    ("n_delayed_15", T.LongType()),
    ("delay_rate", T.DoubleType()),
    ("sum_dep_delay", T.DoubleType()),
    ("mean_dep_delay", T.DoubleType()),
    ("std_dep_delay", T.DoubleType()),
    ("max_dep_delay", T.DoubleType()),
]
#: The partial value of a key: counts, sum and sum of squares of the delays, max delay.
PARTIAL_COLUMNS = [
    ("n", T.LongType()),
    ("cancelled", T.LongType()),
    ("departed", T.LongType()),
    ("delayed", T.LongType()),
    ("s", T.DoubleType()),
    ("ss", T.DoubleType()),
    ("mx", T.DoubleType()),
]
_MERGE = {
    "n": "sum",
    "cancelled": "sum",
    "departed": "sum",
    "delayed": "sum",
    "s": "sum",
    "ss": "sum",
    "mx": "max",
}


class StatsMismatchError(MoulinError):
    """The MapReduce and the DataFrame aggregation disagree."""


def _map(frame, keys: list[str]):
    """Mapper: the flights of a batch -> one (key, partial value) row each."""
    cancelled = frame["cancelled"].fillna(False).astype(bool)
    delay = frame["dep_delay"].astype("float64")
    departed = ~cancelled & delay.notna()
    d = delay.where(departed, 0.0)
    out = frame[keys].copy()
    out["n"] = 1
    out["cancelled"] = cancelled.astype("int64")
    out["departed"] = departed.astype("int64")
    out["delayed"] = (departed & (d >= 15)).astype("int64")
    out["s"] = d
    out["ss"] = d * d
    out["mx"] = delay.where(departed)
    return out


def _fold(frames: list, keys: list[str]):
    """Merge partial values by key (the combiner and the first step of the reducer)."""
    import pandas as pd

    if not frames:
        return None
    both = pd.concat(frames, ignore_index=True)
    return both.groupby(keys, dropna=False, sort=False).agg(_MERGE).reset_index()


def _batches(frame, schema: T.StructType):
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    if frame is None or frame.empty:
        return
    yield pa.RecordBatch.from_pandas(
        frame[schema.fieldNames()], schema=to_arrow_schema(schema), preserve_index=False
    )


def _combine(batches: Iterator, keys: list[str], schema: T.StructType) -> Iterator:
    """Map-side combiner: one partial value per key and partition."""
    yield from _batches(_fold([_map(b.to_pandas(), keys) for b in batches], keys), schema)


def _reduce(batches: Iterator, keys: list[str], schema: T.StructType) -> Iterator:
    """Reducer: merge the shuffled partials of each key, then derive the statistics."""
    import numpy as np

    p = _fold([b.to_pandas() for b in batches], keys)
    if p is None or p.empty:
        return
    departed = p["departed"].astype("float64")
    has = p["departed"] > 0
    mean = (p["s"] / departed).where(has)
    p["n_flights"], p["n_cancelled"], p["n_departed"], p["n_delayed_15"] = (
        p["n"],
        p["cancelled"],
        p["departed"],
        p["delayed"],
    )
    p["delay_rate"] = (p["delayed"] / departed).where(has)
    p["sum_dep_delay"] = p["s"]
    p["mean_dep_delay"] = mean
    p["std_dep_delay"] = np.sqrt(np.maximum(p["ss"] / departed - mean * mean, 0.0)).where(has)
    p["max_dep_delay"] = p["mx"].where(has)
    yield from _batches(p, schema)


def _schema(silver: DataFrame, keys: list[str], columns) -> T.StructType:
    key_fields = [T.StructField(k, silver.schema[k].dataType, False) for k in keys]
    return T.StructType(key_fields + [T.StructField(n, t, True) for n, t in columns])


def delay_stats_mapreduce(silver: DataFrame, keys: list[str], num_partitions: int | None = None) -> DataFrame:
    """Delay statistics per ``keys`` computed with the explicit MapReduce of the module doc."""
    spark = silver.sparkSession
    parts = num_partitions or int(spark.conf.get("spark.sql.shuffle.partitions"))
    key_names = list(keys)
    partial_schema = _schema(silver, key_names, PARTIAL_COLUMNS)
    out_schema = _schema(silver, key_names, STAT_COLUMNS)
    rows = silver.select(*key_names, "cancelled", "dep_delay")
    combined = rows.mapInArrow(lambda it: _combine(it, key_names, partial_schema), partial_schema)
    shuffled = combined.repartition(parts, *key_names)
    return shuffled.mapInArrow(lambda it: _reduce(it, key_names, out_schema), out_schema)


def delay_stats_df(silver: DataFrame, keys: list[str]) -> DataFrame:
    """The same statistics as :func:`delay_stats_mapreduce`, with a DataFrame aggregation."""
    departed = ~F.col("cancelled") & F.col("dep_delay").isNotNull()
    delay = F.when(departed, F.col("dep_delay").cast("double"))
    agg = silver.groupBy(*keys).agg(
        F.count(F.lit(1)).alias("n_flights"),
        F.sum(F.col("cancelled").cast("long")).alias("n_cancelled"),
        F.sum(departed.cast("long")).alias("n_departed"),
        F.sum((departed & (F.col("dep_delay") >= 15)).cast("long")).alias("n_delayed_15"),
        F.coalesce(F.sum(delay), F.lit(0.0)).alias("sum_dep_delay"),
        F.avg(delay).alias("mean_dep_delay"),
        F.stddev_pop(delay).alias("std_dep_delay"),
        F.max(delay).alias("max_dep_delay"),
    )
    agg = agg.withColumn(
        "delay_rate", F.when(F.col("n_departed") > 0, F.col("n_delayed_15") / F.col("n_departed"))
    )
    return agg.select(*keys, *[F.col(n).cast(t).alias(n) for n, t in STAT_COLUMNS])


def _close(a: object, b: object, tol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=tol, abs_tol=tol)
    return a == b


def compare_stats(mr_stats: DataFrame, df_stats: DataFrame, keys: list[str], tol: float = 1e-9) -> int:
    """Raise StatsMismatchError unless both statistics tables hold the same keys and values.

    Counts must be equal; floating values equal within ``tol`` (relative and
    absolute; summation order differs).  Returns the number of keys compared.
    """
    left = {tuple(r[k] for k in keys): r.asDict() for r in mr_stats.collect()}
    right = {tuple(r[k] for k in keys): r.asDict() for r in df_stats.collect()}
    problems = []
    for key in sorted(set(left) ^ set(right), key=str)[:5]:
        problems.append(f"key {key} only in {'MapReduce' if key in left else 'DataFrame'} result")
    for key in sorted(set(left) & set(right), key=str):
        for name, _ in STAT_COLUMNS:
            if not _close(left[key][name], right[key][name], tol):
                problems.append(
                    f"key {key} {name}: MapReduce {left[key][name]} vs DataFrame {right[key][name]}"
                )
    if problems:
        raise StatsMismatchError(
            f"delay statistics by {keys}: MapReduce and DataFrame results differ ({len(problems)} problems): "
            + "; ".join(problems[:10])
        )
    return len(left)
