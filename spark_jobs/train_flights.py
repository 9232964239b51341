"""Train and compare the flight-delay models on the gold feature table (stages C6/C8).

Runs in the TRAINING environment (petastorm, torch, pyarrow 14) on the driver and
the executors, e.g. through ``moulin.pipelines.submit.submit_job(settings,
"train_flights", [...], environment="training")``::

    spark-submit spark_jobs/train_flights.py --profile local --epochs 4 [--version N] [--sample 0.2]

Prints ``MOULIN-RESULT <json>`` (the summary of :func:`moulin.training.run.train_and_compare`).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="train_flights", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--profile", default=None, help="settings profile (default: $MOULIN_PROFILE or local)"
    )
    parser.add_argument(
        "--features-uri", default=None, help="feature table (default: the contract's gold table)"
    )
    parser.add_argument(
        "--version", type=int, default=None, help="Delta version to train on (default: latest)"
    )
    parser.add_argument("--run-id", default=None)
    parser.add_argument("--model-name", default="flight_delay")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--sample", type=float, default=None, help="fraction of rows kept in every split")
    parser.add_argument("--num-processes", type=int, default=2, help="DDP ranks (Spark tasks)")
    gpu = parser.add_mutually_exclusive_group()
    gpu.add_argument("--gpu", dest="use_gpu", action="store_true", default=None, help="NCCL on GPUs")
    gpu.add_argument("--cpu", dest="use_gpu", action="store_false", help="gloo on CPUs")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--no-early-stopping", dest="early_stopping", action="store_false")
    parser.add_argument(
        "--no-balance",
        dest="balance_classes",
        action="store_false",
        help="no class weighting (pos_weight / class_weight)",
    )
    parser.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples for the CIs")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from moulin.errors import MoulinError
    from moulin.pipelines.submit import emit_result
    from moulin.settings import load_settings
    from moulin.spark import build_spark_session
    from moulin.training.run import train_and_compare

    settings = load_settings(args.profile)
    python = settings.training_python_path
    os.environ["PYSPARK_PYTHON"] = python
    spark = build_spark_session(settings, "moulin-train-flights", {"spark.pyspark.python": python})
    try:
        summary = train_and_compare(
            spark,
            settings,
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
        )
    except MoulinError as exc:
        print(f"moulin train_flights: {exc}", file=sys.stderr, flush=True)
        return 2
    finally:
        spark.stop()
    summary.pop("leaderboard_rows", None)  # in the leaderboard table and results.json
    emit_result(summary)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # deltalake's native thread pools can abort the interpreter at exit (code 134,
    # delta-io/delta-rs#2184) after all the work is done: leave without tearing them down.
    gc.collect()
    os._exit(code)
