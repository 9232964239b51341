"""The Spark stage of any source, registered for the job entry point:
``spark-submit spark_jobs/run_stage.py source_bronze --source <name> --ds <date>``."""

from __future__ import annotations

import argparse

from moulin.jobs.registry import StageContext, stage
from moulin.sources.spec import load_spec


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, help="source name or spec file")
    parser.add_argument("--no-ge", dest="run_ge", action="store_false", help="skip Great Expectations")


@stage("source_bronze", arguments=_arguments)
def source_bronze(ctx: StageContext, args: argparse.Namespace) -> dict:
    """Gate the landed drop of a source into its bronze table and quarantine."""
    from moulin.sources.bronze import gate_landing

    outcome = gate_landing(ctx.spark, ctx.settings, load_spec(args.source), args.ds, run_ge=args.run_ge)
    print(f"MOULIN-PROGRESS bronze {outcome.line()}", flush=True)
    return outcome.as_dict()
