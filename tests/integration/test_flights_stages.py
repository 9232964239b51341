"""The flights use case end to end on the real local HDFS, on a sample: its five
sources landed and gated through their specs (schemas/sources: the source factory's
land -> quality gate -> bronze), then silver -> gold -> features -> profile, then a
rerun of every step that must change nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from table_digests import table_digest

from moulin.contracts import load_contract
from moulin.delta import DeltaTableStore
from moulin.ingest import LandingError
from moulin.sources.bronze import gate_landing
from moulin.sources.land import land_source
from moulin.sources.spec import load_spec
from moulin.storage import WarehouseFS
from moulin.usecases.flights import stages as S
from moulin.usecases.flights.sources import flight_drop_path, prepare_sources

pytestmark = pytest.mark.integration

SAMPLE = 300
MONTHS = (1, 9, 11)  # one month in each split
DS = "2013-01-01"
REFERENCE = ("weather", "airlines", "planes", "airports")
DIGESTS = Path(__file__).resolve().parents[1] / "data" / "flights_sample_digests.json"
TABLES = [
    "bronze_flights", "bronze_weather", "bronze_planes", "bronze_airports", "bronze_airlines",
    "silver_flights", "gold_route_delay_stats", "gold_carrier_delay_stats", "gold_hour_delay_stats",
    "flight_features", "table_profiles",
]  # fmt: skip


def _gate(spark, settings, source: str, ds: str, run_ge: bool) -> dict:
    outcome = gate_landing(spark, settings, load_spec(source), ds, run_ge=run_ge)
    return {**outcome.as_dict(), "committed": outcome.bronze_committed}


def _run_all(spark, settings) -> dict:
    out = {"dims": {s: land_source(settings, load_spec(s), DS) for s in REFERENCE}}
    out["ingest"] = {m: land_source(settings, load_spec("flights"), S.month_ds(m)) for m in MONTHS}
    out["bronze_dims"] = {s: _gate(spark, settings, s, DS, run_ge=False) for s in REFERENCE}
    out["bronze"] = {m: _gate(spark, settings, "flights", S.month_ds(m), run_ge=(m == 9)) for m in MONTHS}
    out["silver"] = dict(zip(MONTHS, S.silver_flights(spark, settings, list(MONTHS)), strict=True))
    out["gold"] = dict(zip(MONTHS, S.gold_stats(spark, settings, list(MONTHS)), strict=True))
    out["features"] = S.features(spark, settings, MONTHS[-1])
    out["profile"] = S.profile(spark, settings, MONTHS[-1])
    return out


def test_flights_stages_on_hdfs(spark, hdfs_cluster, hdfs_settings):
    settings = hdfs_settings
    assert settings.warehouse.startswith("hdfs://")
    prepare_sources(settings, MONTHS, sample_per_month=SAMPLE)
    # September's drop arrives with three bad lines (upstream delivery, landed as is).
    sept = flight_drop_path(settings, 9)
    good = sept.read_text().splitlines()[1].split(",")
    bad_delay = [*good[:5], "abc", *good[6:10], "9998", *good[11:]]
    bad_origin = [*good[:9], "UA", "9999", good[11], "BOS", *good[13:]]
    with sept.open("a") as out:
        out.write(",".join(bad_delay) + "\n" + ",".join(bad_origin) + "\n" + "2013,9,1,517\n")

    first = _run_all(spark, settings)
    # ingestion and landings on HDFS
    assert {m: r["status"] for m, r in first["ingest"].items()} == {1: "landed", 9: "landed", 11: "landed"}
    assert first["ingest"][9]["rows"] == SAMPLE + 3
    assert first["dims"]["planes"]["rows"] == 3322
    fs = WarehouseFS(settings)
    manifest = json.loads(fs.read_bytes(settings.table_uri("raw/flights/ds=2013-09-01/_manifest.json")))
    assert manifest["files"][0]["uri"] == first["ingest"][9]["files"][0]["uri"]
    # accounting and quarantine reasons
    for rec in first["bronze"].values():
        assert rec["rows_read"] == rec["rows_bronze"] + rec["rows_quarantined"]
    sept_rec = first["bronze"][9]
    assert (sept_rec["rows_read"], sept_rec["rows_bronze"], sept_rec["rows_quarantined"]) == (
        SAMPLE + 3,
        SAMPLE,
        3,
    )
    assert sept_rec["failures"]["parses:dep_delay"] == 1
    assert sept_rec["failures"]["in_set:origin"] == 1 and sept_rec["failures"]["well_formed_row"] == 1
    weather = first["bronze_dims"]["weather"]
    assert weather["rows_quarantined"] == 1 and weather["failures"] == {"between:wind_speed": 1}
    store = DeltaTableStore(spark)
    quarantine = store.read(settings.table_uri("quarantine/flights"), filters={"ds": "2013-09-01"}).collect()
    reasons = sorted(r["reason"] for r in quarantine)
    assert any("dep_delay='abc' does not parse as double" in r for r in reasons)
    assert any("origin=BOS not in" in r for r in reasons)
    run_record = json.loads(fs.read_bytes(settings.table_uri("quality/runs/flights/ds=2013-09-01.json")))
    assert run_record["rows_quarantined"] == 3 and run_record["ge"]
    # silver, gold, features
    assert sum(r["rows"] for r in first["silver"].values()) == 3 * SAMPLE
    assert first["features"]["rows"] == 3 * SAMPLE - sum(r["cancelled"] for r in first["silver"].values())
    assert set(first["features"]["splits"]) == {"train", "validation", "test"}
    assert all(first["gold"][m]["tables"]["carrier"]["rows"] > 5 for m in MONTHS)
    feats = store.read(settings.table_uri("gold/flight_features"))
    assert feats.columns == load_contract("flight_features").column_names
    profiles = store.read(settings.table_uri("quality/table_profiles"))
    assert {r["table"] for r in profiles.select("table").distinct().collect()} == {
        "silver_flights",
        "flight_features",
    }

    # The tables hold what the chain wrote before it was made faster (one check and one
    # pass for all months, profile correlations as one matrix): digests recorded then.
    digests = {t: table_digest(store, S.table_uri(settings, t)) for t in TABLES}
    if os.environ.get("RECORD_TABLE_DIGESTS"):
        DIGESTS.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
    recorded = json.loads(DIGESTS.read_text())
    changed = sorted(t for t in TABLES if digests[t] != recorded[t])
    assert not changed, f"tables whose content changed: {changed}: {[digests[t] for t in changed]}"

    versions = {t: store.version(S.table_uri(settings, t)) for t in TABLES}
    counts = {t: store.count(S.table_uri(settings, t)) for t in TABLES}

    # a rerun of every stage for the same dates changes nothing
    again = _run_all(spark, settings)
    assert {m: r["status"] for m, r in again["ingest"].items()} == {
        1: "unchanged",
        9: "unchanged",
        11: "unchanged",
    }
    assert {s["status"] for s in again["dims"].values()} == {"unchanged"}
    assert not any(r["committed"] for r in again["bronze"].values())
    assert not any(r["committed"] for r in again["bronze_dims"].values())
    assert not any(r["committed"] for r in again["silver"].values())
    assert not again["features"]["committed"]
    assert {t: store.version(S.table_uri(settings, t)) for t in TABLES} == versions
    assert {t: store.count(S.table_uri(settings, t)) for t in TABLES} == counts

    # a changed drop under a landed name is refused
    with pytest.raises(LandingError, match="refusing to overwrite .*flights_2013_09.csv"):
        with sept.open("a") as out:
            out.write(",".join(good) + "\n")
        land_source(settings, load_spec("flights"), "2013-09-01")

    print("\nlayer rows:", json.dumps({k: first[k] for k in ("bronze", "silver", "features")}, default=str))
