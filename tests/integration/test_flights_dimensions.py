"""Dimensions month after month: planes are extracted incrementally, so most months bring
no new plane; such a month passes with 0 = 0 + 0 and leaves bronze planes as it was."""

from __future__ import annotations

import json
import os

import pytest

from moulin.delta import DeltaTableStore
from moulin.errors import MoulinError
from moulin.settings import load_settings
from moulin.sources.bronze import _rows_holding_batch_keys, gate_landing
from moulin.sources.land import land_source
from moulin.sources.spec import load_spec
from moulin.storage import WarehouseFS
from moulin.usecases.flights.sources import prepare_reference

pytestmark = pytest.mark.integration

REFERENCE = ("weather", "airlines", "planes", "airports")


def _land(settings, ds: str, planes_limit: int) -> dict:
    """The registry holds the first ``planes_limit`` planes; land every reference source for ``ds``."""
    prepare_reference(settings, planes_limit=planes_limit)
    return {s: land_source(settings, load_spec(s), ds) for s in REFERENCE}


def _gate(spark, settings, ds: str) -> dict:
    out = {}
    for source in REFERENCE:
        outcome = gate_landing(spark, settings, load_spec(source), ds, run_ge=False)
        out[source] = {**outcome.as_dict(), "committed": outcome.bronze_committed}
    return out


@pytest.fixture
def own_home(tmp_path, moulin_env):
    return load_settings("local", env={**os.environ, "MOULIN_HOME": str(tmp_path / "home")})


def _planes_record(settings, ds: str) -> dict:
    uri = settings.table_uri(f"quality/runs/planes/ds={ds}.json")
    return json.loads(WarehouseFS(settings).read_bytes(uri))


def test_a_month_without_new_planes_passes_and_changes_nothing(spark, own_home) -> None:
    settings = own_home
    store = DeltaTableStore(spark)
    planes = settings.table_uri("bronze/planes")

    _land(settings, "2013-01-01", planes_limit=20)
    first = _gate(spark, settings, "2013-01-01")["planes"]
    assert (first["rows_read"], first["rows_bronze"], first["rows_quarantined"]) == (20, 20, 0)
    version = store.version(planes)

    landed = _land(settings, "2013-02-01", planes_limit=20)
    assert landed["planes"]["rows"] == 0
    empty = _gate(spark, settings, "2013-02-01")["planes"]
    assert (empty["rows_read"], empty["rows_bronze"], empty["rows_quarantined"]) == (0, 0, 0)
    record = _planes_record(settings, "2013-02-01")
    assert record["rows_manifest"] == record["rows_read"] == 0
    assert store.count(planes) == 20
    assert store.version(planes) in (version, version + 1)  # an empty merge adds no row

    _land(settings, "2013-03-01", planes_limit=30)
    grown = _gate(spark, settings, "2013-03-01")["planes"]
    assert (grown["rows_read"], grown["rows_bronze"], grown["rows_quarantined"]) == (10, 10, 0)
    assert store.count(planes) == 30


def test_merge_accounting_counts_from_the_table_and_can_fail(spark, tmp_path) -> None:
    """The merge's rows are counted from the table it wrote: a lost row, a NULL key that
    never matches, or a duplicated key all show."""
    store = DeltaTableStore(spark)
    uri = (tmp_path / "dims").resolve().as_uri()
    store.write(
        spark.createDataFrame([("a", 1), ("b", 2), ("c", 3)], "k string, v int"), uri, mode="overwrite"
    )
    version = store.version(uri)
    batch = spark.createDataFrame([("a", 9), ("b", 9)], "k string, v int")
    assert _rows_holding_batch_keys(store, uri, version, batch, ["k"]) == 2
    lost = spark.createDataFrame([("a", 9), ("z", 9)], "k string, v int")  # z never reached the table
    assert _rows_holding_batch_keys(store, uri, version, lost, ["k"]) == 1
    null_key = spark.createDataFrame([("a", 9), (None, 9)], "k string, v int")
    assert _rows_holding_batch_keys(store, uri, version, null_key, ["k"]) == 1
    store.write(spark.createDataFrame([("a", 4)], "k string, v int"), uri, mode="append")
    with pytest.raises(MoulinError, match="more than once"):
        _rows_holding_batch_keys(store, uri, store.version(uri), batch, ["k"])


def test_a_backfill_of_an_older_month_leaves_newer_dimensions_as_they_were(spark, own_home) -> None:
    """A rerun of an older date that recomputes (new inputs or a code edit change its key)
    keeps the newer snapshot tables and the newer values of merged rows."""
    settings = own_home
    store = DeltaTableStore(spark)
    weather = settings.table_uri("bronze/weather")
    _land(settings, "2013-01-01", planes_limit=20)
    _land(settings, "2013-03-01", planes_limit=30)
    _gate(spark, settings, "2013-03-01")
    before = {
        name: (store.version(settings.table_uri(name)), store.count(settings.table_uri(name)))
        for name in ("bronze/weather", "bronze/airlines", "bronze/airports", "bronze/planes")
    }
    older = _gate(spark, settings, "2013-01-01")
    assert (
        older["weather"]["rows_read"]
        == older["weather"]["rows_bronze"] + older["weather"]["rows_quarantined"]
    )
    assert not older["weather"]["committed"]
    after = {
        name: (store.version(settings.table_uri(name)), store.count(settings.table_uri(name)))
        for name in before
    }
    for name in ("bronze/weather", "bronze/airlines", "bronze/airports"):
        assert after[name] == before[name], f"{name} was rewritten by the older month"
    # planes merge by key: January's planes not yet in the table are added, none replaced
    assert before["bronze/planes"][1] == 10 and after["bronze/planes"][1] == 30
    (ds,) = {r["ds"] for r in store.read(weather).select("ds").distinct().collect()}
    assert ds == "2013-03-01"


def test_merge_keeps_newer_values_when_an_older_batch_comes_again(spark, tmp_path) -> None:
    store = DeltaTableStore(spark)
    uri = (tmp_path / "dims").resolve().as_uri()
    schema = "k string, v int, ds string"
    store.write(spark.createDataFrame([("a", 2, "2013-03-01")], schema), uri, mode="overwrite")
    store.merge(
        spark.createDataFrame([("a", 1, "2013-01-01"), ("b", 1, "2013-01-01")], schema),
        uri,
        ["k"],
        keep_newer="ds",
    )
    rows = {r["k"]: (r["v"], r["ds"]) for r in store.read(uri).collect()}
    assert rows == {"a": (2, "2013-03-01"), "b": (1, "2013-01-01")}
    store.merge(spark.createDataFrame([("a", 3, "2013-04-01")], schema), uri, ["k"], keep_newer="ds")
    assert {r["k"]: r["v"] for r in store.read(uri).collect()} == {"a": 3, "b": 1}
