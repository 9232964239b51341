"""Monthly drops of New York flights: land the raw file on the warehouse, then
parse it into the bronze Delta table behind a quality gate. One run per month of
2013, so backfills and reruns are real; both tasks are idempotent."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, dag, task

from moulin.usecases.flights.params import PARAMS

BRONZE_FLIGHTS = Asset("moulin://bronze/flights")


@dag(
    dag_id="flights_ingest",
    schedule="@monthly",
    start_date=datetime(2013, 1, 1),
    end_date=datetime(2013, 12, 1),
    catchup=True,
    max_active_runs=1,
    params={"sample_per_month": PARAMS.sample_per_month},
    tags=["moulin", "flights", "ingest"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=20), "retry_exponential_backoff": True},
)
def flights_ingest():
    @task
    def land_month(ds=None, params=None) -> dict:
        from moulin.usecases.flights import tasks as flights_tasks

        return flights_tasks.land_flights_month(ds, params)

    @task(outlets=[BRONZE_FLIGHTS])
    def bronze_month(landing: dict, ds=None, params=None) -> dict:
        from moulin.usecases.flights import tasks as flights_tasks

        return flights_tasks.bronze_flights_month(ds, params, landing)

    bronze_month(land_month())


flights_ingest()
