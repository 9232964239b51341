"""The sentiment classification report: which model to use for telling whether a
short post is negative, neutral or positive, in words for decision-makers.

This module holds the use case's wording only; the question, approach, hardware
and limits come from its framing (``moulin/usecases/sentiment/framing.yaml``,
:data:`FRAMING`), and the page is rendered from :data:`WORDING` by
:mod:`moulin.reporting.classification`.  Its input is the run's
``results.json`` (the ``moulin.classification-results/1`` format; its worst
test examples carry the post's ``text``), and optionally the bronze gate's row
accounting.
"""

from __future__ import annotations

from moulin.framing import load_usecase_framing
from moulin.usecases.kit import ReportText

#: The use case's framing: the report's question, approach, hardware and limits.
FRAMING = load_usecase_framing("sentiment")

#: What the report says that is neither framing nor results.
REPORT = ReportText(
    subtitle="Sentiment classification of short English posts (3 classes)",
    intro="Several models were trained on the same labelled posts to answer it, and one is recommended.",
    item="post",
    items="posts",
    data_description=(
        "Short English posts about self-driving cars and other topics. Annotators labelled each post "
        "negative, neutral or positive and stated how confident they were."
    ),
    split=(
        "The posts are divided into training, validation and test by a seeded hash of their text, so copies "
        "of a post always share a split. The recommended model is the one with the best macro-F1 on the "
        "validation posts, which weighs every class the same however common it is."
    ),
    copy_means="same text",
    quality_rules="empty text, unknown label, unreadable",
    worst_title="The model's most confident mistakes",
    worst_intro=(
        "Test posts that {model} got wrong while being most sure of its answer. Some are genuinely ambiguous "
        "(irony, mixed feelings, a label the annotators were unsure of); others show where more or better "
        "labelled posts would help."
    ),
    published=None,  # no published results to compare with
)
WORDING = REPORT.wording(FRAMING)
