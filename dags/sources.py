"""One ingest DAG per source spec (``sources/*.yaml`` beside the contracts; see
``moulin source validate``): land the drop with its manifest, then the quality
gate into bronze and quarantine, emitting the bronze table's Asset.

Adding a source is adding a spec and its contract: this file only wires them.
A spec that does not validate gets no DAG; the error is logged here and
``moulin source validate`` prints it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from airflow.sdk import DAG, Asset, task

from moulin.contracts import load_contract
from moulin.errors import DataError
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
        default_args={"retries": 2, "retry_delay": timedelta(seconds=20), "retry_exponential_backoff": True},
    ) as dag:

        @task
        def land(ds=None) -> dict:
            from moulin.sources import tasks

            return tasks.land(spec.name, ds)

        @task(outlets=[Asset(f"moulin://{table}")])
        def bronze(landing: dict, ds=None) -> dict:
            from moulin.sources import tasks

            return tasks.bronze(spec.name, landing.get("ds", ds))

        bronze(land())
    return dag


for _name, _path in all_spec_files().items():
    try:
        _spec = load_spec_file(_path)
        validate_spec(_spec)
    except DataError as _exc:
        log.error("no DAG for source spec %s: %s", _path, _exc)
        continue
    globals()[_spec.dag_id] = build(_spec)
