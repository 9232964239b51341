"""The report of a classification training run, in words for decision-makers,
rendered with :mod:`moulin.reporting.html`: which model to use, how sure that
choice is, where the models go wrong.

Its input is a run's results (:class:`~moulin.training.classification_results.ClassificationResults`,
written by :func:`moulin.training.classifiers.run_suite` as ``results.json``: every
model's scores, the model chosen on validation, the paired comparisons, split sizes,
duplicates, the worst test examples, each with an ``image`` data URI or a ``text``,
and any published results), and optionally the bronze gate's row accounting
(:class:`~moulin.training.classification_results.GateCounts`).  Everything that
belongs to one use case (what an item is, how its data was split, its published
results) comes in a :class:`ClassificationWording`; a use case holds its wording in
its own ``report.py``.  A wording that carries the use case's framing
(:mod:`moulin.framing`) adds the question, approach, hardware and limits sections
rendered from it (:mod:`moulin.reporting.framing`), and the summary sets the
recommended model's test result against the framing's threshold.
:func:`render_classification_report` is pure (results in, HTML out);
:func:`write_classification_report` renders and writes the page to the warehouse.
The page is self-contained: CSS inline, example images as data URIs already in the
results, charts as inline PNG images (:mod:`moulin.reporting.plots`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from moulin.framing import Framing
from moulin.reporting import plots
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
    figure,
    fmt_ci,
    fmt_int,
    fmt_metric,
    fmt_num,
    fmt_pct,
    fmt_seconds,
    glossary,
    page,
    page_header,
    para,
    section,
    table,
    tag,
)
from moulin.reporting.model_table import Column, model_comparison_section
from moulin.storage import WarehouseFS
from moulin.training.classification_results import (
    ClassificationResults,
    Example,
    GateCounts,
    ModelEvaluation,
    PairComparison,
    PhaseTraining,
    Published,
)
from moulin.training.compared_models import Metric

MOULIN_NOTE = "moulin, this run"
LEVEL = 0.0005  # accuracies closer than this to a published one (given with 3 decimals) are "level with" it
HIGH_DATA_WAIT = 0.2  # a data-wait share above this means the input pipeline slowed training
TEXT_LIMIT = 300  # characters of an example text shown; longer ones end with an ellipsis
THUMBNAIL = 56  # pixels: the side of an example image
METRIC_LABELS = {"accuracy": "accuracy", "macro_f1": "macro-F1", "log_loss": "log loss", "ece": "ECE"}

#: What the report accepts as results: the typed results, or the dict of a ``results.json``.
ResultsInput = ClassificationResults | Mapping[str, Any]
#: What the report accepts as the bronze gate's accounting: typed, or a dict with the same names.
QualityInput = GateCounts | Mapping[str, Any] | None


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

    def count(self, n: int | None, adjective: str = "") -> str:
        """``"3 test posts"`` / ``"1 test post"``."""
        noun = self.item if n == 1 else self.items
        return f"{fmt_int(n)} {adjective} {noun}" if adjective else f"{fmt_int(n)} {noun}"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _agree(n: int | None, singular: str, plural: str) -> str:
    """The verb (or phrase) that agrees with the count ``n``."""
    return singular if n == 1 else plural


# -- public API
def render_classification_report(
    results: ResultsInput, wording: ClassificationWording, quality: QualityInput = None
) -> str:
    """The report of ``results`` (a training run's results, typed or as read from its
    ``results.json``) as one self-contained HTML page.

    Raises :class:`~moulin.training.classification_results.ResultsError` (a ValueError)
    naming the field when ``models``, ``selection`` or ``class_names`` is missing, the
    recommended model is not among the models, or a field is malformed.
    """
    r = as_results(results)
    q = as_gate_counts(quality)
    w = wording
    chosen = r.recommended
    show_published = w.published is not None and bool(_published_rows(r))
    framing = w.framing
    baseline = naive_score(framing.metric, _class_shares(chosen)) if framing else None
    framed = (
        [question_section(framing), approach_section(framing, baseline), hardware_section(framing)]
        if framing
        else []
    )
    sections = [
        _summary(r, chosen, q, w, baseline),
        *framed,
        _data(r, q, w),
        _comparison(r, chosen, w),
        _significance(r, w),
        _errors(r, chosen, w),
        _worst(r, w),
        _training(r.models, w),
        *([_published(r, w)] if show_published else []),
        *([limits_section(framing, _measured_limits(r, w))] if framing else []),
        _appendix(r, w),
        Markup(
            f"<footer>Generated by moulin for run {esc(r.run_id or NOT_AVAILABLE)}. "
            "Self-contained file: no network access needed to view it.</footer>"
        ),
    ]
    return page(f"{w.title} — run {r.run_id or NOT_AVAILABLE}", _header(r, w, show_published), sections)


def write_classification_report(
    results: ResultsInput, uri: str, settings, wording: ClassificationWording, quality: QualityInput = None
) -> str:
    """Render the report of ``results`` and write it to ``uri`` in the warehouse (atomically); returns ``uri``."""

    html = render_classification_report(results, wording, quality)
    WarehouseFS(settings).write_bytes(uri, html.encode("utf-8"))
    return uri


def as_results(results: ResultsInput) -> ClassificationResults:
    """``results`` typed: as given, or read from a ``results.json`` dict."""
    return results if isinstance(results, ClassificationResults) else ClassificationResults.from_dict(results)


def as_gate_counts(quality: QualityInput) -> GateCounts | None:
    """The gate's accounting typed (None, or an empty dict: not supplied)."""
    if quality is None or isinstance(quality, GateCounts):
        return quality
    return GateCounts.from_dict(quality) if quality else None


# -- helpers
def _metric(model: ModelEvaluation, name: str) -> Metric:
    """A test metric with its 95% bootstrap interval."""
    return Metric.of(model.test.value(name), model.test.interval(name))


def _ci_text(m: Metric, digits: int = 3) -> str:
    if m.ci_low is None or m.ci_high is None:
        return ""
    return f"95% interval {fmt_metric(m.ci_low, digits)}–{fmt_metric(m.ci_high, digits)}"


def _signed(v: float | None, digits: int = 3) -> str:
    return DASH if v is None else f"{v:+.{digits}f}".replace("-", "−")


def _neg(v: float | None) -> float | None:
    return None if v is None else -v


def _class_name(names: Sequence[str], index: int | None) -> str:
    if index is not None and 0 <= index < len(names):
        return str(names[index])
    return f"class {index}"


def _resamples(r: ClassificationResults, pair: PairComparison | None = None) -> int | None:
    for value in (
        pair.n_defined if pair else None,
        pair.n_resamples if pair else None,
        r.bootstrap.resamples,
    ):
        if value is not None and value > 0:
            return value
    return None


def _fmt_p(v: float | None, floor: float | None = None) -> str:
    """A p-value in words-friendly form; 0 from a bootstrap is shown as below its resolution ``floor``."""
    if v is None:
        return DASH
    if v == 0:
        return f"< {floor:.2g}" if floor else "< 0.001"
    if v < 0.001:
        return "< 0.001"
    return f"{v:.2g}"


def _p_adjusted_text(r: ClassificationResults, pair: PairComparison) -> str:
    n = _resamples(r, pair)
    m = max(len(r.comparisons), 1)
    return _fmt_p(pair.p_adjusted, min(1.0, 2 * m / n) if n else None)


def _published_name(row: Published) -> str:
    return row.classifier or "unnamed"


def _published_label(row: Published, rows: Sequence[Published] = ()) -> str:
    """The classifier's name; its preprocessing added when another published row has the same name."""
    name = _published_name(row)
    pre = (row.preprocessing or "").strip()
    twins = sum(1 for other in rows if _published_name(other) == name)
    if twins > 1 and pre:
        name += f" ({pre})"
    return name


def _published_rows(r: ClassificationResults) -> list[Published]:
    return [p for p in r.published if p.accuracy is not None]


# -- header and summary
def _header(r: ClassificationResults, w: ClassificationWording, show_published: bool) -> Markup:
    bits = [f"Run {r.run_id or NOT_AVAILABLE}", f"created {r.created_at or NOT_AVAILABLE}"]
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
    return page_header(w.title, " · ".join(bits), toc)


def _metric_label(name: str) -> str:
    return METRIC_LABELS.get(name, name.replace("_", " "))


def _class_shares(chosen: ModelEvaluation) -> list[float]:
    """The number of test items of each class (per-class support, else confusion rows)."""
    per_class = chosen.test.per_class
    if per_class and all(c.support is not None for c in per_class):
        return [float(c.support or 0) for c in per_class]
    if chosen.test.confusion:
        return [float(sum(row)) for row in chosen.test.confusion]
    return []


def _goal(chosen: ModelEvaluation, framing: Framing, baseline: float | None) -> str:
    """The recommended model's test result set against the framing's threshold."""
    m = _metric(chosen, framing.metric.name)
    return "Against the goal: " + goal_sentence(
        framing.metric, m.value, (m.ci_low, m.ci_high), baseline, "the recommended model"
    )


def _sampled(r: ClassificationResults) -> bool:
    return r.sample is not None and r.sample < 1


def _measured_limits(r: ClassificationResults, w: ClassificationWording) -> list[str]:
    """What this run adds to the framing's limits."""
    out = []
    if _sampled(r):
        out.append(
            f"This run used a sample of {fmt_pct(r.sample, trim=True)} of the {w.items}: numbers on the full "
            "data will differ."
        )
    dup = r.duplicates.train_and_test if r.duplicates else None
    if dup:
        out.append(
            f"{w.count(dup, 'test')} also {_agree(dup, 'appears', 'appear')} in training or validation, "
            "which flatters the test results slightly."
        )
    return out


def _summary(
    r: ClassificationResults,
    chosen: ModelEvaluation,
    quality: GateCounts | None,
    w: ClassificationWording,
    baseline: float | None = None,
) -> Markup:
    name = chosen.model
    sel_metric, split = r.selection.metric, r.selection.split
    metric = _metric_label(sel_metric)
    val = chosen.validation.get(sel_metric)
    items: list[Markup] = []

    family = f" ({chosen.family})" if chosen.family else ""
    lead = f"Recommended model: {name}{family}."
    text = (
        f" It was chosen on the {split} split: it had the highest {split} {metric}"
        + (f" ({fmt_metric(val)})" if val is not None else "")
        + f" of the {len(r.models)} models trained. The {split} {w.items} were held back from training "
        f"for this choice; the test {w.items} played no part in it, so the test figures below are a fair "
        f"estimate of how the model will do on new {w.prose}."
    )
    items.append(Markup(f"<strong>{esc(lead)}</strong>{esc(text)}"))

    acc = _metric(chosen, "accuracy")
    n_test = chosen.test.n or r.split_rows.test
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
        for m in r.models
        if m is not chosen
        and mine is not None
        and (theirs := _metric(m, sel_metric).value) is not None
        and theirs > mine
    ]
    if higher:
        others = ", ".join(f"{m.model} ({fmt_metric(_metric(m, sel_metric).value)})" for m in higher)
        by = "" if sel_metric == "accuracy" else f" by {metric}"
        items.append(
            esc(
                f"{others} scored higher on the test {w.items}{by}, but the model is chosen on the {split} split, "
                "never on test: picking the test winner would make its test result look better than it will be "
                "in use. Whether such a gap is real is answered just below."
            )
        )

    if r.comparisons:
        ordered = sorted(r.comparisons, key=lambda c: name not in (c.a, c.b))
        lines = [esc(_pair_sentence(r, c, name, w)) for c in ordered]
        intro = (
            f"How it compares (macro-F1 on the same test {w.items}; a paired bootstrap test per pair, "
            f"p-values adjusted with the Holm method for the {len(r.comparisons)} comparisons, so that "
            "testing several pairs does not inflate the chance of a false alarm):"
        )
        items.append(Markup(f"{esc(intro)}{bullets(lines)}"))
    elif len(r.models) > 1:
        items.append(esc(f"Paired comparisons of the models: {NOT_AVAILABLE}."))

    ece = chosen.test.ece
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
        items.append(esc(_published_sentence(r, acc.value, w.published)))
    items.append(esc(_data_sentence(r, w)))
    items.append(_quality_sentence(quality, w))
    return Markup(
        f'<section id="summary" class="summary"><h2>In short</h2>{para(w.intro, "question")}'
        f"{bullets(items)}</section>"
    )


def _pair_sentence(
    r: ClassificationResults, pair: PairComparison, chosen: str, w: ClassificationWording
) -> str:
    a, b = pair.a, pair.b
    if chosen == b:  # phrase it from the recommended model's side
        first, second = b, a
        ma, mb, diff = pair.metric_b, pair.metric_a, _neg(pair.difference)
        lo, hi = _neg(pair.ci_high), _neg(pair.ci_low)
    else:
        first, second = a, b
        ma, mb, diff = pair.metric_a, pair.metric_b, pair.difference
        lo, hi = pair.ci_low, pair.ci_high
    numbers = f"macro-F1 {fmt_metric(ma)} against {fmt_metric(mb)}, difference {_signed(diff)}"
    if lo is not None and hi is not None:
        numbers += f", 95% interval {_signed(lo)} to {_signed(hi)}"
    numbers += f"; adjusted p {_p_adjusted_text(r, pair)}"
    lead = f"{first} against {second}: "
    if pair.p_adjusted is None and pair.significant is None:
        return lead + f"the difference could not be tested ({numbers})."
    if pair.significant:
        better = pair.better
        winner = a if better == "a" else b if better == "b" else (first if (diff or 0) > 0 else second)
        return (
            lead + f"{winner} is better, and the difference is statistically significant after Holm "
            f"adjustment ({numbers})."
        )
    return (
        lead + "the difference is not statistically significant after Holm adjustment "
        f"({numbers}): on these test {w.items} the two cannot be told apart."
    )


def _published_sentence(r: ClassificationResults, accuracy: float | None, pw: PublishedWording) -> str:
    rows = _published_rows(r)
    if not rows:
        return "No published results were supplied to compare with."
    if accuracy is None:
        return "Its test accuracy is not available, so it cannot be placed among the published results."
    scored = [(row, row.accuracy) for row in rows if row.accuracy is not None]
    lower = [(row, a) for row, a in scored if a < accuracy - LEVEL]
    level = [(row, a) for row, a in scored if abs(a - accuracy) <= LEVEL]
    upper = [(row, a) for row, a in scored if a > accuracy + LEVEL]
    parts = []

    def names(group: list[tuple[Published, float]], best: float) -> str:
        same = [(row, a) for row, a in group if abs(a - best) < 1e-12][:3]
        return " and ".join(f"{_published_label(row, rows)} {fmt_metric(a)}" for row, a in same)

    if lower:
        parts.append("above " + names(lower, max(a for _, a in lower)))
    if level:
        parts.append(
            "level with "
            + " and ".join(f"{_published_label(row, rows)} {fmt_metric(a)}" for row, a in level[:3])
        )
    if upper:
        parts.append("below " + names(upper, min(a for _, a in upper)))
    return (
        f"Against the {len(rows)} {pw.described_as}, its test accuracy of {fmt_metric(accuracy)} is "
        + ", ".join(parts)
        + f"; {len(lower)} of the {len(rows)} published results are lower."
    )


def _data_sentence(r: ClassificationResults, w: ClassificationWording) -> str:
    split = r.split_rows
    rows = ", ".join(
        f"{fmt_int(n)} {label}"
        for n, label in ((split.train, "training"), (split.validation, "validation"), (split.test, "test"))
        if n is not None
    )
    text = f"Data: {rows} {w.items}." if rows else f"Data: split sizes {NOT_AVAILABLE}."
    if _sampled(r):
        text += f" Only a sample of {fmt_pct(r.sample, trim=True)} of the {w.items} was used in this run."
    dup = r.duplicates.train_and_test if r.duplicates else None
    if dup:
        text += (
            f" {w.count(dup, 'test')} {_agree(dup, 'is an exact copy', 'are exact copies')} of training or "
            f"validation {w.items}, which flatters the test results slightly."
        )
    elif dup == 0:
        text += f" No test {w.item} is a copy of a training or validation {w.item}."
    conflicting = r.duplicates.conflicting_labels if r.duplicates else None
    if conflicting:
        text += (
            f" {w.count(conflicting)} {_agree(conflicting, 'occurs', 'occur')} more than once with different labels: "
            "no model can get every copy right."
        )
    return text


def _quality_problems(quality: GateCounts, w: ClassificationWording) -> list[str]:
    problems = []
    read, kept, out = quality.rows_read, quality.rows_bronze, quality.rows_quarantined
    if read is not None and kept is not None and out is not None and read != kept + out:
        problems.append(
            f"row accounting does not add up: {fmt_int(read)} {w.items} read but {fmt_int(kept)} kept "
            f"+ {fmt_int(out)} set aside"
        )
    manifest = quality.rows_manifest
    if manifest is not None and read is not None and manifest != read:
        problems.append(f"the files announce {fmt_int(manifest)} {w.items} but {fmt_int(read)} were read")
    return problems


def _quality_sentence(quality: GateCounts | None, w: ClassificationWording) -> Markup:
    if quality is None:
        return esc("Data quality: the bronze gate figures were not supplied with these results.")
    problems = _quality_problems(quality, w)
    if problems:
        return Markup(
            f"{badge(False)} Data quality: {esc('; '.join(problems))}. Treat the results with care."
        )
    out = quality.rows_quarantined or 0
    read = quality.rows_read
    text = f"Data quality: every {w.item} read is either kept or set aside with a reason"
    if read:
        text += f" ({fmt_int(read)} read, {fmt_int(out)} set aside)"
    return Markup(f"{badge(True)} {esc(text)}.")


# -- data
def _share(part: int | None, whole: int | None) -> str:
    return fmt_pct(part / whole) if whole and part else DASH


def _data(r: ClassificationResults, quality: GateCounts | None, w: ClassificationWording) -> Markup:
    split = r.split_rows
    rows = [
        [label, fmt_int(n), _share(n, split.total), use]
        for n, label, use in (
            (split.train, "Training", "the models learn from these"),
            (split.validation, "Validation", "held back to choose the model and stop training in time"),
            (split.test, "Test", w.test_split_use),
        )
    ]
    snap = r.snapshot
    facts = [
        Markup(
            f"Snapshot: table <code>{esc(snap.table_uri or NOT_AVAILABLE)}</code>, "
            f"version {esc(NOT_AVAILABLE if snap.version is None else snap.version)}: "
            f"every model saw exactly the same {esc(w.items)}."
        ),
        esc(
            f"Sample: {fmt_pct(r.sample, trim=True)} of the {w.items} (a quick run; numbers on the full data will differ)."
            if _sampled(r)
            else f"Sample: none, all {w.items} were used."
        ),
    ]
    dt = r.duplicates.train_and_test if r.duplicates else None
    dv = r.duplicates.train_and_validation if r.duplicates else None
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
    conflicting = r.duplicates.conflicting_labels if r.duplicates else None
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
    return section(
        "data",
        "The data",
        para(
            f"{w.data_description} There are {len(r.class_names)} classes: " + ", ".join(r.class_names) + "."
        ),
        para(w.split),
        table(["Split", _cap(w.items), "Share", "Used for"], rows, numeric=(1, 2)),
        bullets(facts),
        _quality(quality, w),
    )


def _quality(quality: GateCounts | None, w: ClassificationWording) -> Markup:
    head = tag("h3", "Data quality")
    items, things = w.items, _cap(w.items)
    if quality is None:
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
    read = quality.rows_read
    rows = [
        [f"{things} announced by the files", fmt_int(quality.rows_manifest), DASH],
        [f"{things} read", fmt_int(read), DASH],
        [f"{things} kept (bronze)", fmt_int(quality.rows_bronze), _share_of_read(quality.rows_bronze, read)],
        [
            f"{things} set aside (quarantined)",
            fmt_int(quality.rows_quarantined),
            _share_of_read(quality.rows_quarantined, read),
        ],
    ]
    reasons = sorted(quality.quarantine_reasons.items(), key=lambda kv: -(kv[1] or 0))
    reason_rows = [[reason, fmt_int(count), _share_of_read(count, read)] for reason, count in reasons]
    reason_block = (
        table(["Reason", things, f"Share of {items} read"], reason_rows, numeric=(1, 2))
        if reason_rows
        else para(
            f"No {w.item} was set aside." if not quality.rows_quarantined else f"Reasons: {NOT_AVAILABLE}.",
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


def _share_of_read(count: int | None, read: int | None) -> str:
    return fmt_pct(count / read, 2, trim=True) if read and count is not None else DASH


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


def _model_columns(
    r: ClassificationResults, chosen: ModelEvaluation, w: ClassificationWording
) -> list[Column[ModelEvaluation]]:
    """The columns of the model comparison: the selection score, test scores with intervals, cost."""
    sel_metric = r.selection.metric

    def label(m: ModelEvaluation) -> Markup:
        return Markup(
            f"{esc(m.model)}"
            + (' <span class="badge ok">recommended</span>' if m is chosen else "")
            + (f'<br><span class="ci">{esc(m.family)}</span>' if m.family else "")
        )

    return [
        Column("Model", label, numeric=False),
        Column(f"Validation {_metric_label(sel_metric)}", lambda m: fmt_metric(m.validation.get(sel_metric))),
        Column("Test accuracy", lambda m: fmt_ci(_metric(m, "accuracy"))),
        Column("Test macro-F1", lambda m: fmt_ci(_metric(m, "macro_f1"))),
        Column("ECE", lambda m: fmt_metric(m.test.ece)),
        Column("Log loss", lambda m: fmt_metric(m.test.log_loss)),
        Column("Training time", lambda m: fmt_seconds(m.train_seconds)),
        Column("Parameters", lambda m: fmt_int(m.n_parameters)),
        Column(f"{_cap(w.items)}/s", lambda m: fmt_int(m.predict_rows_per_s)),
    ]


def _comparison(r: ClassificationResults, chosen: ModelEvaluation, w: ClassificationWording) -> Markup:
    metric, split = _metric_label(r.selection.metric), r.selection.split
    return model_comparison_section(
        r,
        _model_columns(r, chosen, w),
        f"The recommended model (highlighted) has the best {split} {metric}; the others follow by the same "
        f"measure. Test figures are on the same test {w.items} for every model; values in brackets are 95% "
        "confidence intervals (bootstrap).",
        glossary(_glossary(w)),
    )


def _significance(r: ClassificationResults, w: ClassificationWording) -> Markup:
    title = "Are the differences real?"
    if not r.comparisons:
        return section("significance", title, para(f"Paired comparisons: {NOT_AVAILABLE}.", "na"))
    rows, classes = [], []
    for c in r.comparisons:
        diff = esc(_signed(c.difference))
        if c.ci_low is not None and c.ci_high is not None:
            diff = Markup(
                f'{diff} <span class="ci">({esc(_signed(c.ci_low))} to {esc(_signed(c.ci_high))})</span>'
            )
        mc = c.mcnemar
        rows.append(
            [
                f"{c.a} vs {c.b}",
                f"{fmt_metric(c.metric_a)} vs {fmt_metric(c.metric_b)}",
                diff,
                _p_adjusted_text(r, c),
                fmt_int(mc.a_right_b_wrong if mc else None),
                fmt_int(mc.a_wrong_b_right if mc else None),
                _fmt_p(mc.p_value if mc else None),
                _verdict(c),
            ]
        )
        classes.append(None if c.significant else "small")
    return section(
        "significance",
        title,
        para(
            f"Each pair of models is scored on the same test {w.items}. Macro-F1 difference: the first model minus "
            "the second, with its 95% interval from a paired bootstrap; its p-value is adjusted with the Holm "
            f"method for the {len(r.comparisons)} comparisons made, and a difference counts as real when the "
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


def _verdict(c: PairComparison) -> str:
    a, b = c.a, c.b
    if c.significant:
        winner = a if c.better == "a" else b if c.better == "b" else None
        text = (
            f"Real difference: {winner} is better (significant after Holm adjustment)."
            if winner
            else "Significant after Holm adjustment."
        )
    elif c.p_adjusted is None:
        text = "Could not be tested."
    else:
        text = "No real difference shown: not significant after Holm adjustment."
    mc = c.mcnemar
    if mc is not None and mc.significant:
        winner = a if mc.better == "a" else b if mc.better == "b" else None
        text += f" On accuracy, {winner} is right more often where they disagree." if winner else ""
    elif mc is not None:
        text += " On accuracy, neither is right clearly more often where they disagree."
    return text


# -- confusion matrix and per-class table
def _errors(r: ClassificationResults, chosen: ModelEvaluation, w: ClassificationWording) -> Markup:
    names = r.class_names
    name = chosen.model
    title = f"Where {name} goes wrong"
    matrix = chosen.test.confusion
    parts: list[Markup] = []
    if matrix:
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
    per_class = chosen.test.per_class
    if per_class:
        confused = _most_confused(matrix, names) if matrix else {}
        rows = [
            [
                pc.name if pc.name is not None else _class_name(names, pc.index),
                fmt_int(pc.support),
                fmt_metric(pc.precision),
                fmt_metric(pc.recall),
                fmt_metric(pc.f1),
                confused.get(pc.index, DASH) if pc.index is not None else DASH,
            ]
            for pc in per_class
        ]
        scored = [(pc, pc.f1) for pc in per_class if pc.f1 is not None]
        parts.append(tag("h3", "Quality per class"))
        if scored:
            worst, worst_f1 = min(scored, key=lambda s: s[1])
            best, best_f1 = max(scored, key=lambda s: s[1])
            parts.append(
                para(
                    f"Easiest class: {best.name} (F1 {fmt_metric(best_f1)}); hardest: "
                    f"{worst.name} (F1 {fmt_metric(worst_f1)}). Precision: of the {w.prose} the model "
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


def _confusion_table(matrix: Sequence[Sequence[int]], names: Sequence[str]) -> Markup:
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
        total = sum(row)
        cells = []
        for j, count in enumerate(row):
            share = count / total if total else 0.0
            if i == j:
                style = f"background:rgba(26,127,55,{0.12 + 0.5 * share:.3f});font-weight:700"
            else:
                style = f"background:rgba(207,34,46,{min(1.0, 3 * share):.3f})" if count else None
            title = (
                f"true {_class_name(names, i)}, predicted {_class_name(names, j)}: "
                f"{fmt_int(count)} ({fmt_pct(share, 1)} of {_class_name(names, i)})"
            )
            cells.append(
                str(
                    tag(
                        "td",
                        fmt_int(count),
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


def _most_confused(matrix: Sequence[Sequence[int]], names: Sequence[str]) -> dict[int, str]:
    out = {}
    for i, row in enumerate(matrix):
        total = sum(row)
        off = [(v, j) for j, v in enumerate(row) if j != i]
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


def _example(e: Example, names: Sequence[str], w: ClassificationWording) -> str:
    """One misclassified example as a card: its picture or text, true and predicted class, confidence."""
    true, pred = _class_name(names, e.true), _class_name(names, e.predicted)
    conf = e.confidence
    image = e.image or ""
    if e.text is not None:
        body = Markup(
            '<blockquote style="margin:0 0 6px;padding:6px 10px;border-left:3px solid #d8dee4;'
            f'background:#f6f8fa;overflow-wrap:anywhere">{esc(_shorten(e.text))}</blockquote>'
        )
        width = 300
    elif image.startswith("data:image/"):
        alt = f"test {w.item} {e.key}: a {true} taken for a {pred}"
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
        f'<figcaption title="{esc(e.key)}">{caption}</figcaption></figure>'
    )


def _worst(r: ClassificationResults, w: ClassificationWording) -> Markup:
    worst = r.worst_test_examples
    if not worst.examples:
        return section("worst", w.worst_title, para(f"Misclassified test {w.items}: {NOT_AVAILABLE}.", "na"))
    cards = [_example(e, r.class_names, w) for e in worst.examples]
    return section(
        "worst",
        w.worst_title,
        para(w.worst_intro.format(model=worst.model or r.selection.recommended)),
        Markup(f'<div style="display:flex;flex-wrap:wrap;gap:14px">{"".join(cards)}</div>'),
    )


# -- training curves
@dataclass(frozen=True)
class _PhaseFacts:
    """What the training table shows of one phase."""

    phase: str
    epochs: int
    best_epoch: int | None
    best_val_accuracy: float | None
    seconds: float
    wait: float
    learning_rate: float | None


def _phase_facts(name: str, phase: PhaseTraining, rate: float | None) -> _PhaseFacts:
    history = phase.history
    best = (
        next((h for h in history if h.epoch == phase.best_epoch), None)
        if phase.best_epoch is not None
        else None
    )
    return _PhaseFacts(
        phase=name,
        epochs=len(history),
        best_epoch=phase.best_epoch,
        best_val_accuracy=best.val_accuracy if best else None,
        seconds=sum(h.seconds or 0 for h in history),
        wait=sum(h.data_wait_seconds or 0 for h in history),
        learning_rate=rate if rate is not None else history[0].learning_rate,
    )


def _training(models: Sequence[ModelEvaluation], w: ClassificationWording) -> Markup:
    title = "How the networks learned"
    trained = [m for m in models if m.training]
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
        rates = m.phase_learning_rates
        phases = [
            _phase_facts(name, phase, rates.get(name)) for name, phase in m.training.items() if phase.history
        ]
        parts.append(tag("h3", m.model))
        if not phases:
            parts.append(para(f"Training history: {NOT_AVAILABLE}.", "na"))
            continue
        label = f"Training curves of {m.model}: loss and validation accuracy per epoch"
        later = [p.phase for p in phases[1:]]
        caption = label + (f"; dashed lines: phase {', '.join(later)} starts" if later else "") + "."
        parts.append(figure(plots.training_curves_plot(m.training), label, caption))
        total_s = sum(p.seconds for p in phases)
        total_w = sum(p.wait for p in phases)
        if total_s:
            share = total_w / total_s
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
                p.phase,
                fmt_int(p.epochs),
                fmt_int(p.best_epoch),
                fmt_metric(p.best_val_accuracy),
                fmt_num(p.learning_rate),
                fmt_seconds(p.seconds),
                fmt_pct(p.wait / p.seconds) if p.seconds else DASH,
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


# -- published results
def _published(r: ClassificationResults, w: ClassificationWording) -> Markup:
    pw = w.published
    if pw is None:
        return Markup("")
    rows_in: list[tuple[float, Any, str, Any, str, str | None]] = [
        (
            p.accuracy,
            _published_name(p),
            p.preprocessing or DASH,
            esc(fmt_metric(p.accuracy)),
            pw.source_note,
            None,
        )
        for p in _published_rows(r)
        if p.accuracy is not None
    ]
    for m in r.models:
        acc = _metric(m, "accuracy")
        if acc.value is None:
            continue
        name: Any = m.model
        if name == r.selection.recommended:
            name = Markup(f'{esc(name)} <span class="badge ok">recommended</span>')
        rows_in.append((acc.value, name, m.family or DASH, fmt_ci(acc), MOULIN_NOTE, "best"))
    rows_in.sort(key=lambda row: -row[0])
    rows = [[str(i), name, pre, acc, source] for i, (_, name, pre, acc, source, _) in enumerate(rows_in, 1)]
    return section(
        "published",
        pw.title,
        para(pw.caveat),
        table(
            ["#", "Classifier", "Preprocessing / model", "Test accuracy", "Source"],
            rows,
            numeric=(0, 3),
            row_classes=[row[5] for row in rows_in],
        ),
    )


# -- appendix
def _appendix(r: ClassificationResults, w: ClassificationWording) -> Markup:
    snap, boot, sel = r.snapshot, r.bootstrap, r.selection
    resamples = _resamples(r)
    prov = [
        ["Run id", r.run_id or NOT_AVAILABLE],
        ["Created at", r.created_at or NOT_AVAILABLE],
        ["Code version", Markup(f"<code>{esc(r.code_version or NOT_AVAILABLE)}</code>")],
        ["Results format", r.format or NOT_AVAILABLE],
        ["Snapshot table", Markup(f"<code>{esc(snap.table_uri or NOT_AVAILABLE)}</code>")],
        ["Snapshot version", NOT_AVAILABLE if snap.version is None else str(snap.version)],
        ["Sample fraction", f"none (all {w.items})" if r.sample is None else fmt_num(r.sample)],
        ["Model selection", f"best {_metric_label(sel.metric)} on the {sel.split} split"],
        [
            "Bootstrap",
            (f"{fmt_int(resamples)} resamples" if resamples else f"resamples {NOT_AVAILABLE}")
            + (f", seed {boot.seed}" if boot.seed is not None else "")
            + (", grouped" if boot.grouped else ", rows resampled independently")
            + "; 95% percentile intervals",
        ],
        [
            "Paired tests",
            f"macro-F1 paired bootstrap, Holm-adjusted over {len(r.comparisons)} pair(s); "
            f"McNemar exact test on the discordant {w.items} (not adjusted)",
        ],
        [
            "Total training time",
            fmt_seconds(r.total_seconds) if r.total_seconds is not None else NOT_AVAILABLE,
        ],
    ]
    model_rows = [
        [
            m.model,
            m.family or DASH,
            Markup(f"<code>{esc(m.model_uri or NOT_AVAILABLE)}</code>"),
            Markup(
                f"<code>{esc(json.dumps(m.params, sort_keys=True, default=str) if m.params else DASH)}</code>"
            ),
        ]
        for m in r.models
    ]
    return section(
        "appendix",
        "Technical appendix",
        tag("h3", "Provenance"),
        table(["Item", "Value"], prov),
        tag("h3", "Models: where they are stored and their settings"),
        table(["Model", "Family", "Model file", "Parameters"], model_rows),
        class_="appendix",
    )


def quality_from_gate(outcome: Mapping[str, Any] | None) -> GateCounts | None:
    """A bronze gate's outcome (``GateOutcome.as_dict()``) as the report's quality figures."""
    return GateCounts.from_dict(outcome, "gate") if outcome else None


def report_beside_results(
    settings, results_uri: str, wording: ClassificationWording, gate: Mapping[str, Any] | None = None
) -> str:
    """Render the report of a training run's ``results.json`` and write it beside it
    (``report.html``); returns the report's URI."""

    results = ClassificationResults.from_json(WarehouseFS(settings).read_bytes(results_uri))
    uri = results_uri.rsplit("/", 1)[0] + "/report.html"
    return write_classification_report(results, uri, settings, wording, quality_from_gate(gate))
