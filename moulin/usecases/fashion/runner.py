"""The image chain from the shell: drop -> raw landing -> bronze (gate) -> silver ->
classifiers trained and compared (training environment) -> report, a line per step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moulin.settings import Settings
from moulin.usecases.fashion.params import PARAMS


def ingest_fashion(
    spark,
    settings: Settings,
    limit: int | None = None,
    say: Callable[[str], None] = print,
    run_ge: bool = True,
) -> dict[str, Any]:
    """Drop (``limit``: a sample) -> landing -> bronze -> silver."""
    from moulin.usecases.classifiers import ingest_chain
    from moulin.usecases.fashion.corpus import prepare_drop
    from moulin.usecases.fashion.stages import silver_fashion

    def prepare() -> str:
        return ", ".join(f"{name} {n:,} images" for name, n in prepare_drop(settings, limit).items())

    return ingest_chain(
        spark, settings, "fashion", PARAMS.drop, prepare, silver_fashion, "images", say, run_ge
    )


def run_fashion(
    spark,
    settings: Settings,
    limit: int | None = None,
    sample: float | None = None,
    models: tuple[str, ...] = PARAMS.models,
    epochs_scale: float = 1.0,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The whole chain: ingest, the ``fashion_train`` job (training environment), the report."""
    from moulin.usecases.classifiers import run_chain
    from moulin.usecases.fashion.report import WORDING

    return run_chain(
        "fashion",
        ingest_fashion,
        "fashion_train",
        WORDING,
        spark,
        settings,
        limit,
        sample,
        models,
        epochs_scale,
        say,
    )
