"""The DAG factory of sources: one ingest DAG per source spec (``sources/*.yaml``
beside the contracts): land the drop with its manifest, then the quality gate
into bronze and quarantine, emitting the bronze table's Asset.

``dags/sources.py`` puts :func:`source_dags` in the DAG folder.  A spec that
does not validate gets no DAG; the error is logged (``moulin source validate``
prints it).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from airflow.sdk import DAG, Asset, Param, task

from moulin.contracts import load_contract
from moulin.errors import DataError
from moulin.ops.alerts import task_failed
from moulin.sources.spec import all_spec_files, load_spec_file, validate_spec

log = logging.getLogger(__name__)


def build(spec) -> DAG:
    """The ingest DAG of one validated spec."""
    table = load_contract(spec.contract).table
    with DAG(
        dag_id=spec.dag_id,
        schedule=spec.schedule,
        start_date=datetime.combine(spec.start_date, datetime.min.time()),
        catchup=spec.catchup,
        max_active_runs=1,
        doc_md=spec.description or f"Ingest source {spec.name} ({spec.kind}) into {table}.",
        tags=["moulin", "source", spec.kind],
        params={
            "redelivery": Param(
                False,
                type="boolean",
                description="land files whose bytes were already landed under another date "
                "(a deliberate redelivery; otherwise such a drop is refused, naming that date)",
            )
        },
        default_args={
            "on_failure_callback": task_failed,
            "retries": 2,
            "retry_delay": timedelta(seconds=20),
            "retry_exponential_backoff": True,
        },
    ) as dag:

        @task
        def land(ds=None, params=None) -> dict:
            from moulin.sources import tasks

            return tasks.land(spec.name, ds, redelivery=bool((params or {}).get("redelivery")))

        @task(outlets=[Asset(f"moulin://{table}")])
        def bronze(landing: dict, ds=None) -> dict:
            from moulin.sources import tasks

            return tasks.bronze(spec.name, landing.get("ds", ds))

        bronze(land())
    return dag


def source_dags() -> dict[str, DAG]:
    """The DAG of every valid spec, by DAG id."""
    dags = {}
    for path in all_spec_files().values():
        try:
            spec = load_spec_file(path)
            validate_spec(spec)
        except DataError as exc:
            log.error("no DAG for source spec %s: %s", path, exc)
            continue
        dags[spec.dag_id] = build(spec)
    return dags
