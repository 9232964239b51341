"""HDFS health every 15 minutes: live DataNodes, missing and under-replicated blocks,
capacity, into ops/hdfs_health; an alert when a figure crosses its limit."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from moulin.airflow_kit import TRANSIENT, default_args
from moulin.ops.alerts import deadline
from moulin.settings import load_settings

SETTINGS = load_settings()


@dag(
    dag_id="ops_hdfs_health",
    schedule=timedelta(minutes=15),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["moulin", "platform", "ops"],
    deadline=deadline(SETTINGS.platform.health_deadline_s),
    default_args=default_args(TRANSIENT),
)
def ops_hdfs_health():
    @task
    def check_hdfs(run_id=None) -> dict:
        from moulin.ops.hdfs_health import check_hdfs as check

        return check(run_id=run_id or "")

    check_hdfs()


ops_hdfs_health()
