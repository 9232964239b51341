"""The Spark stage of the mail use case, registered for the job entry point
(``spark-submit spark_jobs/run_stage.py mail_silver``)."""

from __future__ import annotations

import argparse

from moulin.jobs.registry import StageContext, stage


@stage("mail_silver")
def mail_silver(ctx: StageContext, args: argparse.Namespace) -> dict:
    """Label, split and check the bronze messages into silver/mail_messages."""
    from moulin.usecases.mail.stages import silver_mail

    result = silver_mail(ctx.spark, ctx.settings)
    print(f"MOULIN-PROGRESS silver mail: {result['rows']} rows, v{result['version']}", flush=True)
    return result
