"""What the Spark job entry point of every moulin stage does: parse a stage's
arguments and run it from the registry.

``spark-submit`` is given ``spark_jobs/run_stage.py`` (:data:`moulin.jobs.submit.ENTRY_POINT`),
which calls :func:`main` and :func:`leave`::

    spark-submit spark_jobs/run_stage.py <stage> [--profile P] --ds YYYY-MM-DD [stage options]

Prints ``MOULIN-RESULT <json>`` with the stage's result.  Exit codes: 0 done,
3 a deterministic data error (contract, quality gate, schema: rerunning will
not help), 1 any other failure (may be transient).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import traceback

from moulin.errors import DATA_ERROR_EXIT_CODE, DataError, MoulinError
from moulin.jobs.registry import StageContext, get_stage, stages
from moulin.jobs.result_line import emit_result
from moulin.settings import load_settings


def build_parser():
    """The parser: one sub-command per registered stage."""

    parser = argparse.ArgumentParser(prog="moulin-job", description="run one registered moulin stage")
    sub = parser.add_subparsers(dest="stage", required=True)
    for name, spec in stages().items():
        p = sub.add_parser(name, help=spec.help, description=spec.help)
        p.add_argument("--profile", default=None, help="settings profile (default: $MOULIN_PROFILE or local)")
        p.add_argument("--ds", "--date", dest="ds", default=None, help="logical date YYYY-MM-DD")
        if spec.arguments is not None:
            spec.arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the stage named in ``argv``; returns the exit code."""

    args = build_parser().parse_args(argv)
    spec = get_stage(args.stage)
    ctx = StageContext(load_settings(args.profile), spec.name)
    try:
        result = spec.function(ctx, args)
    except DataError as exc:
        print(f"moulin {spec.name}: data error: {exc}", file=sys.stderr, flush=True)
        return DATA_ERROR_EXIT_CODE
    except MoulinError as exc:
        print(f"moulin {spec.name}: {exc}", file=sys.stderr, flush=True)
        return 1
    except Exception:
        traceback.print_exc()
        return 1
    finally:
        ctx.close()
    emit_result(result)
    return 0


def leave(code: int) -> None:
    """End the job's process with exit code ``code`` once its output is flushed.

    deltalake's native thread pools can abort the interpreter at exit (code 134,
    delta-io/delta-rs#2184) after all the work is done: the process leaves
    without tearing them down.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    gc.collect()
    os._exit(code)
