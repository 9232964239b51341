"""Gold delay statistics as an explicit MapReduce on the RDD API.

The RDD pipeline spells out each MapReduce phase:

1. **map**: each flight -> ``(key, (1, cancelled, departed, delayed_15, delay, delay², max delay))``;
2. **combine**: ``mapPartitions`` folds each partition into one partial value per key
   (a map-side combiner, so only one record per key and partition is shuffled);
3. **shuffle**: ``partitionBy`` hash-partitions the partial values by key;
4. **reduce**: ``mapPartitions`` merges the partials of each key and derives the statistics.

:func:`delay_stats_df` computes the same with ``groupBy().agg()`` and
:func:`compare_stats` raises :class:`StatsMismatchError` if the two differ: the
tests cross-check the MapReduce with them; the gold stage computes it once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

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

Partial = tuple[int, int, int, int, float, float, float | None]


class StatsMismatchError(MoulinError):
    """The RDD MapReduce and the DataFrame aggregation disagree."""


def _map(row, keys: list[str]) -> tuple[tuple, Partial]:
    """Mapper: one flight -> (key, partial value)."""
    cancelled = bool(row["cancelled"])
    delay = row["dep_delay"]
    departed = not cancelled and delay is not None
    d = float(delay) if departed else 0.0
    delayed = 1 if departed and d >= 15 else 0
    return (
        tuple(row[k] for k in keys),
        (1, int(cancelled), int(departed), delayed, d, d * d, d if departed else None),
    )


def _merge(a: Partial, b: Partial) -> Partial:
    if a[6] is None:
        mx = b[6]
    elif b[6] is None:
        mx = a[6]
    else:
        mx = max(a[6], b[6])
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], a[4] + b[4], a[5] + b[5], mx)


def _combine(pairs: Iterable[tuple[tuple, Partial]]) -> Iterator[tuple[tuple, Partial]]:
    """Map-side combiner: one partial value per key and partition."""
    acc: dict[tuple, Partial] = {}
    for key, value in pairs:
        acc[key] = _merge(acc[key], value) if key in acc else value
    return iter(acc.items())


def _finish(key: tuple, p: Partial) -> tuple:
    n, cancelled, departed, delayed, s, ss, mx = p
    mean = s / departed if departed else None
    std = math.sqrt(max(ss / departed - mean * mean, 0.0)) if departed else None
    rate = delayed / departed if departed else None
    return (*key, n, cancelled, departed, delayed, rate, s, mean, std, mx)


def _reduce(pairs: Iterable[tuple[tuple, Partial]]) -> Iterator[tuple]:
    """Reducer: merge the shuffled partials of each key, then derive the statistics."""
    for key, value in _combine(pairs):
        yield _finish(key, value)


def _schema(silver: DataFrame, keys: list[str]) -> T.StructType:
    key_fields = [T.StructField(k, silver.schema[k].dataType, False) for k in keys]
    return T.StructType(key_fields + [T.StructField(n, t, True) for n, t in STAT_COLUMNS])


def delay_stats_rdd(silver: DataFrame, keys: list[str], num_partitions: int | None = None) -> DataFrame:
    """Delay statistics per ``keys`` computed with an explicit RDD MapReduce (see module doc)."""
    spark = silver.sparkSession
    parts = num_partitions or int(spark.conf.get("spark.sql.shuffle.partitions"))
    key_names = list(keys)
    rows = silver.select(*key_names, "cancelled", "dep_delay").rdd
    mapped = rows.map(lambda r: _map(r, key_names))
    combined = mapped.mapPartitions(_combine)
    shuffled = combined.partitionBy(parts)
    reduced = shuffled.mapPartitions(_reduce)
    return spark.createDataFrame(reduced, _schema(silver, key_names))


def delay_stats_df(silver: DataFrame, keys: list[str]) -> DataFrame:
    """The same statistics as :func:`delay_stats_rdd`, with a DataFrame aggregation."""
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


def compare_stats(rdd_stats: DataFrame, df_stats: DataFrame, keys: list[str], tol: float = 1e-9) -> int:
    """Raise StatsMismatchError unless both statistics tables hold the same keys and values.

    Counts must be equal; floating values equal within ``tol`` (relative and
    absolute; summation order differs).  Returns the number of keys compared.
    """
    left = {tuple(r[k] for k in keys): r.asDict() for r in rdd_stats.collect()}
    right = {tuple(r[k] for k in keys): r.asDict() for r in df_stats.collect()}
    problems = []
    for key in sorted(set(left) ^ set(right), key=str)[:5]:
        problems.append(f"key {key} only in {'RDD' if key in left else 'DataFrame'} result")
    for key in sorted(set(left) & set(right), key=str):
        for name, _ in STAT_COLUMNS:
            if not _close(left[key][name], right[key][name], tol):
                problems.append(f"key {key} {name}: RDD {left[key][name]} vs DataFrame {right[key][name]}")
    if problems:
        raise StatsMismatchError(
            f"delay statistics by {keys}: MapReduce and DataFrame results differ ({len(problems)} problems): "
            + "; ".join(problems[:10])
        )
    return len(left)
