"""The main job end to end through real Airflow (`airflow dags test`) on the real
local HDFS, on a sample: one flights drop per split (January: train, September:
validation, November: test), the reference data, then the use case."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from moulin.delta import DeltaTableStore
from moulin.orchestration import airflow_command
from moulin.storage import WarehouseFS
from moulin.usecases.flights.summary import read_run_summary

pytestmark = pytest.mark.integration

MONTHS = "1,9,11"
SAMPLE = 150


@pytest.fixture(scope="module")
def e2e_settings(hdfs_settings):
    """The test HDFS with a warehouse of its own (the stage tests land other samples)."""
    return replace(hdfs_settings, warehouse_uri=f"{hdfs_settings.hdfs.namenode_uri}/moulin-e2e")


@pytest.fixture(scope="module")
def chain_run(hdfs_cluster, e2e_settings) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("moulin")
    env = dict(os.environ)
    env["MOULIN_WAREHOUSE_URI"] = e2e_settings.warehouse_uri
    cmd = [str(exe), "flights", "run", "--profile", "hdfs-local", "--sample", str(SAMPLE),
           "--months", MONTHS, "--epochs", "1"]  # fmt: skip
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1500)


def test_chain_completes_with_progress_per_stage(chain_run) -> None:
    assert chain_run.returncode == 0, chain_run.stdout[-3000:] + chain_run.stderr[-3000:]
    out = chain_run.stdout
    for stage in ("land flights", "bronze flights", "land dimensions", "bronze dimensions", "silver",
                  "gold stats", "features", "profile", "train", "report"):  # fmt: skip
        assert f"  {stage} " in out, f"no progress line for {stage}"
    assert "report:" in out and "leaderboard:" in out and "data docs:   flights " in out
    assert "data docs:   silver_flights " in out and "data docs:   flight_features " in out


def test_row_accounting_and_quarantine_reasons(chain_run, e2e_settings, spark) -> None:
    assert chain_run.returncode == 0
    fs = WarehouseFS(e2e_settings)
    store = DeltaTableStore(spark)
    for ds in ("2013-01-01", "2013-09-01", "2013-11-01"):
        record = json.loads(
            fs.read_bytes(e2e_settings.table_uri("quality", "runs", "flights", f"ds={ds}.json"))
        )
        assert record["rows_read"] == SAMPLE
        assert record["rows_read"] == record["rows_bronze"] + record["rows_quarantined"]
    bronze = store.read(e2e_settings.table_uri("bronze", "flights"))
    assert bronze.count() == 3 * SAMPLE
    # The weather file holds one real impossible reading (1,048 mph wind): quarantined with its reason.
    weather_q = store.to_pandas(e2e_settings.table_uri("quarantine", "weather"))
    assert len(weather_q) >= 1
    reasons = " ".join(str(v) for v in weather_q.astype(str).to_numpy().ravel())
    assert "wind_speed" in reasons
    weather = json.loads(
        fs.read_bytes(e2e_settings.table_uri("quality", "runs", "weather", "ds=2013-11-01.json"))
    )
    assert weather["rows_read"] == weather["rows_bronze"] + weather["rows_quarantined"] == 26115


def test_features_leaderboard_report_and_versions(chain_run, e2e_settings) -> None:
    assert chain_run.returncode == 0
    summary = read_run_summary(e2e_settings)
    tables = summary["tables"]
    features = tables["gold/flight_features"]
    assert summary["features_version"] == features["version"]
    assert 0 < features["rows"] <= 3 * SAMPLE
    store = DeltaTableStore(None)
    board = store.to_pandas(e2e_settings.table_uri("gold", "model_leaderboard"))
    run_rows = board[board["run_id"].astype(str).str.contains("manual__")]
    assert set(run_rows["model"]) >= {"mlp", "logreg", "hist_gbt"}
    assert (run_rows["features_version"] == features["version"]).all()
    html = WarehouseFS(e2e_settings).read_bytes(summary["report_uri"]).decode()
    assert summary["report_uri"].startswith("hdfs://")
    assert "Will a flight leave New York 15 minutes late" in html
    assert "http://" not in html and "https://" not in html


def test_rerun_of_a_logical_date_changes_no_table(chain_run, e2e_settings) -> None:
    assert chain_run.returncode == 0
    store = DeltaTableStore(None)
    names = ("bronze/flights", "quarantine/flights", "bronze/weather")
    before = {n: store.version(e2e_settings.table_uri(n)) for n in names}
    rows_before = {n: store.count(e2e_settings.table_uri(n)) for n in names}
    conf = json.dumps({"sample_per_month": SAMPLE})
    airflow_command(e2e_settings, "dags", "test", "flights_ingest", "2013-09-01", "-c", conf)
    airflow_command(e2e_settings, "dags", "test", "dimensions_ingest", "2013-11-01")
    assert {n: store.version(e2e_settings.table_uri(n)) for n in names} == before
    assert {n: store.count(e2e_settings.table_uri(n)) for n in names} == rows_before
