"""Feature preprocessing fitted on the TRAIN split only, persisted with the model.

* categorical: vocabulary of the train values (most frequent first, capped);
  index 0 is the unknown bucket (unseen values, rare values, nulls);
* numeric: median imputation, standardisation (train mean/std after imputation),
  and a 0/1 missing indicator per column that the contract declares nullable.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from moulin.training import TrainingError
from moulin.training.contract import FeatureContract

FORMAT = "moulin.preprocessor/1"


@dataclass
class Preprocessor:
    categorical: list[str]
    numeric: list[str]
    indicators: list[str]
    vocab: dict[str, list[str]] = field(default_factory=dict)
    medians: dict[str, float] = field(default_factory=dict)
    means: dict[str, float] = field(default_factory=dict)
    stds: dict[str, float] = field(default_factory=dict)
    fitted_rows: int = 0

    # -- fitting
    @classmethod
    def fit(
        cls,
        train: pd.DataFrame,
        contract: FeatureContract,
        max_vocab: int = 1000,
        min_count: int = 1,
    ) -> Preprocessor:
        if len(train) == 0:
            raise TrainingError("cannot fit preprocessing on an empty train split")
        pre = cls(
            categorical=list(contract.categorical),
            numeric=list(contract.numeric),
            indicators=[c for c in contract.numeric if c in contract.nullable],
            fitted_rows=int(len(train)),
        )
        for col in pre.categorical:
            counts = train[col].dropna().astype(str).value_counts()
            counts = counts[counts >= min_count]
            # Most frequent first, ties by value: deterministic.
            ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_vocab]
            pre.vocab[col] = [value for value, _ in ordered]
        for col in pre.numeric:
            values = pd.to_numeric(train[col], errors="coerce").to_numpy(dtype="float64")
            present = values[~np.isnan(values)]
            median = float(np.median(present)) if len(present) else 0.0
            imputed = np.where(np.isnan(values), median, values)
            std = float(imputed.std())
            pre.medians[col] = median
            pre.means[col] = float(imputed.mean())
            pre.stds[col] = std if std > 1e-12 and math.isfinite(std) else 1.0
        return pre

    # -- shapes
    @property
    def cardinalities(self) -> list[int]:
        """Embedding table sizes: vocabulary + the unknown bucket (index 0)."""
        return [len(self.vocab[c]) + 1 for c in self.categorical]

    @property
    def n_numeric(self) -> int:
        return len(self.numeric) + len(self.indicators)

    @property
    def numeric_names(self) -> list[str]:
        return [*self.numeric, *[f"{c}__missing" for c in self.indicators]]

    # -- transforming
    def encode_categorical(self, frame: pd.DataFrame) -> np.ndarray:
        """int64 [n, n_categorical]; 0 = unknown."""
        out = np.zeros((len(frame), len(self.categorical)), dtype=np.int64)
        for j, col in enumerate(self.categorical):
            values = frame[col].astype(object).where(frame[col].notna(), None)
            values = values.map(lambda v: None if v is None else str(v))
            codes = pd.Categorical(values, categories=self.vocab[col]).codes
            out[:, j] = codes.astype(np.int64) + 1
        return out

    def encode_numeric(self, frame: pd.DataFrame) -> np.ndarray:
        """float32 [n, n_numeric]: standardised values, then missing indicators."""
        out = np.zeros((len(frame), self.n_numeric), dtype=np.float32)
        missing = {}
        for j, col in enumerate(self.numeric):
            values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype="float64")
            miss = np.isnan(values)
            missing[col] = miss
            values = np.where(miss, self.medians[col], values)
            out[:, j] = (values - self.means[col]) / self.stds[col]
        for k, col in enumerate(self.indicators):
            out[:, len(self.numeric) + k] = missing[col].astype(np.float32)
        return out

    def transform(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return self.encode_categorical(frame), self.encode_numeric(frame)

    # -- persistence (plain JSON types)
    def to_dict(self) -> dict:
        return {"format": FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessor:
        data = dict(data)
        fmt = data.pop("format", FORMAT)
        if fmt != FORMAT:
            raise TrainingError(f"unsupported preprocessor format {fmt!r} (expected {FORMAT})")
        return cls(**data)
