"""Multi-class evaluation and sound comparison of two or more models.

Labels ``y_true`` are integer class indices ``0 .. k-1``; a model's output is
either an (n, k) array of class probabilities or an array of predicted labels.
Metric functions passed to the bootstrap helpers have the signature
``metric(y_true, output) -> float`` and may return NaN where undefined.

Uncertainty comes from the bootstrap.  When rows are correlated in groups (all
flights of one date share the weather), pass ``groups``: the cluster bootstrap
then resamples whole groups, which is what makes the interval honest.  Two
models are compared on the *same* resampled rows (a paired bootstrap), so the
noise they share cancels in their difference.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
from scipy.stats import binomtest
from sklearn.metrics import f1_score, precision_recall_fscore_support

MetricFn = Callable[[np.ndarray, np.ndarray], float]

ECE_BINS = 15
LOG_LOSS_EPS = 1e-15
PROBA_SUM_TOLERANCE = 1e-3


# --------------------------------------------------------------------------- inputs


def _labels(y, n_classes: int, what: str = "y_true") -> np.ndarray:
    """``y`` as a 1-D int64 array of class indices in ``[0, n_classes)``."""
    y = np.asarray(y).ravel()
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not np.issubdtype(y.dtype, np.number) or not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise ValueError(f"{what} must hold integer class indices, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"{what} has labels outside 0..{n_classes - 1}: min {y.min()}, max {y.max()}")
    return y


def _proba(proba, class_names: Sequence[str]) -> np.ndarray:
    """``proba`` as an (n, k) float64 array of probabilities, k = len(class_names)."""
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"proba must be 2-D (rows x classes), got shape {p.shape}")
    if p.shape[1] != len(class_names):
        raise ValueError(f"proba has {p.shape[1]} columns but {len(class_names)} class names were given")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError("proba must be finite and non-negative (pass probabilities, not logits)")
    sums = p.sum(axis=1)
    if p.shape[0] and np.max(np.abs(sums - 1.0)) > PROBA_SUM_TOLERANCE:
        raise ValueError(
            f"proba rows must sum to 1 (within {PROBA_SUM_TOLERANCE}); "
            f"row sums range {sums.min():.4g}..{sums.max():.4g}"
        )
    return p


def _same_length(y: np.ndarray, **outputs: np.ndarray) -> None:
    for name, out in outputs.items():
        if len(out) != len(y):
            raise ValueError(f"{name} has {len(out)} rows but y_true has {len(y)}")


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")


# --------------------------------------------------------------------------- point metrics


def confusion(y_true, y_pred, n_classes: int) -> np.ndarray:
    """The (n_classes, n_classes) int64 confusion matrix: rows are the true class,
    columns the predicted class."""
    if n_classes < 1:
        raise ValueError(f"n_classes must be at least 1, got {n_classes}")
    y = _labels(y_true, n_classes, "y_true")
    pred = _labels(y_pred, n_classes, "y_pred")
    _same_length(y, y_pred=pred)
    counts = np.bincount(y * n_classes + pred, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes).astype(np.int64)


def _top_label_bins(y: np.ndarray, p: np.ndarray, n_bins: int) -> tuple[np.ndarray, ...]:
    """Per equal-width bin of the top probability: count, summed confidence, summed hits."""
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    idx = np.clip((confidence * n_bins).astype(int), 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    sum_conf = np.bincount(idx, weights=confidence, minlength=n_bins)
    sum_correct = np.bincount(idx, weights=correct, minlength=n_bins)
    return count, sum_conf, sum_correct


def top_label_ece(y_true, proba, n_bins: int = ECE_BINS) -> float:
    """Top-label expected calibration error: over ``n_bins`` equal-width bins of the
    highest class probability, the size-weighted mean of |accuracy - mean confidence|.
    NaN on no rows.  Usable as a bootstrap metric."""
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"proba must be 2-D (rows x classes), got shape {p.shape}")
    y = _labels(y_true, p.shape[1])
    _same_length(y, proba=p)
    if not len(y):
        return math.nan
    _, sum_conf, sum_correct = _top_label_bins(y, p, n_bins)
    return float(np.sum(np.abs(sum_correct - sum_conf)) / len(y))


def _reliability(y: np.ndarray, p: np.ndarray, n_bins: int) -> list[dict]:
    count, sum_conf, sum_correct = _top_label_bins(y, p, n_bins)
    return [
        {
            "lower": b / n_bins,
            "upper": (b + 1) / n_bins,
            "count": int(count[b]),
            "mean_confidence": float(sum_conf[b] / count[b]),
            "accuracy": float(sum_correct[b] / count[b]),
        }
        for b in range(n_bins)
        if count[b]
    ]


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean negative log probability of the true class, clipped to [eps, 1]."""
    p_true = np.clip(p[np.arange(len(y)), y], LOG_LOSS_EPS, 1.0)
    return float(-np.mean(np.log(p_true)))


def classification_summary(y_true, proba, class_names: Sequence[str], n_bins: int = ECE_BINS) -> dict:
    """A JSON-ready evaluation of class probabilities ``proba`` (n, k); the prediction
    is the argmax (first class on ties).

    Keys: ``n``, ``accuracy``, ``macro_f1``, ``per_class`` (one dict per class:
    ``class``, ``index``, ``support``, ``precision``, ``recall``, ``f1``),
    ``confusion`` (rows true, columns predicted), ``ece`` (top-label, ``n_bins``
    equal-width bins), ``reliability`` (the non-empty bins: ``lower``, ``upper``,
    ``count``, ``mean_confidence``, ``accuracy``) and ``log_loss``.

    Precision/recall/F1 of a class that is never predicted or never present are 0
    (sklearn's ``zero_division=0``).  ``macro_f1`` follows sklearn's default and
    averages over the classes present in ``y_true`` or in the predictions, so a
    class absent from both does not count as a 0.
    """
    p = _proba(proba, class_names)
    k = len(class_names)
    y = _labels(y_true, k)
    _same_length(y, proba=p)
    if not len(y):
        raise ValueError("cannot summarise zero rows")
    pred = p.argmax(axis=1)
    labels = list(range(k))
    precision, recall, f1, support = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    per_class = [
        {
            "class": str(name),
            "index": i,
            "support": int(support[i]),
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
        }
        for i, name in enumerate(class_names)
    ]
    count, sum_conf, sum_correct = _top_label_bins(y, p, n_bins)
    return {
        "n": int(len(y)),
        "accuracy": float(np.mean(pred == y)),
        "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
        "per_class": per_class,
        "confusion": confusion(y, pred, k).tolist(),
        "ece": float(np.sum(np.abs(sum_correct - sum_conf)) / len(y)),
        "reliability": _reliability(y, p, n_bins),
        "log_loss": _log_loss(y, p),
    }


# --------------------------------------------------------------------------- bootstrap


def _group_rows(groups, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows sorted by group, with each group's start offset and size in that order."""
    groups = np.asarray(groups).ravel()
    if len(groups) != n:
        raise ValueError(f"groups has {len(groups)} labels but there are {n} rows")
    _, inverse = np.unique(groups, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    sizes = np.bincount(inverse)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    return order, starts, sizes


def group_bootstrap_indices(
    n: int, groups=None, n_resamples: int = 1000, seed: int = 0
) -> Iterator[np.ndarray]:
    """Yield ``n_resamples`` arrays of row indices into ``n`` rows (none if n == 0).

    Without ``groups``: ``n`` rows drawn with replacement.  With ``groups`` (one
    label per row): a cluster bootstrap -- the distinct groups are drawn with
    replacement and every row of each drawn group is taken, so correlated rows
    stay together; the resample size then varies with the groups drawn.
    """
    if n < 0 or n_resamples < 0:
        raise ValueError(f"n and n_resamples must be non-negative, got {n} and {n_resamples}")
    rng = np.random.default_rng(seed)
    if groups is None:
        for _ in range(n_resamples if n else 0):
            yield rng.integers(0, n, size=n)
        return
    order, starts, sizes = _group_rows(groups, n)
    for _ in range(n_resamples if n else 0):
        drawn = rng.integers(0, len(sizes), size=len(sizes))
        lengths = sizes[drawn]
        # Position j of drawn group g maps to order[starts[g] + j].
        first = np.repeat(starts[drawn] - (np.cumsum(lengths) - lengths), lengths)
        yield order[first + np.arange(lengths.sum())]


def _percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    if not len(values):
        return math.nan, math.nan
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def _resampled_metrics(
    y: np.ndarray,
    outputs: Sequence[np.ndarray],
    metric: MetricFn,
    groups,
    n_resamples: int,
    seed: int,
) -> np.ndarray:
    """(n_resamples, len(outputs)) metric values, every output scored on the same
    resampled rows in each resample; NaN where the metric is undefined."""
    values = np.full((n_resamples, len(outputs)), np.nan)
    for r, idx in enumerate(group_bootstrap_indices(len(y), groups, n_resamples, seed)):
        ys = y[idx]
        for j, out in enumerate(outputs):
            values[r, j] = metric(ys, out[idx])
    return values


def bootstrap_interval(
    y_true,
    pred_or_proba,
    metric: MetricFn,
    groups=None,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile ``level`` interval of ``metric`` over bootstrap resamples (whole
    groups when ``groups`` is given).  Resamples where the metric is NaN are left
    out; (nan, nan) when it is never defined."""
    _check_level(level)
    y = np.asarray(y_true)
    out = np.asarray(pred_or_proba)
    _same_length(y, pred_or_proba=out)
    values = _resampled_metrics(y, [out], metric, groups, n_resamples, seed)[:, 0]
    return _percentile_interval(values[~np.isnan(values)], level)


def _better(difference: float, significant: bool, higher_is_better: bool) -> str | None:
    if not significant or difference == 0 or math.isnan(difference):
        return None
    return "a" if (difference > 0) == higher_is_better else "b"


def _paired_result(
    metric_a: float,
    metric_b: float,
    diffs: np.ndarray,
    n_resamples: int,
    grouped: bool,
    level: float,
    higher_is_better: bool,
) -> dict:
    """The paired-bootstrap summary of resampled differences ``diffs`` (a - b, NaN
    where either metric was undefined)."""
    diffs = diffs[~np.isnan(diffs)]
    difference = metric_a - metric_b
    ci_low, ci_high = _percentile_interval(diffs, level)
    if len(diffs):
        share_le = float(np.mean(diffs <= 0))
        share_ge = float(np.mean(diffs >= 0))
        p_value = min(1.0, 2.0 * min(share_le, share_ge))
    else:
        p_value = math.nan
    significant = bool(p_value < 1.0 - level)
    return {
        "metric_a": metric_a,
        "metric_b": metric_b,
        "difference": difference,
        "ci_low": ci_low,
        "ci_high": ci_high,
        "p_value": p_value,
        "significant": significant,
        "better": _better(difference, significant, higher_is_better),
        "n_resamples": n_resamples,
        "n_defined": int(len(diffs)),
        "grouped": bool(grouped),
    }


def paired_bootstrap(
    y_true,
    a,
    b,
    metric: MetricFn,
    groups=None,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    higher_is_better: bool = True,
) -> dict:
    """Compare two models' outputs ``a`` and ``b`` on the same rows with a paired
    bootstrap: each resample scores both on the same resampled rows (whole groups
    when ``groups`` is given), and the difference metric(a) - metric(b) is recorded.

    Returns ``metric_a``, ``metric_b``, ``difference`` (a - b on all rows),
    ``ci_low``/``ci_high`` (percentile ``level`` interval of the resampled
    differences), ``p_value``, ``significant`` (p < 1 - level), ``better`` ("a",
    "b", or None when not significant; "better" respects ``higher_is_better``),
    ``n_resamples``, ``n_defined`` (resamples where both metrics were defined)
    and ``grouped``.

    ``p_value`` is the two-sided percentile-bootstrap p-value
    ``min(1, 2 * min(P(d <= 0), P(d >= 0)))`` over the resampled differences d,
    i.e. the smallest 1 - level at which the percentile interval reaches 0; it
    is consistent with ``ci_low``/``ci_high``.  Its resolution is 2 / n_defined:
    p == 0 means no resample had the difference on the other side of 0 (report it
    as p < 2 / n_defined).  Identical models give d == 0 everywhere and p = 1.
    NaN (and not significant) when no resample defined both metrics.
    """
    _check_level(level)
    y = np.asarray(y_true)
    a, b = np.asarray(a), np.asarray(b)
    _same_length(y, a=a, b=b)
    values = _resampled_metrics(y, [a, b], metric, groups, n_resamples, seed)
    return _paired_result(
        float(metric(y, a)),
        float(metric(y, b)),
        values[:, 0] - values[:, 1],
        n_resamples,
        groups is not None,
        level,
        higher_is_better,
    )


def mcnemar(y_true, pred_a, pred_b) -> dict:
    """Exact McNemar test of two classifiers' predicted labels on the same rows.

    Only discordant rows count: ``a_right_b_wrong`` (b01) and ``a_wrong_b_right``
    (b10).  ``p_value`` is the two-sided exact binomial test of min(b01, b10) out
    of b01 + b10 at 0.5 (1.0 with no discordant rows); ``statistic`` is the
    continuity-corrected chi-square ``max(|b01 - b10| - 1, 0)**2 / (b01 + b10)``
    (0 with no discordant rows), reported for reference.  ``significant`` is
    p < 0.05 and ``better`` the model right more often on the discordant rows
    (None when not significant).
    """
    y = np.asarray(y_true).ravel()
    pa, pb = np.asarray(pred_a).ravel(), np.asarray(pred_b).ravel()
    _same_length(y, pred_a=pa, pred_b=pb)
    a_right, b_right = pa == y, pb == y
    b01 = int(np.sum(a_right & ~b_right))
    b10 = int(np.sum(~a_right & b_right))
    discordant = b01 + b10
    if discordant:
        p_value = float(binomtest(min(b01, b10), discordant, 0.5).pvalue)
        statistic = max(abs(b01 - b10) - 1, 0) ** 2 / discordant
    else:
        p_value, statistic = 1.0, 0.0
    significant = p_value < 0.05
    return {
        "a_right_b_wrong": b01,
        "a_wrong_b_right": b10,
        "p_value": p_value,
        "statistic": float(statistic),
        "method": "exact binomial",
        "significant": significant,
        "better": _better(float(b01 - b10), significant, higher_is_better=True),
    }


# --------------------------------------------------------------------------- several models


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order.

    With the m defined p-values sorted ascending, the i-th (from 0) is multiplied
    by m - i, made non-decreasing along that order and capped at 1.  NaN (or
    None) p-values stay NaN and do not count towards m.
    """
    p = np.array([math.nan if v is None else float(v) for v in p_values], dtype=np.float64)
    adjusted = np.full(len(p), np.nan)
    defined = np.flatnonzero(~np.isnan(p))
    order = defined[np.argsort(p[defined], kind="stable")]
    m = len(order)
    scaled = p[order] * (m - np.arange(m))
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return [float(v) for v in adjusted]


def compare_models(
    y_true,
    outputs: Mapping[str, np.ndarray],
    metric: MetricFn,
    groups=None,
    n_resamples: int = 2000,
    seed: int = 0,
    higher_is_better: bool = True,
    level: float = 0.95,
) -> list[dict]:
    """Paired-bootstrap comparisons of every unordered pair of models, in the
    mapping's order ((m1, m2), (m1, m3), ..., (m2, m3), ...).

    Each dict is :func:`paired_bootstrap`'s (all pairs share the same resamples,
    so each equals ``paired_bootstrap`` on that pair with the same seed) plus ``a``
    and ``b`` (the names) and ``p_adjusted`` (Holm over all pairs); ``significant``
    and ``better`` are then decided by ``p_adjusted``.  Fewer than two models: [].
    """
    _check_level(level)
    names = list(outputs)
    y = np.asarray(y_true)
    arrays = [np.asarray(outputs[name]) for name in names]
    _same_length(y, **dict(zip(names, arrays, strict=True)))
    if len(names) < 2:
        return []
    full = [float(metric(y, out)) for out in arrays]
    values = _resampled_metrics(y, arrays, metric, groups, n_resamples, seed)
    results = []
    for i, j in itertools.combinations(range(len(names)), 2):
        result = _paired_result(
            full[i],
            full[j],
            values[:, i] - values[:, j],
            n_resamples,
            groups is not None,
            level,
            higher_is_better,
        )
        results.append({"a": names[i], "b": names[j], **result})
    for result, adjusted in zip(results, holm([r["p_value"] for r in results]), strict=True):
        result["p_adjusted"] = adjusted
        result["significant"] = bool(adjusted < 1.0 - level)
        result["better"] = _better(result["difference"], result["significant"], higher_is_better)
    return results


def select_on_validation(scores: Mapping[str, float | None], higher_is_better: bool = True) -> str:
    """The model with the best validation score (ties: the first in the mapping).

    Models whose score is None or NaN are skipped; raises ValueError when there
    are no models or none was scored.
    """
    if not scores:
        raise ValueError("no models to select from: models must be scored on validation first")
    best_name, best = None, math.nan
    for name, score in scores.items():
        if score is None or math.isnan(score):
            continue
        if best_name is None or (score > best if higher_is_better else score < best):
            best_name, best = name, float(score)
    if best_name is None:
        raise ValueError(
            f"no validation score for any of {list(scores)}: models must be scored on validation first"
        )
    return best_name
