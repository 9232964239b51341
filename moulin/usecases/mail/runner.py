"""The mail chain from the shell: drops -> raw landings -> bronze (pseudonymised) ->
silver -> spam filter, with a line per step."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from moulin.framing import Framing, load_usecase_framing
from moulin.reporting.framing import goal_sentence, naive_score
from moulin.settings import Settings
from moulin.usecases.mail.corpus import DROPS, prepare_drops

#: The framing's metric names -> the test metrics of ``train_spam_filter``'s results.
TEST_METRICS = {"f1": "test_f1_spam", "accuracy": "test_accuracy", "roc_auc": "test_roc_auc"}


def against_goal(model: dict[str, Any], framing: Framing | None = None) -> str:
    """The recommended spam filter's test result set against the threshold of the use
    case's framing (``moulin/usecases/mail/framing.yaml``), in one sentence."""
    framing = framing or load_usecase_framing("mail")
    chosen = model["models"][model["recommended"]]
    value = chosen.get(TEST_METRICS.get(framing.metric.name, ""))
    baseline = naive_score(framing.metric, positive_share=model.get("spam_share_test"))
    return goal_sentence(framing.metric, value, baseline=baseline, who=f"The {model['recommended']} filter")


def run_mail(
    spark,
    settings: Settings,
    limit: int | None = None,
    say: Callable[[str], None] = print,
    run_ge: bool = True,
) -> dict[str, Any]:
    """Run the whole mail chain (``limit`` messages per corpus group: a sample)."""
    from moulin.sources.bronze import gate_landing
    from moulin.sources.land import land_source
    from moulin.sources.spec import load_spec
    from moulin.usecases.mail.stages import silver_mail, train_spam_filter

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
    model = train_spam_filter(settings)
    for name, m in model["models"].items():
        say(f"spam filter [{name}]: C={m['C']} {m.get('sender_weight', '')} (validation F1 {m['validation_f1']}), test accuracy "
            f"{m['test_accuracy']}, F1 {m['test_f1_spam']}, ROC-AUC {m['test_roc_auc']}")  # fmt: skip
    say(f"recommended on validation: {model['recommended']}")
    say(against_goal(model))
    say(f"mail chain done in {time.monotonic() - start:.0f} s")
    return {"drops": drops, "bronze": bronze, "silver": silver, "model": model}
