"""HDFS health every 15 minutes: live DataNodes, missing and under-replicated blocks,
capacity, into ops/hdfs_health; an alert when a figure crosses its limit."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from moulin.ops.alerts import deadline, task_failed
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
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "on_failure_callback": task_failed,
    },
)
def ops_hdfs_health():
    @task
    def check_hdfs(run_id=None) -> dict:
        from moulin.ops.hdfs_health import check_hdfs as check

        return check(run_id=run_id or "")

    check_hdfs()


ops_hdfs_health()
