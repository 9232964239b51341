"""Reference data of the flights use case: planes and airports extracted from the
operational SQL database (planes incrementally), weather and airlines landed as
files, then parsed into bronze Delta tables behind quality gates."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, dag, task

from moulin.ops.alerts import task_failed

BRONZE_DIMENSIONS = Asset("moulin://bronze/dimensions")


@dag(
    dag_id="dimensions_ingest",
    schedule="@monthly",
    start_date=datetime(2013, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["moulin", "flights", "ingest"],
    default_args={
        "on_failure_callback": task_failed,
        "retries": 2,
        "retry_delay": timedelta(seconds=20),
        "retry_exponential_backoff": True,
    },
)
def dimensions_ingest():
    @task
    def land(ds=None) -> dict:
        from moulin.usecases.flights import tasks as flights_tasks

        return flights_tasks.land_dimensions(ds)

    @task(outlets=[BRONZE_DIMENSIONS])
    def bronze(landing: dict, ds=None) -> dict:
        from moulin.usecases.flights import tasks as flights_tasks

        return flights_tasks.bronze_dimensions(ds, landing)

    bronze(land())


dimensions_ingest()
