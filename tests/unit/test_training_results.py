"""The results of a binary training run (moulin.training.training_results): a real flights
results.json reads and writes back byte for byte, a malformed field is named, and the
binary and multi-class results answer the same questions (chosen model, order, pairs)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from moulin.errors import DataError
from moulin.training.classification_results import ClassificationResults
from moulin.training.compared_models import PairComparison, ResultsError
from moulin.training.training_results import RESULTS_FORMAT, TrainingResults

#: A results.json written by a flights training run (three models, curves, slices, pairs).
REAL = Path(__file__).resolve().parents[1] / "data" / "flights_results.json"


@pytest.fixture(scope="module")
def written() -> bytes:
    return REAL.read_bytes()


def test_a_real_flights_results_file_round_trips_byte_for_byte(written: bytes) -> None:
    results = TrainingResults.from_json(written, str(REAL))
    assert results.to_json() == written
    assert TrainingResults.from_dict(json.loads(written)).to_dict() == json.loads(written)
    assert results.format == RESULTS_FORMAT
    assert [m.model for m in results.models] == ["mlp", "logreg", "hist_gbt"]


def test_what_the_report_reads(written: bytes) -> None:
    results = TrainingResults.from_json(written)
    doc = json.loads(written)
    chosen = results.chosen
    assert chosen is not None and chosen.model == doc["best_model"] == results.selection.recommended
    assert results.in_order()[0] is chosen
    auc = chosen.metric("roc_auc")
    assert auc.value == doc["models"][0]["metrics"]["roc_auc"]["value"]
    assert auc.ci_low <= auc.value <= auc.ci_high and auc.interval.width == auc.ci_width > 0
    assert chosen.curves.roc and len(chosen.curves.roc["fpr"]) == len(chosen.curves.roc["tpr"])
    # the first ROC threshold is +inf, written as null: still a column of the written curve
    assert chosen.curves.written["roc"]["threshold"][0] is None
    assert sum(s.n for s in chosen.slices["origin"]) == results.split_rows["test"]
    assert chosen.training is not None and chosen.training["history"]


def test_a_comparison_reads_either_way_round(written: bytes) -> None:
    results = TrainingResults.from_json(written)
    pair = results.comparisons[0]
    assert results.comparison(pair.a, pair.b) is pair
    turned = results.comparison(pair.b, pair.a)
    assert turned is not None and (turned.a, turned.b) == (pair.b, pair.a)
    assert turned.difference == -pair.difference
    assert (turned.ci_low, turned.ci_high) == (-pair.ci_high, -pair.ci_low)
    assert results.comparison(pair.a, "nope") is None


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda r: r["models"][1]["metrics"]["roc_auc"].__setitem__("value", "high"),
         "models[1].metrics.roc_auc.value"),
        (lambda r: r["models"][0]["curves"]["roc"]["tpr"].pop(), "models[0].curves.roc: lists of different lengths"),
        (lambda r: r["models"][2]["slices"]["origin"][0].__setitem__("n", 1.5), "models[2].slices.origin[0].n"),
        (lambda r: r["models"][0]["slices"]["carrier"][1].pop("value"),
         "models[0].slices.carrier[1]: missing required field 'value'"),
        (lambda r: r["comparisons"][0].__setitem__("better", "c"), "comparisons[0].better"),
        (lambda r: r["split_rows"].__setitem__("test", "many"), "split_rows.test"),
        (lambda r: r["selection"].pop("recommended"), "selection: missing required field 'recommended'"),
        (lambda r: r.__setitem__("models", {"mlp": {}}), "models: expected a list"),
        (lambda r: r["models"][0].pop("model"), "models[0]: missing required field 'model'"),
        (lambda r: r.__setitem__("best_model", "svm"), "best_model: 'svm' is not one of the models"),
        (lambda r: r["models"][1].__setitem__("model", "mlp"), "duplicate model names"),
    ],
)  # fmt: skip
def test_a_malformed_field_is_named(written: bytes, change, named: str) -> None:
    doc = json.loads(written)
    change(doc)
    with pytest.raises(ResultsError) as error:
        TrainingResults.from_dict(doc)
    assert named in str(error.value)
    # a deterministic data error: the task fails without retries; still a ValueError for callers
    assert isinstance(error.value, DataError) and isinstance(error.value, ValueError)


def test_a_file_that_is_not_binary_results_is_named_with_what_to_do(written: bytes) -> None:
    with pytest.raises(ResultsError, match=r"^models/r1/results.json: not JSON .*train again"):
        TrainingResults.from_json(b"{nope", "models/r1/results.json")
    doc = json.loads(written)
    doc["models"][0]["threshold"] = "high"
    with pytest.raises(
        ResultsError, match=r"^r.json: models\[0\]\.threshold: expected a number.*results.json"
    ):
        TrainingResults.from_json(json.dumps(doc), "r.json")


def test_an_older_sparser_file_reads_with_gaps() -> None:
    """The fields the report once required: the rest reads as None or empty."""
    doc = {"run_id": "r1", "models": [{"model": "m", "metrics": {"roc_auc": 0.7}}]}
    results = TrainingResults.from_dict(doc)
    m = results.models[0]
    assert m.metric("roc_auc").value == 0.7 and m.metric("roc_auc").ci_low is None
    assert m.metric("f1").value is None and m.curves.roc is None and m.slices == {}
    assert results.selection is None and results.comparisons == () and results.chosen is m
    assert results.format is None  # the file did not say; written back, it still does not
    assert TrainingResults.from_dict(results.to_dict()) == results


def test_binary_and_multi_class_results_answer_the_same_questions(written: bytes) -> None:
    binary = TrainingResults.from_json(written)
    pair = binary.comparisons[0].to_dict()
    multi = ClassificationResults.from_dict(
        {
            "models": [
                {"model": "a", "validation": {"accuracy": 0.8}},
                {"model": "b", "validation": {"accuracy": 0.9}},
            ],
            "selection": {"recommended": "b"},
            "class_names": ["x", "y"],
            "comparisons": [copy.deepcopy(pair) | {"a": "a", "b": "b"}],
        }
    )
    for results in (binary, multi):
        chosen = results.chosen
        assert results.in_order()[0] is chosen
        assert {m.model for m in results.in_order()} == {m.model for m in results.models}
        first = results.comparisons[0]
        assert isinstance(first, PairComparison)
        assert results.comparison(first.b, first.a).difference == -first.difference
    assert multi.chosen.model == "b" and [m.model for m in multi.in_order()] == ["b", "a"]
