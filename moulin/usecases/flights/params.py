"""Parameters of the flights use case: the one place their defaults live.

The DAG's params, the ``moulin flights run`` options, the task bodies and the
training job's arguments all derive from :data:`PARAMS`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from moulin.errors import MoulinError
from moulin.training.config import TrainConfig


@dataclass(frozen=True)
class FlightsParams:
    """Defaults of a run of the flights chain."""

    #: Flights kept per monthly drop (0: all).
    sample_per_month: int = 0
    #: The monthly drops ``flights_ingest`` schedules (first and last logical date, inclusive).
    ingest_start: str = "2013-01-01"
    ingest_end: str = "2013-12-01"
    #: When ``flights_ingest`` runs (a cron expression or preset; e.g. "0 0 1 1,9,11 *" for three drops).
    ingest_schedule: str = "@monthly"
    #: Optimisation of the MLP (fewer epochs than the platform default: early stopping rarely waits longer).
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=4))
    #: The feature table's contract (column roles) and the network trained on it.
    features_contract: str = "flight_features"
    network: str = "mlp"
    num_processes: int = 2
    model_name: str = "flight_delay"
    bootstrap: int = 200

    def ingest_dates(self) -> tuple[datetime, datetime]:
        """``ingest_start`` and ``ingest_end`` as dates (an error names a malformed one)."""
        try:
            return datetime.fromisoformat(self.ingest_start), datetime.fromisoformat(self.ingest_end)
        except ValueError:
            raise MoulinError(
                f"flights ingest dates {self.ingest_start!r}..{self.ingest_end!r} are not YYYY-MM-DD: "
                "fix MOULIN_FLIGHTS_INGEST_START / MOULIN_FLIGHTS_INGEST_END"
            ) from None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FlightsParams:
        """The defaults, overridden by ``MOULIN_FLIGHTS_SAMPLE_PER_MONTH``, ``..._INGEST_START``,
        ``..._INGEST_END``, ``..._INGEST_SCHEDULE`` and ``..._EPOCHS`` (what the platform's scheduled runs use)."""
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
        for name in ("ingest_start", "ingest_end", "ingest_schedule"):
            var = f"MOULIN_FLIGHTS_{name.upper()}"
            if var in env:
                changes[name] = env[var]
        result = replace(params, **changes)
        result.ingest_dates()
        return result

    def dag_params(self) -> dict:
        """The Airflow params of the use-case DAG."""
        return {"sample_per_month": self.sample_per_month, "epochs": self.train.epochs}


PARAMS = FlightsParams.from_env()
