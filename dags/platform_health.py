"""Checks every 30 minutes that the warehouse file system answers (write, read, delete)."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from moulin.airflow_kit import TRANSIENT, default_args


@dag(
    dag_id="platform_health",
    schedule=timedelta(minutes=30),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["moulin", "platform"],
    default_args=default_args(TRANSIENT),
)
def platform_health():
    @task
    def warehouse_round_trip() -> dict:
        from moulin.health import check_warehouse

        return check_warehouse()

    warehouse_round_trip()


platform_health()
