"""One training run: the feature table's snapshot -> MLP (DDP) + baselines ->
test metrics -> model files, results JSON and leaderboard rows.

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

import io
import json
import logging
import math
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

import numpy as np

from moulin.identifiers import check_path_part
from moulin.lineage import code_version
from moulin.settings import Settings
from moulin.storage import StorageError, WarehouseFS
from moulin.training import TrainingError
from moulin.training import leaderboard as lb
from moulin.training.artifacts import baseline_uri, model_dir_uri, save_baseline, save_mlp
from moulin.training.baselines import BoostedTreesBaseline, LogisticBaseline
from moulin.training.batches import TabularCodec
from moulin.training.checkpoints import fingerprint
from moulin.training.classification import compare_models, select_on_validation
from moulin.training.config import TrainConfig
from moulin.training.contract import SPLITS, FeatureContract
from moulin.training.data import check_fraction, read_split_pandas, resolve_snapshot
from moulin.training.ddp import choose_backend, run_distributed
from moulin.training.loader_options import Reader
from moulin.training.metrics import (
    best_f1_threshold,
    curves,
    evaluate,
    pr_auc,
    roc_auc,
    slice_metrics,
    undo_class_weighting,
)
from moulin.training.model import MLPConfig, build_network, predict_proba
from moulin.training.preprocessing import Preprocessor

log = logging.getLogger("moulin.training")

RESULTS_FORMAT = "moulin.training-results/1"
MAX_SLICE_CARDINALITY = 25


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def json_safe(value):
    """NaN/inf -> None, numpy scalars -> Python (strict JSON for other readers)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _model_entry(name: str, r: dict) -> dict:
    """One model in the results JSON (the report's input contract, moulin.reporting.inputs)."""
    test = r["test"]
    return {
        "model": name,
        "family": r["family"],
        "metrics": {
            m: {"value": test[m], "ci_low": test[f"{m}_ci"][0], "ci_high": test[f"{m}_ci"][1]}
            for m in lb.METRICS
        },
        "threshold": r["threshold"],
        "curves": r["curves"],
        "slices": r["slices"],
        "train_seconds": r["train_seconds"],
        "params": r["hyperparams"],
        "model_uri": r["model_uri"],
        "validation": r["validation"],
        "test": {k: v for k, v in test.items() if k not in lb.METRICS and not k.endswith("_ci")},
        **({"training": r["training"]} if "training" in r else {}),
    }


def _validation_summary(y, p, threshold: float, val_f1: float) -> dict:
    return {"roc_auc": roc_auc(y, p), "pr_auc": pr_auc(y, p), "f1": val_f1, "threshold": threshold}


def _recorded_run(
    fs: WarehouseFS, settings: Settings, results_uri: str, leaderboard_uri: str, run_id: str, identity: str
) -> dict | None:
    """The summary of run ``run_id`` if its ``results.json`` records the training
    ``identity`` and the leaderboard holds that record's rows; else None."""
    try:
        if not fs.exists(results_uri):
            return None
        results = json.loads(fs.read_bytes(results_uri))
    except (StorageError, OSError, ValueError) as exc:  # unreadable: train and record again
        log.warning("cannot read %s (%s): training again", results_uri, exc)
        return None
    board = results.get("leaderboard") or {}
    if results.get("fingerprint") != identity or not board.get("app_version"):
        return None
    if lb.recorded_version(leaderboard_uri, lb.app_id(run_id, identity)) < int(board["app_version"]):
        return None  # stopped between results.json and the leaderboard: record again
    import pandas as pd

    def utc(value) -> pd.Timestamp:
        stamp = pd.Timestamp(value)
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")

    created = utc(results["created_at"])
    rows = [
        r
        for r in lb.read(leaderboard_uri, settings)
        if r["run_id"] == run_id and utc(r["created_at"]) == created
    ]
    from deltalake import DeltaTable

    dt = DeltaTable(leaderboard_uri)
    lb_version = int(dt.version())
    del dt
    models = {}
    for m in results["models"]:
        entry = {}
        for metric in lb.METRICS:
            value = m["metrics"][metric]
            entry[metric] = value["value"]
            entry[f"{metric}_ci"] = (value["ci_low"], value["ci_high"])
        entry["base_rate"] = m["test"].get("base_rate")
        entry |= {
            "threshold": m["threshold"],
            "train_seconds": m["train_seconds"],
            "model_uri": m["model_uri"],
        }
        models[m["model"]] = entry
    mlp = next(m for m in results["models"] if m["model"] == "mlp")
    return {
        "run_id": run_id,
        "features_uri": results["features_uri"],
        "version": results["features_version"],
        "recommended": results["best_model"],
        "rows": results["split_rows"],
        "models": models,
        "paths": {
            "model_dir": results["model_dir"],
            "mlp_model": mlp["model_uri"],
            "checkpoints": list((mlp.get("training") or {}).get("checkpoints") or []),
            "results_json": results_uri,
            "leaderboard": leaderboard_uri,
        },
        "leaderboard_rows": rows,
        "leaderboard_version": lb_version,
        "fingerprint": identity,
        "already_recorded": True,
    }


def train_and_compare(
    spark,
    settings: Settings,
    features_uri: str | None = None,
    version: int | None = None,
    run_id: str | None = None,
    epochs: int = TrainConfig.epochs,
    sample: float | None = None,
    num_processes: int = 2,
    *,
    model_name: str = "model",
    contract: FeatureContract | str | Path | None = None,
    use_gpu: bool | None = None,
    batch_size: int = TrainConfig.batch_size,
    learning_rate: float = TrainConfig.learning_rate,
    early_stopping: bool = True,
    patience: int = TrainConfig.patience,
    hidden: Sequence[int] = (64, 32),
    network: str = "mlp",
    model_config: dict | None = None,
    balance_classes: bool = True,
    correct_probabilities: bool = True,
    bootstrap_resamples: int = 200,
    seed: int = TrainConfig.seed,
    slice_columns: Sequence[str] | None = None,
    leaderboard_uri: str | None = None,
    reader: Reader = "moulin",
) -> dict:
    """Train the MLP (DDP through TorchDistributor) and two baselines on one pinned
    snapshot of the feature table, evaluate them on its test split and record them.

    ``sample`` is a fraction of rows kept in every split (hash of the key);
    ``version`` pins the Delta version (default: latest).  With ``balance_classes``
    every model weights positives by negatives/positives (MLP ``pos_weight``,
    sklearn ``class_weight="balanced"``); with ``correct_probabilities`` their
    probabilities are mapped back to the data's class balance before evaluation
    (and by the saved MLP's ``predict_proba``).  Returns a summary:
    ``{"run_id", "features_uri", "version", "rows", "models": {name: test metrics},
    "paths": {...}, "leaderboard_rows": [...], "leaderboard_version", "fingerprint",
    "already_recorded"}``.

    Run again with the same ``run_id`` and nothing it depends on changed (its
    fingerprint, see the module), a run already recorded returns its recorded
    summary (``already_recorded``) and trains and writes nothing.  With anything
    changed it trains from epoch 1, replaces the run's files and appends its own
    leaderboard rows.

    ``reader`` picks what feeds the MLP's trainer from the snapshot's files:
    moulin's loader (default) or Petastorm's ``make_batch_reader``
    (:mod:`moulin.training.petastorm_loader`, docs/guides/petastorm.md).
    """
    if reader not in get_args(Reader):
        raise TrainingError(f"reader must be one of {list(get_args(Reader))}, not {reader!r}")
    if spark is None:
        raise TrainingError("train_and_compare needs a Spark session (TorchDistributor runs on it)")
    if epochs < 1:
        raise TrainingError(f"epochs must be >= 1, got {epochs}")
    sample = check_fraction(sample)
    check_path_part(model_name, "model name")
    if run_id is not None:
        check_path_part(run_id, "run id")
    if contract is None:
        raise TrainingError("train_and_compare needs the feature contract (its name or file)")
    contract = contract if isinstance(contract, FeatureContract) else FeatureContract.load(contract)
    if features_uri is None:
        parts = contract.table.split("/") if contract.table else ["gold", contract.name]
        features_uri = settings.table_uri(*parts)
    leaderboard_uri = leaderboard_uri or settings.table_uri("gold", "model_leaderboard")
    created_at = datetime.now(UTC)
    run_id = run_id or new_run_id(created_at)
    model_dir = model_dir_uri(settings, model_name, run_id)
    fs = WarehouseFS(settings)
    started = time.time()

    # 1. Data: one snapshot, read once on the driver for preprocessing, baselines, evaluation.
    snap = resolve_snapshot(features_uri, contract.split, version)
    log.info("training on %s version %s (%s)", features_uri, snap.version, snap.rows)
    columns = [*contract.read_columns, *([contract.time] if contract.time else [])]
    frames = {
        s: read_split_pandas(snap.files[s], columns, settings, sample=sample, key=contract.key)
        for s in SPLITS
    }
    # Rows of one day share its weather and congestion: intervals resample whole days.
    test_groups = frames["test"][contract.time].astype(str).to_numpy() if contract.time else None
    rows = {s: int(len(frames[s])) for s in SPLITS}
    labels = {s: frames[s][contract.label].to_numpy(dtype=np.float64) for s in SPLITS}
    for s in SPLITS:
        if rows[s] == 0:
            raise TrainingError(f"split {s!r} of {features_uri} v{snap.version} is empty (sample={sample})")
    if not 0 < labels["train"].sum() < rows["train"]:
        raise TrainingError(f"the train split of {features_uri} v{snap.version} has a single class")
    pre = Preprocessor.fit(frames["train"], contract)
    encoded = {s: pre.transform(frames[s]) for s in SPLITS}
    positive_rate = float(labels["train"].mean())
    pos_weight = (1 - positive_rate) / positive_rate if balance_classes else 1.0
    common = {
        "features_uri": features_uri,
        "features_version": snap.version,
        "contract": contract.name,
        "run_id": run_id,
        "sample": sample,
        "created_at": created_at.isoformat(),
        "code_version": code_version(),
    }

    predictions: dict[str, dict[str, np.ndarray]] = {}
    fitted: dict = {}
    info: dict[str, dict] = {}

    use_gpu, backend = choose_backend(spark, use_gpu)
    train_cfg = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        early_stopping=early_stopping,
        patience=patience,
        seed=seed,
        pos_weight=float(pos_weight),
    )
    model_cfg = (
        model_config
        if model_config is not None
        else MLPConfig(hidden=tuple(int(h) for h in hidden)).to_dict()
    )
    if slice_columns is None:
        slice_columns = [c for c in contract.categorical if len(pre.vocab[c]) <= MAX_SLICE_CARDINALITY]
    results_uri = f"{model_dir}/results.json"
    # What this training depends on: a run of the same id resumes or reuses only its own work.
    identity = fingerprint(
        {
            "features_uri": features_uri,
            "features_version": snap.version,
            "sample": sample,
            "contract": contract,
            "preprocessor": pre.to_dict(),
            "network": network,
            "model_config": model_cfg,
            "train_config": train_cfg.to_dict(),
            "num_processes": num_processes,
            "backend": backend,
            "balance_classes": balance_classes,
            "correct_probabilities": correct_probabilities,
            "bootstrap_resamples": bootstrap_resamples,
            "slice_columns": list(slice_columns),
            "code_version": common["code_version"],
            # Another reader makes other batches: its run is another training (the default
            # adds nothing, so the fingerprints of runs before the option stay as they were).
            **({"reader": reader} if reader != "moulin" else {}),
        }
    )
    common["fingerprint"] = identity
    recorded = _recorded_run(fs, settings, results_uri, leaderboard_uri, run_id, identity)
    if recorded is not None:
        log.info("run %s (fingerprint %s) is recorded already: nothing to train", run_id, identity)
        return recorded

    # 2. MLP with DistributedDataParallel.
    job = {
        "backend": backend,
        "train_files": list(snap.files["train"]),
        "validation_files": list(snap.files["validation"]),
        "inputs": TabularCodec(pre, contract.key, contract.label).to_dict(),
        "task": "binary",
        "network": network,
        "model_config": model_cfg,
        "train_config": train_cfg.to_dict(),
        "sample": sample,
        "checkpoint_dir": f"{model_dir}/mlp/checkpoints",
        "settings": settings,
        "identity": {"run": identity},
        "loader": {"reader": reader},
    }
    t = time.time()
    out = run_distributed(job, num_processes=num_processes, use_gpu=use_gpu)
    mlp_seconds = time.time() - t
    import torch

    state = torch.load(io.BytesIO(out["state_dict"]), map_location="cpu", weights_only=True)
    mlp = build_network(network, pre.cardinalities, pre.n_numeric, model_cfg)
    mlp.load_state_dict(state)
    mlp_uri = f"{model_dir}/mlp/model.pt"
    mlp_params = {
        "network": network,
        **model_cfg,
        **train_cfg.to_dict(),
        "num_processes": num_processes,
        "backend": backend,
        "use_gpu": use_gpu,
        "embedding_dims": [e.embedding_dim for e in getattr(mlp, "embeddings", [])],
    }
    # Class weighting inflates the fitted odds by pos_weight: map every model's
    # probabilities back to the data's balance (monotone: AUCs unchanged).
    correction = float(pos_weight) if correct_probabilities else 1.0
    predictions["mlp"] = {
        s: undo_class_weighting(predict_proba(mlp, *encoded[s]).numpy(), correction)
        for s in ("validation", "test")
    }
    info["mlp"] = {
        "family": "pytorch MLP with embeddings (DistributedDataParallel via TorchDistributor)",
        "hyperparams": mlp_params,
        "train_seconds": mlp_seconds,
        "model_uri": mlp_uri,
        "training": {
            k: out[k]
            for k in (
                "history",
                "best_epoch",
                "best_val_loss",
                "rows_per_rank",
                "tail_rows",
                "sharding",
                "loader",
                "world_size",
                "backend",
                "device",
                "checkpoints",
                "resumed_from_epoch",
                "fingerprint",
                "set_aside",
            )
        },
    }

    # 3. Baselines on the same encoded inputs.
    for baseline in (
        LogisticBaseline(pre, balance=balance_classes, seed=seed),
        BoostedTreesBaseline(pre, balance=balance_classes, seed=seed),
    ):
        t = time.time()
        baseline.fit(*encoded["train"], labels["train"])
        seconds = time.time() - t
        uri = baseline_uri(model_dir, baseline.name)
        fitted[baseline.name] = baseline
        predictions[baseline.name] = {
            s: undo_class_weighting(baseline.predict_proba(*encoded[s]), correction)
            for s in ("validation", "test")
        }
        info[baseline.name] = {
            "family": type(baseline.model).__name__,
            "hyperparams": dict(baseline.params),
            "train_seconds": seconds,
            "model_uri": uri,
        }

    # 4. Thresholds on validation, metrics on test, slices.
    model_results: dict[str, dict] = {}
    for name, preds in predictions.items():
        threshold, val_f1 = best_f1_threshold(labels["validation"], preds["validation"])
        test = evaluate(
            labels["test"],
            preds["test"],
            threshold,
            n_resamples=bootstrap_resamples,
            seed=seed,
            groups=test_groups,
        )
        model_results[name] = {
            **info[name],
            "threshold": threshold,
            "validation": _validation_summary(labels["validation"], preds["validation"], threshold, val_f1),
            "test": test,
            "curves": curves(labels["test"], preds["test"]),
            "slices": {
                col: slice_metrics(labels["test"], preds["test"], frames["test"][col].to_numpy(), threshold)
                for col in slice_columns
            },
        }
        info[name]["threshold"] = threshold

    # 5. Files: MLP (with its threshold), baselines, results.
    save_mlp(
        fs,
        mlp_uri,
        state,
        pre,
        {
            **common,
            "network": network,
            "model_config": model_cfg,
            "train_config": train_cfg.to_dict(),
            "threshold": float(info["mlp"]["threshold"]),
            "probability_pos_weight": correction,
            "best_epoch": int(out["best_epoch"]),
            "label": contract.label,
        },
    )
    for name, baseline in fitted.items():
        save_baseline(
            fs,
            info[name]["model_uri"],
            {
                "model": baseline.model,
                "preprocessor": pre.to_dict(),
                "threshold": info[name]["threshold"],
                "probability_pos_weight": correction,
                **common,
            },
        )
    # The model to recommend is chosen on validation; pairs compared on the same test rows.
    recommended = select_on_validation({n: r["validation"]["roc_auc"] for n, r in model_results.items()})
    comparisons = compare_models(
        labels["test"],
        {n: predictions[n]["test"] for n in model_results},
        roc_auc,
        groups=test_groups,
        n_resamples=bootstrap_resamples,
        seed=seed,
    )
    for pair in comparisons:
        pair["metric"] = "roc_auc"
    results = {
        "format": RESULTS_FORMAT,
        "selection": {"split": "validation", "metric": "roc_auc", "recommended": recommended},
        "best_model": recommended,
        "comparisons": comparisons,
        "bootstrap": {"resamples": bootstrap_resamples, "grouped_by": contract.time},
        **common,
        "model_dir": model_dir,
        "split_rows": rows,
        "base_rate": float(labels["test"].mean()),
        "rows_in_snapshot": snap.rows,
        "files_per_split": {s: len(snap.files[s]) for s in SPLITS},
        "train_positive_rate": positive_rate,
        "class_weighting": {
            "balanced": balance_classes,
            "pos_weight": pos_weight,
            "probabilities_corrected_by": correction,
        },
        "preprocessing": {
            "categorical": pre.categorical,
            "vocab_sizes": {c: len(pre.vocab[c]) for c in pre.categorical},
            "numeric": pre.numeric_names,
        },
        "slice_columns": list(slice_columns),
        "models": [_model_entry(name, r) for name, r in model_results.items()],
    }
    lb_rows = [
        lb.make_row(
            run_id=run_id,
            model=name,
            created_at=created_at,
            features_uri=features_uri,
            features_version=snap.version,
            rows=rows,
            test_metrics=r["test"],
            hyperparams=r["hyperparams"],
            train_seconds=r["train_seconds"],
            model_uri=r["model_uri"],
            results_uri=results_uri,
        )
        for name, r in model_results.items()
    ]
    # The leaderboard record of this training: a training recorded before and replaced
    # since by another one in results.json (same run id) is recorded again, a later version.
    app_id = lb.app_id(run_id, identity)
    app_version = lb.recorded_version(leaderboard_uri, app_id) + 1
    results["leaderboard"] = {"uri": leaderboard_uri, "app_id": app_id, "app_version": app_version}
    results["total_seconds"] = time.time() - started
    fs.write_bytes(results_uri, json.dumps(json_safe(results), indent=1).encode())
    lb_version = lb.append(
        leaderboard_uri, lb_rows, run_id=run_id, fingerprint=identity, app_version=app_version
    )
    log.info(
        "run %s done in %.1fs: %s",
        run_id,
        time.time() - started,
        {n: round(r["test"]["roc_auc"], 4) for n, r in model_results.items()},
    )
    return {
        "run_id": run_id,
        "features_uri": features_uri,
        "version": snap.version,
        "recommended": recommended,
        "rows": rows,
        "models": {
            name: {
                k: r["test"][k]
                for k in (
                    "roc_auc",
                    "roc_auc_ci",
                    "pr_auc",
                    "pr_auc_ci",
                    "f1",
                    "f1_ci",
                    "brier",
                    "brier_ci",
                    "ece",
                    "ece_ci",
                    "base_rate",
                )
            }
            | {"threshold": r["threshold"], "train_seconds": r["train_seconds"], "model_uri": r["model_uri"]}
            for name, r in model_results.items()
        },
        "paths": {
            "model_dir": model_dir,
            "mlp_model": mlp_uri,
            "checkpoints": list(out["checkpoints"]),
            "results_json": results_uri,
            "leaderboard": leaderboard_uri,
        },
        "leaderboard_rows": lb_rows,
        "leaderboard_version": lb_version,
        "fingerprint": identity,
        "already_recorded": False,
    }
