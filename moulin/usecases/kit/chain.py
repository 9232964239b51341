"""A declared use case's chain from the shell, a line per step: the drop (``prepare``,
when the use case has one), each source landed and gated into bronze for each drop date,
each table step, each follow-on task, the training job in the training environment
(spark-submit), the use case's lines on the results, the report."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from moulin.jobs.submit import submit_job
from moulin.settings import Settings
from moulin.sources.land import land_source
from moulin.sources.spec import load_spec
from moulin.usecases.kit.generate import register_stages, results_lines, run_follow_on, run_step, train_args
from moulin.usecases.kit.parts import Declaration


def ingest(
    usecase: Declaration,
    spark,
    settings: Settings,
    ds: str | None = None,
    limit: int | None = None,
    say: Callable[[str], None] = print,
    run_ge: bool = True,
) -> dict[str, Any]:
    """The drop (``limit``: a sample), each source landed and gated for ``ds`` (default: the
    use case's ``drop_dates``, in order; none: the sources' bronze tables as they are), every
    table step, then every follow-on task; returns ``{sources: {name: {ds: {landing, bronze}}},
    gates, landing, bronze, steps, silver, follow_on}`` (``gates``: every gate's outcome in
    order; ``landing`` and ``bronze``: the first gate's; ``silver``: the last step's result)."""
    from moulin.sources.bronze import gate_landing

    dates = (ds,) if ds else usecase.drop_dates
    out: dict[str, Any] = {"sources": {}, "gates": [], "steps": {}, "follow_on": {}}
    if usecase.prepare is not None:
        say(f"drop{' ' if dates else ''}{', '.join(dates)}: {usecase.prepare(settings, limit)}")
    for source in usecase.sources:
        spec = load_spec(source)
        for date in dates:
            landed = land_source(settings, spec, date)
            say(
                f"land {source} {date}: {landed['status']}, {landed['rows']:,} rows in {len(landed['files'])} file(s)"
            )
            outcome = gate_landing(spark, settings, spec, date, run_ge=run_ge)
            say(f"bronze {outcome.line()}")
            out["sources"].setdefault(source, {})[date] = {"landing": landed, "bronze": outcome.as_dict()}
            out["gates"].append(outcome.as_dict())
            out.setdefault("landing", landed)  # the first gate's, as for a use case of one drop
            out.setdefault("bronze", outcome.as_dict())
    for step in usecase.steps:
        done = run_step(spark, settings, usecase, step)
        say(f"{step.name} {done['table']}: {done['rows']:,} {step.rows_called} {done['counts']}, v{done['version']}"
            + (f"; duplicates {done['duplicates']}" if "duplicates" in done else ""))  # fmt: skip
        out["steps"][step.name] = done
    out["silver"] = done if usecase.steps else None
    for task in usecase.follow_on:
        out["follow_on"][task.name] = run_follow_on(spark, settings, task)
        say(f"{task.name}: stage {task.stage} done")
    return out


def gate_totals(outcomes: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The bronze gates of several drops as one (rows summed, quarantine reasons merged),
    the report's data-quality figures; one gate as it is; none: None."""
    if len(outcomes) <= 1:
        return dict(outcomes[0]) if outcomes else None
    keys = ("rows_manifest", "rows_read", "rows_bronze", "rows_quarantined")
    total: dict[str, Any] = {k: sum(int(o.get(k) or 0) for o in outcomes) for k in keys}
    failures: dict[str, int] = {}
    for o in outcomes:
        for reason, n in (o.get("failures") or {}).items():
            failures[reason] = failures.get(reason, 0) + int(n)
    return {**total, "failures": failures}


def run_chain(
    usecase: Declaration,
    spark,
    settings: Settings,
    ds: str | None = None,
    limit: int | None = None,
    sample: float | None = None,
    models: tuple[str, ...] = (),
    epochs_scale: float = 1.0,
    say: Callable[[str], None] = print,
    run_ge: bool = True,
) -> dict[str, Any]:
    """:func:`ingest`, the training stage as a job in the training environment, the use
    case's lines on its results, then the report beside them (with the gates' accounting)."""
    from moulin.reporting.classification import report_beside_results

    start = time.monotonic()
    register_stages(usecase)
    data = ingest(usecase, spark, settings, ds, limit, say, run_ge)
    params = {"sample": sample, "models": models or usecase.models, "epochs_scale": epochs_scale}
    trained = submit_job(settings, usecase.train_stage, train_args(data["silver"]["version"], None, params))
    for line in results_lines(usecase, settings, trained["results_uri"]):
        say(line)
    report = report_beside_results(
        settings, trained["results_uri"], usecase.wording(), gate_totals(data["gates"])
    )
    say(f"recommended {trained['recommended']}; report {report}")
    say(f"{usecase.name} chain done in {time.monotonic() - start:.0f} s")
    return {**data, "training": trained, "report_uri": report}
