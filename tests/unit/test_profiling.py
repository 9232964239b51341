"""Profiles in long format."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from moulin.profiling import PROFILE_SCHEMA, profile_dataframe


def test_profile_metrics(spark):
    df = spark.createDataFrame(
        [(1, 2.0, "a", dt.date(2013, 1, 1)), (2, 4.0, "a", None), (3, 6.0, "b", None), (4, None, None, None)],
        "n int, x double, s string, d date",
    )
    prof = profile_dataframe(df, "t", bins=2, top=1)
    assert prof.schema == PROFILE_SCHEMA
    rows = {(r["column"], r["metric"], r["detail_key"]): r for r in prof.collect()}
    assert rows[("*", "rows", "")]["value"] == 4
    assert rows[("x", "count", "")]["value"] == 3 and rows[("x", "missing", "")]["value"] == 1
    assert rows[("x", "missing_share", "")]["value"] == 0.25
    assert rows[("x", "mean", "")]["value"] == 4.0 and rows[("x", "std", "")]["value"] == 2.0
    assert rows[("x", "min", "")]["value"] == 2.0 and rows[("x", "max", "")]["value"] == 6.0
    assert rows[("x", "quantile", "0.5")]["value"] == 4.0
    assert json.loads(rows[("x", "histogram", "")]["detail"]) == {"edges": [2.0, 4.0, 6.0], "counts": [1, 2]}
    assert rows[("n", "distinct_approx", "")]["value"] == 4
    assert rows[("n", "corr", "x")]["value"] == pytest.approx(1.0)
    assert json.loads(rows[("s", "top_values", "")]["detail"]) == [{"value": "a", "count": 2}]
    assert json.loads(rows[("s", "max", "")]["detail"]) == "b" and rows[("s", "max", "")]["value"] is None
    assert json.loads(rows[("d", "min", "")]["detail"]) == "2013-01-01"
    assert rows[("d", "missing", "")]["value"] == 3
    keys = [(r["column"], r["metric"], r["detail_key"]) for r in prof.collect()]
    assert len(keys) == len(set(keys))


def test_constant_column_has_null_correlation(spark):
    df = spark.createDataFrame([(1, 2013), (2, 2013)], "a int, year int")
    rows = {(r["column"], r["metric"], r["detail_key"]): r for r in profile_dataframe(df, "t").collect()}
    assert rows[("a", "corr", "year")]["value"] is None
    assert json.loads(rows[("year", "histogram", "")]["detail"])["counts"] == [2]


def test_constant_column_among_many_rows_has_null_correlation(spark):
    # Many equal values leave a rounding-noise deviation (about 1e-13), not zero.
    df = spark.range(5000).selectExpr("cast(id % 12 as int) as month", "2013 as year")
    rows = {(r["column"], r["metric"], r["detail_key"]): r for r in profile_dataframe(df, "t").collect()}
    assert rows[("month", "corr", "year")]["value"] is None


def test_correlation_matrix_matches_spark_corr_on_pairwise_complete_rows(spark):
    import random

    from pyspark.sql import functions as F

    from moulin.profiling import correlation_matrix

    rng = random.Random(7)
    rows = []
    for _ in range(3000):
        base = rng.gauss(0, 1)
        rows.append(
            (
                None if rng.random() < 0.1 else 2013.0 + base,  # large mean: precision of the shifted sums
                None if rng.random() < 0.2 else 1e6 + 50 * base + rng.gauss(0, 30),
                None if rng.random() < 0.05 else rng.randint(-5, 5),
                7,  # constant: no correlation
            )
        )
    df = spark.createDataFrame(rows, "a double, b double, c int, k int").repartition(3)
    columns = ["a", "b", "c", "k"]
    means = [df.agg(F.avg(c)).first()[0] for c in columns]
    ours = correlation_matrix(df, columns, means)
    for (x, y), value in ours.items():
        if "k" in (x, y):
            assert value is None
            continue
        expected = df.filter(F.col(x).isNotNull() & F.col(y).isNotNull()).agg(F.corr(x, y)).first()[0]
        assert value == pytest.approx(expected, rel=1e-9, abs=1e-12), (x, y)
    assert correlation_matrix(df.limit(0), columns, means) == {p: None for p in ours}
