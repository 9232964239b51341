"""Training settings with their defaults: the one place every trainer, job and DAG
parameter takes them from."""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: The model leaderboard's path under the warehouse (schema: :mod:`moulin.training.leaderboard`).
LEADERBOARD_TABLE = "gold/model_leaderboard"


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of a network (defaults for every trainer)."""

    epochs: int = 5
    batch_size: int = 512
    learning_rate: float = 2e-3
    weight_decay: float = 1e-5
    early_stopping: bool = True
    patience: int = 2
    min_delta: float = 1e-4
    seed: int = 0
    # Weight of positive examples in the loss (negatives / positives when balancing).
    pos_weight: float = 1.0
    # Rows per forward pass when scoring the validation split.
    eval_batch_size: int = 2048
    # Learning rate over the epochs: constant, or cosine decay to zero at the last epoch.
    schedule: str = "constant"

    def to_dict(self) -> dict:
        return asdict(self)
