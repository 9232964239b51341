"""A declared use case's chain from the shell, a line per step: the drop (``prepare``,
when the use case has one), each source landed and gated into bronze for ``ds``, each
table step, the training job in the training environment (spark-submit), the report."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from moulin.jobs.submit import submit_job
from moulin.settings import Settings
from moulin.sources.land import land_source
from moulin.sources.spec import load_spec
from moulin.usecases.kit.generate import register_stages, run_step, train_args
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
    use case's ``default_ds``; none: the sources' bronze tables as they are), then every
    table step; returns ``{sources: {name: {landing, bronze}}, landing, bronze, steps, silver}``
    (``landing`` and ``bronze``: the first source's; ``silver``: the last step's result)."""
    from moulin.sources.bronze import gate_landing

    ds = ds or usecase.default_ds or None
    out: dict[str, Any] = {"sources": {}, "steps": {}}
    if usecase.prepare is not None:
        say(f"drop {ds}: {usecase.prepare(settings, limit)}")
    if ds:
        for source in usecase.sources:
            spec = load_spec(source)
            landed = land_source(settings, spec, ds)
            say(
                f"land {source} {ds}: {landed['status']}, {landed['rows']:,} rows in {len(landed['files'])} file(s)"
            )
            outcome = gate_landing(spark, settings, spec, ds, run_ge=run_ge)
            say(f"bronze {outcome.line()}")
            out["sources"][source] = {"landing": landed, "bronze": outcome.as_dict()}
            out.setdefault("landing", landed)  # the first source's, as for a use case of one source
            out.setdefault("bronze", outcome.as_dict())
    for step in usecase.steps:
        done = run_step(spark, settings, usecase, step)
        say(f"{step.name} {done['table']}: {done['rows']:,} {step.rows_called} {done['counts']}, v{done['version']}"
            + (f"; duplicates {done['duplicates']}" if "duplicates" in done else ""))  # fmt: skip
        out["steps"][step.name] = done
    out["silver"] = done if usecase.steps else None
    return out


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
) -> dict[str, Any]:
    """:func:`ingest`, the training stage as a job in the training environment, then the
    report beside its results (with the first source's gate accounting)."""
    from moulin.reporting.classification import report_beside_results

    start = time.monotonic()
    register_stages(usecase)
    data = ingest(usecase, spark, settings, ds, limit, say)
    params = {"sample": sample, "models": models or usecase.models, "epochs_scale": epochs_scale}
    trained = submit_job(settings, usecase.train_stage, train_args(data["silver"]["version"], None, params))
    report = report_beside_results(settings, trained["results_uri"], usecase.wording(), data.get("bronze"))
    say(f"recommended {trained['recommended']}; report {report}")
    say(f"{usecase.name} chain done in {time.monotonic() - start:.0f} s")
    return {**data, "training": trained, "report_uri": report}
