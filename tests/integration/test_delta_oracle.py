"""Reads checked against an oracle: random tables written through every write path, then
every filtered read compared with a plain filter of all rows (no file skipping).

Hypothesis draws the rows (µs timestamps, NaN and ±inf, nulls, empty and long
unicode strings, ``/ = %`` in partition values, decimals, dates before 1970) and
the sequence of writes (append, overwrite, replaceWhere, MERGE, OPTIMIZE, schema
evolution); a Python model of the table says what it must hold.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import itertools
import math

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from moulin.delta import DeltaStoreError, DeltaTableStore
from moulin.delta.predicates import to_column

pytestmark = pytest.mark.integration

COLUMNS = ["id", "p", "d", "ts", "x", "s", "dec", "flag", "i"]
SCHEMA = "id long, p string, d date, ts timestamp, x double, s string, dec decimal(10,2), flag boolean, i int"
PARTITIONS = ["a", "b/c", "d=e", "f%g", "ü ñ", None]
UTC = dt.UTC

values = {
    "p": st.sampled_from(PARTITIONS),
    "d": st.none() | st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31)),
    "ts": st.none() | st.datetimes(dt.datetime(1950, 1, 1), dt.datetime(2050, 1, 1), timezones=st.just(UTC)),
    "x": st.none() | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([math.nan, 100.5]),
    "s": st.none() | st.text(max_size=40) | st.sampled_from(["", "x" * 40 + "é"]),
    "dec": st.none()
    | st.decimals(min_value=-(10**6), max_value=10**6, places=2, allow_nan=False, allow_infinity=False),
    "flag": st.none() | st.booleans(),
    "i": st.none() | st.integers(-(2**31), 2**31 - 1),
}
row_values = st.fixed_dictionaries(values)
batches = st.lists(row_values, min_size=1, max_size=12)
operation = st.one_of(
    st.tuples(st.just("append"), batches),
    st.tuples(st.just("overwrite"), batches),
    st.tuples(st.just("replace_where"), st.sampled_from([p for p in PARTITIONS if p is not None]), batches),
    st.tuples(st.just("merge"), batches, st.integers(0, 6)),
    st.tuples(st.just("optimize")),
    st.tuples(st.just("evolve"), batches),
)


class Model:
    """What the table must hold: rows by id."""

    def __init__(self) -> None:
        self.rows: dict[int, dict] = {}
        self.ids = itertools.count(1)
        self.columns = list(COLUMNS)

    def fresh(self, drawn: list[dict], **fixed) -> list[dict]:
        out = []
        for values_ in drawn:
            row = {"id": next(self.ids), **values_, **fixed}
            row.update({c: row.get(c) for c in self.columns})
            out.append(row)
        return out


def frame(spark, rows: list[dict], columns: list[str]):
    schema = SCHEMA + (", extra long" if "extra" in columns else "")
    return spark.createDataFrame([tuple(r.get(c) for c in columns) for r in rows], schema)


def apply(spark, store: DeltaTableStore, uri: str, model: Model, op: tuple) -> None:
    kind = op[0]
    if kind == "append":
        rows = model.fresh(op[1])
        store.write(frame(spark, rows, model.columns), uri)
        model.rows.update({r["id"]: r for r in rows})
    elif kind == "overwrite":
        rows = model.fresh(op[1])
        store.write(frame(spark, rows, model.columns), uri, mode="overwrite")
        model.rows = {r["id"]: r for r in rows}
    elif kind == "replace_where":
        part = op[1]
        rows = model.fresh(op[2], p=part)
        store.write(frame(spark, rows, model.columns), uri, mode="overwrite", replace_where={"p": part})
        model.rows = {k: r for k, r in model.rows.items() if r["p"] != part}
        model.rows.update({r["id"]: r for r in rows})
    elif kind == "merge":
        rows = model.fresh(op[1])
        existing = sorted(model.rows)[: op[2]]
        for row, old_id in zip(rows, existing, strict=False):  # some rows update existing ids
            row["id"] = old_id
        store.merge(frame(spark, rows, model.columns), uri, keys=["id"])
        model.rows.update({r["id"]: r for r in rows})
    elif kind == "optimize":
        store.optimize(uri)
    elif kind == "evolve":
        if "extra" not in model.columns:
            model.columns.append("extra")
            for r in model.rows.values():
                r["extra"] = None
        rows = model.fresh(op[1])
        for n, r in enumerate(rows):
            r["extra"] = n
        store.write(frame(spark, rows, model.columns), uri, schema_mode="merge")
        model.rows.update({r["id"]: r for r in rows})


def targets(model: Model, column: str) -> list:
    present = [r[column] for r in model.rows.values() if r.get(column) is not None]
    present = [v for v in present if not (isinstance(v, float) and math.isnan(v))]
    out = []
    if present:
        out += [min(present), max(present)]
    if column == "x":
        out += [math.nan, math.inf, 100.0]
    return out


def check_reads(spark, store: DeltaTableStore, uri: str, model: Model) -> list[str]:
    """Every filtered read against the plain filter of all rows: the differences."""
    everything = store.read(uri)
    rows = everything.collect()
    assert sorted(r.id for r in rows) == sorted(model.rows)
    for column in ("p", "s", "d", "i", "flag", "dec"):  # values round-trip (partition values too)
        assert {r.id: r[column] for r in rows} == {k: v.get(column) for k, v in model.rows.items()}, column
    # The oracle: the same rows in memory (no Parquet, no statistics), filtered by Spark.
    # Not cached: Spark's cached-batch pruning drops NaN from `x > v` as Parquet's does.
    plain = spark.createDataFrame(rows, everything.schema)
    preds = []
    for column in model.columns:
        if column == "id":
            continue
        preds += [(column, "is null", None), (column, "is not null", None)]
        for value in targets(model, column):
            if column == "flag":
                preds.append((column, "=", value))
                continue
            preds += [(column, "=", value), (column, "<", value), (column, ">=", value), (column, ">", value)]
            preds.append((column, "in", [value]))
    # Every predicate's count in one Spark job on each side (a job per predicate took minutes).
    want = plain.select(
        [F.sum(F.when(to_column(pred), 1).otherwise(0)).alias(f"c{n}") for n, pred in enumerate(preds)]
    ).first()
    diffs, counted, refused = [], [], set()
    for n, pred in enumerate(preds):
        try:
            read = store.read(uri, filters=[pred])
        except DeltaStoreError as exc:
            diffs.append(f"{pred}: {exc}")
            refused.add(n)
            continue
        counted.append(read.select(F.lit(n).alias("n"), F.lit(1).alias("one")))
    got: dict[int, int] = {}
    if counted:
        union = functools.reduce(lambda a, b: a.unionAll(b), counted)
        got = {r.n: r.rows for r in union.groupBy("n").agg(F.count("one").alias("rows")).collect()}
    for n, pred in enumerate(preds):
        if n in refused:
            continue
        if got.get(n, 0) != (want[n] or 0):
            diffs.append(f"{pred}: filtered read {got.get(n, 0)} rows, plain filter {want[n] or 0}")
    return diffs


@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking Spark writes takes minutes
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
@given(first=batches, ops=st.lists(operation, min_size=1, max_size=3))
def test_filtered_reads_match_a_plain_filter(spark, tmp_path_factory, first, ops) -> None:
    uri = tmp_path_factory.mktemp("oracle").resolve().as_uri() + "/t"
    store = DeltaTableStore(spark)
    model = Model()
    rows = model.fresh(first)
    store.write(frame(spark, rows, model.columns), uri, partition_by=["p"])
    model.rows = {r["id"]: r for r in rows}
    for op in ops:
        apply(spark, store, uri, model, op)
    assert check_reads(spark, store, uri, model) == []


def test_microsecond_timestamp_found_after_optimize_and_merge(spark, local_dir) -> None:
    """deltalake writes millisecond-truncated maxima: skipping must widen them."""
    uri = f"{local_dir}/ts"
    store = DeltaTableStore(spark)
    ts = dt.datetime(2013, 1, 1, 5, 0, 0, 123456, tzinfo=UTC)
    df = spark.createDataFrame([(1, ts), (2, ts - dt.timedelta(hours=1))], "id long, ts timestamp")
    store.write(df, uri)
    store.write(spark.createDataFrame([(3, ts - dt.timedelta(days=1))], "id long, ts timestamp"), uri)
    assert store.read(uri, filters=[("ts", "=", ts)]).count() == 1
    store.optimize(uri)
    assert store.read(uri, filters=[("ts", "=", ts)]).count() == 1
    assert store.read(uri, filters=[("ts", ">=", ts)]).count() == 1
    store.merge(spark.createDataFrame([(2, ts)], "id long, ts timestamp"), uri, keys=["id"])
    assert store.read(uri, filters=[("ts", "=", ts)]).count() == 2


def test_nan_found_after_optimize_and_merge(spark, local_dir) -> None:
    """Parquet maxima leave NaN out (deltalake rewrites files on MERGE), Spark orders NaN
    above every number."""
    uri = f"{local_dir}/nan"
    store = DeltaTableStore(spark)
    store.write(spark.createDataFrame([(1, math.nan), (2, 5.0)], "id long, x double").coalesce(1), uri)
    store.write(spark.createDataFrame([(3, 1.0)], "id long, x double"), uri)
    store.optimize(uri)
    assert store.read(uri, filters=[("x", ">", 100)]).count() == 1
    assert store.read(uri, filters=[("x", "=", math.nan)]).count() == 1
    store.merge(spark.createDataFrame([(2, 6.0)], "id long, x double"), uri, keys=["id"])
    assert store.read(uri, filters=[("x", ">", 100)]).count() == 1
    assert store.read(uri, filters=[("x", "=", math.nan)]).count() == 1


def test_decimal_and_pre_1970_dates_skip_correctly(spark, local_dir) -> None:
    uri = f"{local_dir}/dec"
    store = DeltaTableStore(spark)
    rows = [
        (1, decimal.Decimal("-5.25"), dt.date(1901, 3, 4)),
        (2, decimal.Decimal("7.10"), dt.date(1969, 12, 31)),
    ]
    store.write(spark.createDataFrame(rows, "id long, dec decimal(10,2), d date"), uri)
    store.optimize(uri)
    assert store.read(uri, filters=[("d", "<", dt.date(1950, 1, 1))]).count() == 1
    assert store.read(uri, filters=[("dec", "=", decimal.Decimal("7.10"))]).count() == 1


def test_strings_beyond_the_bmp_are_found(spark, local_dir) -> None:
    """Escaped surrogate pairs in statistics are decoded wrongly by deltalake 1.6."""
    uri = f"{local_dir}/astral"
    store = DeltaTableStore(spark)
    value = "\U00055613\U0006aa7c"
    store.write(spark.createDataFrame([(1, value), (2, "abc")], "id long, s string").coalesce(1), uri)
    assert store.read(uri, filters=[("s", "=", value)]).count() == 1
    store.optimize(uri)
    assert store.read(uri, filters=[("s", "=", value)]).count() == 1
