"""Flights stage ``ingest_flights_month`` as a Spark job (see :func:`moulin.flights.stages.ingest_flights_month`).

    spark-submit spark_jobs/ingest_flights_month.py --profile local --date 2013-01-01

Prints ``MOULIN-RESULT <json>`` with the stage's counts.
"""

from __future__ import annotations

from moulin.flights.jobs import main_exit, run

STAGE = "ingest_flights_month"


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, build the session from the profile, run the stage."""
    return run(STAGE, argv)


if __name__ == "__main__":
    main_exit(STAGE)
