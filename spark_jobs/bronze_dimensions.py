"""Flights stage ``bronze_dimensions`` as a Spark job (see :func:`moulin.flights.stages.bronze_dimensions`).

    spark-submit spark_jobs/bronze_dimensions.py --profile local --date 2013-01-01

Prints ``MOULIN-RESULT <json>`` with the stage's counts.
"""

from __future__ import annotations

from moulin.flights.jobs import main_exit, run

STAGE = "bronze_dimensions"


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, build the session from the profile, run the stage."""
    return run(STAGE, argv)


if __name__ == "__main__":
    main_exit(STAGE)
