"""Great Expectations suites built from contracts, run on Spark DataFrames.

GE 1.24 with an ephemeral context and a Spark data source; the DataFrame is
passed as a batch parameter.  Each result is reduced to a plain dict so that
it can be logged, stored or compared with the row-level evaluation.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame

from moulin.contracts import Contract
from moulin.storage import WarehouseFS

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

#: Counts only: GE's sample of unexpected values would cost one Spark job per
#: expectation; the failing rows themselves are in the quarantine table.
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0}


@dataclass(frozen=True)
class GeValidation:
    """One GE validation: a summary per expectation, GE's own result and its Data Docs page."""

    results: list[dict[str, Any]]
    result_json: dict[str, Any]
    data_docs_html: str


def run_suite(df: DataFrame, contract: Contract) -> list[dict[str, Any]]:
    """Validate ``df`` against the GE suite of ``contract`` (see :func:`validate`); the summaries only."""
    return validate(df, contract).results


def validate(
    df: DataFrame, contract: Contract, run_name: str = "", rows: int | None = None, local_max_rows: int = 0
) -> GeValidation:
    """Validate ``df`` against the GE suite of ``contract``.

    ``results`` has one dict per GE expectation: ``name`` (the contract's
    expectation name), ``ge_type``, ``success``, ``unexpected_count`` and
    ``element_count``; ``result_json`` is GE's validation result and
    ``data_docs_html`` GE's Data Docs page of it (self-contained HTML: styles inlined,
    nothing loaded from a network).

    When the caller knows ``rows`` and it is at most ``local_max_rows``, GE runs
    with its pandas engine on a copy of ``df`` on the driver (an Arrow
    transfer): GE's Spark engine spends seconds per validation building and
    running one query per metric, whatever the size; above that size it runs on
    Spark.  Both engines count the same rows (the callers compare GE's counts
    with their own and stop on any difference).
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    pairs = contract.ge_expectations()
    if not pairs:
        return GeValidation([], {}, "")
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    local = rows is not None and rows <= local_max_rows
    data = None
    if local:
        import pyarrow as pa

        try:
            data = df.toPandas()
        except pa.ArrowInvalid:  # e.g. a timestamp outside pandas' range (year 102): Spark handles it
            local = False
    if local:
        source = context.data_sources.add_pandas(name=f"moulin_{contract.name}")
    else:
        source = context.data_sources.add_spark(name=f"moulin_{contract.name}")
        data = df
    asset = source.add_dataframe_asset(name=contract.name)
    batch_definition = asset.add_batch_definition_whole_dataframe("whole")
    suite = gx.ExpectationSuite(name=f"{contract.name}_contract")
    for _, expectation in pairs:
        suite.add_expectation(expectation)
    suite = context.suites.add(suite)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": data})
    result = batch.validate(suite, result_format=RESULT_FORMAT)
    out = []
    for item in result.results:
        config = item.expectation_config
        out.append(
            {
                "name": (config.meta or {}).get("moulin_name", config.type),
                "ge_type": config.type,
                "success": bool(item.success),
                "unexpected_count": int(item.result.get("unexpected_count") or 0),
                "element_count": int(item.result.get("element_count") or 0),
            }
        )
    return GeValidation(
        sorted(out, key=lambda r: r["name"]), result.to_json_dict(), _data_docs(result, run_name)
    )


def _data_docs(result, run_name: str) -> str:
    """GE's Data Docs page (validation results view) of ``result``, made to open styled
    with no network (:func:`moulin.quality.data_docs.offline_page`)."""
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    from moulin.quality.data_docs import offline_page

    if run_name:
        result.meta["run_id"] = {"run_name": run_name}
    return offline_page(DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(result)))


def store_validation(settings, name: str, key: str, validation: GeValidation, fs=None) -> dict[str, str]:
    """Write GE's validation result and its Data Docs page to
    ``quality/ge/<name>/<key>.json`` and ``.html``; returns their URIs (empty when GE did not run)."""
    import json

    if validation is None or not validation.result_json:
        return {}
    fs = fs or WarehouseFS(settings)
    base = settings.table_uri("quality", "ge", name)
    result_uri, docs_uri = f"{base}/{key}.json", f"{base}/{key}.html"
    fs.write_bytes(result_uri, json.dumps(validation.result_json, indent=1, default=str).encode() + b"\n")
    fs.write_bytes(docs_uri, validation.data_docs_html.encode())
    return {"ge_result_uri": result_uri, "data_docs_uri": docs_uri}


def latest_data_docs(settings, fs=None) -> dict[str, str]:
    """The newest Data Docs page of every table or source under ``quality/ge/``, by name."""

    fs = fs or WarehouseFS(settings)
    out = {}
    for folder in fs.list(settings.table_uri("quality", "ge")):
        pages = [f for f in fs.list(folder.uri) if f.uri.endswith(".html")]
        if pages:
            out[folder.uri.rstrip("/").rsplit("/", 1)[-1]] = max(pages, key=lambda f: f.uri).uri
    return dict(sorted(out.items()))
