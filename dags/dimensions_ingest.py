"""Reference data of the flights use case: planes and airports extracted from the
operational SQL database (planes incrementally), weather and airlines landed as
files, then parsed into bronze Delta tables behind quality gates.

It runs with every flights drop: the same schedule and window as ``flights_ingest``
(declared once, in :data:`moulin.usecases.flights.params.PARAMS`), caught up month by
month, so each month's bronze flights event has its bronze dimensions event and
``flights_delay_model`` retrains on both (see the README's retrain policy)."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset, dag, task

from moulin.ops.alerts import task_failed
from moulin.usecases.flights.params import PARAMS

BRONZE_DIMENSIONS = Asset("moulin://bronze/dimensions")


@dag(
    dag_id="dimensions_ingest",
    schedule=PARAMS.ingest_schedule,
    start_date=PARAMS.ingest_dates()[0],
    end_date=PARAMS.ingest_dates()[1],
    catchup=True,
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
