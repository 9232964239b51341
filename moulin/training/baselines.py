"""Other model families on the same split and the same fitted preprocessing.

* logistic regression: one-hot vocabulary codes (unknown bucket included) +
  standardised numerics + missing indicators;
* gradient-boosted trees (``HistGradientBoostingClassifier``): vocabulary codes as
  native categorical features (ordinal codes when a vocabulary exceeds the
  255 categories HGB supports) + the same numeric block.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from moulin.training.preprocessing import Preprocessor

HGB_MAX_CATEGORIES = 255


def one_hot(codes: np.ndarray, cardinalities: list[int]) -> sparse.csr_matrix:
    """Sparse one-hot of [n, k] vocabulary codes (code 0 = unknown gets a column too)."""
    n = codes.shape[0]
    offsets = np.cumsum([0, *cardinalities[:-1]])
    cols = (codes + offsets).ravel()
    rows = np.repeat(np.arange(n), codes.shape[1])
    data = np.ones(len(cols), dtype=np.float32)
    return sparse.csr_matrix((data, (rows, cols)), shape=(n, int(sum(cardinalities))))


class LogisticBaseline:
    name = "logreg"

    def __init__(
        self, pre: Preprocessor, C: float = 1.0, balance: bool = True, max_iter: int = 1000, seed: int = 0
    ):
        self.pre = pre
        self.params = {
            "C": C,
            "class_weight": "balanced" if balance else None,
            "max_iter": max_iter,
            "solver": "lbfgs",
        }
        self.model = LogisticRegression(random_state=seed, **self.params)

    def features(self, cat: np.ndarray, num: np.ndarray):
        return sparse.hstack([one_hot(cat, self.pre.cardinalities), sparse.csr_matrix(num)], format="csr")

    def fit(self, cat, num, y) -> LogisticBaseline:
        self.model.fit(self.features(cat, num), y)
        return self

    def predict_proba(self, cat, num) -> np.ndarray:
        return self.model.predict_proba(self.features(cat, num))[:, 1]


class BoostedTreesBaseline:
    name = "hist_gbt"

    def __init__(
        self,
        pre: Preprocessor,
        max_iter: int = 200,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        balance: bool = True,
        seed: int = 0,
    ):
        self.pre = pre
        self.categorical_mask = [card <= HGB_MAX_CATEGORIES for card in pre.cardinalities] + [
            False
        ] * pre.n_numeric
        self.params = {
            "max_iter": max_iter,
            "learning_rate": learning_rate,
            "max_leaf_nodes": max_leaf_nodes,
            "class_weight": "balanced" if balance else None,
            "early_stopping": True,
            "validation_fraction": 0.1,
            "n_iter_no_change": 10,
        }
        self.model = HistGradientBoostingClassifier(
            categorical_features=np.array(self.categorical_mask), random_state=seed, **self.params
        )

    @staticmethod
    def features(cat: np.ndarray, num: np.ndarray) -> np.ndarray:
        return np.hstack([cat.astype(np.float64), num.astype(np.float64)])

    def fit(self, cat, num, y) -> BoostedTreesBaseline:
        self.model.fit(self.features(cat, num), y)
        return self

    def predict_proba(self, cat, num) -> np.ndarray:
        return self.model.predict_proba(self.features(cat, num))[:, 1]
