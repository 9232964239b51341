"""A use case declared once: :class:`UseCase` names its sources, its table steps (pure
DataFrame -> DataFrame transforms with the contract of what they write), its training
suite and its report wording; the kit generates from it the registered stages of the
job entry point, the Airflow task bodies and DAG, the shell chain and the ``moulin
<name>`` command (:mod:`moulin.usecases.kit.generate`, :mod:`moulin.usecases.kit.dags`,
:mod:`moulin.usecases.kit.chain`).

A use case's folder holds ``usecase.py`` defining ``USECASE`` and its ``framing.yaml``
(the question, task, metric and threshold the report renders); discovery
(:mod:`moulin.usecases.kit.discovery`) finds it in moulin's ``usecases/`` and in
``Settings.own_usecases_dir``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moulin.usecases.kit.chain import run_chain
from moulin.usecases.kit.dags import build_dag
from moulin.usecases.kit.generate import register_stages
from moulin.usecases.kit.parts import Declaration

if TYPE_CHECKING:
    from moulin.settings import Settings


class UseCase(Declaration):
    """A classifier use case, declared once (see the module's docstring): what it declares
    (the fields of :class:`~moulin.usecases.kit.parts.Declaration`), and what the kit
    generates from it."""

    def register_stages(self) -> None:
        """Register the stages of the job entry point: one per table step, ``<name>_train``."""
        register_stages(self)

    def dag(self, fileloc: str | None = None) -> Any:
        """The Airflow DAG: on the sources' bronze Assets, each table step -> training -> report."""
        return build_dag(self, fileloc)

    def run(self, spark, settings: Settings, **options: Any) -> dict[str, Any]:
        """The whole chain from the shell (:func:`moulin.usecases.kit.chain.run_chain`)."""
        return run_chain(self, spark, settings, **options)
