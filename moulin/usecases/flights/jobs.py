"""The Spark stages of the flights use case, registered for the job entry point
(``spark-submit spark_jobs/run_stage.py <stage> --ds ...``, see :mod:`moulin.jobs`).

Month stages take any day of the month as ``--ds``; ``silver_flights`` and
``gold_stats`` take a comma-separated list of months (one JVM for all).
"""

from __future__ import annotations

import argparse
import os
from typing import get_args

from moulin.identifiers import check_path_part
from moulin.jobs.registry import StageContext, stage
from moulin.training.loader_options import Reader
from moulin.usecases.flights.params import PARAMS


def _tables(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tables",
        default="bronze_flights,silver_flights,flight_features",
        help="comma-separated contract names of the tables to profile",
    )


def _month_list(args: argparse.Namespace) -> list[str]:
    return [d for d in (args.ds or "").split(",") if d]


def _months(results: list[dict]) -> dict:
    return results[0] if len(results) == 1 else {"months": results}


@stage("silver_flights")
def silver_flights(ctx: StageContext, args: argparse.Namespace) -> dict:
    """Silver flights of each month of --ds (comma-separated)."""
    from moulin.usecases.flights import stages

    return _months(stages.silver_flights(ctx.spark, ctx.settings, _month_list(args)))


@stage("gold_stats")
def gold_stats(ctx: StageContext, args: argparse.Namespace) -> dict:
    """Route, carrier and hour delay statistics of each month of --ds."""
    from moulin.usecases.flights import stages

    return _months(stages.gold_stats(ctx.spark, ctx.settings, _month_list(args)))


@stage("features")
def features(ctx: StageContext, args: argparse.Namespace) -> dict:
    """The feature table from silver flights up to the month of --ds."""
    from moulin.usecases.flights import stages

    return stages.features(ctx.spark, ctx.settings, args.ds)


@stage("profile_tables", arguments=_tables)
def profile_tables(ctx: StageContext, args: argparse.Namespace) -> dict:
    """Profile tables into quality/table_profiles."""
    from moulin.usecases.flights import stages

    tables = tuple(t for t in args.tables.split(",") if t)
    return stages.profile(ctx.spark, ctx.settings, args.ds, tables=tables)


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    d, t = PARAMS, PARAMS.train
    parser.add_argument("--features-uri", default=None, help="feature table (default: the contract's)")
    parser.add_argument(
        "--version", type=int, default=None, help="Delta version to train on (default: latest)"
    )
    parser.add_argument("--run-id", default=None)
    parser.add_argument("--model-name", default=d.model_name)
    parser.add_argument("--epochs", type=int, default=t.epochs)
    parser.add_argument("--sample", type=float, default=None, help="fraction of rows kept in every split")
    parser.add_argument("--num-processes", type=int, default=d.num_processes, help="DDP ranks (Spark tasks)")
    gpu = parser.add_mutually_exclusive_group()
    gpu.add_argument("--gpu", dest="use_gpu", action="store_true", default=None, help="NCCL on GPUs")
    gpu.add_argument("--cpu", dest="use_gpu", action="store_false", help="gloo on CPUs")
    parser.add_argument("--batch-size", type=int, default=t.batch_size)
    parser.add_argument("--learning-rate", type=float, default=t.learning_rate)
    parser.add_argument("--patience", type=int, default=t.patience)
    parser.add_argument("--no-early-stopping", dest="early_stopping", action="store_false")
    parser.add_argument(
        "--no-balance", dest="balance_classes", action="store_false", help="no class weighting"
    )
    parser.add_argument("--bootstrap", type=int, default=d.bootstrap, help="bootstrap resamples for the CIs")
    parser.add_argument("--seed", type=int, default=t.seed)
    parser.add_argument(
        "--reader",
        choices=get_args(Reader),
        default="moulin",
        help="what feeds the MLP's trainer: moulin's loader or Petastorm's make_batch_reader "
        "(docs/guides/petastorm.md)",
    )


@stage("train_flights", environment="training", arguments=_train_arguments)
def train_flights(ctx: StageContext, args: argparse.Namespace) -> dict:
    """Train and compare the flight-delay models on the feature table (training environment)."""
    import logging

    from moulin.training.run import train_and_compare
    from moulin.training.run_options import TrainingOptions

    # Both name the model folder (models/<model name>/<run id>): one safe folder name each.
    check_path_part(args.model_name, "--model-name")
    if args.run_id is not None:
        check_path_part(args.run_id, "--run-id")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    python = ctx.settings.training_python_path
    os.environ["PYSPARK_PYTHON"] = python
    ctx.spark_conf["spark.pyspark.python"] = python
    options = TrainingOptions(
        contract=PARAMS.features_contract,
        features_uri=args.features_uri,
        version=args.version,
        run_id=args.run_id,
        epochs=args.epochs,
        sample=args.sample,
        num_processes=args.num_processes,
        model_name=args.model_name,
        use_gpu=args.use_gpu,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        early_stopping=args.early_stopping,
        patience=args.patience,
        balance_classes=args.balance_classes,
        bootstrap_resamples=args.bootstrap,
        seed=args.seed,
        network=PARAMS.network,
        reader=args.reader,
    )
    summary = train_and_compare(ctx.spark, ctx.settings, options)
    summary.pop("leaderboard_rows", None)  # in the leaderboard table and results.json
    return summary
