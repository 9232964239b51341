"""The flights delay use case, run when the bronze tables of its five sources have been
updated (the source factory's DAGs ``source_<name>`` land and gate them): silver → gold statistics (MapReduce) → features → profile → train and compare
models (training environment, spark-submit) → decision report."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from moulin.airflow_kit import PIPELINE, default_args, table_asset, table_path_asset
from moulin.ops.alerts import deadline
from moulin.settings import load_settings
from moulin.sources.dags import source_assets
from moulin.training.config import LEADERBOARD_TABLE
from moulin.usecases.flights.params import PARAMS, SOURCES, STATS_TABLES


@dag(
    dag_id="flights_delay_model",
    schedule=source_assets(*SOURCES),
    start_date=datetime(2013, 1, 1),
    catchup=False,
    max_active_runs=1,
    params=PARAMS.dag_params(),
    deadline=deadline(load_settings().platform.flights_model_deadline_s),
    tags=["moulin", "flights", "model"],
    default_args=default_args(PIPELINE),
)
def flights_delay_model():
    @task(outlets=[table_asset("silver_flights")])
    def silver(ds=None, params=None, triggering_asset_events=None) -> dict:
        from moulin.usecases.flights import tasks as flights_tasks

        months = flights_tasks.triggering_months(triggering_asset_events)
        return flights_tasks.silver(ds, params, triggered_by=months)

    @task(outlets=[table_asset(c) for c in STATS_TABLES.values()])
    def gold_stats(upstream: dict, ds=None) -> dict:
        from moulin.usecases.flights import tasks as flights_tasks

        return flights_tasks.gold_stats(ds, upstream)

    @task(outlets=[table_asset("flight_features")])
    def features(upstream: dict, ds=None) -> dict:
        from moulin.usecases.flights import tasks as flights_tasks

        return flights_tasks.features(ds, upstream)

    @task
    def profile(upstream: dict, ds=None) -> dict:
        from moulin.usecases.flights import tasks as flights_tasks

        return flights_tasks.profile(ds, upstream)

    @task(outlets=[table_path_asset(LEADERBOARD_TABLE)])
    def train(upstream: dict, ds=None, params=None, run_id=None) -> dict:
        from moulin.usecases.flights import tasks as flights_tasks

        return flights_tasks.train(ds, params, run_id, upstream)

    @task
    def report(profiled: dict, trained: dict, feats: dict, ds=None, run_id=None) -> dict:
        from moulin.usecases.flights import tasks as flights_tasks

        return flights_tasks.report(ds, run_id, profiled, trained, feats)

    silvered = silver()
    gold = gold_stats(silvered)
    feats = features(gold)
    report(profile(feats), train(feats), feats)


flights_delay_model()
