"""The shared body of the ``spark_jobs/<stage>.py`` entry points of the flights stages.

A job parses ``--profile``, ``--date`` (logical date or month) and a few stage
options, builds the Spark session from the profile (only for stages that need
one), calls the stage and prints ``MOULIN-RESULT <json>`` (see
:mod:`moulin.pipelines.submit`).  Exit codes: 0 success, 2 a MoulinError.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys

SPARK_STAGES = ("bronze_flights", "bronze_dimensions", "silver_flights", "gold_stats", "features", "profile")
LOCAL_STAGES = ("ingest_flights_month", "ingest_dimensions")
MULTI_MONTH_STAGES = ("silver_flights", "gold_stats")


def parse_args(stage: str, argv: list[str] | None = None) -> argparse.Namespace:
    """Arguments of the job of ``stage``."""
    parser = argparse.ArgumentParser(prog=stage, description=f"moulin flights stage {stage}")
    parser.add_argument(
        "--profile", default=None, help="settings profile (default: $MOULIN_PROFILE or local)"
    )
    parser.add_argument(
        "--date",
        required=True,
        help="logical date YYYY-MM-DD (month stages: any day of the month; "
        "silver_flights and gold_stats take a comma-separated list of months)",
    )
    if stage == "ingest_flights_month":
        parser.add_argument("--sample", type=int, default=None, help="keep N flights of the month")
    if stage in ("bronze_flights", "bronze_dimensions"):
        parser.add_argument("--no-ge", dest="run_ge", action="store_false", help="skip Great Expectations")
    if stage == "ingest_dimensions":
        parser.add_argument("--planes-limit", type=int, default=None)
    if stage == "profile":
        parser.add_argument(
            "--tables",
            default="bronze_flights,silver_flights,flight_features",
            help="comma-separated contract names of the tables to profile",
        )
    return parser.parse_args(argv)


def run(stage: str, argv: list[str] | None = None) -> int:
    """Run ``stage`` from command-line arguments; returns the exit code."""
    if stage not in SPARK_STAGES + LOCAL_STAGES:
        raise SystemExit(f"unknown stage {stage!r}")
    args = parse_args(stage, argv)
    from moulin.errors import MoulinError
    from moulin.flights import stages
    from moulin.pipelines.submit import emit_result
    from moulin.settings import load_settings

    settings = load_settings(args.profile)
    function = getattr(stages, stage)
    spark = None
    try:
        if stage == "ingest_flights_month":
            result = function(settings, args.date, sample=args.sample)
        elif stage == "ingest_dimensions":
            result = function(settings, args.date, planes_limit=args.planes_limit)
        else:
            from moulin.spark import build_spark_session

            spark = build_spark_session(settings, f"moulin-flights-{stage}")
            extra: dict = {}
            if stage.startswith("bronze"):
                extra["run_ge"] = args.run_ge
            if stage == "profile":
                extra["tables"] = tuple(t for t in args.tables.split(",") if t)
            if stage in MULTI_MONTH_STAGES:
                # One job for several months: one JVM start instead of one per month.
                results = [function(spark, settings, d, **extra) for d in args.date.split(",") if d]
                result = results[0] if len(results) == 1 else {"months": results}
            else:
                result = function(spark, settings, args.date, **extra)
    except MoulinError as exc:
        print(f"moulin {stage}: {exc}", file=sys.stderr, flush=True)
        return 2
    finally:
        if spark is not None:
            spark.stop()
    emit_result(result)
    return 0


def main_exit(stage: str) -> None:
    """Run the stage and leave without tearing down deltalake's native thread pools
    (they can abort the interpreter at exit with code 134, delta-io/delta-rs#2184)."""
    code = run(stage)
    sys.stdout.flush()
    sys.stderr.flush()
    gc.collect()
    os._exit(code)
