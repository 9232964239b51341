"""The image use case declared once (:mod:`moulin.usecases.kit`): the ``fashion`` source's
bronze images -> ``silver_fashion`` (labelled, split by content hash, copies counted) ->
logistic regression, a CNN from scratch and EfficientNet-Lite0 fine-tuned, compared on a
pinned snapshot -> the report.  The kit makes of it the stages ``fashion_silver`` and
``fashion_train``, the DAG ``fashion_images``, and ``moulin fashion prepare|run``."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from moulin.settings import Settings
from moulin.usecases.fashion.corpus import prepare_drop
from moulin.usecases.fashion.params import PARAMS
from moulin.usecases.fashion.report import REPORT
from moulin.usecases.fashion.stages import check_set_names, duplicates, to_silver
from moulin.usecases.kit import TableStep, UseCase

if TYPE_CHECKING:
    from moulin.training.classifiers import ClassifierSuite


def _suite(settings: Settings) -> ClassifierSuite:
    from moulin.usecases.fashion.training import suite

    return suite(settings)


def _prepare(settings: Settings, limit: int | None) -> str:
    return ", ".join(f"{name} {n:,} images" for name, n in prepare_drop(settings, limit).items())


USECASE = UseCase(
    name="fashion",
    dag_id="fashion_images",
    description="the image use case: catalogue photos sorted by clothing class",
    sources=("fashion",),
    steps=(
        TableStep(
            "silver",
            source="bronze_fashion",
            target="silver_fashion",
            transform=to_silver,
            rows_called="images",
            parameters=(PARAMS.split_seed, PARAMS.validation_share),
            check=check_set_names,
            summaries=(lambda rows: ("duplicates", duplicates(rows)),),
        ),
    ),
    suite=_suite,
    models=PARAMS.models,
    report=REPORT,
    start_date=datetime(2017, 8, 25),
    drop_dates=(PARAMS.drop,),
    num_processes=PARAMS.num_processes,
    prepare=_prepare,
    limit_unit="images per official set",
    tags=("deep-learning",),
)
