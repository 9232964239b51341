"""The DAG factory of sources: one ingest DAG per source spec (``sources/*.yaml``
beside the contracts): land the drop with its manifest, then the quality gate
into bronze and quarantine, emitting the bronze table's Asset.

``dags/sources.py`` puts :func:`source_dags` in the DAG folder.  A spec that
does not validate gets no DAG; the error is logged (``moulin source validate``
prints it).
"""

from __future__ import annotations

import logging
from datetime import datetime

from airflow.sdk import DAG, Asset, AssetAll, Param, task

from moulin.airflow_kit import TRANSIENT, default_args, table_asset
from moulin.contracts import load_contract
from moulin.errors import DataError
from moulin.sources import tasks
from moulin.sources.spec import SourceSpec, all_spec_files, load_spec, load_spec_file, validate_spec

log = logging.getLogger(__name__)


def spec_asset(spec: SourceSpec) -> Asset:
    """The Asset the ingest DAG of ``spec`` emits: its bronze table, ``moulin://<table>``."""
    return table_asset(spec.contract)


def source_assets(*names: str) -> AssetAll:
    """The Assets of the bronze tables of sources ``names`` (a DAG scheduled on them runs
    once each has had an event since its last run)."""
    return AssetAll(*(spec_asset(load_spec(name)) for name in names))


def build(spec: SourceSpec) -> DAG:
    """The ingest DAG of one validated spec."""
    table = load_contract(spec.contract).table
    with DAG(
        dag_id=spec.dag_id,
        schedule=spec.schedule,
        start_date=datetime.combine(spec.start_date, datetime.min.time()),
        end_date=datetime.combine(spec.end_date, datetime.min.time()) if spec.end_date else None,
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
        default_args=default_args(TRANSIENT),
    ) as dag:

        @task
        def land(ds=None, params=None) -> dict:
            return tasks.land(spec.name, ds, redelivery=bool((params or {}).get("redelivery")))

        asset = spec_asset(spec)

        @task(outlets=[asset])
        def bronze(landing: dict, ds=None, outlet_events=None) -> dict:
            result = tasks.bronze(spec.name, landing.get("ds", ds))
            outlet_events[asset].extra = tasks.asset_extra(result)
            return result

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
