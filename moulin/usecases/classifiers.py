"""What the classification use cases (images, text) share beyond their data: the
training job's task body, the report task and the shell chain.  Each use case names
its training stage, its report wording and its ingest function."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from moulin.orchestration import data_errors_fail_the_task
from moulin.reporting.classification import ClassificationWording
from moulin.settings import Settings, load_settings


def train_args(version: int, run_id: str | None = None, params: dict | None = None) -> list[str]:
    """Arguments of a training stage (``moulin.training.classifiers.add_train_arguments``)."""
    params = params or {}
    args = ["--version", str(int(version))]
    if run_id:
        args += ["--run-id", run_id]
    if params.get("sample"):
        args += ["--sample", str(float(params["sample"]))]
    if params.get("models"):
        models = params["models"]
        args += ["--models", models if isinstance(models, str) else ",".join(models)]
    if params.get("epochs_scale"):
        args += ["--epochs-scale", str(float(params["epochs_scale"]))]
    return args


def train_task(
    stage: str, upstream: dict, run_id: str, params: dict | None = None, settings: Settings | None = None
) -> dict:
    """Task body: train and compare on the silver version the upstream task wrote
    (training environment); a retry with the same run id resumes from the checkpoints."""
    from moulin.jobs.submit import submit_job

    with data_errors_fail_the_task():
        return submit_job(settings or load_settings(), stage, train_args(upstream["version"], run_id, params))


def report_task(trained: dict, wording: ClassificationWording, settings: Settings | None = None) -> dict:
    """Task body: the HTML report beside the run's results."""
    from moulin.reporting.classification import report_beside_results

    with data_errors_fail_the_task():
        uri = report_beside_results(settings or load_settings(), trained["results_uri"], wording)
    print(f"MOULIN-PROGRESS report {uri}", flush=True)
    return {"report_uri": uri, "recommended": trained["recommended"]}


def run_chain(
    name: str,
    ingest: Callable[..., dict],
    train_stage: str,
    wording: ClassificationWording,
    spark,
    settings: Settings,
    limit: int | None = None,
    sample: float | None = None,
    models: tuple[str, ...] = (),
    epochs_scale: float = 1.0,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The whole chain from the shell: ingest to silver, training as the ``train_stage``
    job in the training environment (spark-submit), then the report beside its results."""
    from moulin.jobs.submit import submit_job
    from moulin.reporting.classification import report_beside_results

    start = time.monotonic()
    data = ingest(spark, settings, limit, say)
    params = {"sample": sample, "models": models, "epochs_scale": epochs_scale}
    trained = submit_job(settings, train_stage, train_args(data["silver"]["version"], None, params))
    report = report_beside_results(settings, trained["results_uri"], wording, data["bronze"])
    say(f"report {report}")
    say(f"{name} chain done in {time.monotonic() - start:.0f} s")
    return {**data, "training": trained, "report_uri": report}


def ingest_chain(
    spark,
    settings: Settings,
    source: str,
    ds: str,
    prepare: Callable[[], str],
    silver: Callable[[Any, Settings], dict],
    noun: str,
    say: Callable[[str], None] = print,
    run_ge: bool = True,
) -> dict[str, Any]:
    """A file source's drop (``prepare()`` writes it and describes it) -> landing ->
    bronze (the gate) -> silver, a line per step."""
    from moulin.sources.bronze import gate_landing
    from moulin.sources.land import land_source
    from moulin.sources.spec import load_spec

    spec = load_spec(source)
    say(f"drop {ds}: {prepare()}")
    landed = land_source(settings, spec, ds)
    say(f"land {ds}: {landed['status']}, {landed['rows']:,} {noun} in {len(landed['files'])} file(s)")
    outcome = gate_landing(spark, settings, spec, ds, run_ge=run_ge)
    say(f"bronze {outcome.line()}")
    rebuilt = silver(spark, settings)
    say(f"silver {rebuilt['table']}: {rebuilt['rows']:,} {noun} {rebuilt['counts']}, v{rebuilt['version']}"
        + (f"; duplicates {rebuilt['duplicates']}" if "duplicates" in rebuilt else ""))  # fmt: skip
    return {"landing": landed, "bronze": outcome.as_dict(), "silver": rebuilt}
