"""Evaluation of a binary run's fitted models and what is recorded of them.

Each model's threshold is chosen on validation (best F1) and its test metrics carry
bootstrap intervals (whole days resampled); the model to recommend is chosen on
validation ROC AUC and every pair is compared on the same test rows -- the suite's
own selection and paired comparison (:mod:`moulin.training.classification`), here
on the positive class's probabilities.  The run's results are built typed
(:class:`~moulin.training.training_results.TrainingResults`, format ``moulin.training-results/1``),
the class the flights report reads them with.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from moulin.training import leaderboard as lb
from moulin.training.classification import compare_models, select_on_validation
from moulin.training.compared_models import Metric, PairComparison, Selection
from moulin.training.contract import SPLITS
from moulin.training.metrics import best_f1_threshold, curves, evaluate, pr_auc, roc_auc, slice_metrics
from moulin.training.model_entries import Fitted
from moulin.training.prepared_run import PreparedRun
from moulin.training.training_results import (
    METRIC_NAMES,
    RESULTS_FORMAT,
    Curves,
    ModelResult,
    SliceMetric,
    TrainingResults,
)

SELECTION_METRIC = "roc_auc"
#: The test metrics of each model in a run's summary.
SUMMARY_METRICS = (
    "roc_auc", "roc_auc_ci", "pr_auc", "pr_auc_ci", "f1", "f1_ci", "brier", "brier_ci", "ece", "ece_ci",
    "base_rate",
)  # fmt: skip


def evaluate_fitted(run: PreparedRun, fitted: Fitted) -> dict:
    """The threshold chosen on validation, validation scores, test metrics with
    intervals, curves and slices of one fitted model (with its description)."""
    data, options = run.data, run.options
    y_val, y_test = data.labels["validation"], data.labels["test"]
    p_val, p_test = fitted.proba["validation"], fitted.proba["test"]
    threshold, val_f1 = best_f1_threshold(y_val, p_val)
    test_frame = data.frames["test"]
    return {
        "family": fitted.family,
        "hyperparams": fitted.hyperparams,
        "train_seconds": fitted.train_seconds,
        "model_uri": fitted.model_uri,
        **({"training": fitted.training} if fitted.training is not None else {}),
        "threshold": threshold,
        "validation": {
            "roc_auc": roc_auc(y_val, p_val),
            "pr_auc": pr_auc(y_val, p_val),
            "f1": val_f1,
            "threshold": threshold,
        },
        "test": evaluate(
            y_test,
            p_test,
            threshold,
            n_resamples=options.bootstrap_resamples,
            seed=options.seed,
            groups=data.test_groups,
        ),
        "curves": curves(y_test, p_test),
        "slices": {
            col: slice_metrics(y_test, p_test, test_frame[col].to_numpy(), threshold)
            for col in run.slice_columns
        },
    }


def json_safe(value: Any) -> Any:
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


@dataclass(frozen=True)
class Choice:
    """The model recommended on validation and the pairs compared on the same test rows."""

    selection: Selection
    comparisons: tuple[PairComparison, ...]


def choose_and_compare(run: PreparedRun, evaluated: Mapping[str, dict], fitted: Sequence[Fitted]) -> Choice:
    """The selection on validation and the pairs compared on the same test rows."""
    recommended = select_on_validation({n: r["validation"][SELECTION_METRIC] for n, r in evaluated.items()})
    comparisons = compare_models(
        run.data.labels["test"],
        {f.name: f.proba["test"] for f in fitted},
        roc_auc,
        groups=run.data.test_groups,
        n_resamples=run.options.bootstrap_resamples,
        seed=run.options.seed,
    )
    return Choice(
        Selection(recommended, SELECTION_METRIC, "validation"),
        tuple(
            PairComparison.from_dict(json_safe({**pair, "metric": SELECTION_METRIC}), f"comparisons[{i}]")
            for i, pair in enumerate(comparisons)
        ),
    )


def model_result(name: str, r: dict) -> ModelResult:
    """One model of the run's results (the report's input)."""
    test = r["test"]
    return ModelResult(
        model=name,
        family=r["family"],
        metrics={m: Metric(*json_safe([test[m], *test[f"{m}_ci"]])) for m in METRIC_NAMES},
        threshold=json_safe(r["threshold"]),
        curves=Curves.from_dict(json_safe(r["curves"]), f"models.{name}.curves"),
        slices={
            str(col): tuple(
                SliceMetric.from_dict(s, f"models.{name}.slices.{col}[{i}]")
                for i, s in enumerate(json_safe(rows))
            )
            for col, rows in r["slices"].items()
        },
        train_seconds=json_safe(r["train_seconds"]),
        params=json_safe(r["hyperparams"]),
        model_uri=r["model_uri"],
        validation=json_safe(r["validation"]),
        test=json_safe({k: v for k, v in test.items() if k not in METRIC_NAMES and not k.endswith("_ci")}),
        training=json_safe(r["training"]) if "training" in r else None,
    )


def training_results(run: PreparedRun, evaluated: Mapping[str, dict], choice: Choice) -> TrainingResults:
    """The run's results (``results.json`` without its leaderboard record)."""
    data, pre, options = run.data, run.data.preprocessor, run.options
    return TrainingResults(
        format=RESULTS_FORMAT,
        selection=choice.selection,
        best_model=choice.selection.recommended,
        comparisons=choice.comparisons,
        bootstrap={"resamples": options.bootstrap_resamples, "grouped_by": run.contract.time},
        **run.common,
        model_dir=run.places.model_dir,
        split_rows=json_safe(data.rows),
        base_rate=json_safe(float(data.labels["test"].mean())),
        rows_in_snapshot=json_safe(data.snapshot.rows),
        files_per_split={s: len(data.snapshot.files[s]) for s in SPLITS},
        train_positive_rate=json_safe(data.positive_rate),
        class_weighting=json_safe(
            {
                "balanced": options.balance_classes,
                "pos_weight": run.pos_weight,
                "probabilities_corrected_by": run.correction,
            }
        ),
        preprocessing=json_safe(
            {
                "categorical": pre.categorical,
                "vocab_sizes": {c: len(pre.vocab[c]) for c in pre.categorical},
                "numeric": pre.numeric_names,
            }
        ),
        slice_columns=tuple(run.slice_columns),
        models=tuple(model_result(name, r) for name, r in evaluated.items()),
    )


def leaderboard_rows(run: PreparedRun, evaluated: Mapping[str, dict]) -> list[dict]:
    """One leaderboard row per model of the run."""
    places = run.places
    return [
        lb.make_row(
            run_id=places.run_id,
            model=name,
            created_at=places.created_at,
            features_uri=places.features_uri,
            features_version=run.data.snapshot.version,
            rows=run.data.rows,
            test_metrics=r["test"],
            hyperparams=r["hyperparams"],
            train_seconds=r["train_seconds"],
            model_uri=r["model_uri"],
            results_uri=places.results_uri,
        )
        for name, r in evaluated.items()
    ]


def model_summary(r: dict) -> dict:
    """What a run's summary says of one model: test metrics, threshold, cost, file."""
    return {k: r["test"][k] for k in SUMMARY_METRICS} | {
        "threshold": r["threshold"],
        "train_seconds": r["train_seconds"],
        "model_uri": r["model_uri"],
    }
