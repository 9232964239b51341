"""Training and comparing the sentiment classifiers on one pinned snapshot of
``silver/sentiment_posts``: TF-IDF + logistic regression (baseline), a word
embedding CNN from scratch, and all-MiniLM-L6-v2 fine-tuned with a classification
head (both networks DDP through the one trainer), evaluated on the stored test split.

Files under ``models/sentiment/<run id>/``: one folder per model and ``results.json``.
"""

from __future__ import annotations

from dataclasses import replace

from moulin.settings import Settings
from moulin.training.classifiers import ClassifierSuite, Frames, NetworkSpec, Phase
from moulin.training.config import TrainConfig
from moulin.training.logistic_baseline import Features, LogisticBaseline
from moulin.training.split_copies import copies_across_splits
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


def _tfidf_logistic_regression(params: SentimentParams) -> LogisticBaseline:
    """TF-IDF (words and bigrams) + multinomial logistic regression; C chosen on validation macro-F1."""

    def tfidf(frames: Frames) -> Features:
        from sklearn.feature_extraction.text import TfidfVectorizer

        words = TfidfVectorizer(
            max_features=params.tfidf_max_features, ngram_range=(1, 2), sublinear_tf=True, min_df=2
        )
        x = {"train": words.fit_transform(frames["train"]["text"])}
        for s in ("validation", "test"):
            x[s] = words.transform(frames[s]["text"])
        return Features(x, saved={"vocabulary": sorted(words.vocabulary_)})

    return LogisticBaseline(
        name="tfidf_logreg",
        family="TF-IDF (words + bigrams) + logistic regression (scikit-learn, C chosen on validation)",
        features=tfidf,
        c_grid=params.logreg_c_grid,
        score="macro_f1",
        max_iter=1000,
        reported={"max_features": params.tfidf_max_features},
    )


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
        labels = frames["train"].groupby("post_id")["label"].nunique()
        copies = copies_across_splits({s: f["post_id"] for s, f in frames.items()})
        return {"duplicates": {**copies, "conflicting_labels": int((labels > 1).sum())}}

    return ClassifierSuite(
        use_case="sentiment",
        contract="silver_sentiment",
        key="post_id",
        columns=tuple(COLUMNS),
        class_names=CLASS_NAMES,
        baselines={"tfidf_logreg": _tfidf_logistic_regression(params).fitter(settings)},
        networks=networks,
        network_names=tuple(specs),
        select_by=params.select_by,
        bootstrap_resamples=params.bootstrap_resamples,
        seed=params.seed,
        describe_examples=describe,
        extra_results=extra,
    )
