"""The platform's pure parts: secrets, the services' environment, alerts, HDFS health
limits, the flights params of scheduled runs, asset events."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.sdk import Asset

from moulin.errors import MoulinError
from moulin.ops.alerts import Alert
from moulin.ops.hdfs_health import HdfsHealth
from moulin.platform import airflow_services, secrets
from moulin.settings import Settings, load_settings
from moulin.usecases.flights.params import FlightsParams
from moulin.usecases.flights.tasks import triggering_months


@pytest.fixture
def home_settings(tmp_path: Path) -> Settings:
    return replace(load_settings("hdfs-local", env={}), home=tmp_path)


def test_secrets_are_generated_once_with_mode_600(home_settings) -> None:
    value, created = secrets.ensure_secret(home_settings, secrets.JWT_SECRET)
    again, created_again = secrets.ensure_secret(home_settings, secrets.JWT_SECRET)
    path = secrets.JWT_SECRET.path(home_settings)
    assert created and not created_again and value == again and len(value) >= 48
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text() == value  # no newline: Airflow's *_CMD reads it whole


def test_a_secret_readable_by_others_is_refused(home_settings) -> None:
    secrets.ensure_secret(home_settings, secrets.ADMIN_PASSWORD)
    path = secrets.ADMIN_PASSWORD.path(home_settings)
    os.chmod(path, 0o644)
    with pytest.raises(secrets.SecretError, match="chmod 600"):
        secrets.read_secret(home_settings, secrets.ADMIN_PASSWORD)


def test_missing_secret_names_the_file_and_the_command(home_settings) -> None:
    with pytest.raises(secrets.SecretError, match="moulin platform up"):
        secrets.read_secret(home_settings, secrets.FERNET_KEY)


def test_services_env_holds_no_secret_value(home_settings) -> None:
    password = airflow_services.prepare_secrets(home_settings)
    assert password  # generated now: printed once by `platform up`
    assert airflow_services.prepare_secrets(home_settings) is None
    env = airflow_services.service_env(home_settings)
    values = " ".join(env.values())
    for secret in secrets.ALL:
        assert secrets.read_secret(home_settings, secret) not in values
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in env  # only its *_CMD
    assert env["AIRFLOW__API_AUTH__JWT_SECRET_CMD"].startswith("cat ")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == home_settings.platform.api_url + "/execution/"
    assert oct(airflow_services.passwords_file(home_settings).stat().st_mode & 0o777) == "0o600"


def test_hdfs_health_problems_follow_the_limits(home_settings) -> None:
    healthy = HdfsHealth("http://nn", 3, 0, 0, 0, 100, 50, dt.datetime.now(dt.UTC))
    assert healthy.problems(home_settings) == []
    sick = replace(
        healthy, live_datanodes=2, missing_blocks=1, under_replicated_blocks=4, capacity_remaining=5
    )
    problems = " | ".join(sick.problems(home_settings))
    assert "2 live DataNodes (< 3)" in problems and "1 missing blocks" in problems
    assert "4 under-replicated" in problems and "5.0% capacity free" in problems


def test_alert_rows_carry_what_the_operator_needs() -> None:
    row = Alert(
        "task_failed", "d", "t", "r", "ValueError: x", "http://ui/dags/d/runs/r/tasks/t", 1, {"a": 1}
    ).row()
    assert row["details"] == '{"a": 1}' and row["try_number"] == 1 and row["at"].tzinfo is not None


def test_flights_params_of_scheduled_runs_come_from_the_environment() -> None:
    params = FlightsParams.from_env({"MOULIN_FLIGHTS_SAMPLE_PER_MONTH": "150", "MOULIN_FLIGHTS_EPOCHS": "1"})
    assert params.sample_per_month == 150 and params.train.epochs == 1
    with pytest.raises(MoulinError, match="integers"):
        FlightsParams.from_env({"MOULIN_FLIGHTS_EPOCHS": "one"})


def test_triggering_months_read_the_asset_events() -> None:
    events = {
        Asset("moulin://bronze/flights"): [
            SimpleNamespace(extra={"ds": "2013-09-01"}),
            SimpleNamespace(extra={"ds": "2013-01-01"}),
        ],
        # another source's event names its own logical date, not a month of flights
        Asset("moulin://bronze/weather"): [SimpleNamespace(extra={"ds": "2013-12-01"})],
    }
    assert triggering_months(events) == ["2013-01-01", "2013-09-01"]
    assert triggering_months(None) == []
