"""Flights stage ``gold_stats`` as a Spark job (see :func:`moulin.flights.stages.gold_stats`).

    spark-submit spark_jobs/gold_stats.py --profile local --date 2013-01-01

Prints ``MOULIN-RESULT <json>`` with the stage's counts.
"""

from __future__ import annotations

from moulin.flights.jobs import main_exit, run

STAGE = "gold_stats"


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, build the session from the profile, run the stage."""
    return run(STAGE, argv)


if __name__ == "__main__":
    main_exit(STAGE)
