"""The Airflow DAG of a declared use case (``airflow.sdk`` TaskFlow): scheduled on the
Assets of its sources' bronze tables, one task per table step (emitting the Asset of the
table it writes), the training job, the report, and each follow-on task after the last
table step, beside the training.  Asset names come from the contracts
(:func:`moulin.airflow_kit.table_asset`); a data error fails its task at once, anything else retries
(:data:`moulin.airflow_kit.PIPELINE`).  Params: ``sample`` (fraction of rows per split, for a quick run),
``models`` (comma-separated), ``epochs_scale``."""

from __future__ import annotations

from typing import Any

from moulin.airflow_kit import PIPELINE, default_args, table_asset
from moulin.orchestration import safe_run_id
from moulin.sources.spec import load_spec
from moulin.usecases.kit import generate
from moulin.usecases.kit.parts import Declaration, UseCaseError


def source_contracts(usecase: Declaration) -> list[str]:
    """The bronze contracts of the use case's sources (their specs name them)."""

    contracts = []
    for name in usecase.sources:
        try:
            contracts.append(load_spec(name).contract)
        except Exception as exc:  # noqa: BLE001 - re-raised with the use case named
            raise UseCaseError(
                f"use case {usecase.name!r}: source {name!r}: {exc} — onboard it (schemas/sources/{name}.yaml "
                "or $MOULIN_CONTRACTS_DIR/sources/) or fix the name in its usecase.py"
            ) from exc
    return contracts


def build_dag(usecase: Declaration, fileloc: str | None = None) -> Any:
    """The DAG of ``usecase`` (``fileloc``: the DAG file, what the UI shows as its source)."""
    from airflow.sdk import DAG, Param, get_current_context, task

    schedule = [table_asset(c) for c in source_contracts(usecase)]
    with DAG(
        dag_id=usecase.dag_name,
        schedule=schedule or None,
        start_date=usecase.start_date,
        catchup=False,
        max_active_runs=1,
        doc_md=(usecase.description or f"Use case {usecase.name}.") + "\n\n" + (__doc__ or ""),
        tags=["moulin", usecase.name, "use-case", *usecase.tags],
        default_args=default_args(PIPELINE),
        params={
            "sample": Param(None, type=["null", "number"], minimum=0, maximum=1),
            "models": Param(",".join(usecase.models), type="string"),
            "epochs_scale": Param(1.0, type="number", exclusiveMinimum=0),
        },
    ) as dag:

        def step_task(step):
            @task(task_id=step.name, outlets=[table_asset(step.target)])
            def run_step(previous: dict | None = None) -> dict:
                return generate.step_task(usecase, step)

            return run_step

        upstream = None
        for step in usecase.steps:
            run_step = step_task(step)
            upstream = run_step(upstream) if upstream is not None else run_step()

        def follow_on_task(follow_on):
            @task(task_id=follow_on.name)
            def run_follow_on(upstream: dict) -> dict:
                return generate.follow_on_task(usecase, follow_on)

            return run_follow_on

        @task
        def train(upstream: dict) -> dict:
            context = get_current_context()
            return generate.train_task(
                usecase, upstream, safe_run_id(context["run_id"]), dict(context["params"])
            )

        @task
        def report(trained: dict) -> dict:
            return generate.report_task(usecase, trained)

        if upstream is None:
            raise UseCaseError(
                f"use case {usecase.name!r} has no table step: declare the table training reads"
            )
        report(train(upstream))
        for follow_on in usecase.follow_on:
            follow_on_task(follow_on)(upstream)
    if fileloc:
        dag.fileloc = fileloc
    return dag
