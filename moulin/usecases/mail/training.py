"""The spam filters of the mail use case, trained and compared through the classifier
suite (:mod:`moulin.training.classifiers`) on one pinned version of the pseudonymised
``silver/mail_messages``:

* ``text``: TF-IDF of the subject and body + logistic regression (C chosen on validation);
* ``text_sender``: the same beside a block of the sender's pseudonym and the number of
  recipients (the block's weight and C chosen on validation).

Spam is the positive class: its F1, precision, recall, ROC AUC and PR AUC are measured
with bootstrap intervals, and the recommended filter is the best on validation F1.  The
table is partitioned by date (for retention), its rows carry their split and their label
by name.  The fitted filters are not written: their vocabularies hold words of people's
mail and senders' pseudonyms, which an erasure would have to reach; the results are
``models/mail/<run id>/results.json``, without message text or sender.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from moulin.settings import Settings
from moulin.training.classifiers import ClassifierSuite, ModelOutput, run_suite
from moulin.usecases.mail.params import CLASS_NAMES, PARAMS, POSITIVE_CLASS, MailParams

COLUMNS = ("message_id", "from_address", "n_recipients", "subject", "body", "label")
TEXT_FAMILY = "TF-IDF of the subject and body + logistic regression (scikit-learn, C chosen on validation)"
SENDER_FAMILY = (
    "TF-IDF of the subject and body beside the sender's pseudonym and recipient count + logistic "
    "regression (scikit-learn, the block's weight and C chosen on validation)"
)


def message_text(frame) -> list[str]:
    """The subject and body of each message, as one text."""
    return (frame["subject"].fillna("") + " \n " + frame["body"].fillna("")).tolist()


def sender_tokens(frame) -> list[str]:
    """The sender's pseudonym and the number of recipients of each message, as two tokens."""
    return [
        f"sender_{s} nrcpt_{n}"
        for s, n in zip(frame["from_address"].fillna("none"), frame["n_recipients"], strict=True)
    ]


def _words(frames: dict, params: MailParams) -> dict:
    """TF-IDF of the messages' text, fitted on the train split."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    words = TfidfVectorizer(max_features=params.max_features, sublinear_tf=True, min_df=2)
    x = {"train": words.fit_transform(message_text(frames["train"]))}
    for s in ("validation", "test"):
        x[s] = words.transform(message_text(frames[s]))
    return x


def _labels(frames: dict) -> dict:
    return {s: f["label"].to_numpy(np.int64) for s, f in frames.items()}


def _spam_f1(y, predicted) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, predicted, pos_label=CLASS_NAMES.index(POSITIVE_CLASS), zero_division=0))


def _text_filter(params: MailParams) -> Callable:
    """TF-IDF of the text + logistic regression; C chosen on validation F1 (spam)."""

    def fit(frames: dict, model_dir: str, record: dict) -> ModelOutput:
        from moulin.training.classifiers import baseline_output, best_c_logistic_regression

        start = time.time()
        x = _words(frames, params)
        model, c, tried, _ = best_c_logistic_regression(x, _labels(frames), params.c_grid, _spam_f1, 2000)
        out = {"C": c, "validation_f1_by_C": tried, "max_features": params.max_features}
        return baseline_output("text", TEXT_FAMILY, model, x, time.time() - start, out, "")

    return fit


def _text_sender_filter(params: MailParams) -> Callable:
    """The text beside the sender block (pseudonym, recipient count); the block's weight
    and C chosen on validation F1 (spam)."""

    def fit(frames: dict, model_dir: str, record: dict) -> ModelOutput:
        from scipy.sparse import hstack
        from sklearn.feature_extraction.text import TfidfVectorizer

        from moulin.training.classifiers import baseline_output, best_c_logistic_regression

        start = time.time()
        text = _words(frames, params)
        senders = TfidfVectorizer(token_pattern=r"\S+", lowercase=False)
        who = {"train": senders.fit_transform(sender_tokens(frames["train"]))}
        for s in ("validation", "test"):
            who[s] = senders.transform(sender_tokens(frames[s]))
        y = _labels(frames)
        best: tuple[float, float, Any, float, dict] | None = None
        tried: dict[str, dict[str, float]] = {}
        for weight in params.sender_weights:
            x = {s: hstack([text[s], weight * who[s]]).tocsr() for s in text}
            model, c, scores, _ = best_c_logistic_regression(x, y, params.c_grid, _spam_f1, 2000)
            tried[str(weight)] = scores
            if best is None or scores[str(c)] > best[0]:
                best = (scores[str(c)], weight, model, c, x)
        if best is None:
            raise ValueError("the sender weights of the mail use case are empty: name at least one")
        _, weight, model, c, x = best
        out = {"C": c, "sender_weight": weight, "validation_f1_by_weight_and_C": tried}
        return baseline_output("text_sender", SENDER_FAMILY, model, x, time.time() - start, out, "")

    return fit


def _duplicates(frames: dict) -> dict[str, int]:
    """Copies of a message (same subject and body) across splits and with both labels."""
    content = {
        s: set(zip(f["subject"].fillna(""), f["body"].fillna(""), strict=True)) for s, f in frames.items()
    }
    train = frames["train"]
    labels = train.groupby([train["subject"].fillna(""), train["body"].fillna("")])["label"].nunique()
    return {
        "train_and_test": len((content["train"] | content["validation"]) & content["test"]),
        "train_and_validation": len(content["train"] & content["validation"]),
        "conflicting_labels": int((labels > 1).sum()),
    }


def show_ids_only(worst: list[dict], test) -> None:
    """What the report shows of a misclassified message: its pseudonymised id, never its
    subject, body or sender."""
    for w in worst:
        w["text"] = f"message id {w['key']}"


def suite(settings: Settings | None = None, params: MailParams = PARAMS) -> ClassifierSuite:
    """The spam filters of the use case and what their report needs of them (no text nor
    sender of a message: the worst examples show the message's pseudonymised id only)."""
    return ClassifierSuite(
        use_case="mail",
        contract="silver_mail",
        key="message_id",
        columns=COLUMNS,
        class_names=CLASS_NAMES,
        baselines={"text": _text_filter(params), "text_sender": _text_sender_filter(params)},
        networks=lambda frames: {},
        network_names=(),
        select_by=params.select_by,
        bootstrap_resamples=params.bootstrap_resamples,
        seed=params.seed,
        positive_class=CLASS_NAMES.index(POSITIVE_CLASS),
        describe_examples=show_ids_only,
        extra_results=lambda frames: {"duplicates": _duplicates(frames)},
        splits="column",
        labels="name",
    )


def train_mail(spark, settings: Settings, params: MailParams = PARAMS, **options: Any) -> dict[str, Any]:
    """Train and compare the spam filters (``options``: those of
    :func:`~moulin.training.classifiers.run_suite`; ``models`` defaults to the params')."""
    models = options.pop("models", params.models)
    return run_suite(spark, settings, suite(settings, params), models, **options)
