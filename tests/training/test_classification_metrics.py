"""Multi-class metrics and model comparison, checked against sklearn/scipy and
against synthetic data whose answer is known."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import (
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
)

from moulin.training import classification as c

pytestmark = pytest.mark.training


def accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(y == pred)) if len(y) else math.nan


def error_rate(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(y != pred)) if len(y) else math.nan


def correct_with_rate(rng: np.random.Generator, y: np.ndarray, rate: float, k: int) -> np.ndarray:
    """Predictions right on a ``rate`` share of rows, otherwise another class."""
    right = rng.random(len(y)) < rate
    wrong = (y + rng.integers(1, k, len(y))) % k
    return np.where(right, y, wrong)


def calibrated_sample(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels drawn from those very probabilities."""
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.full(k, 0.7), size=n)
    y = (rng.random(n)[:, None] > np.cumsum(proba, axis=1)).sum(axis=1)
    return np.minimum(y, k - 1), proba


# --------------------------------------------------------------------------- point metrics


def test_confusion_matches_sklearn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 500)  # class 3 never true
    pred = rng.integers(0, 4, 500)
    got = c.confusion(y, pred, 4)
    assert got.dtype == np.int64 and got.shape == (4, 4)
    np.testing.assert_array_equal(got, confusion_matrix(y, pred, labels=[0, 1, 2, 3]))
    assert got[3].sum() == 0 and got.sum() == 500
    np.testing.assert_array_equal(c.confusion([0, 1, 1], [1, 1, 0], 2), [[0, 1], [1, 1]])


def test_confusion_rejects_bad_labels():
    with pytest.raises(ValueError, match="y_pred has labels outside 0..2"):
        c.confusion([0, 1], [0, 3], 3)
    with pytest.raises(ValueError, match="y_pred has 1 rows but y_true has 2"):
        c.confusion([0, 1], [0], 3)
    with pytest.raises(ValueError, match="integer class indices"):
        c.confusion([0.5, 1], [0, 1], 3)


def test_summary_matches_sklearn():
    y, proba = calibrated_sample(3000, 4, seed=2)
    names = ["on_time", "late", "very_late", "cancelled"]
    s = c.classification_summary(y, proba, names)
    pred = proba.argmax(axis=1)
    assert s["n"] == 3000
    assert s["accuracy"] == pytest.approx(np.mean(pred == y))
    assert s["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert s["log_loss"] == pytest.approx(log_loss(y, proba, labels=[0, 1, 2, 3]))
    precision, recall, f1, support = precision_recall_fscore_support(y, pred, labels=[0, 1, 2, 3])
    for i, row in enumerate(s["per_class"]):
        assert row["class"] == names[i] and row["index"] == i
        assert row["support"] == support[i]
        assert row["precision"] == pytest.approx(precision[i])
        assert row["recall"] == pytest.approx(recall[i])
        assert row["f1"] == pytest.approx(f1[i])
    assert s["confusion"] == confusion_matrix(y, pred).tolist()
    assert sum(b["count"] for b in s["reliability"]) == 3000
    assert all(b["lower"] <= b["mean_confidence"] <= b["upper"] for b in s["reliability"])
    assert s["ece"] == pytest.approx(c.top_label_ece(y, proba))
    json.dumps(s, allow_nan=False)


def test_summary_with_a_class_absent_from_the_labels():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.8, 0.1, 0.1], [0.2, 0.2, 0.6], [0.1, 0.7, 0.2], [0.3, 0.6, 0.1]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no UndefinedMetricWarning
        s = c.classification_summary(y, proba, ["a", "b", "c"])
    absent = s["per_class"][2]
    # Class "c" is predicted once (wrongly) and never true: precision 0/1, recall 0/0 -> 0.
    assert (absent["support"], absent["precision"], absent["recall"], absent["f1"]) == (0, 0.0, 0.0, 0.0)
    assert s["per_class"][0]["recall"] == 0.5 and s["per_class"][0]["precision"] == 1.0
    assert s["accuracy"] == 0.75
    assert s["macro_f1"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    # log loss by hand: -(ln .8 + ln .2 + ln .7 + ln .6) / 4
    assert s["log_loss"] == pytest.approx(-(math.log(0.8 * 0.2 * 0.7 * 0.6)) / 4)


def test_log_loss_is_clipped_and_inputs_checked():
    s = c.classification_summary([1], [[1.0, 0.0]], ["a", "b"])
    assert math.isfinite(s["log_loss"]) and s["log_loss"] == pytest.approx(-math.log(1e-15))
    with pytest.raises(ValueError, match="rows must sum to 1"):
        c.classification_summary([0], [[0.7, 0.7]], ["a", "b"])
    with pytest.raises(ValueError, match="not logits"):
        c.classification_summary([0], [[1.5, -0.5]], ["a", "b"])
    with pytest.raises(ValueError, match="3 columns but 2 class names"):
        c.classification_summary([0], [[0.2, 0.3, 0.5]], ["a", "b"])
    with pytest.raises(ValueError, match="zero rows"):
        c.classification_summary([], np.empty((0, 2)), ["a", "b"])


def test_ece_small_when_calibrated_large_when_overconfident():
    y, proba = calibrated_sample(20_000, 3, seed=3)
    assert c.classification_summary(y, proba, ["a", "b", "c"])["ece"] < 0.02
    sharp = proba**4
    sharp /= sharp.sum(axis=1, keepdims=True)  # same argmax, far more confident
    over = c.classification_summary(y, sharp, ["a", "b", "c"])
    assert over["ece"] > 0.1
    assert all(b["mean_confidence"] >= b["accuracy"] for b in over["reliability"] if b["count"] > 200)
    # By hand: confidence 0.9 everywhere, right half the time -> ECE 0.4, one bin.
    s = c.classification_summary([0, 1] * 50, [[0.9, 0.1]] * 100, ["a", "b"])
    assert s["ece"] == pytest.approx(0.4)
    assert s["reliability"] == [
        {
            "lower": 13 / 15,
            "upper": 14 / 15,
            "count": 100,
            "mean_confidence": pytest.approx(0.9),
            "accuracy": 0.5,
        }
    ]


# --------------------------------------------------------------------------- bootstrap


def test_row_bootstrap_indices():
    draws = list(c.group_bootstrap_indices(50, n_resamples=20, seed=4))
    assert len(draws) == 20
    assert all(len(d) == 50 and d.min() >= 0 and d.max() < 50 for d in draws)
    assert any(len(np.unique(d)) < 50 for d in draws)  # with replacement
    again = list(c.group_bootstrap_indices(50, n_resamples=20, seed=4))
    assert all(np.array_equal(x, z) for x, z in zip(draws, again, strict=True))
    assert list(c.group_bootstrap_indices(0, n_resamples=5)) == []


def test_group_bootstrap_keeps_groups_whole():
    rng = np.random.default_rng(5)
    sizes = rng.integers(1, 12, 30)
    groups = rng.permutation(np.repeat([f"2024-01-{d:02d}" for d in range(1, 31)], sizes))
    n = len(groups)
    lengths = set()
    for idx in c.group_bootstrap_indices(n, groups, n_resamples=50, seed=6):
        lengths.add(len(idx))
        times = np.bincount(idx, minlength=n)
        drawn_groups = 0
        for g in np.unique(groups):
            rows = times[groups == g]
            assert np.all(rows == rows[0]), f"group {g} split: {rows}"
            drawn_groups += rows[0]
        assert drawn_groups == 30  # as many groups drawn as there are
    assert len(lengths) > 1  # the resample size follows the groups drawn
    with pytest.raises(ValueError, match="groups has 3 labels but there are 4 rows"):
        next(c.group_bootstrap_indices(4, ["a", "b", "c"]))


def group_correlated_predictions(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """50 groups of 40 rows; each group has its own accuracy (a shared offset)."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(50), 40)
    group_accuracy = rng.uniform(0.3, 1.0, 50)[groups]
    y = rng.integers(0, 3, len(groups))
    pred = np.where(rng.random(len(groups)) < group_accuracy, y, (y + 1) % 3)
    return y, pred, groups


def test_group_bootstrap_interval_is_wider_on_correlated_rows():
    y, pred, groups = group_correlated_predictions(seed=7)
    row_lo, row_hi = c.bootstrap_interval(y, pred, accuracy, n_resamples=400, seed=0)
    grp_lo, grp_hi = c.bootstrap_interval(y, pred, accuracy, groups=groups, n_resamples=400, seed=0)
    point = accuracy(y, pred)
    assert row_lo < point < row_hi and grp_lo < point < grp_hi
    assert grp_hi - grp_lo > 2 * (row_hi - row_lo)


def test_bootstrap_interval_skips_undefined_resamples():
    y = np.array([0] * 95 + [1] * 5)
    pred = y.copy()

    def recall_of_1(ys: np.ndarray, ps: np.ndarray) -> float:
        return float(np.mean(ps[ys == 1] == 1)) if np.any(ys == 1) else math.nan

    assert c.bootstrap_interval(y, pred, recall_of_1, n_resamples=200) == (1.0, 1.0)
    lo, hi = c.bootstrap_interval(y, pred, lambda ys, ps: math.nan, n_resamples=20)
    assert math.isnan(lo) and math.isnan(hi)
    with pytest.raises(ValueError, match="level must lie strictly between 0 and 1"):
        c.bootstrap_interval(y, pred, accuracy, level=95)


# --------------------------------------------------------------------------- comparing models


def test_paired_bootstrap_detects_a_real_difference():
    rng = np.random.default_rng(8)
    y = rng.integers(0, 3, 2000)
    a = correct_with_rate(rng, y, 0.9, 3)
    b = correct_with_rate(rng, y, 0.8, 3)
    r = c.paired_bootstrap(y, a, b, accuracy, n_resamples=1000)
    assert r["difference"] == pytest.approx(accuracy(y, a) - accuracy(y, b))
    assert r["difference"] == pytest.approx(0.1, abs=0.03)
    assert 0 < r["ci_low"] < r["difference"] < r["ci_high"]
    assert r["p_value"] < 0.01 and r["significant"] and r["better"] == "a"
    assert (r["n_resamples"], r["n_defined"], r["grouped"]) == (1000, 1000, False)
    # The same comparison with a lower-is-better metric still prefers a.
    e = c.paired_bootstrap(y, a, b, error_rate, n_resamples=1000, higher_is_better=False)
    assert e["difference"] == pytest.approx(-r["difference"])
    assert e["significant"] and e["better"] == "a"
    # Swapping the models swaps the verdict.
    assert c.paired_bootstrap(y, b, a, accuracy, n_resamples=1000)["better"] == "b"


def test_paired_bootstrap_does_not_flag_identical_models():
    rng = np.random.default_rng(9)
    y = rng.integers(0, 3, 500)
    a = correct_with_rate(rng, y, 0.7, 3)
    groups = np.repeat(np.arange(50), 10)
    for g in (None, groups):
        r = c.paired_bootstrap(y, a, a.copy(), accuracy, groups=g, n_resamples=300)
        assert r["difference"] == 0.0 and r["p_value"] == 1.0
        assert not r["significant"] and r["better"] is None
        assert r["grouped"] is (g is not None)


def test_paired_interval_is_narrower_than_separate_intervals():
    rng = np.random.default_rng(10)
    y = rng.integers(0, 3, 2000)
    a = correct_with_rate(rng, y, 0.85, 3)
    # b = a except on 3% of the rows, where b turns a right answer wrong.
    flip = (a == y) & (rng.random(2000) < 0.035)
    b = np.where(flip, (y + 1) % 3, a)
    a_lo, a_hi = c.bootstrap_interval(y, a, accuracy, n_resamples=500)
    b_lo, b_hi = c.bootstrap_interval(y, b, accuracy, n_resamples=500)
    r = c.paired_bootstrap(y, a, b, accuracy, n_resamples=500)
    assert b_hi > a_lo  # the separate intervals overlap: no verdict from them
    assert r["ci_high"] - r["ci_low"] < 0.5 * min(a_hi - a_lo, b_hi - b_lo)
    assert r["ci_low"] > 0 and r["significant"] and r["better"] == "a"


def test_mcnemar_by_hand():
    # 10 rows a right/b wrong, 2 rows a wrong/b right, 30 both right, 8 both wrong.
    y = np.zeros(50, dtype=int)
    a = np.array([0] * 10 + [1] * 2 + [0] * 30 + [1] * 8)
    b = np.array([1] * 10 + [0] * 2 + [0] * 30 + [2] * 8)
    r = c.mcnemar(y, a, b)
    assert (r["a_right_b_wrong"], r["a_wrong_b_right"]) == (10, 2)
    # Exact: 2 * P(X <= 2), X ~ Bin(12, 1/2) = 2 * (1 + 12 + 66) / 4096.
    assert r["p_value"] == pytest.approx(158 / 4096)
    assert r["p_value"] == pytest.approx(binomtest(2, 12, 0.5).pvalue)
    assert r["statistic"] == pytest.approx((8 - 1) ** 2 / 12)
    assert r["method"] == "exact binomial"
    assert r["significant"] and r["better"] == "a"
    assert c.mcnemar(y, b, a)["better"] == "b"
    same = c.mcnemar(y, a, a)
    assert same["p_value"] == 1.0 and same["statistic"] == 0.0
    assert not same["significant"] and same["better"] is None
    # 3 vs 1 discordant: p = 2 * 5/16 = 0.625, not significant.
    few = c.mcnemar([0, 0, 0, 0], [0, 0, 0, 1], [1, 1, 1, 0])
    assert few["p_value"] == pytest.approx(0.625) and few["better"] is None


def test_holm_by_hand():
    # Sorted: .005*4=.02, .01*3=.03, .03*2=.06, .04*1=.04 -> monotone .06.
    assert c.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert c.holm([0.5, 0.4]) == pytest.approx([0.8, 0.8])
    assert c.holm([0.9, 0.6, 0.01]) == pytest.approx([1.0, 1.0, 0.03])
    adjusted = c.holm([0.02, math.nan, 0.04])  # NaN is left out of m
    assert (
        adjusted[0] == pytest.approx(0.04) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.04)
    )
    assert c.holm([]) == []


def test_compare_models_pairs_and_adjusts():
    rng = np.random.default_rng(11)
    y = rng.integers(0, 3, 1500)
    groups = np.repeat(np.arange(75), 20)
    outputs = {
        "mlp": correct_with_rate(rng, y, 0.88, 3),
        "gbt": correct_with_rate(rng, y, 0.86, 3),
        "majority": np.zeros(1500, dtype=int),
    }
    results = c.compare_models(y, outputs, accuracy, groups=groups, n_resamples=300)
    assert [(r["a"], r["b"]) for r in results] == [("mlp", "gbt"), ("mlp", "majority"), ("gbt", "majority")]
    assert [r["p_adjusted"] for r in results] == pytest.approx(c.holm([r["p_value"] for r in results]))
    for r in results:
        alone = c.paired_bootstrap(
            y, outputs[r["a"]], outputs[r["b"]], accuracy, groups=groups, n_resamples=300
        )
        for key in ("metric_a", "metric_b", "difference", "ci_low", "ci_high", "p_value", "grouped"):
            assert r[key] == pytest.approx(alone[key])
        assert r["significant"] == (r["p_adjusted"] < 0.05)
        assert r["p_adjusted"] >= r["p_value"]
    assert results[1]["significant"] and results[1]["better"] == "a"
    assert results[2]["better"] == "a"
    assert c.compare_models(y, {"only": outputs["mlp"]}, accuracy) == []


def test_select_on_validation():
    assert c.select_on_validation({"a": 0.7, "b": 0.9, "c": 0.8}) == "b"
    assert c.select_on_validation({"a": 0.7, "b": 0.9, "c": 0.9}) == "b"  # tie: first
    assert c.select_on_validation({"a": 0.3, "b": 0.1, "c": 0.1}, higher_is_better=False) == "b"
    assert c.select_on_validation({"a": math.nan, "b": None, "c": 0.1}) == "c"
    with pytest.raises(ValueError, match="scored on validation"):
        c.select_on_validation({})
    with pytest.raises(ValueError, match="scored on validation"):
        c.select_on_validation({"a": math.nan, "b": None})
