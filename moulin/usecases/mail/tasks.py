"""Task bodies of the mail use case DAG (``dags/mail_spam_filter.py``)."""

from __future__ import annotations

from moulin.settings import Settings, load_settings


def silver(settings: Settings | None = None) -> dict:
    """Rebuild silver/mail_messages from bronze (Spark job ``mail_silver``)."""
    from moulin.jobs.submit import submit_job

    return submit_job(settings or load_settings(), "mail_silver", [])


def train(upstream: dict, settings: Settings | None = None) -> dict:
    """Train and compare the spam filters on the silver version the upstream task wrote."""
    from moulin.usecases.mail.stages import train_spam_filter

    metrics = train_spam_filter(settings or load_settings(), version=int(upstream["version"]))
    for name, m in metrics["models"].items():
        print(
            f"MOULIN-PROGRESS spam filter [{name}] test accuracy {m['test_accuracy']} F1 {m['test_f1_spam']}",
            flush=True,
        )
    from moulin.usecases.mail.runner import against_goal

    print(f"MOULIN-PROGRESS {against_goal(metrics)}", flush=True)
    return metrics


def views(upstream: dict, settings: Settings | None = None) -> dict:
    """Rebuild the analysts' views once silver is written (Spark job ``privacy_views``)."""
    from moulin.jobs.submit import submit_job

    return submit_job(settings or load_settings(), "privacy_views", [])
