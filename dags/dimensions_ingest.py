"""Reference data of the flights use case: planes and airports extracted from the
operational SQL database (incrementally where a column allows), weather and
airlines landed as files, all parsed into bronze Delta tables behind quality gates."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, dag, task

BRONZE_DIMENSIONS = Asset("moulin://bronze/dimensions")


@dag(
    dag_id="dimensions_ingest",
    schedule="@monthly",
    start_date=datetime(2013, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["moulin", "flights", "ingest"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=20), "retry_exponential_backoff": True},
)
def dimensions_ingest():
    @task
    def extract_sql_sources(ds=None) -> dict:
        from moulin.pipelines import flights_tasks

        return flights_tasks.extract_sql_sources(ds)

    @task
    def land_files(ds=None) -> dict:
        from moulin.pipelines import flights_tasks

        return flights_tasks.land_dimension_files(ds)

    @task(outlets=[BRONZE_DIMENSIONS])
    def bronze_dimensions(sql: dict, files: dict, ds=None) -> dict:
        from moulin.pipelines import flights_tasks

        return flights_tasks.bronze_dimensions(ds, sql, files)

    bronze_dimensions(extract_sql_sources(), land_files())


dimensions_ingest()
