"""The spam filter's report: which filter to use for keeping spam out of the mailboxes,
in words for decision-makers.

This module holds the use case's wording only; the question, approach, hardware and
limits come from its framing (``moulin/usecases/mail/framing.yaml``), and the page is
rendered by :mod:`moulin.reporting.classification` from the run's ``results.json``
(``moulin.classification-results/1``).  The mail is personal data: the worst test
examples carry no subject, body nor sender, only the message's pseudonymised id, for
an authorised analyst to look up.
"""

from __future__ import annotations

from moulin.framing import load_usecase_framing
from moulin.usecases.kit import ReportText

#: The use case's framing: the report's question, approach, hardware and limits.
FRAMING = load_usecase_framing("mail")

#: What the report says that is neither framing nor results.
REPORT = ReportText(
    subtitle="Spam filtering of the mail gateway's messages (SpamAssassin public corpus, pseudonymised)",
    intro="Two spam filters were trained on the same pseudonymised messages to answer it, and one is recommended.",
    item="message",
    items="messages",
    data_description=(
        "E-mail messages received by the gateway, labelled spam when they were found in the spam mailbox and "
        "ham when delivered. Addresses, names and relay IPs were pseudonymised or dropped before training, "
        "and addresses in subjects and bodies masked."
    ),
    split=(
        "The messages are divided into training, validation and test by a seeded hash of their subject and "
        "body, so copies of a message always share a split. The recommended filter is the one with the best "
        "F1 for spam on the validation messages: spam is the minority, and both a missed spam and a "
        "legitimate message filed as spam cost."
    ),
    copy_means="same subject and body",
    quality_rules="unparseable date, unknown mailbox, unreadable message",
    worst_title="The filter's most confident mistakes",
    worst_intro=(
        "The test messages that {model} got wrong while being most sure of its answer. Their subject, text "
        "and sender are not shown: mail is personal data. Each card shows the message's pseudonymised id in "
        "silver/mail_messages, for an authorised analyst to look the message up."
    ),
    published=None,  # no published results to compare with
)
WORDING = REPORT.wording(FRAMING)
