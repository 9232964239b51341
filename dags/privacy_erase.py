"""Personal data: one erasure request carried out, triggered by an operator with
the request's id (``moulin privacy request`` registers it and prints the id).
The run's conf, its logs and XCom hold the id, never the address."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag, task

from moulin.airflow_kit import OPERATOR, default_args
from moulin.privacy.requests import REQUEST_ID


@dag(
    dag_id="privacy_erase",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={
        "request_id": Param(
            "erase-00000000T000000-00000000",
            type="string",
            pattern=REQUEST_ID.pattern,
            description="the id printed by `moulin privacy request` (never the address)",
        )
    },
    tags=["moulin", "privacy"],
    default_args=default_args(OPERATOR),
)
def privacy_erase():
    @task
    def erase(params=None) -> dict:
        from moulin.privacy import tasks

        return tasks.erase(str((params or {})["request_id"]))

    erase()


privacy_erase()
