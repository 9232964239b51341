"""Checks every 30 minutes that the warehouse file system answers (write, read, delete)."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from moulin.ops.alerts import task_failed


@dag(
    dag_id="platform_health",
    schedule=timedelta(minutes=30),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["moulin", "platform"],
    default_args={
        "on_failure_callback": task_failed,
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
    },
)
def platform_health():
    @task
    def warehouse_round_trip() -> dict:
        from moulin.health import check_warehouse

        return check_warehouse()

    warehouse_round_trip()


platform_health()
