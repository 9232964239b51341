"""The typed results of a classifier suite run (moulin.training.classification_results): the
JSON run_suite writes reads back to the same JSON, sparse and older files read, and a malformed
or missing field is named in the error."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

from moulin.errors import DataError
from moulin.training.classification_results import (
    RESULTS_FORMAT,
    ClassificationResults,
    GateCounts,
    ResultsError,
)
from moulin.training.classifiers import ModelOutput, compare, worst_examples

CLASSES = ("cat", "dog", "bird")


def _strict(value):
    """NaN -> None, as results.json holds undefined numbers."""
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strict(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _history(epochs: int) -> list[dict]:
    return [
        {
            "epoch": e,
            "train_loss": 1 / e,
            "val_loss": 1.1 / e,
            "val_logloss": 1.05 / e,
            "train_rows": 300,
            "seconds": 2.5,
            "train_seconds": 2.0,
            "data_wait_seconds": 0.25,
            "learning_rate": 0.001,
            "val_accuracy": 0.5 + 0.1 * e,
        }  # fmt: skip
        for e in range(1, epochs + 1)
    ]


def _phase(epochs: int) -> dict:
    return {
        "history": _history(epochs),
        "best_epoch": epochs,
        "best_val_loss": 1.1 / epochs,
        "rows_per_rank": [150, 150],
        "tail_rows": 0,
        "world_size": 2,
        "backend": "gloo",
        "device": "cpu",
        "checkpoints": [
            f"file:///w/models/x/run/cnn/checkpoints/head/epoch-{e}.pt" for e in range(1, epochs + 1)
        ],
        "resumed_from_epoch": None,
        "fingerprint": "abc123",
        "set_aside": ["file:///w/models/x/run/cnn/checkpoints/head/superseded/old/epoch-1.pt"],
    }


def written_results() -> dict:
    """A results.json as run_suite assembles it: compare()'s output between the run facts and the
    worst examples, the use case's extras (duplicates, published results) before them."""
    rng = np.random.default_rng(3)
    y = {s: rng.integers(0, 3, 120) for s in ("validation", "test")}

    def output(name: str, skill: float, training: dict | None = None) -> ModelOutput:
        proba = {}
        for split, labels in y.items():
            logits = rng.normal(0, 1, (len(labels), 3))
            logits[np.arange(len(labels)), labels] += skill
            e = np.exp(logits)
            proba[split] = e / e.sum(1, keepdims=True)
        params = {"C": 1.0} if training is None else {"phases": [{"name": "head", "epochs": 3, "learning_rate": 0.01,
                                                                  "model_config": {}}], "batch_size": 64}  # fmt: skip
        return ModelOutput(
            name, f"{name} family", proba, 3.5, params, 1234, 5000.0, f"file:///m/{name}", training
        )

    outputs = [output("logreg", 1.0), output("cnn", 2.0, {"head": _phase(3)})]
    comparison = compare(y, outputs, CLASSES, "macro_f1", n_resamples=50, seed=1)
    chosen = next(o for o in outputs if o.name == comparison["selection"]["recommended"])
    worst = worst_examples(y["test"], chosen.proba["test"], [f"k{i}" for i in range(120)], limit=3)
    for example in worst:
        example["text"] = f"row {example['row']}"
    return _strict(
        {
            "format": RESULTS_FORMAT,
            "use_case": "pets",
            "run_id": "20240101T000000Z-abcdef",
            "created_at": "2024-01-01T00:00:00+00:00",
            "code_version": "deadbeef",
            "snapshot": {
                "table_uri": "file:///w/silver/pets",
                "version": 3,
                "rows_in_log": {"train": 300, "validation": 120, "test": 120},
            },
            "sample": None,
            "split_rows": {"train": 300, "validation": 120, "test": 120},
            "class_names": list(CLASSES),
            "duplicates": {"train_and_test": 1, "train_and_validation": 0, "conflicting_labels": 2},
            "published": [{"classifier": "someone", "preprocessing": "none", "accuracy": 0.9}],
            **comparison,
            "worst_test_examples": {"model": chosen.name, "examples": worst},
            "total_seconds": 12.0,
        }
    )


def test_the_json_run_suite_writes_reads_back_to_the_same_json() -> None:
    written = written_results()
    text = json.dumps(written, indent=1).encode()
    results = ClassificationResults.from_json(text)
    assert results.to_dict() == written
    assert results.to_json() == text  # same keys in the same order
    assert ClassificationResults.from_dict(results.to_dict()) == results
    assert results.recommended.model == written["selection"]["recommended"]
    cnn = results.model("cnn")
    assert cnn.training["head"].history[2].val_accuracy == pytest.approx(0.8)
    assert cnn.phase_learning_rates == {"head": 0.01}
    assert cnn.test.interval("accuracy").low is not None and cnn.test.per_class[0].name == "cat"
    assert results.comparisons[0].mcnemar is not None and results.worst_test_examples.examples[0].text


def test_positive_class_metrics_and_a_use_case_s_own_entries_are_kept() -> None:
    written = written_results()
    test = written["models"][0]["test"]
    test["roc_auc"], test["pr_auc"] = 0.91, None  # a binary task's metrics; one undefined
    written["thresholds"] = {"spam": 0.5}  # an entry the results do not know
    written["worst_test_examples"]["examples"][0]["sender"] = "x@example.org"  # a use case's own
    results = ClassificationResults.from_dict(copy.deepcopy(written))
    assert results.models[0].test.value("roc_auc") == 0.91 and results.extra == {"thresholds": {"spam": 0.5}}
    assert results.to_dict() == written


def test_sparse_and_older_results_read_with_gaps() -> None:
    """Only the required fields: the rest reads as None or empty, and writes back complete."""
    written = written_results()
    sparse = {k: written[k] for k in ("models", "selection", "class_names")}
    sparse["models"] = [{"model": m["model"]} for m in sparse["models"]]
    results = ClassificationResults.from_dict(sparse)
    assert results.run_id is None and results.duplicates is None and results.published == ()
    assert (
        results.recommended.test.accuracy is None
        and results.recommended.test.interval("accuracy").low is None
    )
    assert results.split_rows.total == 0 and results.worst_test_examples.examples == ()
    assert ClassificationResults.from_dict(results.to_dict()) == results


@pytest.mark.parametrize("field", ["models", "selection", "class_names"])
def test_a_missing_required_field_is_named(field: str) -> None:
    written = written_results()
    del written[field]
    with pytest.raises(ResultsError, match=f"missing required field '{field}'"):
        ClassificationResults.from_dict(written)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda r: r["models"][1]["test"].__setitem__("accuracy", "high"), "models[1].test.accuracy"),
        (lambda r: r["models"][0]["test"]["intervals"].__setitem__("macro_f1", [0.1]), "models[0].test.intervals.macro_f1"),
        (lambda r: r["comparisons"][0].__setitem__("better", "c"), "comparisons[0].better"),
        (lambda r: r["split_rows"].__setitem__("test", 1.5), "split_rows.test"),
        (lambda r: r["models"][1]["training"]["head"]["history"][0].__setitem__("epoch", "one"),
         "models[1].training.head.history[0].epoch"),
        (lambda r: r.__setitem__("models", {"cnn": {}}), "models"),
        (lambda r: r["selection"].__setitem__("recommended", "nope"), "selection.recommended"),
        (lambda r: r["models"][1].__setitem__("model", "logreg"), "duplicate model names"),
    ],
)  # fmt: skip
def test_a_malformed_field_is_named(change, named: str) -> None:
    written = written_results()
    change(written)
    with pytest.raises(ResultsError) as error:
        ClassificationResults.from_dict(written)
    assert named in str(error.value)
    # a deterministic data error: the task fails without retries; still a ValueError for callers
    assert isinstance(error.value, DataError) and isinstance(error.value, ValueError)


def test_not_json_is_named() -> None:
    with pytest.raises(ResultsError, match="not JSON"):
        ClassificationResults.from_json(b"{nope")


def test_gate_counts_read_a_gate_outcome() -> None:
    outcome = {"rows_manifest": 10, "rows_read": 10, "rows_bronze": 9, "rows_quarantined": 1,
               "failures": {"bad_label": 1}, "passed": True}  # fmt: skip
    counts = GateCounts.from_dict(outcome)
    assert counts == GateCounts(10, 10, 9, 1, {"bad_label": 1})
    with pytest.raises(ResultsError, match="quality.rows_read"):
        GateCounts.from_dict({"rows_read": "ten"})
