"""A scheduled year on the platform: ``moulin platform up`` from an empty home, then the
scheduler alone runs twelve monthly flights drops (``--sample`` flights each), the
reference sources every month and ``flights_delay_model`` on its Asset events, as
``tests/integration/test_scheduled_year.py`` does for four months (same driver:
``tests/integration/scheduled_year.py``).

    .venv/bin/python benchmarks/year.py [--months 12] [--first 1] [--sample 200] [--epochs 1]

Prints a line per DagRun as it ends, then the wall time from unpausing the DAGs to the
last model run and, per month: the seconds of its ``source_flights`` run and of the
reference sources' runs (``source_weather``, ``source_airlines``, ``source_planes``,
``source_airports``), raw rows = bronze + quarantined (raw file lines on HDFS,
Delta rows), the planes accounting (read = bronze + quarantined), and the model run
that consumed its flights event (seconds, whether it trained, the features version).
Exit status 1 when a run fails or the counts do not add up.  ``--keep`` leaves the
platform running (its home is printed).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", type=int, default=12, help="monthly drops (default 12)")
    parser.add_argument("--first", type=int, default=1, help="first month of 2013 (default 1)")
    parser.add_argument("--sample", type=int, default=200, help="flights per monthly drop (default 200)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=5400, help="seconds the year may take")
    parser.add_argument("--keep", action="store_true", help="leave the platform running")
    args = parser.parse_args()
    if not 1 <= args.first <= args.first + args.months - 1 <= 12:
        parser.error("--first and --months must stay within 2013")

    import scheduled_year as Y

    months = Y.months_of(args.first, args.months)
    env = Y.year_env(Y.new_home(), months, args.sample, epochs=args.epochs)
    print(f"home {env['MOULIN_HOME']}; months {months[0]} .. {months[-1]}, {args.sample} flights each")
    t = time.monotonic()
    try:
        platform = Y.platform_up(env)
        print(f"platform up in {time.monotonic() - t:.0f} s")
        year = Y.run_scheduled_year(platform, months, timeout_s=args.timeout)
        figures = Y.month_figures(platform, year)
        Y.print_figures(year, figures)
        for m in year.models:
            print(
                f"  {m.run_id}: {m.state} in {m.seconds} s, created from flights {m.flights_months} "
                f"and {len(m.reference_runs)} reference event(s), train {m.train_state}"
            )
        bad = [f["month"] for f in figures if not f["raw"] == args.sample == f["bronze"] + f["quarantined"]]
        bad += [f"planes {f['month']}" for f in figures[1:] if f["planes"] != "0 = 0 + 0"]
        failed = [m.run_id for m in year.models if m.state != "success"]
        failed += [
            r["dag_run_id"]
            for r in [
                *year.flights.values(),
                *(r for runs in year.references.values() for r in runs.values()),
            ]
            if r["state"] != "success"
        ]
        if bad or failed:
            print(f"FAILED: counts {bad}, runs {failed}")
            return 1
        return 0
    finally:
        if args.keep:
            print(f"platform left running: MOULIN_HOME={env['MOULIN_HOME']}")
        else:
            Y.platform_down(env)


if __name__ == "__main__":
    sys.exit(main())
