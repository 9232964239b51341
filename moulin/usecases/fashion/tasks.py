"""Task bodies of the image use case DAG (``dags/fashion_images.py``)."""

from __future__ import annotations

from moulin.orchestration import data_errors_fail_the_task
from moulin.settings import Settings, load_settings


def silver(settings: Settings | None = None) -> dict:
    """Rebuild silver/fashion_images from bronze (Spark job ``fashion_silver``)."""
    from moulin.jobs.submit import submit_job

    with data_errors_fail_the_task():
        return submit_job(settings or load_settings(), "fashion_silver", [])


def train(upstream: dict, run_id: str, params: dict | None = None, settings: Settings | None = None) -> dict:
    """Train and compare the classifiers on the silver version the upstream task wrote
    (training environment); a retry with the same run id resumes from the checkpoints."""
    from moulin.jobs.submit import submit_job

    params = params or {}
    args = ["--version", str(int(upstream["version"])), "--run-id", run_id]
    if params.get("sample"):
        args += ["--sample", str(float(params["sample"]))]
    if params.get("models"):
        args += ["--models", str(params["models"])]
    if params.get("epochs_scale"):
        args += ["--epochs-scale", str(float(params["epochs_scale"]))]
    with data_errors_fail_the_task():
        return submit_job(settings or load_settings(), "fashion_train", args)


def report(trained: dict, settings: Settings | None = None) -> dict:
    """Write the HTML report beside the run's results."""
    from moulin.usecases.fashion.report_task import report_from_results

    with data_errors_fail_the_task():
        uri = report_from_results(settings or load_settings(), trained["results_uri"])
    print(f"MOULIN-PROGRESS report {uri}", flush=True)
    return {"report_uri": uri, "recommended": trained["recommended"]}
