"""The text use case declared once (:mod:`moulin.usecases.kit`): the ``sentiment`` source's
bronze posts -> ``silver_sentiment`` (labelled, split by a hash of the text, copies counted)
-> TF-IDF logistic regression, a text CNN and MiniLM fine-tuned, compared on a pinned
snapshot -> the report.  The kit makes of it the stages ``sentiment_silver`` and
``sentiment_train``, the DAG ``sentiment_posts``, and ``moulin sentiment prepare|run``."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from moulin.settings import Settings
from moulin.usecases.kit import TableStep, UseCase
from moulin.usecases.sentiment.corpus import prepare_drop
from moulin.usecases.sentiment.params import PARAMS
from moulin.usecases.sentiment.report import REPORT
from moulin.usecases.sentiment.stages import duplicates, to_silver

if TYPE_CHECKING:
    from moulin.training.classifiers import ClassifierSuite


def _suite(settings: Settings) -> ClassifierSuite:
    from moulin.usecases.sentiment.training import suite

    return suite(settings)


def _prepare(settings: Settings, limit: int | None) -> str:
    return f"{prepare_drop(settings, limit):,} posts"


USECASE = UseCase(
    name="sentiment",
    dag_id="sentiment_posts",
    description="the text use case: the sentiment of short posts",
    sources=("sentiment",),
    steps=(
        TableStep(
            "silver",
            source="bronze_sentiment",
            target="silver_sentiment",
            transform=to_silver,
            rows_called="posts",
            parameters=(PARAMS.split_seed, PARAMS.train_share, PARAMS.validation_share),
            summaries=(lambda rows: ("duplicates", duplicates(rows)),),
        ),
    ),
    suite=_suite,
    models=PARAMS.models,
    report=REPORT,
    start_date=datetime(2016, 8, 4),
    drop_dates=(PARAMS.drop,),
    num_processes=PARAMS.num_processes,
    prepare=_prepare,
    limit_unit="posts",
    tags=("deep-learning",),
)
