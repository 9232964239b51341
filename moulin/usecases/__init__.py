"""Use cases: one folder each (its framing, transforms, stages, task bodies, parameters, report wording).

A use case's ``framing.yaml`` states its question, decision, task, metric and
threshold, data, storage, personal data and hardware (:mod:`moulin.framing`,
``docs/guides/framing.md``); its report renders them.

A use case is declared once in ``<folder>/usecase.py`` (``USECASE``, see
:mod:`moulin.usecases.kit`): the kit generates its stages, task bodies, DAG, shell
chain and command, and finds it here or in ``Settings.own_usecases_dir``.  A use case
not yet declared that way registers its Spark stages in ``<folder>/jobs.py`` (see
:mod:`moulin.jobs`); the platform packages (ingest, quality, delta, training,
reporting) hold no use case's constants.
"""

from __future__ import annotations

import importlib
import pkgutil

from moulin.usecases.kit.discovery import register_all_stages


def register_stages() -> None:
    """Register the stages of every use case: the ``jobs`` module of each folder that has
    one, and those the kit generates for every declared use case (moulin's and this
    installation's).  The stage registry calls it before each look-up (``moulin.STAGE_MODULES``
    names this package)."""

    for info in pkgutil.iter_modules(__path__):
        if not info.ispkg:
            continue
        module = f"{__name__}.{info.name}.jobs"
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    register_all_stages()
