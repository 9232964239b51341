"""The DAG of a classification use case (images, text), built the same way for each:
on its bronze Asset, silver → classifiers trained and compared on a pinned snapshot
(training environment) → HTML report.  Params: ``sample`` (fraction of rows per
split, for a quick run), ``models`` (comma-separated), ``epochs_scale``."""

from __future__ import annotations

import importlib
from datetime import datetime, timedelta

from airflow.sdk import DAG, Asset, Param, get_current_context, task

from moulin.ops.alerts import task_failed


def classifier_dag(
    dag_id: str,
    use_case: str,
    bronze: str,
    silver: str,
    start: datetime,
    models: tuple[str, ...],
    doc: str,
    fileloc: str,
) -> DAG:
    """The DAG ``dag_id`` of use case ``use_case`` (``moulin.usecases.<use_case>.tasks``),
    scheduled on the Asset of table ``bronze``, emitting that of ``silver``; ``fileloc``
    is the DAG file that calls this (what the UI shows as its source)."""
    with DAG(
        dag_id=dag_id,
        schedule=Asset(f"moulin://{bronze}"),
        start_date=start,
        catchup=False,
        max_active_runs=1,
        doc_md=doc,
        tags=["moulin", use_case, "deep-learning"],
        default_args={"on_failure_callback": task_failed, "retries": 1, "retry_delay": timedelta(seconds=30)},
        params={
            "sample": Param(None, type=["null", "number"], minimum=0, maximum=1),
            "models": Param(",".join(models), type="string"),
            "epochs_scale": Param(1.0, type="number", exclusiveMinimum=0),
        },
    ) as dag:
        tasks = f"moulin.usecases.{use_case}.tasks"

        @task(task_id="silver", outlets=[Asset(f"moulin://{silver}")])
        def silver_task() -> dict:
            return importlib.import_module(tasks).silver()

        @task
        def train(upstream: dict) -> dict:
            from moulin.orchestration import safe_run_id

            context = get_current_context()
            return importlib.import_module(tasks).train(
                upstream, safe_run_id(context["run_id"]), dict(context["params"])
            )

        @task
        def report(trained: dict) -> dict:
            return importlib.import_module(tasks).report(trained)

        report(train(silver_task()))
    dag.fileloc = fileloc
    return dag
