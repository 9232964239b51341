"""Metrics on small cases whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from moulin.training import metrics as m

pytestmark = pytest.mark.training


def test_perfect_reversed_and_random_rankings():
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    assert m.roc_auc(y, p) == 1.0
    assert m.pr_auc(y, p) == 1.0
    assert m.roc_auc(y, 1 - p) == 0.0
    rng = np.random.default_rng(0)
    y_rand = rng.integers(0, 2, 20_000)
    assert m.roc_auc(y_rand, rng.random(20_000)) == pytest.approx(0.5, abs=0.02)
    # Random scores: average precision ~ the base rate.
    assert m.pr_auc(y_rand, rng.random(20_000)) == pytest.approx(y_rand.mean(), abs=0.02)


def test_ties_give_half_credit():
    assert m.roc_auc([0, 1], [0.5, 0.5]) == 0.5


def test_one_class_is_undefined():
    assert math.isnan(m.roc_auc([1, 1, 1], [0.2, 0.5, 0.9]))
    assert math.isnan(m.pr_auc([0, 0], [0.2, 0.5]))


def test_brier_f1_and_threshold():
    assert m.brier([0, 1], [0.0, 1.0]) == 0.0
    assert m.brier([0, 1], [1.0, 0.0]) == 1.0
    assert m.brier([0, 1, 1, 0], [0.5] * 4) == 0.25
    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.8, 0.9])
    # p >= 0.5: TP=2 (0.8, 0.9), FP=1 (0.6), FN=1 (0.4) -> F1 = 4/6.
    assert m.f1_at(y, p, 0.5) == pytest.approx(2 / 3)
    # The best threshold takes all three positives: TP=3, FP=1 -> F1 = 6/7.
    threshold, f1 = m.best_f1_threshold(y, p)
    assert threshold == pytest.approx(0.4) and f1 == pytest.approx(6 / 7)
    assert m.f1_at(y, p, threshold) == pytest.approx(f1)
    assert m.f1_at([0, 0], [0.1, 0.2], 0.5) == 0.0


def test_calibration_error_and_reliability_table():
    y = np.array([0, 1] * 50)
    assert m.expected_calibration_error(y, np.full(100, 0.5)) == pytest.approx(0.0)
    assert m.expected_calibration_error(np.zeros(10), np.ones(10)) == pytest.approx(1.0)
    # Two bins: predictions 0.2 (observed 0.0) and 0.8 (observed 1.0) -> |0.2| and |0.2|.
    y2 = np.array([0] * 5 + [1] * 5)
    p2 = np.array([0.2] * 5 + [0.8] * 5)
    assert m.expected_calibration_error(y2, p2) == pytest.approx(0.2)
    table = m.reliability_table(y2, p2, n_bins=10)
    assert len(table) == 10 and sum(r["count"] for r in table) == 10
    assert table[2]["count"] == 5 and table[2]["observed_rate"] == 0.0
    assert table[8]["mean_predicted"] == pytest.approx(0.8) and table[8]["observed_rate"] == 1.0
    assert m.reliability_table([1], [1.0])[-1]["count"] == 1  # p = 1 lands in the last bin


def test_bootstrap_intervals_contain_the_estimate_and_are_seeded():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    p = np.clip(0.3 * y + 0.7 * rng.random(500), 0, 1)
    result = m.evaluate(y, p, threshold=0.5, n_resamples=200, seed=3)
    for name in ("roc_auc", "pr_auc", "f1", "brier", "ece"):
        lo, hi = result[f"{name}_ci"]
        assert lo <= result[name] <= hi, name
        assert hi - lo < 0.2
    assert result["base_rate"] == pytest.approx(y.mean())
    again = m.evaluate(y, p, threshold=0.5, n_resamples=200, seed=3)
    assert again["roc_auc_ci"] == result["roc_auc_ci"]


def test_undo_class_weighting_restores_the_prior():
    # A weighted model's odds are pos_weight times the true odds.
    true_p = np.array([0.1, 0.25, 0.5])
    w = 3.0
    weighted = (w * true_p / (1 - true_p)) / (1 + w * true_p / (1 - true_p))
    np.testing.assert_allclose(m.undo_class_weighting(weighted, w), true_p)
    np.testing.assert_array_equal(m.undo_class_weighting(true_p, 1.0), true_p)


def test_slices_and_curves():
    y = np.array([0, 1, 0, 1, 0, 0])
    p = np.array([0.1, 0.9, 0.2, 0.8, 0.7, 0.3])
    groups = np.array(["a", "a", "a", "b", "b", "b"])
    rows = m.slice_metrics(y, p, groups, threshold=0.5, min_rows=1)
    assert [r["value"] for r in rows] == ["a", "b"] and rows[0]["roc_auc"] == 1.0
    assert m.slice_metrics(y, p, groups, threshold=0.5, min_rows=4) == []
    c = m.curves(y, p)
    assert c["roc"]["fpr"][0] == 0.0 and c["roc"]["fpr"][-1] == 1.0 and c["roc"]["tpr"][-1] == 1.0
    assert c["roc"]["threshold"][-1] == pytest.approx(0.1)
    assert len({len(v) for v in c["roc"].values()}) == 1 and len({len(v) for v in c["pr"].values()}) == 1
    # PR: recall increasing; p >= 0.8 catches both positives, p >= 0.7 adds a false positive.
    assert c["pr"]["recall"][0] == 0.0 and c["pr"]["recall"][-1] == 1.0
    at = c["pr"]["threshold"].index(pytest.approx(0.8))
    assert c["pr"]["recall"][at] == 1.0 and c["pr"]["precision"][at] == pytest.approx(1.0)
    at = c["pr"]["threshold"].index(pytest.approx(0.7))
    assert c["pr"]["precision"][at] == pytest.approx(2 / 3)
    assert sum(c["calibration"]["count"]) == len(y)
    assert m.curves([1, 1], [0.2, 0.4])["roc"] is None
    big = m.curves(np.arange(1000) % 2, np.linspace(0, 1, 1000), max_points=50)
    assert len(big["roc"]["fpr"]) <= 50 and len(big["pr"]["recall"]) <= 50
