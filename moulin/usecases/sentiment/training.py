"""Training and comparing the sentiment classifiers on one pinned snapshot of
``silver/sentiment_posts``: TF-IDF + logistic regression (baseline), a word
embedding CNN from scratch, and all-MiniLM-L6-v2 fine-tuned with a classification
head (both networks DDP through the one trainer), evaluated on the stored test split.

Files under ``models/sentiment/<run id>/``: one folder per model and ``results.json``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from moulin.settings import Settings
from moulin.storage import WarehouseFS
from moulin.training.classifiers import (
    ClassifierSuite,
    ModelOutput,
    NetworkSpec,
    Phase,
    baseline_output,
    best_c_logistic_regression,
    run_suite,
)
from moulin.training.config import TrainConfig
from moulin.usecases.sentiment.params import CLASS_NAMES, PARAMS, SentimentParams

COLUMNS = ["post_id", "text", "label"]


def network_specs(params: SentimentParams = PARAMS) -> dict[str, NetworkSpec]:
    """The networks of the use case, from its parameters."""
    n = len(CLASS_NAMES)
    return {
        "text_cnn": NetworkSpec(
            name="text_cnn",
            network="text_cnn",
            family="word-embedding CNN from scratch (kernels 3/4/5, max-over-time; DDP via TorchDistributor)",
            model_config={"num_classes": n, "embedding_dim": 64, "filters": 64},
            phases=(Phase("train", params.cnn_epochs, params.cnn_learning_rate),),
            train=TrainConfig(
                batch_size=params.cnn_batch_size,
                patience=params.patience,
                seed=params.seed,
                eval_batch_size=512,
                weight_decay=1e-4,
            ),  # fmt: skip
        ),
        "minilm": NetworkSpec(
            name="minilm",
            network="minilm",
            family=f"all-MiniLM-L6-v2 fine-tuned (top {params.minilm_train_layers} layers + head; DDP)",
            model_config={"num_classes": n, "train_layers": params.minilm_train_layers},
            phases=(Phase("finetune", params.minilm_epochs, params.minilm_learning_rate),),
            train=TrainConfig(
                batch_size=params.minilm_batch_size,
                patience=params.patience,
                seed=params.seed,
                eval_batch_size=128,
                weight_decay=0.01,
            ),  # fmt: skip
            train_fraction=params.minilm_train_fraction,
        ),
    }


def _tfidf_logistic_regression(params: SentimentParams, settings) -> Callable:
    """TF-IDF (words and bigrams) + multinomial logistic regression; C chosen on validation macro-F1."""

    def fit(frames: dict, model_dir: str, record: dict) -> ModelOutput:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.metrics import f1_score

        from moulin.training.artifacts import save_baseline

        start = time.time()
        words = TfidfVectorizer(
            max_features=params.tfidf_max_features, ngram_range=(1, 2), sublinear_tf=True, min_df=2
        )
        x = {"train": words.fit_transform(frames["train"]["text"])}
        for s in ("validation", "test"):
            x[s] = words.transform(frames[s]["text"])
        y = {s: f["label"].to_numpy(np.int64) for s, f in frames.items()}
        macro_f1 = lambda a, b: f1_score(a, b, average="macro")  # noqa: E731
        model, c, tried, seconds = best_c_logistic_regression(
            x, y, params.logreg_c_grid, macro_f1, max_iter=1000
        )
        uri = f"{model_dir}/tfidf_logreg/model.skops"
        save_baseline(
            WarehouseFS(settings),
            uri,
            {"model": model, "vocabulary": sorted(words.vocabulary_), "C": c, **record},
        )
        family = "TF-IDF (words + bigrams) + logistic regression (scikit-learn, C chosen on validation)"
        params_out = {"C": c, "validation_macro_f1_by_C": tried, "max_features": params.tfidf_max_features}
        return baseline_output("tfidf_logreg", family, model, x, time.time() - start, params_out, uri)

    return fit


def suite(settings: Settings, params: SentimentParams = PARAMS) -> ClassifierSuite:
    """The text classifiers of the use case and what its report needs of them."""
    from moulin.training.text import TextCodec

    specs = network_specs(params)

    def networks(frames: dict) -> dict:
        vocab = TextCodec.fit_vocab(
            frames["train"]["text"], min_count=params.vocab_min_count, max_size=params.vocab_size
        )
        words = TextCodec(
            key="post_id", label="label", tokenizer="words", max_length=params.cnn_max_length, vocab=vocab
        )
        pieces = TextCodec(
            key="post_id", label="label", tokenizer="minilm", max_length=params.minilm_max_length
        )
        cnn = replace(
            specs["text_cnn"], model_config={**specs["text_cnn"].model_config, "vocab_size": len(vocab)}
        )
        return {"text_cnn": (cnn, words), "minilm": (specs["minilm"], pieces)}

    def describe(worst: list[dict], test) -> None:
        for w in worst:
            w["text"] = str(test["text"].iloc[w["row"]])

    def extra(frames: dict) -> dict:
        ids = {s: set(f["post_id"]) for s, f in frames.items()}
        labels = frames["train"].groupby("post_id")["label"].nunique()
        return {
            "duplicates": {
                "train_and_test": len((ids["train"] | ids["validation"]) & ids["test"]),
                "train_and_validation": len(ids["train"] & ids["validation"]),
                "conflicting_labels": int((labels > 1).sum()),
            }
        }

    return ClassifierSuite(
        use_case="sentiment",
        contract="silver_sentiment",
        key="post_id",
        columns=tuple(COLUMNS),
        class_names=CLASS_NAMES,
        baselines={"tfidf_logreg": _tfidf_logistic_regression(params, settings)},
        networks=networks,
        network_names=tuple(specs),
        select_by=params.select_by,
        bootstrap_resamples=params.bootstrap_resamples,
        seed=params.seed,
        describe_examples=describe,
        extra_results=extra,
    )


def train_sentiment(
    spark, settings: Settings, params: SentimentParams = PARAMS, **options: Any
) -> dict[str, Any]:
    """Train and compare the use case's models (``options``: those of
    :func:`~moulin.training.classifiers.run_suite`; ``models`` defaults to the params')."""
    models = options.pop("models", params.models)
    return run_suite(spark, settings, suite(settings, params), models, **options)
