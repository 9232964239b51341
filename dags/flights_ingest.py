"""Monthly drops of New York flights: land the raw file on the warehouse, then
parse it into the bronze Delta table behind a quality gate. One run per month of
2013, so backfills and reruns are real; both tasks are idempotent."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset, dag, task

from moulin.ops.alerts import task_failed
from moulin.usecases.flights.params import PARAMS

BRONZE_FLIGHTS = Asset("moulin://bronze/flights")


@dag(
    dag_id="flights_ingest",
    schedule=PARAMS.ingest_schedule,
    start_date=PARAMS.ingest_dates()[0],
    end_date=PARAMS.ingest_dates()[1],
    catchup=True,
    max_active_runs=1,
    params={"sample_per_month": PARAMS.sample_per_month},
    tags=["moulin", "flights", "ingest"],
    default_args={
        "on_failure_callback": task_failed,
        "retries": 2,
        "retry_delay": timedelta(seconds=20),
        "retry_exponential_backoff": True,
    },
)
def flights_ingest():
    @task
    def land_month(ds=None, params=None) -> dict:
        from moulin.usecases.flights import tasks as flights_tasks

        return flights_tasks.land_flights_month(ds, params)

    @task(outlets=[BRONZE_FLIGHTS])
    def bronze_month(landing: dict, ds=None, params=None, outlet_events=None) -> dict:
        from moulin.usecases.flights import tasks as flights_tasks

        result = flights_tasks.bronze_flights_month(ds, params, landing)
        outlet_events[BRONZE_FLIGHTS].extra = flights_tasks.asset_extra(result)
        return result

    bronze_month(land_month())


flights_ingest()
