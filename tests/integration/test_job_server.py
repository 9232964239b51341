"""The job server: platform stages of many tasks on one long-lived Spark application."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from moulin.errors import DataError
from moulin.jobs.server import process_alive, run_dir, server_name, servers, stop_servers
from moulin.jobs.submit import JobDataError, JobFailed, submit_job
from moulin.settings import load_settings


@pytest.fixture
def private_home(settings, tmp_path, monkeypatch):
    """A private MOULIN_HOME (and so a server of its own), stopped at the end."""
    monkeypatch.setenv("MOULIN_HOME", str(tmp_path))
    job_settings = load_settings("local")
    yield job_settings
    stop_servers(job_settings)


def _server_pid(settings) -> int:
    found = servers(settings)
    assert len(found) == 1, found
    return found[0].pid


def test_stages_share_one_server_and_fail_as_under_spark_submit(private_home, capsys) -> None:
    settings = private_home
    first = submit_job(settings, "ingest_flights_month", ["--date", "2013-02-01", "--sample", "20"])
    pid = _server_pid(settings)
    assert first["rows"] == 20 and first["ds"] == "2013-02-01"
    second = submit_job(settings, "ingest_flights_month", ["--date", "2013-03-01", "--sample", "30"])
    assert second["rows"] == 30 and _server_pid(settings) == pid  # the same application served both

    gated = submit_job(settings, "bronze_flights", ["--date", "2013-02-01", "--no-ge"])
    assert gated["rows_bronze"] + gated["rows_quarantined"] == 20
    assert "MOULIN-PROGRESS" in capsys.readouterr().out  # the stage's progress lines were relayed

    with pytest.raises(JobDataError, match="no source spec 'nowhere'"):
        submit_job(settings, "source_bronze", ["--source", "nowhere", "--ds", "2013-07-01"])
    assert _server_pid(settings) == pid  # a data error leaves the application up

    with pytest.raises(JobFailed, match="nothing landed for source flights") as failed:
        submit_job(settings, "bronze_flights", ["--date", "2013-07-01"])
    assert not isinstance(failed.value, DataError)
    # Any other failure stops the application, so that a retry runs on a fresh one.
    again = submit_job(settings, "ingest_flights_month", ["--date", "2013-04-01", "--sample", "5"])
    assert again["rows"] == 5 and _server_pid(settings) != pid


def test_a_server_stops_when_idle_and_is_named_by_its_configuration(private_home, monkeypatch) -> None:
    monkeypatch.setenv("MOULIN_SPARK_JOB_SERVER_IDLE_S", "2")
    settings = load_settings("local")
    submit_job(settings, "ingest_flights_month", ["--date", "2013-05-01", "--sample", "3"])
    info = servers(settings)[0]
    assert info.name == server_name(settings)
    assert (run_dir(settings) / f"{info.name}.json").stat().st_mode & 0o077 == 0  # token file private
    deadline = time.monotonic() + 30
    while servers(settings) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert servers(settings) == []
    while process_alive(info.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not process_alive(info.pid)
    monkeypatch.setenv("MOULIN_CONTRACTS_DIR", "/elsewhere")
    assert server_name(load_settings("local")) != info.name


def test_cluster_profile_submits_each_job() -> None:
    cluster = load_settings("cluster", env={"MOULIN_WAREHOUSE_URI": "hdfs://nn:8020/moulin"})
    assert cluster.spark.job_server is False
    local = load_settings("local", env={})
    assert local.spark.job_server is True
    assert replace(local, spark=replace(local.spark, job_server=False)).spark.job_server is False
