"""The stages of the text use case, registered for the job entry point
(``spark-submit spark_jobs/run_stage.py sentiment_silver``)."""

from __future__ import annotations

import argparse

from moulin.jobs.registry import StageContext, stage
from moulin.usecases.sentiment.params import PARAMS


@stage("sentiment_silver")
def sentiment_silver(ctx: StageContext, args: argparse.Namespace) -> dict:
    """Label, identify and split the bronze posts into silver/sentiment_posts."""
    from moulin.usecases.sentiment.stages import silver_sentiment

    result = silver_sentiment(ctx.spark, ctx.settings)
    print(f"MOULIN-PROGRESS silver sentiment: {result['rows']} posts, v{result['version']}", flush=True)
    return result


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    from moulin.training.classifiers import add_train_arguments

    add_train_arguments(parser, PARAMS.models, PARAMS.num_processes)


@stage("sentiment_train", environment="training", arguments=_train_arguments)
def sentiment_train(ctx: StageContext, args: argparse.Namespace) -> dict:
    """Train and compare the sentiment classifiers on a pinned silver snapshot (training environment)."""
    from moulin.training.classifiers import run_training_stage
    from moulin.usecases.sentiment.training import suite

    return run_training_stage(ctx, args, suite(ctx.settings))
