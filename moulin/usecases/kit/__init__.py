"""The use-case kit: a use case declared once (:class:`UseCase`, in ``<folder>/usecase.py``)
from which moulin generates its stages, Airflow task bodies and DAG, shell chain and
``moulin <name>`` command; discovery finds every declared use case
(:func:`find_usecases`); ``moulin usecase new`` scaffolds one from a framing and an
onboarded source (:mod:`moulin.usecases.kit.scaffold`)."""

from moulin.usecases.kit.declaration import UseCase
from moulin.usecases.kit.discovery import find_usecases, get_usecase, usecase_dags
from moulin.usecases.kit.parts import FollowOnTask, ReportText, TableStep, UseCaseError

__all__ = [
    "FollowOnTask",
    "ReportText",
    "TableStep",
    "UseCase",
    "UseCaseError",
    "find_usecases",
    "get_usecase",
    "usecase_dags",
]
