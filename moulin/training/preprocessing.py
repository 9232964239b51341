"""Feature preprocessing fitted on the TRAIN split only, persisted with the model.

* categorical: vocabulary of the train values (most frequent first, capped);
  index 0 is the unknown bucket (unseen values, rare values, nulls);
* numeric: median imputation, standardisation (train mean/std after imputation),
  and a 0/1 missing indicator per column that the contract declares nullable.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import cached_property

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
    @cached_property
    def _lookups(self) -> dict[str, pd.Index]:
        """Per categorical column, its vocabulary as a hash index (value -> position)."""
        return {col: pd.Index(self.vocab[col], dtype=object) for col in self.categorical}

    def encode_categorical(self, frame: pd.DataFrame) -> np.ndarray:
        """int64 [n, n_categorical]; 0 = unknown (vectorised: one hash lookup per column)."""
        out = np.zeros((len(frame), len(self.categorical)), dtype=np.int64)
        for j, col in enumerate(self.categorical):
            values = frame[col]
            codes = self._lookups[col].get_indexer(values.astype(str).to_numpy(dtype=object))
            codes[values.isna().to_numpy()] = -1
            out[:, j] = codes + 1
        return out

    def encode_numeric(self, frame: pd.DataFrame) -> np.ndarray:
        """float32 [n, n_numeric]: standardised values, then missing indicators."""
        columns = {
            col: pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype="float64") for col in self.numeric
        }
        return self._scale(columns, len(frame))

    def _scale(self, columns: dict[str, np.ndarray], n: int) -> np.ndarray:
        """Impute, standardise and flag missing values of all numeric columns at once
        (one pass over an ``(n, k)`` array rather than a strided write per column)."""
        out = np.empty((n, self.n_numeric), dtype=np.float32)
        k = len(self.numeric)
        if k == 0:
            return out
        # (k, n): one contiguous row per column (stacking along axis 1 is many times slower)
        values = np.stack([np.asarray(columns[col], dtype=np.float64) for col in self.numeric])
        missing = np.isnan(values)
        medians = np.array([self.medians[c] for c in self.numeric])[:, None]
        means = np.array([self.means[c] for c in self.numeric])[:, None]
        stds = np.array([self.stds[c] for c in self.numeric])[:, None]
        np.copyto(values, np.broadcast_to(medians, values.shape), where=missing)
        values -= means
        values /= stds
        out[:, :k] = values.T
        flagged = [self.numeric.index(c) for c in self.indicators]
        out[:, k:] = missing[flagged].T
        return out

    @cached_property
    def _value_sets(self) -> dict:
        import pyarrow as pa

        return {col: pa.array(self.vocab[col], type=pa.string()) for col in self.categorical}

    def transform_arrow(self, table) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`transform` of a ``pyarrow.Table``, without pandas: string categories are
        looked up in the vocabulary by Arrow's ``index_in`` (C++), numeric columns are
        read as float64 with NaN for nulls.  Same codes and values as :meth:`transform`."""
        import pyarrow as pa
        import pyarrow.compute as pc

        n = table.num_rows
        categorical = np.zeros((n, len(self.categorical)), dtype=np.int64)
        for j, col in enumerate(self.categorical):
            column = table.column(col)
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                codes = pc.index_in(column, value_set=self._value_sets[col]).fill_null(-1)
                categorical[:, j] = codes.to_numpy() + 1
            else:  # other types go through str(), as in transform
                categorical[:, j] = self.encode_categorical(pd.DataFrame({col: column.to_pandas()}))[:, 0]
        columns = {}
        for col in self.numeric:
            column = table.column(col)
            if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
                columns[col] = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
            else:
                columns[col] = pd.to_numeric(column.to_pandas(), errors="coerce").to_numpy(dtype="float64")
        return categorical, self._scale(columns, n)

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
