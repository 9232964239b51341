"""The reports' charts (flights' and the classification report's), rendered with
matplotlib's Agg canvas into inline PNG data URIs.

Every function returns ``data:image/png;base64,...`` or None when there is
nothing to draw.  Figures are built without pyplot (no global state).  matplotlib
is imported when a chart is drawn: the training environment, which has none,
imports the reports' modules (through a use case's wording) without drawing.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from moulin.reporting.wording import GENERIC, Wording
from moulin.training.classification_results import PhaseTraining
from moulin.training.training_results import ModelResult, SliceMetric

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
GREY = "#9aa0a6"
DPI = 110


def _label(text: str, limit: int = 40) -> str:
    """Data text made safe for matplotlib (no mathtext) and short enough for a legend."""
    text = str(text).replace("$", r"\$")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _to_data_uri(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _style(ax) -> None:
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.grid(True, color="#e5e7eb", linewidth=0.8)
    ax.set_axisbelow(True)


def model_colors(models: Sequence[ModelResult]) -> dict[str, str]:
    """One stable color per model (in leaderboard order)."""
    return {m.model: PALETTE[i % len(PALETTE)] for i, m in enumerate(models)}


def roc_pr_plot(
    models: Sequence[ModelResult], base_rate: float | None, words: Wording = GENERIC
) -> str | None:
    """ROC and precision-recall curves of all models side by side."""
    with_roc = [m for m in models if m.curves.roc]
    with_pr = [m for m in models if m.curves.pr]
    if not with_roc and not with_pr:
        return None
    colors = model_colors(models)
    fig = _new_figure(10, 4.2)
    ax_roc, ax_pr = fig.subplots(1, 2)
    for i, m in enumerate(models):
        lw = 2.4 if i == 0 else 1.4
        if m.curves.roc:
            auc = m.metric("roc_auc").value
            label = _label(m.model) + (f" (AUC {auc:.3f})" if auc is not None else "")
            ax_roc.plot(m.curves.roc["fpr"], m.curves.roc["tpr"], color=colors[m.model], lw=lw, label=label)
        if m.curves.pr:
            ap = m.metric("pr_auc").value
            label = _label(m.model) + (f" (AP {ap:.3f})" if ap is not None else "")
            ax_pr.plot(
                m.curves.pr["recall"], m.curves.pr["precision"], color=colors[m.model], lw=lw, label=label
            )
    ax_roc.plot([0, 1], [0, 1], ls="--", color=GREY, lw=1, label="random guess")
    ax_roc.set(
        xlim=(0, 1), ylim=(0, 1.01), xlabel=f"False positive rate ({words.negative} {words.rows} flagged)"
    )
    ax_roc.set_ylabel(f"True positive rate ({words.positive} {words.rows} caught)")
    ax_roc.set_title("ROC curve", loc="left", fontsize=11)
    if base_rate is not None:
        ax_pr.axhline(
            base_rate, ls="--", color=GREY, lw=1, label=f"random guess ({base_rate:.0%} {words.positive})"
        )
    ax_pr.set(xlim=(0, 1), ylim=(0, 1.01), xlabel=f"Recall (share of {words.positive} {words.rows} caught)")
    ax_pr.set_ylabel(f"Precision (flagged {words.rows} that were {words.positive})")
    ax_pr.set_title("Precision-recall curve", loc="left", fontsize=11)
    for ax, present in ((ax_roc, with_roc), (ax_pr, with_pr)):
        _style(ax)
        if present:
            ax.legend(fontsize=8, loc="lower right" if ax is ax_roc else "upper right", frameon=False)
        else:
            ax.text(0.5, 0.5, "not available", ha="center", va="center", color=GREY, transform=ax.transAxes)
    return _to_data_uri(fig)


def calibration_plot(models: Sequence[ModelResult], words: Wording = GENERIC) -> str | None:
    """Reliability diagram: predicted probability against the observed positive share, per bin."""
    with_cal = [m for m in models if m.curves.calibration]
    if not with_cal:
        return None
    colors = model_colors(models)
    fig = _new_figure(5.4, 4.0)
    ax = fig.subplots()
    top = 0.0
    for i, m in enumerate(models):
        cal = m.curves.calibration
        if not cal:
            continue
        pairs = [
            (p, o)
            for p, o in zip(cal["predicted"], cal["observed"], strict=True)
            if not (math.isnan(p) or math.isnan(o))
        ]
        if not pairs:
            continue
        xs, ys = zip(*pairs, strict=True)
        top = max(top, *xs, *ys)
        ece = m.metric("ece").value
        label = _label(m.model) + (f" (ECE {ece:.3f})" if ece is not None else "")
        ax.plot(xs, ys, marker="o", ms=3.5, lw=2.2 if i == 0 else 1.3, color=colors[m.model], label=label)
    lim = min(1.0, max(0.1, math.ceil(top * 10 + 0.5) / 10))
    ax.plot([0, lim], [0, lim], ls="--", color=GREY, lw=1, label="perfectly calibrated")
    ax.set(xlim=(0, lim), ylim=(0, lim))
    ax.set_xlabel("Predicted probability of a 15+ min delay")
    ax.set_ylabel(f"Observed share of {words.positive} {words.rows}")
    ax.set_title("Calibration (reliability)", loc="left", fontsize=11)
    _style(ax)
    ax.legend(fontsize=8, loc="upper left", frameon=False)
    return _to_data_uri(fig)


def histograms_plot(items: Sequence[tuple[str, list[float], list[float]]], ncols: int = 3) -> str | None:
    """Small multiples of histograms: (title, edges, counts) each."""
    items = [it for it in items if len(it[1]) == len(it[2]) + 1 and len(it[2]) > 0]
    if not items:
        return None
    nrows = math.ceil(len(items) / ncols)
    fig = _new_figure(10, 2.3 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, (title, edges, counts) in zip(axes.flat, items, strict=False):
        widths = [b - a for a, b in zip(edges[:-1], edges[1:], strict=True)]
        ax.bar(edges[:-1], counts, width=widths, align="edge", color="#4c78a8", edgecolor="white", lw=0.5)
        ax.set_title(_label(title, 50), loc="left", fontsize=9.5)
        ax.tick_params(labelsize=8)
        ax.yaxis.set_major_formatter(_compact_formatter())
        _style(ax)
        ax.grid(False, axis="x")
    for ax in list(axes.flat)[len(items) :]:
        ax.set_visible(False)
    return _to_data_uri(fig)


def _compact_formatter():
    from matplotlib.ticker import FuncFormatter

    def fmt(x: float, _pos: int) -> str:
        if abs(x) >= 1e6:
            return f"{x / 1e6:.1f}M".replace(".0M", "M")
        if abs(x) >= 1e4:
            return f"{x / 1e3:.0f}k"
        if abs(x) >= 1e3:
            return f"{x / 1e3:.1f}k".replace(".0k", "k")
        return f"{x:.0f}"

    return FuncFormatter(fmt)


def slice_plot(
    dimension: str,
    slices: Sequence[SliceMetric],
    overall_auc: float | None,
    min_rows: int,
    words: Wording = GENERIC,
) -> str | None:
    """Horizontal bars: ROC AUC of the best model per slice value; small slices in grey."""
    rows = [s for s in slices if s.roc_auc is not None]
    if not rows:
        return None
    rows = sorted(rows, key=lambda s: s.roc_auc)
    fig = _new_figure(6.2, max(1.6, 0.28 * len(rows) + 0.9))
    ax = fig.subplots()
    small = [s.n is not None and s.n < min_rows for s in rows]
    colors = [GREY if is_small else "#4c78a8" for is_small in small]
    labels = [_label(s.value, 24) + (f"  (n={s.n:,})" if s.n is not None else "") for s in rows]
    ax.barh(range(len(rows)), [s.roc_auc for s in rows], color=colors, height=0.7)
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    low = min(0.5, min(s.roc_auc for s in rows) - 0.02)
    ax.set_xlim(max(0.0, math.floor(low * 20) / 20), 1.0)
    if overall_auc is not None:
        ax.axvline(
            overall_auc, color="#d62728", lw=1.2, ls="--", label=f"all {words.rows} ({overall_auc:.3f})"
        )
        ax.legend(fontsize=8, loc="lower right", frameon=False)
    ax.set_xlabel("ROC AUC (higher is better)", fontsize=9)
    title = f"By {dimension}"
    if any(small):
        title += f"  (grey: fewer than {min_rows:,} {words.rows})"
    ax.set_title(_label(title, 80), loc="left", fontsize=10)
    ax.tick_params(axis="x", labelsize=8)
    _style(ax)
    ax.grid(False, axis="y")
    return _to_data_uri(fig)


#: The curves of a training chart: (field of an epoch, legend label, color).
LOSS_CURVES = (("train_loss", "training loss", PALETTE[0]), ("val_loss", "validation loss", PALETTE[1]))
ACCURACY_CURVES = (("val_accuracy", "validation accuracy", PALETTE[2]),)


def training_curves_plot(training: Mapping[str, PhaseTraining]) -> str | None:
    """A network's losses (left) and validation accuracy (right) per epoch, its training
    phases end to end (epochs numbered 1, 2, ... across them); a dashed line marks where
    each later phase starts."""
    epochs = [h for phase in training.values() for h in phase.history]
    if not epochs:
        return None
    starts, x = [], 1
    for name, phase in training.items():
        if phase.history:
            starts.append((x, name))
            x += len(phase.history)
    fig = _new_figure(10, 3.8)
    ax_loss, ax_acc = fig.subplots(1, 2)
    panels = (
        (ax_loss, LOSS_CURVES, "Loss (lower is better)"),
        (ax_acc, ACCURACY_CURVES, "Validation accuracy (higher is better)"),
    )
    for ax, curves, title in panels:
        drawn = False
        for key, label, color in curves:
            points = [(i, v) for i, h in enumerate(epochs, 1) if (v := getattr(h, key)) is not None]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, color=color, lw=2, marker="o", ms=3, label=label)
                drawn = True
        for start, phase in starts[1:]:
            ax.axvline(start - 0.5, color=GREY, lw=1, ls="--")
            ax.text(start - 0.4, 0.98, f"▶ {_label(phase, 24)}", transform=ax.get_xaxis_transform(),
                    va="top", fontsize=8, color="#59636e")  # fmt: skip
        ax.set_title(title, loc="left", fontsize=11)
        ax.set_xlabel("epoch")
        ax.set_xlim(0.5, len(epochs) + 0.5)
        ax.xaxis.get_major_locator().set_params(integer=True)
        _style(ax)
        if drawn:
            ax.legend(fontsize=8, loc="best", frameon=False)
        else:
            ax.text(0.5, 0.5, "not available", ha="center", va="center", color=GREY, transform=ax.transAxes)
    ax_loss.set_ylim(bottom=0)
    return _to_data_uri(fig)
