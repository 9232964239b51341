"""The options of one flights training run (:func:`moulin.training.run.train_and_compare`):
what to read, which models to train and how, and where to record them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from moulin.identifiers import check_path_part
from moulin.training import TrainingError
from moulin.training.config import TrainConfig
from moulin.training.contract import FeatureContract
from moulin.training.data import check_fraction
from moulin.training.loader_options import Reader


@dataclass(frozen=True)
class TrainingOptions:
    """One training run of the feature table's models, checked when made.

    ``contract`` (a :class:`FeatureContract`, its name or file) names the table read
    (``features_uri`` overrides it) at ``version`` (default: latest); ``sample`` keeps a
    fraction of rows in every split (hash of the key).  ``models`` picks registered
    models (:mod:`moulin.training.model_entries`; None: every one, in declaration order).
    ``epochs`` .. ``seed`` set the networks' optimisation, ``network`` / ``hidden`` /
    ``model_config`` the run's default network.  With ``balance_classes`` every model
    weights positives by negatives/positives; with ``correct_probabilities`` their
    probabilities are mapped back to the data's class balance before evaluation.
    ``reader`` picks what feeds the networks' trainer: moulin's loader or Petastorm's.
    Files go under ``models/<model_name>/<run_id>``, rows to ``leaderboard_uri``
    (default: ``gold/model_leaderboard``).
    """

    contract: FeatureContract | str | Path
    features_uri: str | None = None
    version: int | None = None
    run_id: str | None = None
    model_name: str = "model"
    sample: float | None = None
    models: tuple[str, ...] | None = None
    epochs: int = TrainConfig.epochs
    num_processes: int = 2
    use_gpu: bool | None = None
    batch_size: int = TrainConfig.batch_size
    learning_rate: float = TrainConfig.learning_rate
    early_stopping: bool = True
    patience: int = TrainConfig.patience
    seed: int = TrainConfig.seed
    network: str = "mlp"
    hidden: tuple[int, ...] = (64, 32)
    model_config: Mapping | None = None
    balance_classes: bool = True
    correct_probabilities: bool = True
    bootstrap_resamples: int = 200
    slice_columns: tuple[str, ...] | None = None
    leaderboard_uri: str | None = None
    reader: Reader = "moulin"

    def __post_init__(self) -> None:
        if self.reader not in get_args(Reader):
            raise TrainingError(f"reader must be one of {list(get_args(Reader))}, not {self.reader!r}")
        if self.epochs < 1:
            raise TrainingError(f"epochs must be >= 1, got {self.epochs}")
        object.__setattr__(self, "sample", check_fraction(self.sample))
        check_path_part(self.model_name, "model name")
        if self.run_id is not None:
            check_path_part(self.run_id, "run id")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if self.slice_columns is not None:
            object.__setattr__(self, "slice_columns", tuple(self.slice_columns))
        if self.models is not None:
            object.__setattr__(self, "models", tuple(self.models))

    def feature_contract(self) -> FeatureContract:
        """The feature contract (loaded when given by name or file)."""
        if isinstance(self.contract, FeatureContract):
            return self.contract
        return FeatureContract.load(self.contract)

    def train_config(self, pos_weight: float) -> TrainConfig:
        """The networks' optimisation settings, positives weighted by ``pos_weight``."""
        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            early_stopping=self.early_stopping,
            patience=self.patience,
            seed=self.seed,
            pos_weight=float(pos_weight),
        )
