"""The e-mail use case declared once (:mod:`moulin.usecases.kit`): the ``mail`` source's
bronze messages (pseudonymised at the gate) -> ``silver_mail`` (labelled by mailbox, split
by a hash of the content, display names and relay IPs dropped) -> two spam filters
compared on a pinned snapshot in the training environment -> the report; the analysts'
views rebuilt once silver is written.  The kit makes of it the stages ``mail_silver`` and
``mail_train``, the DAG ``mail_spam_filter`` (tasks ``silver``, ``train``, ``report``,
``views``), and ``moulin mail prepare|run``."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from moulin.settings import Settings
from moulin.usecases.kit import FollowOnTask, TableStep, UseCase
from moulin.usecases.mail.corpus import DROPS, prepare_drops
from moulin.usecases.mail.params import PARAMS
from moulin.usecases.mail.report import REPORT
from moulin.usecases.mail.stages import check_mailbox_names, to_silver
from moulin.usecases.mail.summary import results_lines

if TYPE_CHECKING:
    from moulin.training.classifiers import ClassifierSuite


def _suite(settings: Settings) -> ClassifierSuite:
    from moulin.usecases.mail.training import suite

    return suite(settings)


def _prepare(settings: Settings, limit: int | None) -> str:
    return "; ".join(
        f"{ds} " + ", ".join(f"{box}.mbox {n:,} messages" for box, n in counts.items())
        for ds, counts in prepare_drops(settings, limit).items()
    )


USECASE = UseCase(
    name="mail",
    dag_id="mail_spam_filter",
    description="the e-mail use case: a spam filter over mailboxes holding personal data",
    sources=("mail",),
    steps=(
        TableStep(
            "silver",
            source="bronze_mail",
            target="silver_mail",
            transform=to_silver,
            rows_called="messages",
            count_by=("label", "split"),
            parameters=(PARAMS.split_seed,),
            check=check_mailbox_names,
        ),
    ),
    suite=_suite,
    models=PARAMS.models,
    report=REPORT,
    start_date=datetime(2002, 10, 10),
    drop_dates=tuple(DROPS),
    prepare=_prepare,
    limit_unit="messages per corpus group",
    tags=("personal-data",),
    follow_on=(FollowOnTask("views", stage="privacy_views"),),
    results_lines=results_lines,
)
