"""The Spark stages of personal-data handling, registered for the job entry point:
``privacy_retention --ds <today> [--dry-run]`` and ``privacy_erase --subject <address>``."""

from __future__ import annotations

import argparse
import datetime as dt

from moulin.jobs.registry import StageContext, stage


def _retention(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="say what would be deleted")


def _erase(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subject", required=True, help="the subject's e-mail address")


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
    """Erase one data subject everywhere and prove it by a scan of the warehouse."""
    from moulin.privacy.erasure import erase_subject

    report = erase_subject(
        ctx.spark, ctx.settings, args.subject, say=lambda line: print(f"MOULIN-PROGRESS {line}", flush=True)
    )
    return report.as_dict()


@stage("privacy_views")
def privacy_views(ctx: StageContext, args: argparse.Namespace) -> dict:
    """Rebuild the analysts' views of the personal-data tables (pseudonyms and masked text only)."""
    from moulin.privacy.views import build_views

    views = build_views(
        ctx.spark, ctx.settings, say=lambda line: print(f"MOULIN-PROGRESS {line}", flush=True)
    )
    return {"views": views}
