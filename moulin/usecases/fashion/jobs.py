"""The stages of the image use case, registered for the job entry point
(``spark-submit moulin/jobs/entry.py fashion_silver``)."""

from __future__ import annotations

import argparse

from moulin.jobs.registry import StageContext, stage
from moulin.usecases.fashion.params import PARAMS


@stage("fashion_silver")
def fashion_silver(ctx: StageContext, args: argparse.Namespace) -> dict:
    """Label, split and hash the bronze images into silver/fashion_images."""
    from moulin.usecases.fashion.stages import silver_fashion

    result = silver_fashion(ctx.spark, ctx.settings)
    print(f"MOULIN-PROGRESS silver fashion: {result['rows']} images, v{result['version']}", flush=True)
    return result


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    from moulin.training.classifiers import add_train_arguments

    add_train_arguments(parser, PARAMS.models, PARAMS.num_processes)


@stage("fashion_train", environment="training", arguments=_train_arguments)
def fashion_train(ctx: StageContext, args: argparse.Namespace) -> dict:
    """Train and compare the image classifiers on a pinned silver snapshot (training environment)."""
    import logging
    import os

    from moulin.usecases.fashion.training import train_fashion

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    python = ctx.settings.training_python_path
    os.environ["PYSPARK_PYTHON"] = python
    ctx.spark_conf["spark.pyspark.python"] = python
    return train_fashion(
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
