"""What the shell chain and the report task say of a spam filter run (the use case's
``results_lines``): one line per filter with its test scores and intervals, the
recommended filter, and its test result against the framing's threshold."""

from __future__ import annotations

from moulin.framing import Framing, load_usecase_framing
from moulin.reporting.framing import goal_sentence, naive_score
from moulin.training.classification_results import ClassificationResults, TestScores
from moulin.usecases.mail.params import POSITIVE_CLASS


def against_goal(results: ClassificationResults, framing: Framing | None = None) -> str:
    """The recommended spam filter's test result, with its interval, set against the
    threshold of the use case's framing (``moulin/usecases/mail/framing.yaml``), in one
    sentence."""
    framing = framing or load_usecase_framing("mail")
    chosen = results.recommended
    test = chosen.test
    interval = test.interval(framing.metric.name)
    support = {pc.name: pc.support for pc in test.per_class}
    spam = support.get(POSITIVE_CLASS)
    share = spam / test.n if test.n and spam is not None else None
    baseline = naive_score(framing.metric, positive_share=share)
    return goal_sentence(
        framing.metric,
        test.value(framing.metric.name),
        (interval.low, interval.high),
        baseline,
        f"The {chosen.model} filter",
    )


def model_lines(results: ClassificationResults) -> list[str]:
    """One line per filter: its choice on validation and its test F1 (spam), accuracy and
    ROC AUC with their 95 % intervals."""

    def metric(test: TestScores, name: str) -> str:
        value, interval = test.value(name), test.interval(name)
        if value is None:
            return f"{name} n/a"
        bounds = interval.low is not None and interval.high is not None
        return f"{name} {value:.3f}" + (f" [{interval.low:.3f}, {interval.high:.3f}]" if bounds else "")

    lines = []
    for m in results.models:
        chosen = {k: v for k, v in m.params.items() if k in ("C", "sender_weight")}
        val_f1 = m.validation.get("f1")
        lines.append(
            f"spam filter [{m.model}] {chosen}: validation F1 "
            + (f"{val_f1:.3f}" if val_f1 is not None else "n/a")
            + "; test "
            + ", ".join(metric(m.test, n) for n in ("f1", "accuracy", "roc_auc"))
        )
    return lines


def results_lines(results: ClassificationResults) -> list[str]:
    """The filters' lines, the recommended one, and its result against the goal."""
    return [
        *model_lines(results),
        f"recommended on validation F1 (spam): {results.recommended.model}",
        against_goal(results),
    ]
