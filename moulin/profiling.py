"""Descriptive statistics of a DataFrame as a long-format DataFrame (one Delta table for all tables).

Shape of :func:`profile_dataframe`'s result, one row per (table, column, metric, detail_key):

=============  ========  ==========================================================
column         type      meaning
=============  ========  ==========================================================
table          string    name of the profiled table
column         string    profiled column (``*`` for table-level metrics)
metric         string    see below
detail_key     string    distinguishes rows of one metric ("" when there is one):
                         quantile level (``"0.25"``) or the other column of ``corr``
value          double    the metric's number (null when it is not a number)
detail         string    JSON: min/max of non-numeric columns, histogram, top values
=============  ========  ==========================================================

Metrics: table ``*``: ``rows``.  Every column: ``count`` (non-null), ``missing``,
``missing_share``, ``distinct_approx`` (HyperLogLog, 5 % rsd).  Numeric columns:
``min``, ``max``, ``mean``, ``std`` (sample), ``quantile`` (detail_key = level;
approximate), ``histogram`` (value = number of bins; detail =
``{"edges": [...], "counts": [...]}``, equal-width bins over [min, max]),
``corr`` (Pearson with each later numeric column; detail_key = other column).
String, date, timestamp and boolean columns: ``min``/``max`` as JSON strings in
``detail`` (value null), ``top_values`` (value = number listed; detail =
``[{"value": "...", "count": n}, ...]``, most frequent first).
"""

from __future__ import annotations

import json
from typing import Any

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
NUMERIC = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType)

PROFILE_SCHEMA = T.StructType(
    [
        T.StructField("table", T.StringType(), False),
        T.StructField("column", T.StringType(), False),
        T.StructField("metric", T.StringType(), False),
        T.StructField("detail_key", T.StringType(), False),
        T.StructField("value", T.DoubleType(), True),
        T.StructField("detail", T.StringType(), True),
    ]
)


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _profiled_columns(df: DataFrame) -> tuple[list[str], list[str]]:
    numeric, other = [], []
    for f in df.schema.fields:
        if isinstance(f.dataType, NUMERIC):
            numeric.append(f.name)
        elif isinstance(f.dataType, T.StringType | T.DateType | T.TimestampType | T.BooleanType):
            other.append(f.name)
    return numeric, other


def _histograms(df: DataFrame, bounds: dict[str, tuple[float, float]], bins: int) -> dict[str, dict]:
    """Equal-width histograms of several numeric columns in ONE job."""
    if not bounds:
        return {}
    pairs = []
    for c, (lo, hi) in bounds.items():
        width = (hi - lo) / bins if hi > lo else 1.0
        bucket = F.least(F.floor((F.col(c).cast("double") - F.lit(lo)) / F.lit(width)), F.lit(bins - 1))
        pairs.append(
            F.struct(F.lit(c).alias("c"), F.when(F.col(c).isNotNull(), bucket.cast("int")).alias("b"))
        )
    exploded = (
        df.select(F.explode(F.array(*pairs)).alias("p")).select("p.c", "p.b").filter(F.col("b").isNotNull())
    )
    out: dict[str, dict] = {}
    for c, (lo, hi) in bounds.items():
        n = bins if hi > lo else 1
        width = (hi - lo) / n
        out[c] = {"edges": [lo + i * width for i in range(n)] + [hi], "counts": [0] * n}
    for r in exploded.groupBy("c", "b").count().collect():
        out[r["c"]]["counts"][min(r["b"], len(out[r["c"]]["counts"]) - 1)] += int(r["count"])
    return out


def _top_values(df: DataFrame, columns: list[str], top: int) -> dict[str, list[dict]]:
    """Most frequent values of several columns in ONE job (ties by value)."""
    if not columns:
        return {}
    pairs = [F.struct(F.lit(c).alias("c"), F.col(c).cast("string").alias("v")) for c in columns]
    counts = (
        df.select(F.explode(F.array(*pairs)).alias("p"))
        .select("p.c", "p.v")
        .filter(F.col("v").isNotNull())
        .groupBy("c", "v")
        .count()
    )
    rank = F.row_number().over(Window.partitionBy("c").orderBy(F.desc("count"), F.asc("v")))
    rows = counts.withColumn("r", rank).filter(F.col("r") <= top).orderBy("c", "r").collect()
    out: dict[str, list[dict]] = {c: [] for c in columns}
    for r in rows:
        out[r["c"]].append({"value": r["v"], "count": int(r["count"])})
    return out


def profile_dataframe(
    df: DataFrame,
    table: str,
    bins: int = 10,
    top: int = 5,
    correlations: bool = True,
) -> DataFrame:
    """Profile ``df`` into the long format described in the module docstring.

    ``df`` is cached while it is profiled.  One aggregation pass gives counts,
    distinct estimates, min/max/mean/std and quantiles; the correlation matrix
    (:func:`correlation_matrix`) one more; histograms one more, top values
    one more.  Rows come out in a stable order.
    """
    numeric, other = _profiled_columns(df)
    df = df.persist()
    try:
        return _profile(df, table, numeric, other, bins, top, correlations)
    finally:
        df.unpersist()


def _profile(df, table, numeric, other, bins, top, correlations) -> DataFrame:
    aggs = [F.count(F.lit(1)).alias("__rows")]
    for c in [*numeric, *other]:
        aggs += [F.count(F.col(c)).alias(f"{c}__count"), F.approx_count_distinct(c).alias(f"{c}__distinct")]
        aggs += [F.min(c).alias(f"{c}__min"), F.max(c).alias(f"{c}__max")]
    for c in numeric:
        x = F.col(c).cast("double")
        aggs += [F.avg(x).alias(f"{c}__mean"), F.stddev_samp(x).alias(f"{c}__std")]
        aggs.append(F.percentile_approx(x, list(QUANTILES), 10000).alias(f"{c}__q"))
    pairs = [(a, b) for i, a in enumerate(numeric) for b in numeric[i + 1 :]] if correlations else []
    stats = df.agg(*aggs).first().asDict()
    rows_total = int(stats["__rows"])
    means = [_num(stats[f"{c}__mean"]) or 0.0 for c in numeric]
    corr = correlation_matrix(df, numeric, means) if pairs else {}
    bounds = {
        c: (float(stats[f"{c}__min"]), float(stats[f"{c}__max"]))
        for c in numeric
        if stats[f"{c}__min"] is not None
    }
    hists = _histograms(df, bounds, bins)
    tops = _top_values(df, other, top)
    out: list[tuple] = [(table, "*", "rows", "", float(rows_total), None)]
    for c in [*numeric, *other]:
        count = int(stats[f"{c}__count"])
        missing = rows_total - count
        out += [
            (table, c, "count", "", float(count), None),
            (table, c, "missing", "", float(missing), None),
            (table, c, "missing_share", "", missing / rows_total if rows_total else None, None),
            (table, c, "distinct_approx", "", float(stats[f"{c}__distinct"]), None),
        ]
        lo, hi = stats[f"{c}__min"], stats[f"{c}__max"]
        if c in numeric:
            out += [
                (table, c, "min", "", _num(lo), None),
                (table, c, "max", "", _num(hi), None),
                (table, c, "mean", "", _num(stats[f"{c}__mean"]), None),
                (table, c, "std", "", _num(stats[f"{c}__std"]), None),
            ]
            for level, q in zip(QUANTILES, stats[f"{c}__q"] or [None] * len(QUANTILES), strict=True):
                out.append((table, c, "quantile", str(level), _num(q), None))
            if c in hists:
                hist = hists[c]
                out.append((table, c, "histogram", "", float(len(hist["counts"])), json.dumps(hist)))
        else:
            out += [
                (table, c, "min", "", None, json.dumps(None if lo is None else str(lo))),
                (table, c, "max", "", None, json.dumps(None if hi is None else str(hi))),
            ]
            values = tops[c]
            out.append((table, c, "top_values", "", float(len(values)), json.dumps(values)))
    for a, b in pairs:
        out.append((table, a, "corr", b, corr[(a, b)], None))
    return df.sparkSession.createDataFrame(out, PROFILE_SCHEMA)


def _comoments(batches, k: int, shift: list[float]):
    """Per Arrow batch: the pairwise-complete sums of every pair of the k columns (see correlation_matrix)."""
    import numpy as np
    import pyarrow as pa

    total = np.zeros((6, k, k))  # n, sum x, sum x², sum xy, min, max
    total[4], total[5] = np.inf, -np.inf
    for batch in batches:
        if batch.num_rows == 0:
            continue
        # Nulls come out of to_numpy as NaN; is_valid tells them from a real NaN value.
        present = np.stack([batch.column(i).is_valid().to_numpy(zero_copy_only=False) for i in range(k)], 1)
        raw = np.stack([batch.column(i).to_numpy(zero_copy_only=False) for i in range(k)], 1).astype(
            "float64"
        )
        m = present.astype("float64")
        x = np.where(present, raw - np.asarray(shift), 0.0)
        total[0] += m.T @ m  # rows where both columns are present
        total[1] += x.T @ m  # [i, j]: sum of x_i over the rows where x_j is present too
        total[2] += (x * x).T @ m  # sum of x_i squared, likewise
        total[3] += x.T @ x  # sum of x_i * x_j
        for j in range(k):  # [i, j]: min and max of x_i where x_j is present too
            both = present & present[:, [j]]
            total[4][:, j] = np.fmin(total[4][:, j], np.where(both, raw, np.inf).min(axis=0))
            total[5][:, j] = np.fmax(total[5][:, j], np.where(both, raw, -np.inf).max(axis=0))
    yield pa.RecordBatch.from_arrays([pa.array([total.tobytes()], pa.binary())], ["m"])


def correlation_matrix(
    df: DataFrame, columns: list[str], shift: list[float]
) -> dict[tuple[str, str], float | None]:
    """Pearson correlation of every pair of ``columns`` over the rows where both are present.

    One pass (``mapInArrow``): every partition sums, for all pairs at once with
    matrix products, the counts, sums, sums of squares and cross products of
    the values minus ``shift`` (the columns' means: shifting keeps the sums
    small, so the differences below lose no precision), and the min and max of
    each column where the other is present.  A pair gets None when a column is
    constant on their common rows (Spark's ``corr`` would divide by zero, or
    return rounding noise) or they share no row; otherwise
    ``covar_pop / (stddev_pop * stddev_pop)`` as Spark's ``corr``.
    """
    import numpy as np

    k = len(columns)
    selected = df.select(*[F.col(c).cast("double").alias(f"c{i}") for i, c in enumerate(columns)])
    schema = T.StructType([T.StructField("m", T.BinaryType())])
    parts = selected.mapInArrow(lambda batches: _comoments(batches, k, shift), schema).collect()
    total = np.zeros((6, k, k))
    total[4], total[5] = np.inf, -np.inf
    for row in parts:
        part = np.frombuffer(row["m"], dtype="float64").reshape(6, k, k)
        total[:4] += part[:4]
        total[4], total[5] = np.fmin(total[4], part[4]), np.fmax(total[5], part[5])
    n, sx, sxx, sxy, lo, hi = total
    out: dict[tuple[str, str], float | None] = {}
    for i in range(k):
        for j in range(i + 1, k):
            rows = n[i, j]
            constant = lo[i, j] == hi[i, j] or lo[j, i] == hi[j, i]
            if rows == 0 or constant:
                out[(columns[i], columns[j])] = None
                continue
            mean_i, mean_j = sx[i, j] / rows, sx[j, i] / rows
            cov = sxy[i, j] / rows - mean_i * mean_j
            var_i, var_j = sxx[i, j] / rows - mean_i**2, sxx[j, i] / rows - mean_j**2
            denominator = np.sqrt(var_i) * np.sqrt(var_j) if var_i > 0 and var_j > 0 else 0.0
            out[(columns[i], columns[j])] = float(cov / denominator) if denominator else None
    return out
