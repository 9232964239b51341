"""The stages of the text use case, registered for the job entry point
(``spark-submit moulin/jobs/entry.py sentiment_silver``)."""

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
    import logging
    import os

    from moulin.usecases.sentiment.training import train_sentiment

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    python = ctx.settings.training_python_path
    os.environ["PYSPARK_PYTHON"] = python
    ctx.spark_conf["spark.pyspark.python"] = python
    return train_sentiment(
        ctx.spark,
        ctx.settings,
        version=args.version,
        run_id=args.run_id,
        sample=args.sample,
        models=tuple(m for m in args.models.split(",") if m),
        epochs_scale=args.epochs_scale,
        num_processes=args.num_processes,
        say=lambda line: print(f"MOULIN-PROGRESS {line}", flush=True),
    )
