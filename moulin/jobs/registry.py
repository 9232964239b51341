"""The registry of stages that the job entry point runs by name.

A stage is a function ``(ctx, args) -> dict`` registered with :func:`stage`:
``ctx`` gives the settings and, for Spark stages, a session built from the
profile; ``args`` are its parsed command-line options (``--ds`` for all,
more through ``arguments``).  The dict it returns is the job's result.

The registry knows no module that registers stages: moulin's root package names
them in ``moulin.STAGE_MODULES`` (the sources' and privacy's stages, the use
cases'), and every look-up (:func:`stages`, :func:`get_stage`) imports them
first.  A named module registers its stages when imported; one that defines
``register_stages()`` (:mod:`moulin.usecases`: use cases declared in files that
may change) is also called at each look-up.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import moulin
from moulin.errors import MoulinError
from moulin.settings import Settings
from moulin.spark import build_spark_session

Environment = Literal["platform", "training"]
StageFunction = Callable[["StageContext", argparse.Namespace], dict]


class UnknownStageError(MoulinError):
    """No stage of that name is registered."""


@dataclass
class StageContext:
    """What a stage gets besides its arguments: the settings and a Spark session.

    ``session`` is a session owned by someone else (the job server's), used as is;
    without it one is built on first use from the settings' profile and stopped
    by :meth:`close`.
    """

    settings: Settings
    stage: str
    spark_conf: dict[str, str] = field(default_factory=dict)
    session: Any = None
    _spark: Any = None

    @property
    def spark(self):
        """The Spark session of this job."""
        if self.session is not None:
            return self.session
        if self._spark is None:
            self._spark = build_spark_session(self.settings, f"moulin-{self.stage}", self.spark_conf or None)
        return self._spark

    def close(self) -> None:
        """Stop the session if one was built."""
        if self._spark is not None:
            self._spark.stop()
            self._spark = None


@dataclass(frozen=True)
class Stage:
    """A registered stage."""

    name: str
    function: StageFunction
    help: str
    environment: Environment = "platform"
    arguments: Callable[[argparse.ArgumentParser], None] | None = None


_STAGES: dict[str, Stage] = {}


def stage(
    name: str,
    environment: Environment = "platform",
    arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> Callable[[StageFunction], StageFunction]:
    """Register the decorated function as stage ``name`` (its docstring's first line is its help)."""

    def register(function: StageFunction) -> StageFunction:
        if name in _STAGES and _STAGES[name].function is not function:
            raise MoulinError(f"stage {name!r} is registered twice ({_STAGES[name].function.__module__})")
        doc = (function.__doc__ or name).strip().splitlines()[0]
        _STAGES[name] = Stage(name, function, doc, environment, arguments)
        return function

    return register


def _load() -> None:
    for module in moulin.import_declared("STAGE_MODULES"):
        register = getattr(module, "register_stages", None)
        if register is not None:
            register()


def stages() -> dict[str, Stage]:
    """Every registered stage by name."""
    _load()
    return dict(sorted(_STAGES.items()))


def get_stage(name: str) -> Stage:
    """The stage called ``name`` (:class:`UnknownStageError` naming the known ones)."""
    known = stages()
    if name not in known:
        raise UnknownStageError(f"unknown stage {name!r}: registered stages are {', '.join(known)}")
    return known[name]
