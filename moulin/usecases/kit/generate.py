"""What the kit generates from a use case's :class:`~moulin.usecases.kit.parts.Declaration` for the
job entry point and for Airflow: the registered stages (one per table step, one training
stage in the training environment) and the task bodies that submit them (and the
follow-on tasks' stages, registered elsewhere)."""

from __future__ import annotations

import argparse
from typing import Any

from moulin.jobs.entry import build_parser
from moulin.jobs.registry import StageContext, get_stage, stage
from moulin.jobs.submit import submit_job
from moulin.settings import Settings, load_settings
from moulin.storage import WarehouseFS
from moulin.training.classification_results import ClassificationResults
from moulin.usecases.kit.parts import Declaration, FollowOnTask, TableStep

#: The latest declaration of each use case whose stages are registered, by name: the
#: registered functions look their use case up here when they run, so a use case
#: discovered again (its file imported anew) keeps its stages.
_REGISTERED: dict[str, Declaration] = {}
_FUNCTIONS: dict[str, tuple] = {}


def run_step(spark, settings: Settings, usecase: Declaration, step: TableStep) -> dict[str, Any]:
    """Rebuild ``step.target`` from ``step.source`` (checked, idempotent, rows accounted)."""
    from moulin.quality.rebuild import Rebuild, rebuild

    spec = Rebuild(
        source=step.source,
        target=step.target,
        transform=step.transform,
        rows_called=step.rows_called,
        count_by=step.count_by,
        pipeline=usecase.pipeline,
        parameters=step.parameters,
        check=step.check,
        summaries=step.summaries,
    )
    return rebuild(spark, settings, spec)


def run_follow_on(spark, settings: Settings, task: FollowOnTask) -> dict[str, Any]:
    """Run the registered stage of ``task`` in this process's Spark session (the shell chain)."""
    spec = get_stage(task.stage)
    args = build_parser().parse_args([task.stage, *task.arguments])
    return spec.function(StageContext(settings, spec.name, session=spark), args)


def results_lines(usecase: Declaration, settings: Settings, results_uri: str) -> list[str]:
    """The use case's lines on the results at ``results_uri`` (none when it declares none)."""
    if usecase.results_lines is None:
        return []

    return usecase.results_lines(
        ClassificationResults.from_json(WarehouseFS(settings).read_bytes(results_uri))
    )


def _step_stage(name: str, step_name: str):
    def run(ctx: StageContext, args: argparse.Namespace) -> dict:
        usecase = _REGISTERED[name]
        step = next(s for s in usecase.steps if s.name == step_name)
        result = run_step(ctx.spark, ctx.settings, usecase, step)
        print(
            f"MOULIN-PROGRESS {step.target}: {result['rows']} {step.rows_called}, v{result['version']}",
            flush=True,
        )
        return result

    return run


def _train_stage(name: str):
    def arguments(parser: argparse.ArgumentParser) -> None:
        from moulin.training.classifiers import add_train_arguments

        usecase = _REGISTERED[name]
        add_train_arguments(parser, usecase.models, usecase.num_processes)

    def train(ctx: StageContext, args: argparse.Namespace) -> dict:
        from moulin.training.classifiers import run_training_stage

        return run_training_stage(ctx, args, _REGISTERED[name].suite(ctx.settings))

    train.__doc__ = f"Train and compare the {name} classifiers on a pinned snapshot (training environment)."
    return train, arguments


def register_stages(usecase: Declaration) -> None:
    """Register ``usecase``'s stages (again: the same functions, now running this declaration)."""
    _REGISTERED[usecase.name] = usecase
    for step in usecase.steps:
        stage_name = usecase.stage_name(step.name)
        if stage_name not in _FUNCTIONS:
            _FUNCTIONS[stage_name] = (_step_stage(usecase.name, step.name),)
            _FUNCTIONS[stage_name][0].__doc__ = f"Rebuild {step.target} from {step.source} ({usecase.name})."
        stage(stage_name)(_FUNCTIONS[stage_name][0])
    if usecase.train_stage not in _FUNCTIONS:
        _FUNCTIONS[usecase.train_stage] = _train_stage(usecase.name)
    train, arguments = _FUNCTIONS[usecase.train_stage]
    stage(usecase.train_stage, environment="training", arguments=arguments)(train)


# ---- task bodies (run in the Airflow worker; Spark work is submitted as the stages above)
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


def step_task(usecase: Declaration, step: TableStep, settings: Settings | None = None) -> dict:
    """Task body: the table step's stage, submitted (a data error fails the task at once)."""

    register_stages(usecase)
    return submit_job(settings or load_settings(), usecase.stage_name(step.name), [])


def follow_on_task(usecase: Declaration, task: FollowOnTask, settings: Settings | None = None) -> dict:
    """Task body: the follow-on task's registered stage, submitted."""

    register_stages(usecase)
    return submit_job(settings or load_settings(), task.stage, list(task.arguments))


def train_task(
    usecase: Declaration,
    upstream: dict,
    run_id: str,
    params: dict | None = None,
    settings: Settings | None = None,
) -> dict:
    """Task body: train and compare on the version of the last table the upstream task wrote
    (training environment); a retry with the same run id resumes from the checkpoints."""

    register_stages(usecase)
    return submit_job(
        settings or load_settings(), usecase.train_stage, train_args(upstream["version"], run_id, params)
    )


def report_task(usecase: Declaration, trained: dict, settings: Settings | None = None) -> dict:
    """Task body: the HTML report beside the run's results; the use case's lines on the
    results and the report's URI in the task's log."""
    from moulin.reporting.classification import report_beside_results

    settings = settings or load_settings()
    uri = report_beside_results(settings, trained["results_uri"], usecase.wording())
    for line in [*results_lines(usecase, settings, trained["results_uri"]), f"report {uri}"]:
        print(f"MOULIN-PROGRESS {line}", flush=True)
    return {"report_uri": uri, "recommended": trained["recommended"]}
