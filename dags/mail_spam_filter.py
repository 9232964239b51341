"""The mail use case, run when bronze mail is updated: silver (labelled, split,
pseudonymised) → spam filters trained and compared (training environment) → their
report, and the analysts' views rebuilt."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Asset, dag, task

from moulin.airflow_kit import PIPELINE, default_args

BRONZE_MAIL = Asset("moulin://bronze/mail")


@dag(
    dag_id="mail_spam_filter",
    schedule=BRONZE_MAIL,
    start_date=datetime(2002, 10, 10),
    catchup=False,
    max_active_runs=1,
    tags=["moulin", "mail", "personal-data"],
    default_args=default_args(PIPELINE),
)
def mail_spam_filter():
    @task(outlets=[Asset("moulin://silver/mail_messages")])
    def silver() -> dict:
        from moulin.usecases.mail import tasks

        return tasks.silver()

    @task
    def train(upstream: dict, run_id=None) -> dict:
        from moulin.usecases.mail import tasks

        return tasks.train(upstream, run_id)

    @task
    def report(trained: dict) -> dict:
        from moulin.usecases.mail import tasks

        return tasks.report(trained)

    @task
    def views(upstream: dict) -> dict:
        from moulin.usecases.mail import tasks

        return tasks.views(upstream)

    written = silver()
    report(train(written))
    views(written)


mail_spam_filter()
