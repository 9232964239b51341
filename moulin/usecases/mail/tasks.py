"""Task bodies of the mail use case DAG (``dags/mail_spam_filter.py``)."""

from __future__ import annotations

from moulin.jobs.submit import submit_job
from moulin.orchestration import safe_run_id
from moulin.settings import Settings, load_settings
from moulin.usecases.kit.generate import train_args
from moulin.usecases.mail.report import WORDING


def silver(settings: Settings | None = None) -> dict:
    """Rebuild silver/mail_messages from bronze (Spark job ``mail_silver``)."""

    return submit_job(settings or load_settings(), "mail_silver", [])


def train(upstream: dict, run_id: str, settings: Settings | None = None) -> dict:
    """Train and compare the spam filters on the silver version the upstream task wrote
    (job ``mail_train``, training environment; results under ``models/mail/<run id>/``)."""
    from moulin.usecases.mail.runner import TRAIN_STAGE

    return submit_job(
        settings or load_settings(), TRAIN_STAGE, train_args(upstream["version"], safe_run_id(run_id))
    )


def report(trained: dict, settings: Settings | None = None) -> dict:
    """The HTML report beside the run's results; the filters and the goal in the task's log."""
    from moulin.reporting.classification import report_beside_results
    from moulin.usecases.mail.runner import against_goal, model_lines, read_results

    settings = settings or load_settings()
    results = read_results(settings, trained["results_uri"])
    uri = report_beside_results(settings, trained["results_uri"], WORDING)
    for line in [*model_lines(results), against_goal(results), f"report {uri}"]:
        print(f"MOULIN-PROGRESS {line}", flush=True)
    return {"report_uri": uri, "recommended": trained["recommended"]}


def views(upstream: dict, settings: Settings | None = None) -> dict:
    """Rebuild the analysts' views once silver is written (Spark job ``privacy_views``)."""

    return submit_job(settings or load_settings(), "privacy_views", [])
