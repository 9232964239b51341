"""Parameters of the mail use case: one place for its defaults."""

from __future__ import annotations

from dataclasses import dataclass

#: The classes in index order; spam, the positive class, is index 1.
CLASS_NAMES: tuple[str, ...] = ("ham", "spam")
POSITIVE_CLASS = "spam"


@dataclass(frozen=True)
class MailParams:
    """Defaults of the mail use case (CLI options and the DAG derive from them)."""

    #: Seed of the stored train / validation / test split (by message).
    split_seed: int = 13
    #: Shares of train and validation (the rest is test).
    train_share: float = 0.7
    validation_share: float = 0.15
    #: Inverse regularisation strengths tried for the spam filter; chosen on validation.
    c_grid: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0)
    #: Weights of the sender block (pseudonym + recipient count) beside the text; chosen on validation.
    sender_weights: tuple[float, ...] = (0.1, 0.3, 1.0)
    #: Vocabulary size of the TF-IDF features.
    max_features: int = 50_000
    #: The spam filters trained and compared (:mod:`moulin.usecases.mail.training`).
    models: tuple[str, ...] = ("text", "text_sender")
    #: The recommended filter is the best on validation by this metric (spam's F1: spam is the minority).
    select_by: str = "f1"
    #: Resamples of the bootstrap intervals and paired tests, and their seed.
    bootstrap_resamples: int = 1000
    seed: int = 17


PARAMS = MailParams()
