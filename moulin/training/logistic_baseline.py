"""A use case's logistic-regression baseline (:class:`LogisticBaseline`): the use case
turns its frames into features (pixels, TF-IDF, ...); choosing C on validation among
multinomial logistic regressions fitted on train, writing the model as a skops file
under the run and describing it for the results is the same for every use case."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from moulin.settings import Settings
from moulin.storage import WarehouseFS
from moulin.training.classifiers import (
    Baseline,
    Frames,
    ModelOutput,
    baseline_output,
    best_c_logistic_regression,
)

#: The validation score that chooses C: accuracy, or the macro-F1 (every class weighs
#: the same, for unbalanced classes).
ValidationScore = Literal["accuracy", "macro_f1"]


def _accuracy(y: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean(y == predicted))


def _macro_f1(y: np.ndarray, predicted: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, predicted, average="macro"))


_SCORES: dict[ValidationScore, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": _accuracy,
    "macro_f1": _macro_f1,
}


@dataclass(frozen=True)
class Features:
    """What a baseline fits on: the feature matrix of each split (train, validation,
    test), and what the model file keeps to make them again (a vocabulary, a codec)."""

    x: Mapping[str, Any]
    saved: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LogisticBaseline:
    """A logistic-regression baseline: its model name (and folder under the run), its
    family as the report names it, how rows become ``features``, the C grid tried, the
    validation score that chooses C (reported as ``validation_<score>_by_C``), the
    solver's iterations, and the other parameters the results report of it."""

    name: str
    family: str
    features: Callable[[Frames], Features]
    c_grid: tuple[float, ...]
    score: ValidationScore
    max_iter: int
    reported: Mapping[str, Any] = field(default_factory=dict)

    def fitter(self, settings: Settings) -> Baseline:
        """The suite's baseline (:class:`~moulin.training.classifiers.ClassifierSuite`):
        frames, model folder and record in; the model fitted on train, C chosen on
        validation, ``<model folder>/<name>/model.skops`` written, its output out (its
        training time counts making the features)."""

        def fit(frames: Frames, model_dir: str, record: dict) -> ModelOutput:
            from moulin.training.artifacts import save_baseline

            start = time.time()
            made = self.features(frames)
            y = {s: f["label"].to_numpy(np.int64) for s, f in frames.items()}
            model, c, tried, _ = best_c_logistic_regression(
                made.x, y, self.c_grid, _SCORES[self.score], max_iter=self.max_iter
            )
            seconds = time.time() - start
            uri = f"{model_dir}/{self.name}/model.skops"
            save_baseline(WarehouseFS(settings), uri, {"model": model, "C": c, **made.saved, **record})
            described = {"C": c, f"validation_{self.score}_by_C": tried, **self.reported}
            return baseline_output(self.name, self.family, model, made.x, seconds, described, uri)

        return fit
