"""The Spark stages of personal-data handling, registered for the job entry point:
``privacy_retention --ds <today> [--dry-run]`` and ``privacy_erase --request <request id>``.

``privacy_erase`` never takes the address on its command line (the job server
and ``spark-submit`` log it): the caller registers the request
(:func:`moulin.privacy.requests.register_erasure`, or :func:`moulin.privacy.tasks.erase`)
and passes its id; the stage reads the address from the request file and removes
that file once the erasure is proven complete."""

from __future__ import annotations

import argparse
import datetime as dt

from moulin.jobs.registry import StageContext, stage
from moulin.privacy.requests import erase_request
from moulin.privacy.views import build_views


def _retention(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="say what would be deleted")


def _erase(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--request", required=True, help="the id of a registered erasure request (never the address)"
    )


@stage("privacy_retention", arguments=_retention)
def privacy_retention(ctx: StageContext, args: argparse.Namespace) -> dict:
    """Delete partitions and raw drops older than their contract's retention, then vacuum."""
    from moulin.privacy.retention import apply_retention

    today = dt.date.fromisoformat(args.ds) if args.ds else None
    actions = apply_retention(
        ctx.spark,
        ctx.settings,
        today,
        dry_run=args.dry_run,
        say=lambda line: print(f"MOULIN-PROGRESS {line}", flush=True),
    )
    return {"dry_run": args.dry_run, "actions": actions}


@stage("privacy_erase", arguments=_erase)
def privacy_erase(ctx: StageContext, args: argparse.Namespace) -> dict:
    """Erase the data subject of a registered request everywhere and prove it by a scan of the warehouse."""

    return erase_request(
        ctx.spark, ctx.settings, args.request, say=lambda line: print(f"MOULIN-PROGRESS {line}", flush=True)
    )


@stage("privacy_views")
def privacy_views(ctx: StageContext, args: argparse.Namespace) -> dict:
    """Rebuild the analysts' views of the personal-data tables (pseudonyms and masked text only)."""

    views = build_views(
        ctx.spark, ctx.settings, say=lambda line: print(f"MOULIN-PROGRESS {line}", flush=True)
    )
    return {"views": views}
