"""Task bodies of the source DAGs built by ``dags/sources.py``: land the drop, then gate
it into bronze with a Spark job.  Data errors fail the task without retries."""

from __future__ import annotations

import time

from moulin.jobs.submit import submit_job
from moulin.ops.faultpoints import fault_point
from moulin.settings import Settings, load_settings
from moulin.sources.land import land_source
from moulin.sources.spec import load_spec

PROGRESS = "MOULIN-PROGRESS"


def land(source: str, ds: str, settings: Settings | None = None, redelivery: bool = False) -> dict:
    """Land the drop of ``source`` for ``ds`` (in the task's process); ``redelivery``: the
    operator says files already landed under another date are redelivered on purpose."""

    settings = settings or load_settings()
    start = time.monotonic()
    result = land_source(
        settings,
        load_spec(source),
        ds,
        say=lambda line: print(f"{PROGRESS} {line}"),
        redelivery=redelivery,
    )
    seconds = round(time.monotonic() - start, 1)
    print(
        f"{PROGRESS} land {source} {seconds}s ds={ds}: {result['status']}, {result['rows']} rows", flush=True
    )
    fault_point(settings, f"after-land_{source}")  # landed, not yet reported (fault drills)
    return {**result, "seconds": seconds}


def bronze(source: str, ds: str, settings: Settings | None = None) -> dict:
    """Gate the landed drop into bronze and quarantine (Spark job ``source_bronze``)."""

    settings = settings or load_settings()
    start = time.monotonic()
    result = submit_job(settings, "source_bronze", ["--source", source, "--ds", ds])
    fault_point(settings, f"after-bronze_{source}")  # committed, not yet reported (fault drills)
    return {**result, "seconds": round(time.monotonic() - start, 1)}


def asset_extra(result: dict) -> dict:
    """What a bronze task tells the DAGs its Asset event triggers: the logical date, the
    table and the Delta version it wrote."""
    return {"ds": result.get("ds"), "table": result.get("table"), "version": result.get("bronze_version")}
