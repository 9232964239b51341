"""Parameters of the text use case: one place for its defaults."""

from __future__ import annotations

from dataclasses import dataclass

CLASS_NAMES: tuple[str, ...] = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class SentimentParams:
    """Defaults of the text use case (CLI options and the DAG derive from them)."""

    #: The corpus file's date: the drop's ``ds``.
    drop: str = "2016-08-04"
    #: Seed of the stored split, and the shares of train and validation (the rest is test).
    split_seed: int = 23
    train_share: float = 0.7
    validation_share: float = 0.15
    #: TF-IDF + logistic regression: vocabulary size and the C grid (chosen on validation).
    tfidf_max_features: int = 50_000
    logreg_c_grid: tuple[float, ...] = (0.3, 1.0, 3.0)
    #: Network from scratch: word embeddings + convolutions.
    cnn_epochs: int = 6
    cnn_batch_size: int = 64
    cnn_learning_rate: float = 2e-3
    cnn_max_length: int = 64
    vocab_min_count: int = 2
    vocab_size: int = 20_000
    #: all-MiniLM-L6-v2 fine-tuned: epochs, top layers trained, share of the train split.
    minilm_epochs: int = 2
    minilm_batch_size: int = 32
    minilm_learning_rate: float = 5e-5
    minilm_train_layers: int = 2
    minilm_max_length: int = 64
    minilm_train_fraction: float | None = None
    patience: int = 2
    bootstrap_resamples: int = 1000
    seed: int = 11
    models: tuple[str, ...] = ("tfidf_logreg", "text_cnn", "minilm")
    num_processes: int = 2
    #: The recommended model is the best on validation by this metric (classes are unbalanced).
    select_by: str = "macro_f1"


PARAMS = SentimentParams()
