"""The report of a training run, written beside its results (``report.html``)."""

from __future__ import annotations

import json

from moulin.settings import Settings
from moulin.storage import WarehouseFS


def quality_from_gate(outcome: dict | None) -> dict | None:
    """The bronze gate's accounting as the report shows it."""
    if not outcome:
        return None
    return {k: outcome.get(k) for k in ("rows_manifest", "rows_read", "rows_bronze", "rows_quarantined")} | {
        "quarantine_reasons": outcome.get("failures", {})
    }


def report_from_results(settings: Settings, results_uri: str, gate: dict | None = None) -> str:
    """Render the HTML report of ``results_uri``; returns the report's URI."""
    from moulin.usecases.fashion.report import write_report

    results = json.loads(WarehouseFS(settings).read_bytes(results_uri))
    uri = results_uri.rsplit("/", 1)[0] + "/report.html"
    return write_report(results, uri, settings, quality_from_gate(gate))
