"""The Airflow kit: retry policies → a DAG's default_args, and the data-error rule, checked
on real Airflow tasks and a real DAG run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from moulin.airflow_kit import (
    OPERATOR,
    PIPELINE,
    TRANSIENT,
    RetryPolicy,
    data_errors_fail_at_once,
    default_args,
)
from moulin.contracts import ContractError
from moulin.errors import DataError
from moulin.jobs.submit import JobDataError, JobFailed
from moulin.ops.alerts import task_failed
from moulin.orchestration import airflow_env, ensure_airflow_db


@pytest.mark.parametrize(
    ("policy", "retries", "delay", "factor", "max_delay"),
    [
        (TRANSIENT, 2, timedelta(seconds=30), 2.0, timedelta(minutes=5)),
        (PIPELINE, 1, timedelta(seconds=30), 0, None),
        (OPERATOR, 2, timedelta(minutes=5), 0, None),
    ],
)
def test_a_policy_gives_every_task_of_its_dag_its_retries_the_data_error_rule_and_the_alert(
    policy: RetryPolicy, retries: int, delay: timedelta, factor: float, max_delay: timedelta | None
) -> None:
    from airflow.sdk import DAG, task

    args = default_args(policy)
    assert args == {
        "retries": retries,
        "retry_delay": delay,
        "retry_exponential_backoff": factor,
        "max_retry_delay": max_delay,
        "retry_policy": data_errors_fail_at_once(),
        "on_failure_callback": task_failed,
    }
    with DAG(f"kit_{policy.name}", schedule=None, start_date=datetime(2026, 1, 1), default_args=args) as dag:

        @task
        def work() -> int:
            return 1

        work()
    built = dag.get_task("work")
    assert (built.retries, built.retry_delay, built.retry_exponential_backoff) == (retries, delay, factor)
    assert built.max_retry_delay == max_delay
    assert built.retry_policy is data_errors_fail_at_once()
    assert task_failed in (built.on_failure_callback or [])
    assert len(policy.reason) > 100, f"policy {policy.name} should say why its retries and delay"


def test_a_policy_refuses_values_that_cannot_retry_and_names_itself() -> None:
    with pytest.raises(ValueError, match="retry policy 'odd': retries is -1"):
        RetryPolicy("odd", retries=-1, delay=timedelta(seconds=1), backoff="fixed", reason="x")
    with pytest.raises(ValueError, match="retry policy 'odd': delay is 0:00:00"):
        RetryPolicy("odd", retries=1, delay=timedelta(0), backoff="fixed", reason="x")
    with pytest.raises(ValueError, match="max_delay 0:00:01 is shorter than delay 0:00:10"):
        RetryPolicy("odd", 1, timedelta(seconds=10), "exponential", "x", max_delay=timedelta(seconds=1))
    with pytest.raises(ValueError, match="retry policy 'odd' gives no reason"):
        RetryPolicy("odd", retries=1, delay=timedelta(seconds=1), backoff="fixed", reason=" ")


def _raised(error: BaseException) -> BaseException:
    """``error`` as a task hands it over: raised and caught, with its traceback."""
    try:
        raise error
    except BaseException as exc:  # noqa: BLE001 - the point is to hand it on
        return exc


@pytest.mark.parametrize(
    ("error", "action"),
    [
        (ContractError("contracts/orders.yaml:4: columns.id: no type; give one"), "fail"),
        (JobDataError("Spark job source_bronze failed on its data"), "fail"),
        (DataError("the drop holds no row"), "fail"),
        (JobFailed("Spark job silver_flights failed: executor lost"), "default"),
        (OSError("the NameNode does not answer"), "default"),
        (TimeoutError("the job server did not answer in 30 s"), "default"),
    ],
)
def test_data_errors_fail_at_once_and_other_errors_keep_the_policys_retries(
    error: BaseException, action: str
) -> None:
    decision = data_errors_fail_at_once().evaluate(_raised(error), try_number=1, max_tries=3)
    assert decision.action.value == action


DAG_FILE = """
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import dag, task

from moulin.airflow_kit import RetryPolicy, default_args
from moulin.contracts import ContractError

TRIES = Path(__file__).with_name("tries.jsonl")
QUICK = RetryPolicy("quick", retries=2, delay=timedelta(seconds=1), backoff="fixed", reason="a test")


def tried(ti) -> None:
    with TRIES.open("a") as out:
        out.write('{"task": "%s", "try": %d}\\n' % (ti.task_id, ti.try_number))


@dag(dag_id="kit_retries", schedule=None, start_date=datetime(2026, 1, 1), default_args=default_args(QUICK))
def kit_retries():
    @task
    def data_error(ti=None):
        tried(ti)
        raise ContractError("contracts/orders.yaml:4: columns.id: no type; give one")

    @task
    def transient(ti=None):
        tried(ti)
        if ti.try_number == 1:
            raise OSError("the NameNode does not answer")
        return "ok"

    data_error()
    transient()


kit_retries()
"""


def test_a_dag_run_fails_a_data_error_on_its_first_try_and_retries_a_transient_one(
    settings, tmp_path
) -> None:
    """A real run (``dag.test``, as ``airflow dags test``): the data error's task is tried
    once and alerts; the transient error's task is tried again and succeeds."""
    from moulin.dagtests import END_MARK
    from moulin.ops.alerts import read_alerts

    ensure_airflow_db(settings)
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "kit_retries.py").write_text(DAG_FILE)
    env = {**os.environ, **airflow_env(settings), "AIRFLOW__CORE__DAGS_FOLDER": str(folder)}
    plan = json.dumps([{"dag_id": "kit_retries", "logical_date": "2026-01-02"}])
    run = subprocess.run(
        [sys.executable, "-m", "moulin.dagtests"],
        input=plan,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    ends = [
        json.loads(line[len(END_MARK) :]) for line in run.stdout.splitlines() if line.startswith(END_MARK)
    ]
    assert ends and ends[0]["state"] == "failed", run.stdout[-3000:] + run.stderr[-3000:]
    tries = [json.loads(line) for line in (folder / "tries.jsonl").read_text().splitlines()]
    assert [t["try"] for t in tries if t["task"] == "data_error"] == [1]
    assert [t["try"] for t in tries if t["task"] == "transient"] == [1, 2]
    alerts = [a for a in read_alerts(settings) if a["dag_id"] == "kit_retries"]
    assert [(a["task_id"], a["try_number"]) for a in alerts] == [("data_error", 1)]
    assert "ContractError: contracts/orders.yaml:4: columns.id: no type" in alerts[0]["error"]
