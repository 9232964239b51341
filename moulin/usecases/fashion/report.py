"""The image classification report: which model to use for sorting catalogue
photos, in words for decision-makers.

This module holds the use case's wording only; the question, approach, hardware
and limits come from its framing (``moulin/usecases/fashion/framing.yaml``,
:data:`FRAMING`), and the page is rendered from :data:`WORDING` by
:mod:`moulin.reporting.classification`.  Its input is the ``results.json``
written by the training of :func:`moulin.usecases.fashion.training.suite`, and
optionally the bronze gate's row accounting.
"""

from __future__ import annotations

from moulin.framing import load_usecase_framing
from moulin.reporting.classification import PublishedWording
from moulin.usecases.kit import ReportText

#: The use case's framing: the report's question, approach, hardware and limits.
FRAMING = load_usecase_framing("fashion")

#: What the report says that is neither framing nor results.
REPORT = ReportText(
    subtitle="Image classification of product photos (Fashion-MNIST, 10 clothing classes)",
    intro="Several models were trained on the same photos to answer it, and one is recommended.",
    item="image",
    items="images",
    items_prose="photos",
    data_description="Small grey photos (28 by 28 pixels) of clothing and shoes, each labelled with its class.",
    split=(
        "The dataset's official test set is kept whole as the test split. The official training set is divided "
        "into training and validation by a seeded hash of the pixels, so copies of a photo always share a split."
    ),
    test_split_use="the official test set, used only to measure the chosen model",
    copy_means="same pixels",
    quality_rules="wrong size, unknown label, unreadable",
    worst_title="The model's most confident mistakes",
    worst_intro=(
        "Test photos that {model} got wrong while being most sure of its answer. Some are genuinely "
        "ambiguous (a shirt that looks like a top); others show where more or better training images would help."
    ),
    published=PublishedWording(
        title="Published results beside moulin's",
        caveat=(
            "The dataset's authors list test accuracies submitted by others (their README's benchmark table); "
            "they did not reproduce them, and the methods differ (preprocessing, training time, extra data). "
            "Read them as a rough yardstick. moulin's models (highlighted) are measured on the same official "
            "test set."
        ),
        source_note="published, not verified by the dataset's authors",
        described_as=(
            "results published with the dataset (submitted by other researchers, not verified by the "
            "dataset's authors)"
        ),
    ),
)
WORDING = REPORT.wording(FRAMING)
