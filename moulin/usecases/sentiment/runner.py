"""The text chain from the shell: drop -> raw landing -> bronze (gate) -> silver ->
classifiers trained and compared (training environment) -> report, a line per step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moulin.settings import Settings
from moulin.usecases.sentiment.params import PARAMS


def ingest_sentiment(
    spark,
    settings: Settings,
    limit: int | None = None,
    say: Callable[[str], None] = print,
    run_ge: bool = True,
) -> dict[str, Any]:
    """Drop (``limit``: a sample) -> landing -> bronze -> silver."""
    from moulin.usecases.classifiers import ingest_chain
    from moulin.usecases.sentiment.corpus import prepare_drop
    from moulin.usecases.sentiment.stages import silver_sentiment

    def prepare() -> str:
        return f"{prepare_drop(settings, limit):,} posts"

    return ingest_chain(
        spark, settings, "sentiment", PARAMS.drop, prepare, silver_sentiment, "posts", say, run_ge
    )


def run_sentiment(
    spark,
    settings: Settings,
    limit: int | None = None,
    sample: float | None = None,
    models: tuple[str, ...] = PARAMS.models,
    epochs_scale: float = 1.0,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The whole chain: ingest, the ``sentiment_train`` job (training environment), the report."""
    from moulin.usecases.classifiers import run_chain
    from moulin.usecases.sentiment.report import WORDING

    return run_chain(
        "sentiment",
        ingest_sentiment,
        "sentiment_train",
        WORDING,
        spark,
        settings,
        limit,
        sample,
        models,
        epochs_scale,
        say,
    )
