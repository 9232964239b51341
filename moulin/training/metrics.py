"""Binary-classification metrics: ranking, threshold, calibration, bootstrap CIs.

Everything takes numpy arrays ``y`` (0/1) and ``p`` (predicted probability of 1).
A metric undefined on the data (AUC with one class present) is NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from moulin.training.classification import group_bootstrap_indices

MetricFn = Callable[[np.ndarray, np.ndarray], float]


def _arrays(y, p) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels and predictions differ in length: {len(y)} != {len(p)}")
    return y, p


def _two_classes(y: np.ndarray) -> bool:
    return len(y) > 0 and 0 < y.sum() < len(y)


def roc_auc(y, p) -> float:
    y, p = _arrays(y, p)
    return float(roc_auc_score(y, p)) if _two_classes(y) else math.nan


def pr_auc(y, p) -> float:
    """Average precision (area under the precision-recall curve, step-wise)."""
    y, p = _arrays(y, p)
    return float(average_precision_score(y, p)) if _two_classes(y) and y.sum() > 0 else math.nan


def brier(y, p) -> float:
    y, p = _arrays(y, p)
    return float(np.mean((p - y) ** 2)) if len(y) else math.nan


def f1_at(y, p, threshold: float) -> float:
    """F1 of the rule ``p >= threshold``."""
    y, p = _arrays(y, p)
    pred = p >= threshold
    tp = float(np.sum(pred & (y == 1)))
    fp = float(np.sum(pred & (y == 0)))
    fn = float(np.sum(~pred & (y == 1)))
    return 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) > 0 else 0.0


def best_f1_threshold(y, p) -> tuple[float, float]:
    """(threshold, F1) maximising F1 of ``p >= threshold`` (choose it on validation)."""
    y, p = _arrays(y, p)
    if not _two_classes(y):
        return 0.5, f1_at(y, p, 0.5)
    precision, recall, thresholds = precision_recall_curve(y, p)
    denom = precision[:-1] + recall[:-1]
    f1 = np.where(denom > 0, 2 * precision[:-1] * recall[:-1] / np.where(denom > 0, denom, 1), 0.0)
    i = int(np.argmax(f1))
    return float(thresholds[i]), float(f1[i])


def undo_class_weighting(p, pos_weight: float) -> np.ndarray:
    """Probabilities of a model trained with positives weighted ``pos_weight`` times,
    mapped back to the data's class balance (odds divided by ``pos_weight``).

    Weighting multiplies the fitted odds by ``pos_weight``; this is monotone, so
    AUCs are unchanged, but calibration metrics become meaningful again.
    """
    p = np.asarray(p, dtype=np.float64)
    if pos_weight == 1.0:
        return p
    return p / (p + pos_weight * (1.0 - p))


def _bins(p: np.ndarray, n_bins: int) -> np.ndarray:
    return np.clip((p * n_bins).astype(int), 0, n_bins - 1)


def reliability_table(y, p, n_bins: int = 10) -> list[dict]:
    """Equal-width probability bins: count, mean prediction and observed rate per bin."""
    y, p = _arrays(y, p)
    idx = _bins(p, n_bins)
    rows = []
    for b in range(n_bins):
        mask = idx == b
        n = int(mask.sum())
        rows.append(
            {
                "bin": b,
                "lower": b / n_bins,
                "upper": (b + 1) / n_bins,
                "count": n,
                "mean_predicted": float(p[mask].mean()) if n else None,
                "observed_rate": float(y[mask].mean()) if n else None,
            }
        )
    return rows


def expected_calibration_error(y, p, n_bins: int = 10) -> float:
    """Sum over equal-width bins of |observed rate - mean prediction|, weighted by bin size."""
    y, p = _arrays(y, p)
    if not len(y):
        return math.nan
    idx = _bins(p, n_bins)
    sum_p = np.bincount(idx, weights=p, minlength=n_bins)
    sum_y = np.bincount(idx, weights=y, minlength=n_bins)
    return float(np.sum(np.abs(sum_y - sum_p)) / len(y))


def bootstrap_ci(
    y,
    p,
    metrics: dict[str, MetricFn],
    n_resamples: int = 200,
    seed: int = 0,
    level: float = 0.95,
    groups=None,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of each metric over ``n_resamples`` resamples of the rows
    (with ``groups``, e.g. the day of each flight: of whole groups, so rows that are
    correlated within a group move together).

    Resamples where a metric is undefined (e.g. one class) are left out of that
    metric's interval; a metric never defined gets (nan, nan).  ECE is biased
    upwards on resamples (binning noise adds to it), so for a well-calibrated
    model its interval can lie just above the point estimate.
    """
    y, p = _arrays(y, p)
    values: dict[str, list[float]] = {name: [] for name in metrics}
    groups = np.asarray(groups) if groups is not None else None
    # The suite's one resampler (rows, or whole groups), every metric on each resample.
    for idx in group_bootstrap_indices(len(y), groups, n_resamples, seed):
        ys, ps = y[idx], p[idx]
        for name, fn in metrics.items():
            v = fn(ys, ps)
            if not math.isnan(v):
                values[name].append(v)
    alpha = (1 - level) / 2
    out = {}
    for name, vals in values.items():
        if vals:
            lo, hi = np.quantile(vals, [alpha, 1 - alpha])
            out[name] = (float(lo), float(hi))
        else:
            out[name] = (math.nan, math.nan)
    return out


def _downsample(n: int, max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` points, first and last included."""
    return np.unique(np.linspace(0, n - 1, num=min(max_points, n)).round().astype(int))


def curves(y, p, max_points: int = 101, n_bins: int = 10) -> dict:
    """Plot-ready curves (column lists), down-sampled to ``max_points`` points:

    * ``roc``: ``fpr``, ``tpr``, ``threshold`` (the first threshold is +inf);
    * ``pr``: ``recall`` (increasing), ``precision``, ``threshold`` (NaN at recall 0);
    * ``calibration``: the non-empty equal-width bins: ``bin_mid``, ``predicted``
      (mean prediction), ``observed`` (observed rate), ``count``.
    """
    y, p = _arrays(y, p)
    out: dict = {"roc": None, "pr": None, "calibration": None}
    if _two_classes(y):
        fpr, tpr, roc_t = roc_curve(y, p)
        keep = _downsample(len(fpr), max_points)
        out["roc"] = {"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist(), "threshold": roc_t[keep].tolist()}
        precision, recall, pr_t = precision_recall_curve(y, p)
        # sklearn: recall decreasing, one threshold fewer (the last point, recall 0, has none).
        precision, recall, pr_t = precision[::-1], recall[::-1], np.append(pr_t, np.nan)[::-1]
        keep = _downsample(len(recall), max_points)
        out["pr"] = {
            "recall": recall[keep].tolist(),
            "precision": precision[keep].tolist(),
            "threshold": pr_t[keep].tolist(),
        }
    bins = [b for b in reliability_table(y, p, n_bins) if b["count"]]
    if bins:
        out["calibration"] = {
            "bin_mid": [(b["lower"] + b["upper"]) / 2 for b in bins],
            "predicted": [b["mean_predicted"] for b in bins],
            "observed": [b["observed_rate"] for b in bins],
            "count": [b["count"] for b in bins],
        }
    return out


def evaluate(
    y,
    p,
    threshold: float,
    n_resamples: int = 200,
    seed: int = 0,
    n_bins: int = 10,
    groups=None,
) -> dict:
    """Test-split metrics at a validation-chosen threshold, with bootstrap 95% CIs
    (resampling whole ``groups`` when given)."""
    y, p = _arrays(y, p)
    fns: dict[str, MetricFn] = {
        "roc_auc": roc_auc,
        "pr_auc": pr_auc,
        "f1": lambda a, b: f1_at(a, b, threshold),
        "brier": brier,
        "ece": lambda a, b: expected_calibration_error(a, b, n_bins),
    }
    point = {name: fn(y, p) for name, fn in fns.items()}
    cis = bootstrap_ci(y, p, fns, n_resamples=n_resamples, seed=seed, groups=groups)
    result: dict = {
        "n": int(len(y)),
        "positives": int(y.sum()),
        "base_rate": float(y.mean()) if len(y) else math.nan,
        "mean_predicted": float(p.mean()) if len(p) else math.nan,
        "threshold": float(threshold),
        "bootstrap_resamples": n_resamples,
        "bootstrap_grouped": groups is not None,
    }
    for name, value in point.items():
        lo, hi = cis[name]
        result[name] = value
        result[f"{name}_ci"] = [lo, hi]
    result["reliability"] = reliability_table(y, p, n_bins)
    return result


def slice_metrics(y, p, groups, threshold: float, min_rows: int = 30) -> list[dict]:
    """Metrics per value of ``groups`` (slices with at least ``min_rows`` rows), largest first."""
    y, p = _arrays(y, p)
    groups = np.asarray(groups).astype(str)
    rows = []
    for value in np.unique(groups):
        mask = groups == value
        n = int(mask.sum())
        if n < min_rows:
            continue
        ys, ps = y[mask], p[mask]
        rows.append(
            {
                "value": str(value),
                "n": n,
                "positives": int(ys.sum()),
                "positive_rate": float(ys.mean()),
                "mean_predicted": float(ps.mean()),
                "roc_auc": roc_auc(ys, ps),
                "pr_auc": pr_auc(ys, ps),
                "f1": f1_at(ys, ps, threshold),
                "brier": brier(ys, ps),
            }
        )
    return sorted(rows, key=lambda r: -r["n"])
