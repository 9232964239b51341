"""The stages of the mail use case, registered for the job entry point
(``spark-submit spark_jobs/run_stage.py mail_silver|mail_train``)."""

from __future__ import annotations

import argparse

from moulin.jobs.registry import StageContext, stage
from moulin.usecases.mail.params import PARAMS
from moulin.usecases.mail.stages import silver_mail


@stage("mail_silver")
def mail_silver(ctx: StageContext, args: argparse.Namespace) -> dict:
    """Label, split and check the bronze messages into silver/mail_messages."""

    result = silver_mail(ctx.spark, ctx.settings)
    print(f"MOULIN-PROGRESS silver mail: {result['rows']} rows, v{result['version']}", flush=True)
    return result


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    from moulin.training.classifiers import add_train_arguments

    add_train_arguments(parser, PARAMS.models, num_processes=1)


@stage("mail_train", environment="training", arguments=_train_arguments)
def mail_train(ctx: StageContext, args: argparse.Namespace) -> dict:
    """Train and compare the spam filters on a pinned silver version (training environment)."""
    from moulin.training.classifiers import run_training_stage
    from moulin.usecases.mail.training import suite

    return run_training_stage(ctx, args, suite(ctx.settings))
