"""The run summary of the flights chain: written by its last task, printed by the main command."""

from __future__ import annotations

import json

from moulin.settings import Settings
from moulin.storage import WarehouseFS


def summary_uri(settings: Settings) -> str:
    """Where the latest run summary of the flights chain lives."""
    return settings.table_uri("runs", "flights", "latest.json")


def write_run_summary(settings: Settings, summary: dict) -> str:
    """Store ``summary`` (atomically) as the latest run summary; return its URI."""
    uri = summary_uri(settings)
    WarehouseFS(settings).write_bytes(uri, json.dumps(summary, indent=2, default=str).encode())
    return uri


def read_run_summary(settings: Settings) -> dict:
    """The latest run summary (empty if no run finished yet)."""
    fs = WarehouseFS(settings)
    uri = summary_uri(settings)
    return json.loads(fs.read_bytes(uri)) if fs.exists(uri) else {}


def print_run_summary(settings: Settings, steps: list[dict], say=print) -> None:
    """Print where the tables, the model and the report are, and the test metrics."""
    summary = read_run_summary(settings)
    total = sum(s["seconds"] for s in steps)
    say(f"\nmoulin flights: {len(steps)} DAG runs in {total:.0f}s")
    if not summary:
        say(f"no run summary at {summary_uri(settings)}")
        return
    say("tables (Delta, version):")
    for name, info in sorted(summary.get("tables", {}).items()):
        say(f"  {name:<28} v{info.get('version')}  {info.get('uri')}")
    say("models (test set, 95% CI):")
    for model in summary.get("models", []):
        auc = model.get("roc_auc", {})
        say(
            f"  {model.get('model'):<22} ROC-AUC {auc.get('value', float('nan')):.3f} "
            f"[{auc.get('ci_low', float('nan')):.3f}, {auc.get('ci_high', float('nan')):.3f}]  {model.get('path', '')}"
        )
    say(f"leaderboard: {summary.get('leaderboard_uri')}")
    say(f"report:      {summary.get('report_uri')}")
    for source, uri in (summary.get("data_docs") or {}).items():
        say(f"data docs:   {source:<24} {uri}")
