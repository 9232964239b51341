"""One training run: the feature table's snapshot -> the declared models (networks by
DDP, baselines on the driver; :data:`~moulin.training.tabular_models.FLIGHTS_MODELS`)
-> test metrics -> model files, results JSON and leaderboard rows.

Layout under ``settings.table_uri("models", model_name, run_id)`` (both safe folder
names, :func:`moulin.identifiers.check_path_part`)::

    mlp/model.pt                  weights + preprocessing + config + Delta version (torch)
    mlp/model.json                the same without weights, readable
    mlp/checkpoints/epoch-NNN.pt  one per epoch (weights, optimizer, epoch metrics)
    logreg/model.skops            {"model": estimator, "preprocessor": dict, ...} (skops, no pickle)
    hist_gbt/model.skops
    results.json                  metrics, curves, reliability tables, slices

A run is a training of one identity: its :func:`~moulin.training.checkpoints.fingerprint`
digests the snapshot (table URI and version), the sample, the feature contract and
the fitted encoding (vocabularies), the network and every hyper-parameter, and the
code version.  Run again with the same run id (an Airflow Clear), a run whose
``results.json`` and leaderboard rows already record that identity returns what
they hold and writes nothing; otherwise it trains (resuming only checkpoints of
the same fingerprint) and records anew: ``results.json`` and the leaderboard rows
it appends (idempotency key: run id and fingerprint) always describe the same
training.
"""

from __future__ import annotations

import dataclasses
import logging
import time

from moulin.settings import Settings
from moulin.storage import StorageError, WarehouseFS
from moulin.training import TrainingError
from moulin.training import leaderboard as lb
from moulin.training.binary_results import (
    choose_and_compare,
    evaluate_fitted,
    leaderboard_rows,
    model_summary,
    training_results,
)
from moulin.training.compared_models import ResultsError
from moulin.training.model_entries import Fitted
from moulin.training.prepared_run import PreparedRun, prepare_run
from moulin.training.run_options import TrainingOptions
from moulin.training.tabular_models import FLIGHTS_MODELS
from moulin.training.training_results import METRIC_NAMES, ModelResult, TrainingResults

log = logging.getLogger("moulin.training")


def _recorded_results(fs: WarehouseFS, run: PreparedRun) -> TrainingResults | None:
    """The run's ``results.json`` if it records this training (the run's fingerprint)
    and the leaderboard holds that record's rows; else None."""
    places = run.places
    try:
        if not fs.exists(places.results_uri):
            return None
        results = TrainingResults.from_json(fs.read_bytes(places.results_uri), places.results_uri)
    except (StorageError, OSError, ResultsError) as exc:  # unreadable: train and record again
        log.warning("cannot read %s (%s): training again", places.results_uri, exc)
        return None
    board = results.leaderboard or {}
    if results.fingerprint != run.identity or not board.get("app_version"):
        return None
    app = lb.app_id(places.run_id, run.identity)
    if lb.recorded_version(places.leaderboard_uri, app) < int(board["app_version"]):
        return None  # stopped between results.json and the leaderboard: record again
    return results


def _recorded_model(m: ModelResult) -> dict:
    """A model of a recorded ``results.json`` as the summary gives it."""
    entry = {}
    for name in METRIC_NAMES:
        metric = m.metric(name)
        entry[name] = metric.value
        entry[f"{name}_ci"] = (metric.ci_low, metric.ci_high)
    entry["base_rate"] = m.test.get("base_rate")
    return entry | {
        "threshold": m.threshold,
        "train_seconds": m.train_seconds,
        "model_uri": m.model_uri,
    }


def _recorded_run(fs: WarehouseFS, run: PreparedRun) -> dict | None:
    """The summary of the run as recorded, when it recorded this training; else None."""
    results = _recorded_results(fs, run)
    if results is None:
        return None
    import pandas as pd
    from deltalake import DeltaTable

    def utc(value) -> pd.Timestamp:
        stamp = pd.Timestamp(value)
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")

    places = run.places
    created = utc(results.created_at)
    rows = [
        r
        for r in lb.read(places.leaderboard_uri, run.settings)
        if r["run_id"] == places.run_id and utc(r["created_at"]) == created
    ]
    lb_version = int(DeltaTable(places.leaderboard_uri).version())
    network = next((m for m in results.models if m.training is not None), None)
    return {
        "run_id": places.run_id,
        "features_uri": results.features_uri,
        "version": results.features_version,
        "recommended": results.best_model,
        "rows": dict(results.split_rows),
        "models": {m.model: _recorded_model(m) for m in results.models},
        "paths": {
            "model_dir": results.model_dir,
            "mlp_model": network.model_uri if network else None,
            "checkpoints": list((network.training if network else {}).get("checkpoints") or []),
            "results_json": places.results_uri,
            "leaderboard": places.leaderboard_uri,
        },
        "leaderboard_rows": rows,
        "leaderboard_version": lb_version,
        "fingerprint": run.identity,
        "already_recorded": True,
    }


def train_and_compare(spark, settings: Settings, options: TrainingOptions) -> dict:
    """Train the declared models (``options.models``: all of them by default) on one
    pinned snapshot of the feature table, evaluate them on its test split and record
    them: the model files, ``results.json`` and the leaderboard rows.  Returns a summary:
    ``{"run_id", "features_uri", "version", "recommended", "rows", "models": {name: test
    metrics}, "paths": {...}, "leaderboard_rows": [...], "leaderboard_version",
    "fingerprint", "already_recorded"}``.

    Run again with the same ``run_id`` and nothing it depends on changed (its
    fingerprint, see the module), a run already recorded returns its recorded summary
    (``already_recorded``) and trains and writes nothing.  With anything changed it
    trains from epoch 1, replaces the run's files and appends its own leaderboard rows.
    """
    if spark is None:
        raise TrainingError("train_and_compare needs a Spark session (TorchDistributor runs on it)")
    try:
        entries = FLIGHTS_MODELS.chosen(options.models)
    except ValueError as exc:
        raise TrainingError(str(exc)) from exc
    started = time.time()
    run = prepare_run(spark, settings, options, {e.name: dict(e.options) for e in entries})
    log.info(
        "training on %s version %s (%s)",
        run.places.features_uri,
        run.data.snapshot.version,
        run.data.snapshot.rows,
    )
    fs = WarehouseFS(settings)
    recorded = _recorded_run(fs, run)
    if recorded is not None:
        log.info(
            "run %s (fingerprint %s) is recorded already: nothing to train", run.places.run_id, run.identity
        )
        return recorded
    fitted = [entry.fit(entry, run) for entry in entries]
    evaluated = {f.name: evaluate_fitted(run, f) for f in fitted}
    for f in fitted:
        f.save(fs, evaluated[f.name]["threshold"])
    results = training_results(run, evaluated, choose_and_compare(run, evaluated, fitted))
    rows = leaderboard_rows(run, evaluated)
    lb_version = _record(fs, run, results, rows, started)
    log.info(
        "run %s done in %.1fs: %s",
        run.places.run_id,
        time.time() - started,
        {n: round(r["test"]["roc_auc"], 4) for n, r in evaluated.items()},
    )
    return _summary(run, results, evaluated, fitted) | {
        "leaderboard_rows": rows,
        "leaderboard_version": lb_version,
        "already_recorded": False,
    }


def _record(
    fs: WarehouseFS, run: PreparedRun, results: TrainingResults, rows: list[dict], started: float
) -> int:
    """Write ``results.json`` with its leaderboard record, then append the rows; the
    leaderboard's version.  A training recorded before and replaced since by another one
    in results.json (same run id) is recorded again, a later version."""
    places = run.places
    app_id = lb.app_id(places.run_id, run.identity)
    app_version = lb.recorded_version(places.leaderboard_uri, app_id) + 1
    results = dataclasses.replace(
        results,
        leaderboard={"uri": places.leaderboard_uri, "app_id": app_id, "app_version": app_version},
        total_seconds=time.time() - started,
    )
    fs.write_bytes(places.results_uri, results.to_json())
    return lb.append(
        places.leaderboard_uri, rows, run_id=places.run_id, fingerprint=run.identity, app_version=app_version
    )


def _summary(
    run: PreparedRun, results: TrainingResults, evaluated: dict[str, dict], fitted: list[Fitted]
) -> dict:
    """The summary of a run just trained (without its leaderboard rows and version)."""
    network = next((f for f in fitted if f.training is not None), None)
    return {
        "run_id": run.places.run_id,
        "features_uri": run.places.features_uri,
        "version": run.data.snapshot.version,
        "recommended": results.best_model,
        "rows": run.data.rows,
        "models": {name: model_summary(r) for name, r in evaluated.items()},
        "paths": {
            "model_dir": run.places.model_dir,
            "mlp_model": network.model_uri if network else None,
            "checkpoints": list(network.training["checkpoints"]) if network else [],
            "results_json": run.places.results_uri,
            "leaderboard": run.places.leaderboard_uri,
        },
        "fingerprint": run.identity,
    }
