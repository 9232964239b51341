"""The models of a flights training run as entries of one registry.

A :class:`ModelEntry` says what a model is (its name, its kind -- a network trained
by the distributed trainer or a baseline fitted on the driver --, its options) and
how it is fitted: ``fit(entry, run)`` trains it on the run's snapshot and returns a
:class:`Fitted` model -- its probabilities of the positive class on validation and
test, what it cost, and how its files are saved once its threshold is chosen.
Declare a model once in a use case's :class:`ModelRegistry`
(:data:`moulin.training.tabular_models.FLIGHTS_MODELS` holds the flights models); a
run trains every declared model unless its options pick some.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from moulin.storage import WarehouseFS
    from moulin.training.prepared_run import PreparedRun

ModelKind = Literal["network", "baseline"]


@dataclass(frozen=True)
class Fitted:
    """One fitted model: positive-class probabilities on ``validation`` and ``test``
    (mapped back to the data's class balance), what it is and cost, and
    ``save(fs, threshold)``, which writes its files with the chosen threshold."""

    name: str
    family: str
    proba: Mapping[str, np.ndarray]
    hyperparams: dict
    train_seconds: float
    model_uri: str
    save: Callable[[WarehouseFS, float], None]
    training: dict | None = None


@dataclass(frozen=True)
class ModelEntry:
    """A model a run trains: ``name`` (its folder and leaderboard name), ``kind``,
    ``fit(entry, run) -> Fitted``, and ``options`` the fit reads (a network's
    registered name and config, a baseline's hyper-parameters)."""

    name: str
    kind: ModelKind
    fit: Callable[[ModelEntry, PreparedRun], Fitted]
    options: Mapping = field(default_factory=dict)


class ModelRegistry:
    """The models of one use case, in declaration order: declare each once, pick them by name."""

    def __init__(self, use_case: str) -> None:
        self.use_case = use_case
        self._entries: dict[str, ModelEntry] = {}

    def declare(self, entry: ModelEntry) -> ModelEntry:
        """Register ``entry`` (ValueError when its name is taken)."""
        if entry.name in self._entries:
            raise ValueError(
                f"model {entry.name!r} of {self.use_case} is declared twice: give the new entry another name"
            )
        self._entries[entry.name] = entry
        return entry

    @property
    def entries(self) -> Mapping[str, ModelEntry]:
        """Every declared model by name, in declaration order (read-only)."""
        return MappingProxyType(self._entries)

    def chosen(self, names: tuple[str, ...] | None) -> tuple[ModelEntry, ...]:
        """The entries ``names`` picks (None: every declared one); ValueError naming the
        declared ones when a name is unknown or none is picked."""
        unknown = [n for n in names or () if n not in self._entries]
        if unknown or names == ():
            raise ValueError(
                f"unknown model(s) {unknown} for {self.use_case}: choose among {', '.join(self._entries)}"
            )
        return tuple(self._entries[n] for n in names) if names is not None else tuple(self._entries.values())
