"""Personal data: retention applied daily (it deletes; the param ``dry_run`` only says
what would be deleted), and the record of processing activities regenerated."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag, task

from moulin.airflow_kit import OPERATOR, default_args


@dag(
    dag_id="privacy_retention",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={"dry_run": Param(False, type="boolean", description="only say what would be deleted")},
    tags=["moulin", "privacy"],
    default_args=default_args(OPERATOR),
)
def privacy_retention():
    @task
    def retention(ds=None, params=None) -> dict:
        from moulin.privacy import tasks

        return tasks.retention(ds, bool((params or {}).get("dry_run", False)))

    @task
    def register(upstream: dict) -> str:
        from moulin.privacy import tasks

        return tasks.register()

    register(retention())


privacy_retention()
