"""The stages of the image use case, registered for the job entry point
(``spark-submit spark_jobs/run_stage.py fashion_silver``)."""

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
    """Train and compare the fashion classifiers on a pinned silver snapshot (training environment)."""
    from moulin.training.classifiers import run_training_stage
    from moulin.usecases.fashion.training import suite

    return run_training_stage(ctx, args, suite(ctx.settings))
