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
    """Drop (``limit`` images per official set: a sample) -> landing -> bronze -> silver."""
    from moulin.sources.bronze import gate_landing
    from moulin.sources.land import land_source
    from moulin.sources.spec import load_spec
    from moulin.usecases.fashion.corpus import prepare_drop
    from moulin.usecases.fashion.stages import silver_fashion

    spec = load_spec("fashion")
    counts = prepare_drop(settings, limit)
    say(f"drop {PARAMS.drop}: " + ", ".join(f"{name} {n:,} images" for name, n in counts.items()))
    landed = land_source(settings, spec, PARAMS.drop)
    say(
        f"land {PARAMS.drop}: {landed['status']}, {landed['rows']:,} images in {len(landed['files'])} file(s)"
    )
    outcome = gate_landing(spark, settings, spec, PARAMS.drop, run_ge=run_ge)
    say(f"bronze {outcome.line()}")
    silver = silver_fashion(spark, settings)
    say(f"silver {silver['table']}: {silver['rows']:,} images {silver['by_split']}, v{silver['version']}; "
        f"duplicates {silver['duplicates']}")  # fmt: skip
    return {"drop": counts, "landing": landed, "bronze": outcome.as_dict(), "silver": silver}


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
