"""The report sections rendered from a use case's framing (:mod:`moulin.framing`): the
question, the approach, the hardware needed and the limits, and the sentence that sets
a measured result against the threshold the framing states ("the model reaches 0.702
ROC AUC where 0.65 was needed").

Every use case's report calls these, so the framing file is the one place its
question, decision, scope, formulation, metric, data, storage, personal data,
hardware and limits are written.
"""

from __future__ import annotations

from collections.abc import Sequence

from moulin.framing import Framing, MetricGoal
from moulin.reporting.html import NOT_AVAILABLE, Markup, bullets, esc, fmt_metric, para, section, table, tag

TASK_WORDS = {
    "binary": "a binary classification",
    "multiclass": "a multi-class classification",
    "regression": "a regression",
    "ranking": "a ranking",
    "anomaly": "an anomaly detection",
}
LAYER_WORDS = {
    "source": "Source",
    "raw": "Raw",
    "bronze": "Bronze",
    "silver": "Silver",
    "gold": "Gold",
    "model": "Model",
    "report": "Report",
}


def fmt_goal(x: float) -> str:
    """A threshold as written: two decimals at least (``0.65``, ``0.90``), more when given."""
    text = f"{x:.2f}"
    return text if abs(float(text) - x) < 1e-12 else f"{x:g}"


def naive_score(
    goal: MetricGoal, class_shares: Sequence[float] = (), positive_share: float | None = None
) -> float | None:
    """The naive baseline's score: the framing's ``value`` when given, else what its kind
    scores by construction on the test data described by ``class_shares`` (share of each
    class) or ``positive_share`` (binary); None when it cannot be told."""
    baseline = goal.baseline
    if baseline.value is not None:
        return baseline.value
    shares = [s for s in class_shares if s >= 0]
    if baseline.kind == "majority_class" and shares and sum(shares) > 0:
        p = max(shares) / sum(shares)
        if goal.name == "accuracy":
            return p
        if goal.name == "macro_f1":  # F1 of the majority class 2p/(1+p), 0 for the others
            return 2 * p / (1 + p) / len(shares)
    if baseline.kind == "constant_score":
        if goal.name == "roc_auc":
            return 0.5
        if positive_share is not None and 0 <= positive_share <= 1:
            if goal.name in ("pr_auc", "precision"):
                return positive_share
            if goal.name == "recall":
                return 1.0
            if goal.name == "f1":  # flag everything: precision p, recall 1
                return 2 * positive_share / (1 + positive_share) if positive_share else 0.0
    return None


def goal_sentence(
    goal: MetricGoal,
    value: float | None,
    ci: tuple[float | None, float | None] = (None, None),
    baseline: float | None = None,
    who: str = "The model",
) -> str:
    """The measured ``value`` set against the framing's threshold, in one sentence:
    "The model reaches 0.702 ROC AUC where 0.65 was needed" or "falls short: ...";
    an interval ``ci`` that holds the threshold, and the naive ``baseline``, are said too."""
    label, needed = goal.label, fmt_goal(goal.threshold)
    if value is None:
        return (
            f"{who}'s {label} is {NOT_AVAILABLE}, so it cannot be set against the {needed} "
            "that would make it worth using."
        )
    if goal.met_by(value):
        text = f"{who} reaches {fmt_metric(value)} {label} where {needed} was needed"
    else:
        text = f"{who} falls short: {fmt_metric(value)} {label} where {needed} was needed"
    lo, hi = ci
    if lo is not None and hi is not None and min(lo, hi) <= goal.threshold <= max(lo, hi):
        text += (
            f" (its 95% interval, {fmt_metric(lo)}–{fmt_metric(hi)}, holds the threshold: "
            "more test data would tell for sure)"
        )
    if baseline is not None:
        text += (
            f"; the naive baseline ({goal.baseline.description.rstrip('.')}) scores {fmt_metric(baseline)}"
        )
    return text + "."


def question_section(framing: Framing, *extra: Markup) -> Markup:
    """The section "The question": the business question, the decision it supports and who acts on
    it, where AI can help and where it cannot; ``extra`` paragraphs follow."""
    d = framing.decision
    decision = [f"Decision it supports: {d.supports}", f"Who acts on it: {d.acted_on_by}."]
    if d.when:
        decision.append(f"When: {d.when}.")
    return section(
        "question",
        "The question",
        para(Markup(f"<strong>{esc(framing.question)}</strong>"), class_="question"),
        bullets(decision),
        Markup(
            '<div class="grid2"><div>'
            + tag("h3", "Where the model can help")
            + bullets(framing.scope.ai_can_help)
            + "</div><div>"
            + tag("h3", "Where it cannot")
            + bullets(framing.scope.ai_cannot_help)
            + "</div></div>"
        ),
        *extra,
    )


def approach_section(framing: Framing, baseline: float | None = None) -> Markup:
    """The section "The approach": the task and its formulation (target, unit and time of prediction,
    what the model may read then), the metric with its threshold and naive baseline, the
    data needed, its acquisition and storage, personal data and ethical risks."""
    task, goal = framing.task, framing.metric
    kind = TASK_WORDS[task.type]
    if task.classes:
        kind += f" into {len(task.classes)} classes ({', '.join(task.classes)})"
    parts: list[Markup] = [
        para(f"The question is framed as {kind}."),
        bullets(
            [
                f"Target: {task.target.rstrip('.')}.",
                f"Unit of prediction: {task.unit.rstrip('.')}.",
                f"Time of prediction: {task.prediction_time.rstrip('.')}.",
            ]
        ),
        tag("h3", "What the model may read"),
        table(
            ["Input", "Known at prediction time because"],
            [[Markup(f"<code>{esc(f.name)}</code>"), f.note or "—"] for f in task.inputs],
        ),
    ]
    if task.left_out:
        parts.append(
            para(
                "Left out on purpose: "
                + "; ".join(f"{f.name} ({f.note})" if f.note else f.name for f in task.left_out)
                + "."
            )
        )
    spec = goal.spec
    text = (
        f"What counts: {spec.label}, {spec.meaning}. {goal.why.rstrip('.')}. The model is worth using from "
        f"{fmt_goal(goal.threshold)} {spec.label} {'or more' if spec.higher_is_better else 'or less'}. "
        f"{goal.threshold_why.rstrip('.')}. Naive baseline to beat: {goal.baseline.description.rstrip('.')}"
    )
    text += f"; it scores {fmt_metric(baseline)}." if baseline is not None else "."
    parts += [tag("h3", "What counts as good enough"), para(text)]
    data = framing.data
    parts += [
        tag("h3", "The data needed"),
        table(["Source", "What it brings"], [[s.name, s.what] for s in data.sources]),
        bullets([f"History: {data.history}", f"Volume: {data.volume}", f"Growth: {data.growth}"]),
        tag("h3", "How it is acquired and stored"),
        table(
            ["Layer", "What", "Where", "When"],
            [[LAYER_WORDS[s.layer], s.what, s.where or "—", s.schedule or "—"] for s in framing.storage],
        ),
        tag("h3", "Personal data and ethics"),
    ]
    privacy = framing.privacy
    if privacy.personal_data:
        text = f"Personal data: {', '.join(privacy.personal_data)}. Legal basis: {privacy.legal_basis.rstrip('.')}."
    else:
        text = "No column of the data holds personal data."
    if privacy.note:
        text += f" {privacy.note}"
    parts += [para(text), para("Ethical risks:"), bullets(privacy.ethical_risks)]
    return section("approach", "The approach", *parts)


def hardware_section(framing: Framing) -> Markup:
    """The section "Hardware needed": to train, to serve, and whether an accelerator helps."""
    hw = framing.hardware
    rows = [["Training", hw.training], ["Serving (predictions)", hw.serving]]
    if hw.accelerator:
        rows.append(["Accelerator (GPU)", hw.accelerator])
    return section("hardware", "Hardware needed", table(["For", "What it takes"], rows))


def limits_section(framing: Framing, measured: Sequence[str] = ()) -> Markup:
    """The section "Limits": the framing's limits, then what this run's results add (``measured``)."""
    return section(
        "limits",
        "Limits",
        para("Read the results with these limits in mind:"),
        bullets([*framing.limits, *measured]),
    )
