"""The mail chain from the shell: drops -> raw landings -> bronze (pseudonymised) ->
silver -> spam filters (trained and compared in the training environment) -> report,
with a line per step."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from moulin.framing import Framing, load_usecase_framing
from moulin.jobs.submit import submit_job
from moulin.reporting.framing import goal_sentence, naive_score
from moulin.settings import Settings
from moulin.sources.land import land_source
from moulin.sources.spec import load_spec
from moulin.storage import WarehouseFS
from moulin.training.classification_results import ClassificationResults, TestScores
from moulin.usecases.kit.generate import train_args
from moulin.usecases.mail.corpus import DROPS, prepare_drops
from moulin.usecases.mail.params import POSITIVE_CLASS
from moulin.usecases.mail.report import WORDING
from moulin.usecases.mail.stages import silver_mail

TRAIN_STAGE = "mail_train"


def read_results(settings: Settings, results_uri: str) -> ClassificationResults:
    """The typed results of a spam filter run (its ``results.json``)."""

    return ClassificationResults.from_json(WarehouseFS(settings).read_bytes(results_uri))


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


def gate_totals(outcomes: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The bronze gates of several drops as one (rows summed, quarantine reasons merged),
    the report's data-quality figures."""
    if not outcomes:
        return None
    keys = ("rows_manifest", "rows_read", "rows_bronze", "rows_quarantined")
    total: dict[str, Any] = {k: sum(int(o.get(k) or 0) for o in outcomes) for k in keys}
    failures: dict[str, int] = {}
    for o in outcomes:
        for reason, n in (o.get("failures") or {}).items():
            failures[reason] = failures.get(reason, 0) + int(n)
    return {**total, "failures": failures}


def run_mail(
    spark,
    settings: Settings,
    limit: int | None = None,
    say: Callable[[str], None] = print,
    run_ge: bool = True,
) -> dict[str, Any]:
    """Run the whole mail chain (``limit`` messages per corpus group: a sample)."""

    from moulin.reporting.classification import report_beside_results
    from moulin.sources.bronze import gate_landing

    start = time.monotonic()
    spec = load_spec("mail")
    drops = prepare_drops(settings, limit)
    say(f"drops: {', '.join(f'{ds} ({sum(c.values())} messages)' for ds, c in drops.items())}")
    bronze = []
    for ds in DROPS:
        landed = land_source(settings, spec, ds)
        say(f"land {ds}: {landed['status']}, {landed['rows']} messages in {len(landed['files'])} file(s)")
        outcome = gate_landing(spark, settings, spec, ds, run_ge=run_ge)
        say(f"bronze {outcome.line()}")
        bronze.append(outcome.as_dict())
    silver = silver_mail(spark, settings)
    say(f"silver {silver['table']}: {silver['rows']} rows, v{silver['version']} "
        f"({'committed' if silver['committed'] else 'already done'})")  # fmt: skip
    model = submit_job(settings, TRAIN_STAGE, train_args(silver["version"]))
    results = read_results(settings, model["results_uri"])
    for line in model_lines(results):
        say(line)
    say(f"recommended on validation F1 (spam): {model['recommended']}")
    say(against_goal(results))
    report = report_beside_results(settings, model["results_uri"], WORDING, gate_totals(bronze))
    say(f"report {report}")
    say(f"mail chain done in {time.monotonic() - start:.0f} s")
    return {"drops": drops, "bronze": bronze, "silver": silver, "model": model, "report_uri": report}
