"""The training suite of a classifier on a tabular table (binary or multi-class): the
table's contract gives the key, the label (class indices) and the features by role
(``categorical``, ``numeric``); the suite trains

* ``majority``: the naive baseline, the most common class of the train split for every row;
* ``logreg``: multinomial logistic regression on one-hot categories and standardised
  numbers (C chosen on validation);
* ``mlp``: the tabular MLP (embeddings + fully connected layers, one logit per class),
  trained by the one DDP trainer.

Preprocessing (vocabularies, medians, scales) is fitted on the train split only.
Evaluation, the choice on validation and the comparisons are
:func:`moulin.training.classifiers.run_suite`'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from moulin.errors import DataError
from moulin.settings import Settings
from moulin.storage import WarehouseFS
from moulin.training.config import TrainConfig
from moulin.training.contract import FeatureContract

if TYPE_CHECKING:  # imported when training: scikit-learn and SciPy cost a second at import
    from moulin.training.classifiers import ClassifierSuite, ModelOutput

TabularModel = Literal["majority", "logreg", "mlp"]
TABULAR_MODELS: tuple[TabularModel, ...] = ("majority", "logreg", "mlp")


@dataclass(frozen=True)
class TabularSuite:
    """The suite of use case ``use_case`` on the table of ``contract``; call it with the
    settings to get the :class:`~moulin.training.classifiers.ClassifierSuite`."""

    use_case: str
    contract: str
    class_names: tuple[str, ...]
    #: The metric the recommended model is chosen by on validation; the positive-class
    #: metrics need ``positive_class``.
    select_by: Literal["accuracy", "macro_f1", "roc_auc", "pr_auc", "f1", "precision", "recall"] = "accuracy"
    #: A binary task's positive class (one of ``class_names``): its metrics are measured too.
    positive_class: str | None = None
    hidden: tuple[int, ...] = (64, 32)
    epochs: int = 20
    learning_rate: float = 3e-3
    batch_size: int = 256
    patience: int = 4
    logreg_c_grid: tuple[float, ...] = (0.1, 1.0, 10.0)
    bootstrap_resamples: int = 1000
    seed: int = 7

    def __call__(self, settings: Settings) -> ClassifierSuite:
        from moulin.training.classifiers import ClassifierSuite, NetworkSpec, Phase

        features = FeatureContract.load(self.contract)
        if features.label != "label":
            raise DataError(
                f"contract {self.contract}: the label column is {features.label!r}; the classifier suite reads "
                "class indices from a column named 'label' — rename it in the table step and the contract"
            )
        if self.positive_class is not None and self.positive_class not in self.class_names:
            raise DataError(
                f"use case {self.use_case}: positive_class {self.positive_class!r} is not one of the classes "
                f"{list(self.class_names)} — name one of them"
            )
        fitted: dict = {}

        def preprocessor(frames: dict):
            from moulin.training.preprocessing import Preprocessor

            if "pre" not in fitted:
                fitted["pre"] = Preprocessor.fit(frames["train"], features)
            return fitted["pre"]

        def networks(frames: dict) -> dict:
            from moulin.training.batches import TabularCodec

            pre = preprocessor(frames)
            codec = TabularCodec(pre, features.key, features.label, task="multiclass")
            spec = NetworkSpec(
                name="mlp",
                network="mlp_classes",
                family=f"MLP on the table's features (embeddings, layers {list(self.hidden)}; DDP)",
                model_config={
                    "num_classes": len(self.class_names),
                    "cardinalities": pre.cardinalities,
                    "n_numeric": pre.n_numeric,
                    "hidden": list(self.hidden),
                },
                phases=(Phase("train", self.epochs, self.learning_rate),),
                train=TrainConfig(batch_size=self.batch_size, patience=self.patience, seed=self.seed),
            )
            return {"mlp": (spec, codec)}

        return ClassifierSuite(
            use_case=self.use_case,
            contract=self.contract,
            key=features.key,
            columns=tuple(features.read_columns),
            class_names=self.class_names,
            baselines={
                "majority": _majority(settings, len(self.class_names)),
                "logreg": _logistic_regression(settings, preprocessor, self.logreg_c_grid),
            },
            networks=networks,
            network_names=("mlp",),
            select_by=self.select_by,
            positive_class=None
            if self.positive_class is None
            else self.class_names.index(self.positive_class),
            bootstrap_resamples=self.bootstrap_resamples,
            seed=self.seed,
        )


def _full_proba(model, x, n_classes: int) -> np.ndarray:
    """Probabilities over every class, also those absent from the train split."""
    proba = np.zeros((x.shape[0], n_classes))
    proba[:, model.classes_.astype(int)] = model.predict_proba(x)
    return proba


def _majority(settings: Settings, n_classes: int) -> Callable:
    """The naive baseline: the train split's most common class, for every row."""

    def fit(frames: dict, model_dir: str, record: dict) -> ModelOutput:
        from sklearn.dummy import DummyClassifier

        from moulin.training.artifacts import save_baseline
        from moulin.training.classifiers import baseline_output

        start = time.time()
        x = {s: np.zeros((len(f), 1)) for s, f in frames.items()}
        model = DummyClassifier(strategy="prior").fit(x["train"], frames["train"]["label"].to_numpy(np.int64))
        uri = f"{model_dir}/majority/model.skops"
        save_baseline(WarehouseFS(settings), uri, {"model": model, **record})
        out = baseline_output(
            "majority", "naive baseline: the most common class of the train split", model, x,
            time.time() - start, {"strategy": "prior"}, uri,
        )  # fmt: skip
        out.proba = {s: _full_proba(model, x[s], n_classes) for s in out.proba}
        return out

    return fit


def _logistic_regression(settings: Settings, preprocessor: Callable, c_grid: tuple[float, ...]) -> Callable:
    """Multinomial logistic regression on one-hot categories and standardised numbers."""

    def fit(frames: dict, model_dir: str, record: dict) -> ModelOutput:
        from scipy import sparse

        from moulin.training.artifacts import save_baseline
        from moulin.training.baselines import one_hot
        from moulin.training.classifiers import baseline_output, best_c_logistic_regression

        pre = preprocessor(frames)

        def design(frame):
            cat, num = pre.transform(frame)
            return sparse.hstack([one_hot(cat, pre.cardinalities), sparse.csr_matrix(num)]).tocsr()

        x = {s: design(f) for s, f in frames.items()}
        y = {s: f["label"].to_numpy(np.int64) for s, f in frames.items()}
        accuracy = lambda a, b: float(np.mean(a == b))  # noqa: E731
        model, c, tried, seconds = best_c_logistic_regression(x, y, c_grid, accuracy, max_iter=500)
        uri = f"{model_dir}/logreg/model.skops"
        save_baseline(
            WarehouseFS(settings), uri, {"model": model, "C": c, "preprocessor": pre.to_dict(), **record}
        )
        family = "logistic regression on one-hot categories and standardised numbers (C chosen on validation)"
        params = {"C": c, "validation_accuracy_by_C": tried, "max_iter": 500}
        return baseline_output("logreg", family, model, x, seconds, params, uri)

    return fit
