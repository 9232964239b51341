"""Parameters of the flights use case: the one place their defaults live.

The DAG's params, the ``moulin flights run`` options, the task bodies and the
training job's arguments all derive from :data:`PARAMS`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from moulin.errors import MoulinError
from moulin.training.config import TrainConfig

#: The use case's sources, each a spec in ``schemas/sources/`` (its DAG ``source_<name>``).
SOURCES = ("flights", "weather", "planes", "airports", "airlines")
#: The contracts of the gold statistics, by the key they group delays by.
STATS_TABLES = {
    "route": "gold_route_delay_stats",
    "carrier": "gold_carrier_delay_stats",
    "hour": "gold_hour_delay_stats",
}


@dataclass(frozen=True)
class FlightsParams:
    """Defaults of a run of the flights chain."""

    #: Flights kept per monthly drop that ``moulin flights prepare`` writes (0: all).
    sample_per_month: int = 0
    #: Optimisation of the MLP (fewer epochs than the platform default: early stopping rarely waits longer).
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=4))
    #: The feature table's contract (column roles) and the network trained on it.
    features_contract: str = "flight_features"
    network: str = "mlp"
    num_processes: int = 2
    model_name: str = "flight_delay"
    bootstrap: int = 200

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FlightsParams:
        """The defaults, overridden by ``MOULIN_FLIGHTS_SAMPLE_PER_MONTH`` and ``..._EPOCHS``
        (what the platform's scheduled runs use).  When the sources deliver is their specs'
        (``schedule``, ``start_date``, ``end_date`` in ``schemas/sources/``)."""
        env = os.environ if env is None else env
        params = cls()
        changes: dict = {}
        try:
            if "MOULIN_FLIGHTS_SAMPLE_PER_MONTH" in env:
                changes["sample_per_month"] = int(env["MOULIN_FLIGHTS_SAMPLE_PER_MONTH"])
            if "MOULIN_FLIGHTS_EPOCHS" in env:
                changes["train"] = replace(params.train, epochs=int(env["MOULIN_FLIGHTS_EPOCHS"]))
        except ValueError as exc:
            raise MoulinError(
                f"MOULIN_FLIGHTS_SAMPLE_PER_MONTH / MOULIN_FLIGHTS_EPOCHS must be integers ({exc})"
            ) from None
        return replace(params, **changes)

    def dag_params(self) -> dict:
        """The Airflow params of the use-case DAG."""
        return {"epochs": self.train.epochs}


PARAMS = FlightsParams.from_env()
