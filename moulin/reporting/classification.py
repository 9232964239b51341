"""The report of a classification training run, in words for decision-makers,
rendered with :mod:`moulin.reporting.html`: which model to use, how sure that
choice is, where the models go wrong.

Its input is a run's ``results.json`` (a dict in the
``moulin.classification-results/1`` format: the output of
:func:`moulin.training.classifiers.compare` plus run facts, split sizes,
duplicates, the worst test examples, each with an ``image`` data URI or a
``text``, and any published results), and optionally
the bronze gate's row accounting.  Everything that belongs to one use case (what
an item is, how its data was split, its published results) comes in a
:class:`ClassificationWording`; a use case holds its wording in its own
``report.py``.  A wording that carries the use case's framing
(:mod:`moulin.framing`) adds the question, approach, hardware and limits sections
rendered from it (:mod:`moulin.reporting.framing`), and the summary sets the
recommended model's test result against the framing's threshold.  :func:`render_classification_report` is pure (dict in, HTML
out); :func:`write_classification_report` renders and writes the page to the
warehouse.  The page is self-contained: CSS inline, example images as data URIs
already in the results, charts as inline SVG.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from moulin.framing import Framing
from moulin.reporting.framing import (
    approach_section,
    goal_sentence,
    hardware_section,
    limits_section,
    naive_score,
    question_section,
)
from moulin.reporting.html import (
    DASH,
    NOT_AVAILABLE,
    Markup,
    badge,
    bullets,
    esc,
    fmt_ci,
    fmt_int,
    fmt_metric,
    fmt_num,
    fmt_pct,
    fmt_seconds,
    page,
    para,
    section,
    table,
    tag,
)
from moulin.reporting.inputs import Metric

REQUIRED = ("models", "selection", "class_names")
MOULIN_NOTE = "moulin, this run"
LEVEL = 0.0005  # accuracies closer than this to a published one (given with 3 decimals) are "level with" it
HIGH_DATA_WAIT = 0.2  # a data-wait share above this means the input pipeline slowed training
TEXT_LIMIT = 300  # characters of an example text shown; longer ones end with an ellipsis
THUMBNAIL = 56  # pixels: the side of an example image
METRIC_LABELS = {"accuracy": "accuracy", "macro_f1": "macro-F1", "log_loss": "log loss", "ece": "ECE"}
CHART_COLORS = {"train_loss": "#1f77b4", "val_loss": "#d62728", "val_accuracy": "#2ca02c"}
CHART_LABELS = {
    "train_loss": "training loss",
    "val_loss": "validation loss",
    "val_accuracy": "validation accuracy",
}


@dataclass(frozen=True)
class PublishedWording:
    """How a use case shows results published by others beside its own models."""

    #: Heading of the section.
    title: str
    #: Paragraph under the heading: where the figures come from and how far to trust them.
    caveat: str
    #: The "Source" cell of every published row.
    source_note: str
    #: The summary's "Against the <n> ..., its test accuracy ... is above ...": what the results are.
    described_as: str


@dataclass(frozen=True)
class ClassificationWording:
    """Everything a classification report says that belongs to one use case.

    ``item`` / ``items`` name one example and several ("post" / "posts"),
    ``items_prose`` is the plural used in running text where another word reads
    better (``items`` when empty).  ``worst_intro`` may name the model
    as ``{model}``.  Without ``published`` the report has no published-results
    section nor summary line; with it, the section is left out when a run has no
    published rows.
    """

    #: Page title: the question the report answers.
    title: str
    #: One sentence under the title introducing the use case.
    intro: str
    #: The noun for one item and for several.
    item: str
    items: str
    #: What the data is (a sentence), followed by "There are <n> classes: ...".
    data_description: str
    #: How the data was split into training, validation and test (a sentence).
    split: str
    #: Heading and intro paragraph of the worst-examples section.
    worst_title: str
    worst_intro: str
    #: Line under the title (dataset, task); none when empty.
    subtitle: str = ""
    items_prose: str = ""
    #: What makes two items copies of each other (e.g. "same text").
    copy_means: str = "identical content"
    #: The "Used for" cell of the test split.
    test_split_use: str = "held back, used only to measure the models"
    #: Examples of the rules of the bronze quality gate.
    quality_rules: str = "unknown label, unreadable"
    #: Published results shown beside the run's models; none for a use case without them.
    published: PublishedWording | None = None
    #: The use case's framing: the question, approach, hardware and limits sections and the
    #: threshold the summary sets the result against; none leaves them out.
    framing: Framing | None = None

    @property
    def prose(self) -> str:
        return self.items_prose or self.items

    def count(self, n: Any, adjective: str = "") -> str:
        """``"3 test posts"`` / ``"1 test post"``."""
        noun = self.item if _num(n) == 1 else self.items
        return f"{fmt_int(n)} {adjective} {noun}" if adjective else f"{fmt_int(n)} {noun}"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _agree(n: Any, singular: str, plural: str) -> str:
    """The verb (or phrase) that agrees with the count ``n``."""
    return singular if _num(n) == 1 else plural


# -- public API
def render_classification_report(
    results: Mapping[str, Any], wording: ClassificationWording, quality: Mapping[str, Any] | None = None
) -> str:
    """The report of ``results`` (a training run's ``results.json``) as one self-contained HTML page.

    Raises ValueError naming the key when ``models``, ``selection`` or
    ``class_names`` is missing (or the recommended model is not among the models).
    """
    _check(results)
    w = wording
    models = list(results["models"])
    chosen = _recommended(results)
    show_published = w.published is not None and bool(_published_rows(results))
    framing = w.framing
    baseline = naive_score(framing.metric, _class_shares(chosen)) if framing else None
    framed = (
        [question_section(framing), approach_section(framing, baseline), hardware_section(framing)]
        if framing
        else []
    )
    sections = [
        _summary(results, chosen, quality, w, baseline),
        *framed,
        _data(results, quality, w),
        _comparison(results, chosen, w),
        _significance(results, w),
        _errors(results, chosen, w),
        _worst(results, w),
        _training(models, w),
        *([_published(results, w)] if show_published else []),
        *([limits_section(framing, _measured_limits(results, w))] if framing else []),
        _appendix(results, w),
        Markup(
            f"<footer>Generated by moulin for run {esc(results.get('run_id') or NOT_AVAILABLE)}. "
            "Self-contained file: no network access needed to view it.</footer>"
        ),
    ]
    run_id = results.get("run_id") or NOT_AVAILABLE
    return page(f"{w.title} — run {run_id}", _header(results, w, show_published), sections)


def write_classification_report(
    results: Mapping[str, Any],
    uri: str,
    settings,
    wording: ClassificationWording,
    quality: Mapping[str, Any] | None = None,
) -> str:
    """Render the report of ``results`` and write it to ``uri`` in the warehouse (atomically); returns ``uri``."""
    from moulin.storage import WarehouseFS

    html = render_classification_report(results, wording, quality)
    WarehouseFS(settings).write_bytes(uri, html.encode("utf-8"))
    return uri


# -- input checks and helpers
def _check(results: Mapping[str, Any]) -> None:
    if not isinstance(results, Mapping):
        raise ValueError(f"results must be a dict, got {type(results).__name__}")
    for key in REQUIRED:
        if key not in results or results[key] is None:
            raise ValueError(f"results lack {key!r}: not the output of a classification training run")
    if not isinstance(results["models"], Sequence) or not results["models"]:
        raise ValueError("results 'models' is empty: no model to report on")
    selection = results["selection"]
    if not isinstance(selection, Mapping) or not selection.get("recommended"):
        raise ValueError("results 'selection' lacks 'recommended'")
    names = [m.get("model") for m in results["models"]]
    if selection["recommended"] not in names:
        raise ValueError(
            f"results 'selection' recommends {selection['recommended']!r}, which is not in 'models' ({names})"
        )


def _recommended(results: Mapping[str, Any]) -> dict:
    name = results["selection"]["recommended"]
    return next(m for m in results["models"] if m.get("model") == name)


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return None if isinstance(x, float) and math.isnan(x) else float(x)


def _get(obj: Any, *path: Any) -> Any:
    """``obj[p0][p1]...``, None where any step is missing."""
    for p in path:
        if isinstance(obj, Mapping):
            obj = obj.get(p)
        elif isinstance(obj, Sequence) and not isinstance(obj, str) and isinstance(p, int):
            obj = obj[p] if -len(obj) <= p < len(obj) else None
        else:
            return None
        if obj is None:
            return None
    return obj


def _metric(model: Mapping[str, Any], name: str) -> Metric:
    """A test metric with its 95% bootstrap interval."""
    ci = _get(model, "test", "intervals", name) or [None, None]
    lo, hi = (ci + [None, None])[:2] if isinstance(ci, list) else (None, None)
    return Metric(_num(_get(model, "test", name)), _num(lo), _num(hi))


def _ci_text(m: Metric, digits: int = 3) -> str:
    if m.ci_low is None or m.ci_high is None:
        return ""
    return f"95% interval {fmt_metric(m.ci_low, digits)}–{fmt_metric(m.ci_high, digits)}"


def _signed(x: Any, digits: int = 3) -> str:
    v = _num(x)
    return DASH if v is None else f"{v:+.{digits}f}".replace("-", "−")


def _class_name(names: Sequence[str], index: Any) -> str:
    if isinstance(index, int) and 0 <= index < len(names):
        return str(names[index])
    return f"class {index}"


def _n_pairs(results: Mapping[str, Any]) -> int:
    return len(results.get("comparisons") or [])


def _resamples(results: Mapping[str, Any], pair: Mapping[str, Any] | None = None) -> int | None:
    for value in (
        _get(pair, "n_defined") if pair else None,
        _get(pair, "n_resamples") if pair else None,
        _get(results, "bootstrap", "resamples"),
    ):
        if isinstance(value, int) and value > 0:
            return value
    return None


def _fmt_p(p: Any, floor: float | None = None) -> str:
    """A p-value in words-friendly form; 0 from a bootstrap is shown as below its resolution ``floor``."""
    v = _num(p)
    if v is None:
        return DASH
    if v == 0:
        return f"< {floor:.2g}" if floor else "< 0.001"
    if v < 0.001:
        return "< 0.001"
    return f"{v:.2g}"


def _p_adjusted_text(results: Mapping[str, Any], pair: Mapping[str, Any]) -> str:
    n = _resamples(results, pair)
    m = max(_n_pairs(results), 1)
    return _fmt_p(pair.get("p_adjusted"), min(1.0, 2 * m / n) if n else None)


def _published_label(row: Mapping[str, Any], rows: Sequence[Mapping[str, Any]] = ()) -> str:
    """The classifier's name; its preprocessing added when another published row has the same name."""
    name = str(row.get("classifier") or "unnamed")
    pre = str(row.get("preprocessing") or "").strip()
    twins = sum(1 for r in rows if str(r.get("classifier") or "unnamed") == name)
    if twins > 1 and pre:
        name += f" ({pre})"
    return name


def _published_rows(results: Mapping[str, Any]) -> list[dict]:
    rows = [r for r in results.get("published") or [] if isinstance(r, Mapping)]
    return [r for r in rows if _num(r.get("accuracy")) is not None]


# -- header and summary
def _header(results: Mapping[str, Any], w: ClassificationWording, show_published: bool) -> Markup:
    bits = [f"Run {results.get('run_id') or NOT_AVAILABLE}"]
    bits.append(f"created {results.get('created_at') or NOT_AVAILABLE}")
    if w.subtitle:
        bits.insert(0, w.subtitle)
    framed = [("question", "The question"), ("approach", "The approach"), ("hardware", "Hardware needed")]
    toc = [
        ("summary", "In short"),
        *(framed if w.framing else []),
        ("data", "The data"),
        ("models", "Model comparison"),
        ("significance", "Are the differences real?"),
        ("errors", "Where it goes wrong"),
        ("worst", "Worst mistakes"),
        ("training", "Training"),
        *([("published", "Published results")] if show_published else []),
        *([("limits", "Limits")] if w.framing else []),
        ("appendix", "Technical appendix"),
    ]
    nav = "".join(str(tag("a", label, href=f"#{anchor}")) for anchor, label in toc)
    return Markup(
        f'<header class="top"><h1>{esc(w.title)}</h1>'
        f'<div class="sub">{esc(" · ".join(bits))}</div>'
        f'<nav class="toc">{nav}</nav></header>'
    )


def _metric_label(name: str) -> str:
    return METRIC_LABELS.get(name, name.replace("_", " "))


def _selection_metric(results: Mapping[str, Any]) -> str:
    return str(results["selection"].get("metric") or "accuracy")


def _selection_words(results: Mapping[str, Any]) -> tuple[str, str]:
    """The selection metric in words ("macro-F1") and the split it was measured on."""
    split = str(results["selection"].get("split") or "validation")
    return _metric_label(_selection_metric(results)), split


def _class_shares(chosen: Mapping[str, Any]) -> list[float]:
    """The number of test items of each class (per-class support, else confusion rows)."""
    per_class = _get(chosen, "test", "per_class")
    if isinstance(per_class, list) and per_class:
        counts = [_num(pc.get("support")) if isinstance(pc, Mapping) else None for pc in per_class]
        if all(c is not None for c in counts):
            return [float(c) for c in counts if c is not None]
    matrix = _get(chosen, "test", "confusion")
    if isinstance(matrix, list) and matrix and all(isinstance(r, list) for r in matrix):
        return [float(sum(_num(v) or 0 for v in row)) for row in matrix]
    return []


def _goal(chosen: Mapping[str, Any], framing: Framing, baseline: float | None) -> str:
    """The recommended model's test result set against the framing's threshold."""
    m = _metric(chosen, framing.metric.name)
    return "Against the goal: " + goal_sentence(
        framing.metric, m.value, (m.ci_low, m.ci_high), baseline, "the recommended model"
    )


def _measured_limits(results: Mapping[str, Any], w: ClassificationWording) -> list[str]:
    """What this run adds to the framing's limits."""
    out = []
    sample = _num(results.get("sample"))
    if sample is not None and sample < 1:
        out.append(
            f"This run used a sample of {fmt_pct(sample, trim=True)} of the {w.items}: numbers on the full "
            "data will differ."
        )
    dup = _num(_get(results, "duplicates", "train_and_test"))
    if dup:
        out.append(
            f"{w.count(dup, 'test')} also {_agree(dup, 'appears', 'appear')} in training or validation, "
            "which flatters the test results slightly."
        )
    return out


def _summary(
    results: Mapping[str, Any],
    chosen: Mapping[str, Any],
    quality: Mapping[str, Any] | None,
    w: ClassificationWording,
    baseline: float | None = None,
) -> Markup:
    name = str(chosen.get("model"))
    metric, split = _selection_words(results)
    sel_metric = _selection_metric(results)
    val = _num(_get(chosen, "validation", sel_metric))
    items: list[Markup] = []

    family = f" ({chosen['family']})" if chosen.get("family") else ""
    lead = f"Recommended model: {name}{family}."
    text = (
        f" It was chosen on the {split} split: it had the highest {split} {metric}"
        + (f" ({fmt_metric(val)})" if val is not None else "")
        + f" of the {len(results['models'])} models trained. The {split} {w.items} were held back from training "
        f"for this choice; the test {w.items} played no part in it, so the test figures below are a fair "
        f"estimate of how the model will do on new {w.prose}."
    )
    items.append(Markup(f"<strong>{esc(lead)}</strong>{esc(text)}"))

    acc = _metric(chosen, "accuracy")
    n_test = _get(chosen, "test", "n") or _get(results, "split_rows", "test")
    if acc.value is not None:
        text = f"On the {fmt_int(n_test)} test {w.items}" if n_test else f"On the test {w.items}"
        text += f" it puts {fmt_pct(acc.value)} of the {w.prose} in the right class (accuracy {fmt_metric(acc.value)}"
        ci = _ci_text(acc)
        text += f", {ci})." if ci else ")."
        f1 = _metric(chosen, "macro_f1")
        if f1.value is not None:
            text += " Averaged over the classes, with each class counting the same, it scores a macro-F1 of "
            text += fmt_metric(f1.value)
            ci = _ci_text(f1) if sel_metric == "macro_f1" else ""
            text += f" ({ci})." if ci else "."
        items.append(esc(text))
    else:
        items.append(esc(f"Test accuracy of {name}: {NOT_AVAILABLE}."))
    if w.framing is not None:
        items.append(esc(_goal(chosen, w.framing, baseline)))

    mine = _metric(chosen, sel_metric).value
    higher = [
        m
        for m in results["models"]
        if m is not chosen
        and mine is not None
        and (theirs := _metric(m, sel_metric).value) is not None
        and theirs > mine
    ]
    if higher:
        others = ", ".join(f"{m.get('model')} ({fmt_metric(_metric(m, sel_metric).value)})" for m in higher)
        by = "" if sel_metric == "accuracy" else f" by {metric}"
        items.append(
            esc(
                f"{others} scored higher on the test {w.items}{by}, but the model is chosen on the {split} split, "
                "never on test: picking the test winner would make its test result look better than it will be "
                "in use. Whether such a gap is real is answered just below."
            )
        )

    comparisons = [c for c in results.get("comparisons") or [] if isinstance(c, Mapping)]
    if comparisons:
        ordered = sorted(comparisons, key=lambda c: name not in (c.get("a"), c.get("b")))
        lines = [esc(_pair_sentence(results, c, name, w)) for c in ordered]
        intro = (
            f"How it compares (macro-F1 on the same test {w.items}; a paired bootstrap test per pair, "
            f"p-values adjusted with the Holm method for the {len(comparisons)} comparisons, so that "
            "testing several pairs does not inflate the chance of a false alarm):"
        )
        items.append(Markup(f"{esc(intro)}{bullets(lines)}"))
    elif len(results["models"]) > 1:
        items.append(esc(f"Paired comparisons of the models: {NOT_AVAILABLE}."))

    ece = _num(_get(chosen, "test", "ece"))
    if ece is not None:
        verdict = (
            "its confidence can be taken at face value"
            if ece <= 0.05
            else "treat its confidence as a ranking rather than an exact probability"
        )
        items.append(
            esc(
                f"When it states a confidence, it is off by {ece * 100:.1f} percentage points on average "
                f"(expected calibration error {fmt_metric(ece)}): {verdict}."
            )
        )

    if w.published is not None:
        items.append(esc(_published_sentence(results, acc.value, w.published)))
    items.append(esc(_data_sentence(results, w)))
    items.append(_quality_sentence(quality, w))
    return Markup(
        f'<section id="summary" class="summary"><h2>In short</h2>{para(w.intro, "question")}'
        f"{bullets(items)}</section>"
    )


def _pair_sentence(
    results: Mapping[str, Any], pair: Mapping[str, Any], chosen: str, w: ClassificationWording
) -> str:
    a, b = str(pair.get("a")), str(pair.get("b"))
    if chosen == b:  # phrase it from the recommended model's side
        first, second = b, a
        ma, mb, diff = pair.get("metric_b"), pair.get("metric_a"), _num(pair.get("difference"))
        lo, hi = _num(pair.get("ci_high")), _num(pair.get("ci_low"))
        diff = -diff if diff is not None else None
        lo = -lo if lo is not None else None
        hi = -hi if hi is not None else None
    else:
        first, second = a, b
        ma, mb, diff = pair.get("metric_a"), pair.get("metric_b"), _num(pair.get("difference"))
        lo, hi = _num(pair.get("ci_low")), _num(pair.get("ci_high"))
    numbers = f"macro-F1 {fmt_metric(ma)} against {fmt_metric(mb)}, difference {_signed(diff)}"
    if lo is not None and hi is not None:
        numbers += f", 95% interval {_signed(lo)} to {_signed(hi)}"
    numbers += f"; adjusted p {_p_adjusted_text(results, pair)}"
    lead = f"{first} against {second}: "
    if _num(pair.get("p_adjusted")) is None and pair.get("significant") is None:
        return lead + f"the difference could not be tested ({numbers})."
    if pair.get("significant"):
        better = pair.get("better")
        winner = a if better == "a" else b if better == "b" else (first if (diff or 0) > 0 else second)
        return (
            lead + f"{winner} is better, and the difference is statistically significant after Holm "
            f"adjustment ({numbers})."
        )
    return (
        lead + "the difference is not statistically significant after Holm adjustment "
        f"({numbers}): on these test {w.items} the two cannot be told apart."
    )


def _published_sentence(results: Mapping[str, Any], accuracy: float | None, pw: PublishedWording) -> str:
    rows = _published_rows(results)
    if not rows:
        return "No published results were supplied to compare with."
    if accuracy is None:
        return "Its test accuracy is not available, so it cannot be placed among the published results."
    lower = [r for r in rows if _num(r["accuracy"]) < accuracy - LEVEL]
    level = [r for r in rows if abs(_num(r["accuracy"]) - accuracy) <= LEVEL]
    upper = [r for r in rows if _num(r["accuracy"]) > accuracy + LEVEL]
    parts = []

    def names(group: list[dict], best: float) -> str:
        same = [r for r in group if abs(_num(r["accuracy"]) - best) < 1e-12][:3]
        return " and ".join(f"{_published_label(r, rows)} {fmt_metric(r['accuracy'])}" for r in same)

    if lower:
        parts.append("above " + names(lower, max(_num(r["accuracy"]) for r in lower)))
    if level:
        parts.append(
            "level with "
            + " and ".join(f"{_published_label(r, rows)} {fmt_metric(r['accuracy'])}" for r in level[:3])
        )
    if upper:
        parts.append("below " + names(upper, min(_num(r["accuracy"]) for r in upper)))
    return (
        f"Against the {len(rows)} {pw.described_as}, its test accuracy of {fmt_metric(accuracy)} is "
        + ", ".join(parts)
        + f"; {len(lower)} of the {len(rows)} published results are lower."
    )


def _data_sentence(results: Mapping[str, Any], w: ClassificationWording) -> str:
    split = results.get("split_rows") or {}
    rows = ", ".join(
        f"{fmt_int(split[k])} {label}"
        for k, label in (("train", "training"), ("validation", "validation"), ("test", "test"))
        if split.get(k) is not None
    )
    text = f"Data: {rows} {w.items}." if rows else f"Data: split sizes {NOT_AVAILABLE}."
    sample = _num(results.get("sample"))
    if sample is not None and sample < 1:
        text += f" Only a sample of {fmt_pct(sample, trim=True)} of the {w.items} was used in this run."
    dup = _num(_get(results, "duplicates", "train_and_test"))
    if dup:
        text += (
            f" {w.count(dup, 'test')} {_agree(dup, 'is an exact copy', 'are exact copies')} of training or "
            f"validation {w.items}, which flatters the test results slightly."
        )
    elif dup == 0:
        text += f" No test {w.item} is a copy of a training or validation {w.item}."
    conflicting = _num(_get(results, "duplicates", "conflicting_labels"))
    if conflicting:
        text += (
            f" {w.count(conflicting)} {_agree(conflicting, 'occurs', 'occur')} more than once with different labels: "
            "no model can get every copy right."
        )
    return text


def _quality_problems(quality: Mapping[str, Any], w: ClassificationWording) -> list[str]:
    problems = []
    read, kept, out = (_num(quality.get(k)) for k in ("rows_read", "rows_bronze", "rows_quarantined"))
    manifest = _num(quality.get("rows_manifest"))
    if read is not None and kept is not None and out is not None and read != kept + out:
        problems.append(
            f"row accounting does not add up: {fmt_int(read)} {w.items} read but {fmt_int(kept)} kept "
            f"+ {fmt_int(out)} set aside"
        )
    if manifest is not None and read is not None and manifest != read:
        problems.append(f"the files announce {fmt_int(manifest)} {w.items} but {fmt_int(read)} were read")
    return problems


def _quality_sentence(quality: Mapping[str, Any] | None, w: ClassificationWording) -> Markup:
    if not quality:
        return esc("Data quality: the bronze gate figures were not supplied with these results.")
    problems = _quality_problems(quality, w)
    if problems:
        return Markup(
            f"{badge(False)} Data quality: {esc('; '.join(problems))}. Treat the results with care."
        )
    out = _num(quality.get("rows_quarantined")) or 0
    read = _num(quality.get("rows_read"))
    text = f"Data quality: every {w.item} read is either kept or set aside with a reason"
    if read:
        text += f" ({fmt_int(read)} read, {fmt_int(out)} set aside)"
    return Markup(f"{badge(True)} {esc(text)}.")


# -- data
def _data(results: Mapping[str, Any], quality: Mapping[str, Any] | None, w: ClassificationWording) -> Markup:
    split = results.get("split_rows") or {}
    total = sum(v for v in (_num(split.get(k)) for k in split) if v is not None)
    rows = [
        [
            label,
            fmt_int(split.get(k)),
            fmt_pct(_num(split.get(k)) / total) if total and _num(split.get(k)) else DASH,
            use,
        ]
        for k, label, use in (
            ("train", "Training", "the models learn from these"),
            ("validation", "Validation", "held back to choose the model and stop training in time"),
            ("test", "Test", w.test_split_use),
        )
    ]
    snap = results.get("snapshot") or {}
    version = snap.get("version")
    sample = _num(results.get("sample"))
    facts = [
        Markup(
            f"Snapshot: table <code>{esc(snap.get('table_uri') or NOT_AVAILABLE)}</code>, "
            f"version {esc(NOT_AVAILABLE if version is None else version)}: "
            f"every model saw exactly the same {esc(w.items)}."
        ),
        esc(
            f"Sample: {fmt_pct(sample, trim=True)} of the {w.items} (a quick run; numbers on the full data will differ)."
            if sample is not None and sample < 1
            else f"Sample: none, all {w.items} were used."
        ),
    ]
    dup = results.get("duplicates") or {}
    dt, dv = _num(dup.get("train_and_test")), _num(dup.get("train_and_validation"))
    facts.append(
        esc(
            f"Duplicate {w.items} ({w.copy_means}): "
            + (
                f"{w.count(dt, 'test')} also {_agree(dt, 'appears', 'appear')} in training or validation"
                if dt is not None
                else f"train/test {NOT_AVAILABLE}"
            )
            + "; "
            + (
                f"{w.count(dv, 'validation')} also {_agree(dv, 'appears', 'appear')} in training."
                if dv is not None
                else f"train/validation {NOT_AVAILABLE}."
            )
            + (
                " A model may simply remember these, so they make the results look slightly better."
                if dt
                else ""
            )
        )
    )
    conflicting = _num(dup.get("conflicting_labels"))
    if conflicting is not None:
        facts.append(
            esc(
                f"Conflicting labels: {w.count(conflicting)} {_agree(conflicting, 'occurs', 'occur')} more than "
                "once with different labels."
                + (
                    " Whatever a model answers, some of their copies count as mistakes: the labels themselves "
                    "are uncertain there."
                    if conflicting
                    else ""
                )
            )
        )
    names = [str(c) for c in results["class_names"]]
    return section(
        "data",
        "The data",
        para(f"{w.data_description} There are {len(names)} classes: " + ", ".join(names) + "."),
        para(w.split),
        table(["Split", _cap(w.items), "Share", "Used for"], rows, numeric=(1, 2)),
        bullets(facts),
        _quality(quality, w),
    )


def _quality(quality: Mapping[str, Any] | None, w: ClassificationWording) -> Markup:
    head = tag("h3", "Data quality")
    items, things = w.items, _cap(w.items)
    if not quality:
        return Markup(
            head
            + para(
                f"The bronze quality-gate figures ({items} announced, read, kept and set aside) were not "
                "supplied with this report.",
                "na",
            )
        )
    problems = _quality_problems(quality, w)
    verdict = (
        Markup(f'<div class="alert">{badge(False)} {esc("; ".join(problems))}.</div>')
        if problems
        else Markup(
            f'<div class="good">{badge(True)} {esc(f"Every {w.item} read is accounted for: ")}'
            f"{esc(f'{items} read = {items} kept + {items} set aside (quarantined).')}</div>"
        )
    )
    read = _num(quality.get("rows_read"))
    rows = [
        [f"{things} announced by the files", fmt_int(quality.get("rows_manifest")), DASH],
        [f"{things} read", fmt_int(quality.get("rows_read")), DASH],
        [
            f"{things} kept (bronze)",
            fmt_int(quality.get("rows_bronze")),
            fmt_pct(_num(quality.get("rows_bronze")) / read, 2, trim=True)
            if read and _num(quality.get("rows_bronze")) is not None
            else DASH,
        ],
        [
            f"{things} set aside (quarantined)",
            fmt_int(quality.get("rows_quarantined")),
            fmt_pct(_num(quality.get("rows_quarantined")) / read, 2, trim=True)
            if read and _num(quality.get("rows_quarantined")) is not None
            else DASH,
        ],
    ]
    reasons = quality.get("quarantine_reasons")
    reasons = reasons if isinstance(reasons, Mapping) else {}
    reason_rows = [
        [
            reason,
            fmt_int(count),
            fmt_pct(_num(count) / read, 2, trim=True) if read and _num(count) is not None else DASH,
        ]
        for reason, count in sorted(reasons.items(), key=lambda kv: -(_num(kv[1]) or 0))
    ]
    reason_block = (
        table(["Reason", things, f"Share of {items} read"], reason_rows, numeric=(1, 2))
        if reason_rows
        else para(
            f"No {w.item} was set aside."
            if not _num(quality.get("rows_quarantined"))
            else f"Reasons: {NOT_AVAILABLE}.",
            "na",
        )
    )
    return Markup(
        head
        + para(
            f"{things} that break a rule ({w.quality_rules}) are not dropped silently: "
            "they are set aside with the reason."
        )
        + verdict
        + table(["", things, f"Share of {items} read"], rows, numeric=(1, 2))
        + tag("h4", "Set aside, by reason")
        + reason_block
    )


# -- model comparison
def _glossary(w: ClassificationWording) -> list[tuple[str, str]]:
    return [
        ("Accuracy", f"share of test {w.prose} put in the right class (0 to 1, higher is better)."),
        (
            "Macro-F1",
            "balance of precision and recall, averaged over the classes with each class counting the same.",
        ),
        (
            "ECE",
            "average gap between the model's stated confidence and how often it is right (lower is better).",
        ),
        ("Log loss", "penalty for confident mistakes (lower is better)."),
        (
            f"{_cap(w.items)}/s",
            f"test {w.prose} classified per second on one machine (higher is cheaper to run).",
        ),
    ]


def _ordered(results: Mapping[str, Any], chosen: Mapping[str, Any]) -> list[dict]:
    metric = _selection_metric(results)
    others = [m for m in results["models"] if m is not chosen]
    scores = {id(m): _num(_get(m, "validation", metric)) for m in others}
    others.sort(key=lambda m: (scores[id(m)] is None, -(scores[id(m)] or 0.0)))
    return [chosen, *others]


def _comparison(results: Mapping[str, Any], chosen: Mapping[str, Any], w: ClassificationWording) -> Markup:
    sel_metric = _selection_metric(results)
    rows = []
    for m in _ordered(results, chosen):
        label = Markup(
            f"{esc(m.get('model'))}"
            + (' <span class="badge ok">recommended</span>' if m is chosen else "")
            + (f'<br><span class="ci">{esc(m.get("family"))}</span>' if m.get("family") else "")
        )
        rows.append(
            [
                label,
                fmt_metric(_get(m, "validation", sel_metric)),
                fmt_ci(_metric(m, "accuracy")),
                fmt_ci(_metric(m, "macro_f1")),
                fmt_metric(_get(m, "test", "ece")),
                fmt_metric(_get(m, "test", "log_loss")),
                fmt_seconds(m.get("train_seconds")),
                fmt_int(m.get("n_parameters")),
                fmt_int(m.get("predict_rows_per_s")),
            ]
        )
    metric, split = _selection_words(results)
    glossary = Markup(
        '<dl class="glossary">'
        + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in _glossary(w))
        + "</dl>"
    )
    return section(
        "models",
        "Model comparison",
        para(
            f"The recommended model (highlighted) has the best {split} {metric}; the others follow by the same "
            f"measure. Test figures are on the same test {w.items} for every model; values in brackets are 95% "
            "confidence intervals (bootstrap)."
        ),
        table(
            [
                "Model",
                f"Validation {metric}",
                "Test accuracy",
                "Test macro-F1",
                "ECE",
                "Log loss",
                "Training time",
                "Parameters",
                f"{_cap(w.items)}/s",
            ],
            rows,
            numeric=(1, 2, 3, 4, 5, 6, 7, 8),
            row_classes=["best"] + [None] * (len(rows) - 1),
        ),
        glossary,
    )


def _significance(results: Mapping[str, Any], w: ClassificationWording) -> Markup:
    title = "Are the differences real?"
    comparisons = [c for c in results.get("comparisons") or [] if isinstance(c, Mapping)]
    if not comparisons:
        return section("significance", title, para(f"Paired comparisons: {NOT_AVAILABLE}.", "na"))
    rows, classes = [], []
    for c in comparisons:
        a, b = str(c.get("a")), str(c.get("b"))
        diff = esc(_signed(c.get("difference")))
        if _num(c.get("ci_low")) is not None and _num(c.get("ci_high")) is not None:
            diff = Markup(
                f'{diff} <span class="ci">({esc(_signed(c.get("ci_low")))} to {esc(_signed(c.get("ci_high")))})</span>'
            )
        mc = c.get("mcnemar") or {}
        rows.append(
            [
                f"{a} vs {b}",
                f"{fmt_metric(c.get('metric_a'))} vs {fmt_metric(c.get('metric_b'))}",
                diff,
                _p_adjusted_text(results, c),
                fmt_int(mc.get("a_right_b_wrong")),
                fmt_int(mc.get("a_wrong_b_right")),
                _fmt_p(mc.get("p_value")),
                _verdict(c),
            ]
        )
        classes.append(None if c.get("significant") else "small")
    return section(
        "significance",
        title,
        para(
            f"Each pair of models is scored on the same test {w.items}. Macro-F1 difference: the first model minus "
            "the second, with its 95% interval from a paired bootstrap; its p-value is adjusted with the Holm "
            f"method for the {len(comparisons)} comparisons made, and a difference counts as real when the "
            f"adjusted p-value is below 0.05. McNemar's test looks only at the {w.prose} where the two models "
            "disagree (one right, the other wrong): if one is right much more often there, its accuracy is "
            "really higher (p-value not adjusted)."
        ),
        table(
            [
                "Pair (A vs B)",
                "Macro-F1",
                "Difference A − B",
                "Adjusted p",
                "A right, B wrong",
                "A wrong, B right",
                "McNemar p",
                "Verdict",
            ],
            rows,
            numeric=(2, 3, 4, 5, 6),
            row_classes=classes,
        ),
    )


def _verdict(c: Mapping[str, Any]) -> str:
    a, b = str(c.get("a")), str(c.get("b"))
    if c.get("significant"):
        winner = a if c.get("better") == "a" else b if c.get("better") == "b" else None
        text = (
            f"Real difference: {winner} is better (significant after Holm adjustment)."
            if winner
            else "Significant after Holm adjustment."
        )
    elif _num(c.get("p_adjusted")) is None:
        text = "Could not be tested."
    else:
        text = "No real difference shown: not significant after Holm adjustment."
    mc = c.get("mcnemar") or {}
    if mc.get("significant"):
        winner = a if mc.get("better") == "a" else b if mc.get("better") == "b" else None
        text += f" On accuracy, {winner} is right more often where they disagree." if winner else ""
    elif mc:
        text += " On accuracy, neither is right clearly more often where they disagree."
    return text


# -- confusion matrix and per-class table
def _errors(results: Mapping[str, Any], chosen: Mapping[str, Any], w: ClassificationWording) -> Markup:
    names = [str(n) for n in results["class_names"]]
    name = str(chosen.get("model"))
    title = f"Where {name} goes wrong"
    matrix = _get(chosen, "test", "confusion")
    parts: list[Markup] = []
    if isinstance(matrix, list) and matrix and all(isinstance(r, list) for r in matrix):
        parts.append(
            para(
                f"Confusion matrix of {name} on the test {w.items}: each row is the true class, each column the "
                "class the model chose. The diagonal (highlighted) counts correct answers; the shading of "
                "the other cells shows the share of that true class sent to the wrong class."
            )
        )
        parts.append(_confusion_table(matrix, names))
    else:
        parts.append(para(f"Confusion matrix: {NOT_AVAILABLE}.", "na"))
    per_class = _get(chosen, "test", "per_class")
    if isinstance(per_class, list) and per_class:
        confused = _most_confused(matrix, names) if isinstance(matrix, list) else {}
        rows = []
        for pc in per_class:
            idx = pc.get("index")
            rows.append(
                [
                    pc.get("class") if pc.get("class") is not None else _class_name(names, idx),
                    fmt_int(pc.get("support")),
                    fmt_metric(pc.get("precision")),
                    fmt_metric(pc.get("recall")),
                    fmt_metric(pc.get("f1")),
                    confused.get(idx, DASH),
                ]
            )
        worst = min(
            (pc for pc in per_class if _num(pc.get("f1")) is not None), key=lambda pc: pc["f1"], default=None
        )
        best = max(
            (pc for pc in per_class if _num(pc.get("f1")) is not None), key=lambda pc: pc["f1"], default=None
        )
        parts.append(tag("h3", "Quality per class"))
        if worst is not None and best is not None:
            parts.append(
                para(
                    f"Easiest class: {best.get('class')} (F1 {fmt_metric(best['f1'])}); hardest: "
                    f"{worst.get('class')} (F1 {fmt_metric(worst['f1'])}). Precision: of the {w.prose} the model "
                    f"put in a class, the share that belonged there. Recall: of the {w.prose} of a class, the share "
                    "the model found."
                )
            )
        parts.append(
            table(
                ["Class", f"Test {w.items}", "Precision", "Recall", "F1", "Most often mistaken for"],
                rows,
                numeric=(1, 2, 3, 4),
            )
        )
    else:
        parts.append(para(f"Per-class results: {NOT_AVAILABLE}.", "na"))
    return section("errors", title, *parts)


def _confusion_table(matrix: list[list[Any]], names: Sequence[str]) -> Markup:
    k = len(matrix)
    head = "".join(
        str(
            tag(
                "th",
                _class_name(names, j),
                class_="num",
                style="writing-mode:vertical-rl;transform:rotate(180deg)",
            )
        )
        for j in range(k)
    )
    body = []
    for i, row in enumerate(matrix):
        total = sum(_num(v) or 0 for v in row)
        cells = []
        for j, v in enumerate(row):
            count = _num(v) or 0
            share = count / total if total else 0.0
            if i == j:
                style = f"background:rgba(26,127,55,{0.12 + 0.5 * share:.3f});font-weight:700"
            else:
                style = f"background:rgba(207,34,46,{min(1.0, 3 * share):.3f})" if count else None
            title = (
                f"true {_class_name(names, i)}, predicted {_class_name(names, j)}: "
                f"{fmt_int(v)} ({fmt_pct(share, 1)} of {_class_name(names, i)})"
            )
            cells.append(
                str(
                    tag(
                        "td",
                        fmt_int(v),
                        class_="num cm" + (" diag" if i == j else ""),
                        style=style,
                        title=title,
                    )
                )
            )
        body.append(f"<tr>{tag('th', _class_name(names, i))}{''.join(cells)}</tr>")
    return Markup(
        '<div class="table-wrap"><table class="confusion">'
        f"<thead><tr><th>True class \\ predicted</th>{head}</tr></thead><tbody>{''.join(body)}</tbody>"
        "</table></div>"
    )


def _most_confused(matrix: list[list[Any]], names: Sequence[str]) -> dict[int, str]:
    out = {}
    for i, row in enumerate(matrix):
        total = sum(_num(v) or 0 for v in row)
        off = [(_num(v) or 0, j) for j, v in enumerate(row) if j != i]
        if not off or not total:
            continue
        count, j = max(off)
        if count > 0:
            out[i] = f"{_class_name(names, j)} ({fmt_pct(count / total)})"
    return out


# -- the most confident mistakes
def _shorten(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text`` with runs of whitespace collapsed, cut at ``limit`` characters (ending with an ellipsis)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _example(e: Mapping[str, Any], names: Sequence[str], w: ClassificationWording) -> str:
    """One misclassified example as a card: its picture or text, true and predicted class, confidence."""
    true, pred = _class_name(names, e.get("true")), _class_name(names, e.get("predicted"))
    conf = _num(e.get("confidence"))
    text, image = e.get("text"), str(e.get("image") or "")
    if isinstance(text, str):
        body = Markup(
            '<blockquote style="margin:0 0 6px;padding:6px 10px;border-left:3px solid #d8dee4;'
            f'background:#f6f8fa;overflow-wrap:anywhere">{esc(_shorten(text))}</blockquote>'
        )
        width = 300
    elif image.startswith("data:image/"):
        alt = f"test {w.item} {e.get('key')}: a {true} taken for a {pred}"
        body = Markup(
            f'<img src="{esc(image)}" width="{THUMBNAIL}" height="{THUMBNAIL}" style="image-rendering:pixelated" '
            f'alt="{esc(alt)}">'
        )
        width = 120
    else:
        body = Markup(f'<span class="na">{esc(f"{w.item} {NOT_AVAILABLE}")}</span>')
        width = 120
    caption = Markup(
        f"true: <strong>{esc(true)}</strong><br>predicted: {esc(pred)}<br>"
        f'<span class="ci">{esc(fmt_pct(conf, 0) + " sure" if conf is not None else DASH)}</span>'
    )
    return (
        f'<figure style="margin:0;width:{width}px;font-size:12.5px">{body}'
        f'<figcaption title="{esc(e.get("key"))}">{caption}</figcaption></figure>'
    )


def _worst(results: Mapping[str, Any], w: ClassificationWording) -> Markup:
    worst = results.get("worst_test_examples") or {}
    examples = [e for e in worst.get("examples") or [] if isinstance(e, Mapping)]
    if not examples:
        return section("worst", w.worst_title, para(f"Misclassified test {w.items}: {NOT_AVAILABLE}.", "na"))
    names = [str(n) for n in results["class_names"]]
    cards = [_example(e, names, w) for e in examples]
    model = worst.get("model") or results["selection"]["recommended"]
    return section(
        "worst",
        w.worst_title,
        para(w.worst_intro.format(model=model)),
        Markup(f'<div style="display:flex;flex-wrap:wrap;gap:14px">{"".join(cards)}</div>'),
    )


# -- training curves
def _history(
    training: Mapping[str, Any], rates: Mapping[str, Any] | None = None
) -> tuple[list[dict], list[tuple[int, str]], list[dict]]:
    """The epochs of all phases end to end (``x`` = 1, 2, ...), where each phase starts, and per-phase facts."""
    points: list[dict] = []
    starts: list[tuple[int, str]] = []
    phases = []
    for phase, info in training.items():
        history = [h for h in (_get(info, "history") or []) if isinstance(h, Mapping)]
        if not history:
            continue
        starts.append((len(points) + 1, str(phase)))
        for h in history:
            points.append({**h, "x": len(points) + 1})
        seconds = sum(_num(h.get("seconds")) or 0 for h in history)
        wait = sum(_num(h.get("data_wait_seconds")) or 0 for h in history)
        best = _get(info, "best_epoch")
        best_row = next((h for h in history if h.get("epoch") == best), None) if best is not None else None
        phases.append(
            {
                "phase": str(phase),
                "epochs": len(history),
                "best_epoch": best,
                "best_val_accuracy": _get(best_row, "val_accuracy") if best_row else None,
                "seconds": seconds,
                "wait": wait,
                "learning_rate": (rates or {}).get(str(phase), history[0].get("learning_rate")),
            }
        )
    return points, starts, phases


def _training(models: Sequence[Mapping[str, Any]], w: ClassificationWording) -> Markup:
    title = "How the networks learned"
    trained = [m for m in models if isinstance(m.get("training"), Mapping) and m["training"]]
    if not trained:
        return section("training", title, para("No model in this run was trained epoch by epoch.", "na"))
    parts: list[Markup] = [
        para(
            f"For each network: the loss (error being minimised) on the training and validation {w.items}, and the "
            f"validation accuracy, after every pass over the training {w.items} (epoch). A validation loss that "
            "rises while the training loss keeps falling means the network starts memorising; training then "
            "stops early and keeps the best epoch. Dashed lines mark where a new training phase starts."
        )
    ]
    for m in trained:
        rates = {
            str(p.get("name")): p.get("learning_rate")
            for p in _get(m, "params", "phases") or []
            if isinstance(p, Mapping)
        }
        points, starts, phases = _history(m["training"], rates)
        parts.append(tag("h3", str(m.get("model"))))
        if not points:
            parts.append(para(f"Training history: {NOT_AVAILABLE}.", "na"))
            continue
        parts.append(_curve_chart(points, starts, str(m.get("model"))))
        total_s = sum(p["seconds"] for p in phases)
        total_w = sum(p["wait"] for p in phases)
        share = total_w / total_s if total_s else None
        if share is not None:
            verdict = (
                "the input pipeline slowed training down noticeably"
                if share > HIGH_DATA_WAIT
                else "the network, not data loading, set the pace"
            )
            parts.append(
                para(
                    f"Waiting for data took {fmt_pct(share)} of the epoch time "
                    f"({fmt_seconds(total_w)} of {fmt_seconds(total_s)}): {verdict}."
                )
            )
        rows = [
            [
                p["phase"],
                fmt_int(p["epochs"]),
                fmt_int(p["best_epoch"]) if p["best_epoch"] is not None else DASH,
                fmt_metric(p["best_val_accuracy"]),
                fmt_num(p["learning_rate"]),
                fmt_seconds(p["seconds"]),
                fmt_pct(p["wait"] / p["seconds"]) if p["seconds"] else DASH,
            ]
            for p in phases
        ]
        parts.append(
            table(
                [
                    "Phase",
                    "Epochs",
                    "Best epoch",
                    "Validation accuracy at best",
                    "Learning rate",
                    "Epoch time",
                    "Waiting for data",
                ],
                rows,
                numeric=(1, 2, 3, 4, 5, 6),
            )
        )
    return section("training", title, *parts)


def _svg_text(
    x: float, y: float, text: str, anchor: str = "start", size: float = 11, fill: str = "#59636e"
) -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" fill="{fill}">{esc(text)}</text>'


def _nice_step(raw: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least ``raw`` (> 0)."""
    if not raw > 0 or not math.isfinite(raw):
        return 0.25
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))


def _panel(
    points: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    starts: Sequence[tuple[int, str]],
    left: float,
    width: float,
    title: str,
    accuracy: bool = False,
) -> str:
    """One panel of a line chart: ``keys`` of ``points`` against their ``x`` (epochs end to end)."""
    top, height = 28.0, 190.0
    values = [v for p in points for k in keys if (v := _num(p.get(k))) is not None]
    if not values:
        return _svg_text(left + width / 2, top + height / 2, f"{title}: {NOT_AVAILABLE}", "middle")
    if accuracy:  # from a round value just below the lowest one up to 1
        step = min(_nice_step((1.0 - min(values)) / 4), 0.25)
        lo, hi = 1.0 - 4 * step, 1.0
    else:  # from 0 up to a round value just above the highest one
        step = _nice_step(max(values) * 1.05 / 4)
        lo, hi = 0.0, 4 * step
    n = max(int(p["x"]) for p in points)

    def sx(x: float) -> float:
        return left + (width * (x - 1) / (n - 1) if n > 1 else width / 2)

    def sy(v: float) -> float:
        return top + height - height * (v - lo) / (hi - lo)

    out = [_svg_text(left, top - 12, title, size=12, fill="#1f2328")]
    for t in range(5):  # horizontal grid and y labels
        v = lo + (hi - lo) * t / 4
        y = sy(v)
        out.append(
            f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{left + width:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>'
        )
        out.append(_svg_text(left - 6, y + 4, f"{round(v, 6):g}", "end", 10))
    step = max(1, math.ceil(n / 10))
    for x in range(1, n + 1, step):  # x labels
        out.append(_svg_text(sx(x), top + height + 15, str(x), "middle", 10))
    out.append(_svg_text(left + width / 2, top + height + 30, "epoch", "middle", 10))
    for x, phase in starts:  # phase markers
        if x == 1 and len(starts) == 1:
            continue
        px = sx(x - 0.5) if x > 1 else sx(1)
        out.append(
            f'<line x1="{px:.1f}" y1="{top:.1f}" x2="{px:.1f}" y2="{top + height:.1f}" '
            'stroke="#59636e" stroke-dasharray="4 3"/>'
        )
        out.append(_svg_text(px + 3, top + 11, f"▶ {phase}", size=10))
    for k in keys:
        pts = [(sx(p["x"]), sy(v)) for p in points if (v := _num(p.get(k))) is not None]
        color = CHART_COLORS.get(k, "#1f77b4")
        if len(pts) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        out.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"/>' for x, y in pts)
    for i, k in enumerate(keys):  # legend
        y = top + height + 48 + 14 * i
        color = CHART_COLORS.get(k, "#1f77b4")
        out.append(
            f'<line x1="{left:.1f}" y1="{y - 4:.1f}" x2="{left + 18:.1f}" y2="{y - 4:.1f}" stroke="{color}" stroke-width="2"/>'
        )
        out.append(_svg_text(left + 24, y, CHART_LABELS.get(k, k), size=10.5))
    return "".join(out)


def _curve_chart(
    points: Sequence[Mapping[str, Any]], starts: Sequence[tuple[int, str]], model: str
) -> Markup:
    """An inline SVG: losses (left) and validation accuracy (right) per epoch, phases end to end."""
    w, h = 760, 290
    panels = _panel(points, ("train_loss", "val_loss"), starts, 48, 300, "Loss (lower is better)")
    panels += _panel(
        points, ("val_accuracy",), starts, 430, 300, "Validation accuracy (higher is better)", True
    )
    label = f"Training curves of {model}: loss and validation accuracy per epoch"
    return Markup(
        f'<figure><svg viewBox="0 0 {w} {h}" width="100%" style="max-width:{w}px" role="img" '
        f'aria-label="{esc(label)}" font-family="sans-serif">{panels}</svg>'
        f"<figcaption>{esc(label)}.</figcaption></figure>"
    )


# -- published results
def _published(results: Mapping[str, Any], w: ClassificationWording) -> Markup:
    pw = w.published
    if pw is None:
        return Markup("")
    published = _published_rows(results)
    rows_in = [
        (
            _num(r["accuracy"]),
            str(r.get("classifier") or "unnamed"),
            str(r.get("preprocessing") or "") or DASH,
            esc(fmt_metric(r["accuracy"])),
            pw.source_note,
            None,
        )
        for r in published
    ]
    for m in results["models"]:
        acc = _metric(m, "accuracy")
        if acc.value is None:
            continue
        name = str(m.get("model"))
        if name == results["selection"]["recommended"]:
            name = Markup(f'{esc(name)} <span class="badge ok">recommended</span>')
        rows_in.append((acc.value, name, m.get("family") or DASH, fmt_ci(acc), MOULIN_NOTE, "best"))
    rows_in.sort(key=lambda r: -r[0])
    rows = [[str(i), name, pre, acc, source] for i, (_, name, pre, acc, source, _) in enumerate(rows_in, 1)]
    return section(
        "published",
        pw.title,
        para(pw.caveat),
        table(
            ["#", "Classifier", "Preprocessing / model", "Test accuracy", "Source"],
            rows,
            numeric=(0, 3),
            row_classes=[r[5] for r in rows_in],
        ),
    )


# -- appendix
def _appendix(results: Mapping[str, Any], w: ClassificationWording) -> Markup:
    snap = results.get("snapshot") or {}
    boot = results.get("bootstrap") or {}
    sel = results["selection"]
    sample = _num(results.get("sample"))
    resamples = _resamples(results)
    prov = [
        ["Run id", results.get("run_id") or NOT_AVAILABLE],
        ["Created at", results.get("created_at") or NOT_AVAILABLE],
        ["Code version", Markup(f"<code>{esc(results.get('code_version') or NOT_AVAILABLE)}</code>")],
        ["Results format", results.get("format") or NOT_AVAILABLE],
        ["Snapshot table", Markup(f"<code>{esc(snap.get('table_uri') or NOT_AVAILABLE)}</code>")],
        ["Snapshot version", NOT_AVAILABLE if snap.get("version") is None else str(snap.get("version"))],
        ["Sample fraction", f"none (all {w.items})" if sample is None else fmt_num(sample)],
        [
            "Model selection",
            f"best {_metric_label(_selection_metric(results))} on the {sel.get('split') or 'validation'} split",
        ],
        [
            "Bootstrap",
            (f"{fmt_int(resamples)} resamples" if resamples else f"resamples {NOT_AVAILABLE}")
            + (f", seed {boot.get('seed')}" if boot.get("seed") is not None else "")
            + (", grouped" if boot.get("grouped") else ", rows resampled independently")
            + "; 95% percentile intervals",
        ],
        [
            "Paired tests",
            f"macro-F1 paired bootstrap, Holm-adjusted over {_n_pairs(results)} pair(s); "
            f"McNemar exact test on the discordant {w.items} (not adjusted)",
        ],
        [
            "Total training time",
            fmt_seconds(results.get("total_seconds"))
            if results.get("total_seconds") is not None
            else NOT_AVAILABLE,
        ],
    ]
    model_rows = []
    for m in results["models"]:
        params = json.dumps(m.get("params"), sort_keys=True, default=str) if m.get("params") else DASH
        model_rows.append(
            [
                m.get("model"),
                m.get("family") or DASH,
                Markup(f"<code>{esc(m.get('model_uri') or NOT_AVAILABLE)}</code>"),
                Markup(f"<code>{esc(params)}</code>"),
            ]
        )
    return section(
        "appendix",
        "Technical appendix",
        tag("h3", "Provenance"),
        table(["Item", "Value"], prov),
        tag("h3", "Models: where they are stored and their settings"),
        table(["Model", "Family", "Model file", "Parameters"], model_rows),
        class_="appendix",
    )


def quality_from_gate(outcome: Mapping[str, Any] | None) -> dict | None:
    """A bronze gate's outcome (``GateOutcome.as_dict()``) as the report's quality figures."""
    if not outcome:
        return None
    keys = ("rows_manifest", "rows_read", "rows_bronze", "rows_quarantined")
    return {k: outcome.get(k) for k in keys} | {"quarantine_reasons": outcome.get("failures", {})}


def report_beside_results(
    settings, results_uri: str, wording: ClassificationWording, gate: Mapping[str, Any] | None = None
) -> str:
    """Render the report of a training run's ``results.json`` and write it beside it
    (``report.html``); returns the report's URI."""
    import json

    from moulin.storage import WarehouseFS

    results = json.loads(WarehouseFS(settings).read_bytes(results_uri))
    uri = results_uri.rsplit("/", 1)[0] + "/report.html"
    return write_classification_report(results, uri, settings, wording, quality_from_gate(gate))
