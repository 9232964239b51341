"""Parameters of the flights use case: the one place their defaults live.

The DAG's params, the ``moulin flights run`` options, the task bodies and the
training job's arguments all derive from :data:`PARAMS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from moulin.training.config import TrainConfig


@dataclass(frozen=True)
class FlightsParams:
    """Defaults of a run of the flights chain."""

    #: Flights kept per monthly drop (0: all).
    sample_per_month: int = 0
    #: Optimisation of the MLP (fewer epochs than the platform default: early stopping rarely waits longer).
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=4))
    #: The feature table's contract (column roles) and the network trained on it.
    features_contract: str = "flight_features"
    network: str = "mlp"
    num_processes: int = 2
    model_name: str = "flight_delay"
    bootstrap: int = 200

    def dag_params(self) -> dict:
        """The Airflow params of the use-case DAG."""
        return {"sample_per_month": self.sample_per_month, "epochs": self.train.epochs}


PARAMS = FlightsParams()
