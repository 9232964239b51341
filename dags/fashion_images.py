"""The image use case, run when bronze images are updated (DAG ``source_fashion``
lands and gates them): silver (labelled, split, hashed) → classifiers trained and
compared on a pinned snapshot (training environment) → HTML report.

Params: ``sample`` (fraction of images per split, for a quick run), ``models``
(comma-separated: logreg, cnn, efficientnet_lite0), ``epochs_scale``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, Param, dag, get_current_context, task

BRONZE_IMAGES = Asset("moulin://bronze/fashion_images")


@dag(
    dag_id="fashion_images",
    schedule=BRONZE_IMAGES,
    start_date=datetime(2017, 8, 25),
    catchup=False,
    max_active_runs=1,
    tags=["moulin", "fashion", "images", "deep-learning"],
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30)},
    params={
        "sample": Param(None, type=["null", "number"], minimum=0, maximum=1),
        "models": Param("logreg,cnn,efficientnet_lite0", type="string"),
        "epochs_scale": Param(1.0, type="number", exclusiveMinimum=0),
    },
)
def fashion_images():
    @task(outlets=[Asset("moulin://silver/fashion_images")])
    def silver() -> dict:
        from moulin.usecases.fashion import tasks

        return tasks.silver()

    @task
    def train(upstream: dict) -> dict:
        from moulin.orchestration import safe_run_id
        from moulin.usecases.fashion import tasks

        context = get_current_context()
        return tasks.train(upstream, safe_run_id(context["run_id"]), dict(context["params"]))

    @task
    def report(trained: dict) -> dict:
        from moulin.usecases.fashion import tasks

        return tasks.report(trained)

    report(train(silver()))


fashion_images()
