"""Spark jobs through the Airflow Spark provider: connections from the settings,
the stored connection's precedence, and output relayed while the job runs."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest

from moulin.jobs.connections import (
    SPARK_CONN_ID,
    airflow_connections,
    connection_env,
    spark_connection_spec,
    stored_connection,
)
from moulin.jobs.result_line import RESULT_MARK
from moulin.jobs.submit import spark_submit_command, submit_job
from moulin.settings import load_settings
from moulin.sources.land import land_source
from moulin.sources.spec import load_spec
from moulin.usecases.flights.sources import flight_drop_path, prepare_flight_drops

pytestmark = pytest.mark.integration


def test_connections_come_from_the_settings(settings) -> None:
    spark_settings = replace(settings, spark=replace(settings.spark, master="spark://10.0.0.5:7077"))
    by_id = {c.conn_id: c for c in airflow_connections(spark_settings)}
    spark, webhdfs = by_id["spark_default"], by_id["webhdfs_default"]
    assert (spark.conn_type, spark.host, spark.port) == ("spark", "spark://10.0.0.5:7077", None)
    assert spark.extra_dejson["deploy-mode"] == "client"
    assert (webhdfs.conn_type, webhdfs.host) == ("webhdfs", settings.hdfs.host)
    assert webhdfs.port == settings.hdfs.namenode_http_port and webhdfs.login == settings.hdfs_user
    env = connection_env(settings)
    assert set(env) == {"AIRFLOW_CONN_SPARK_DEFAULT", "AIRFLOW_CONN_WEBHDFS_DEFAULT"}
    assert json.loads(env["AIRFLOW_CONN_SPARK_DEFAULT"])["host"] == settings.spark.master


def test_without_a_stored_connection_the_settings_master_is_used(settings, monkeypatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SPARK_DEFAULT", raising=False)
    assert stored_connection(SPARK_CONN_ID) is None
    cmd = spark_submit_command(settings, "features", ["--ds", "2013-12-01"])
    assert cmd[cmd.index("--master") + 1] == settings.spark.master
    assert cmd[cmd.index("--deploy-mode") + 1] == "client"


def test_submit_job_relays_lines_as_they_come_on_the_stored_connection(
    settings, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("MOULIN_HOME", str(tmp_path))  # a private warehouse for the job
    assert settings.spark.master == "local[2]"
    # An operator changed the master in Airflow: the stored connection wins over the settings.
    stored = replace(spark_connection_spec(settings), host="local[1]")
    monkeypatch.setenv(stored.env_var, stored.to_json())
    settings = replace(settings, spark=replace(settings.spark, job_server=False))
    seen: list[tuple[float, str]] = []
    home = load_settings("local")
    prepare_flight_drops(flight_drop_path(home, 2).parent, [2], 20)
    land_source(home, load_spec("flights"), "2013-02-01")
    result = submit_job(
        settings,
        "source_bronze",
        ["--source", "flights", "--date", "2013-02-01", "--no-ge"],
        on_line=lambda line: seen.append((time.monotonic(), line)),
    )
    ended = time.monotonic()
    assert result["rows_read"] == 20 and result["ds"] == "2013-02-01"
    lines = [line for _, line in seen]
    command = next(line for line in lines if line.startswith("moulin: spark-submit "))
    assert " --master local[1] " in command and " --deploy-mode client " in command
    assert any("connection spark_default from airflow" in line for line in lines)
    assert any(line.startswith(RESULT_MARK) for line in lines)
    # Spark's own output (its JVM's warnings, the job's lines) came while the job ran, not at its end.
    spark_lines = [(t, line) for t, line in seen if not line.startswith(("moulin:", RESULT_MARK))]
    assert spark_lines, lines
    assert ended - spark_lines[0][0] > 1.0, seen
