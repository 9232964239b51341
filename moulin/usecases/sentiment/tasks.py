"""Task bodies of the text use case DAG (``dags/sentiment_posts.py``)."""

from __future__ import annotations

from moulin.orchestration import data_errors_fail_the_task
from moulin.settings import Settings, load_settings
from moulin.usecases.classifiers import report_task, train_task


def silver(settings: Settings | None = None) -> dict:
    """Rebuild silver/sentiment_posts from bronze (Spark job ``sentiment_silver``)."""
    from moulin.jobs.submit import submit_job

    with data_errors_fail_the_task():
        return submit_job(settings or load_settings(), "sentiment_silver", [])


def train(upstream: dict, run_id: str, params: dict | None = None, settings: Settings | None = None) -> dict:
    """Train and compare the classifiers on the silver version the upstream task wrote."""
    return train_task("sentiment_train", upstream, run_id, params, settings)


def report(trained: dict, settings: Settings | None = None) -> dict:
    """Write the HTML report beside the run's results."""
    from moulin.usecases.sentiment.report import WORDING

    return report_task(trained, WORDING, settings)
