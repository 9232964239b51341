"""Where the flights chain spends its time: every Spark stage run in order on one Spark
application (as the job server runs them), on the ``local`` profile under a fresh home.

    .venv/bin/python benchmarks/chain.py [--months 1-12] [--sample 0] [--gate-repeat 2]

Prints, per stage: wall seconds, rows, rows/s and the shares of the wall time
spent validating (row rules + Great Expectations), writing (Spark computes the
frame and writes Parquet), committing (delta-rs log commit, metadata,
compaction) and the rest (reading + computing what is not written: counts,
joins of cached frames); a separate scan of the stage's input tables gives
the cost of reading them.  The application's start (JVM + SparkSession) is
measured once and, for comparison, a ``spark-submit`` of the bronze stage
of a 10-row drop (what every stage paid before the job server).  The
landings (the source factory's, in the task's process) are timed too.  Last, the bronze gate of one monthly drop with GE on and off (best
of ``--gate-repeat``, each on a fresh home; ratio printed, goal <= 1.3).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUIET = {"spark.ui.showConsoleProgress": "false"}


@dataclass
class StageRun:
    """The figures of one stage run."""

    name: str
    seconds: float
    rows: int
    phases: dict[str, float] = field(default_factory=dict)
    read_s: float | None = None


def _rows(result: dict) -> int:
    """Rows a stage handled, from its result (bronze: rows read; others: rows written)."""
    if "rows_read" in result:
        return int(result["rows_read"])
    if "months" in result and isinstance(result["months"], list):
        return sum(_rows(m) for m in result["months"])
    if "tables" in result and isinstance(result["tables"], dict):
        return sum(_rows(t) for t in result["tables"].values())
    if isinstance(result.get("rows"), int):
        return int(result["rows"])
    return 0


#: The flights use case's reference sources (specs in schemas/sources/), landed at the last month.
REFERENCE = ("weather", "airlines", "planes", "airports")


def _land(settings, source: str, ds: str) -> tuple[dict, dict[str, float], float]:
    """Land the drop of ``source`` for ``ds`` as its DAG's land task does (no Spark)."""
    from moulin.sources.land import land_source
    from moulin.sources.spec import load_spec

    start = time.perf_counter()
    result = land_source(settings, load_spec(source), ds)
    return {"rows": int(result["rows"])}, {}, time.perf_counter() - start


def _run_stage(spark, settings, stage: str, argv: list[str]) -> tuple[dict, dict[str, float], float]:
    from moulin.jobs.entry import build_parser
    from moulin.jobs.registry import StageContext, get_stage
    from moulin.phases import recording

    args = build_parser().parse_args([stage, *argv])
    spec = get_stage(stage)
    start = time.perf_counter()
    with recording() as phases:
        result = spec.function(StageContext(settings, stage, session=spark), args)
    seconds = time.perf_counter() - start
    spark.catalog.clearCache()
    return result, dict(phases), seconds


def _scan_seconds(spark, settings, tables: list[str]) -> float:
    """Seconds to read every row of ``tables`` (a no-op sink: nothing is written)."""
    from moulin.delta import DeltaTableStore
    from moulin.usecases.flights.stages import table_uri

    store = DeltaTableStore(spark)
    start = time.perf_counter()
    for name in tables:
        store.read(table_uri(settings, name)).write.format("noop").mode("overwrite").save()
    return time.perf_counter() - start


#: The tables each stage reads (for the separate read measurement).
STAGE_INPUTS = {
    "silver_flights": ["bronze_flights", "bronze_weather", "bronze_planes", "bronze_airports"],
    "gold_stats": ["silver_flights"],
    "features": ["silver_flights"],
    "profile_tables": ["bronze_flights", "silver_flights", "flight_features"],
}


def _spark_submit_start(settings) -> float:
    """Seconds of a spark-submit of the bronze stage of a 10-row drop (JVM + Python + session + gate)."""
    from moulin.jobs.submit import spark_submit_command
    from moulin.settings import load_settings
    from moulin.usecases.flights.sources import flight_drop_path, prepare_flight_drops

    argv = ["--source", "flights", "--ds", "2013-01-01", "--no-ge"]
    command = spark_submit_command(settings, "source_bronze", argv)
    home = tempfile.mkdtemp(prefix="moulin-submit-")
    local = load_settings("local", env={**os.environ, "MOULIN_HOME": home})
    prepare_flight_drops(flight_drop_path(local, 1).parent, [1], 10)
    _land(local, "flights", "2013-01-01")
    env = dict(
        os.environ, MOULIN_HOME=home, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable
    )
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def run_chain(home: Path, months: list[int], sample: int) -> tuple[float, list[StageRun]]:
    """Run the chain's Spark stages under ``home``; returns the session start and the stage figures."""
    os.environ["MOULIN_HOME"] = str(home)
    from moulin.settings import load_settings
    from moulin.spark import build_spark_session
    from moulin.usecases.flights.sources import prepare_sources

    settings = load_settings("local")
    prepare_sources(settings, months, sample_per_month=sample or None)
    start = time.perf_counter()
    spark = build_spark_session(settings, "moulin-chain-benchmark", QUIET)
    session_s = time.perf_counter() - start
    spark.sparkContext.setLogLevel("ERROR")
    days = [f"2013-{m:02d}-01" for m in months]
    plan: list[tuple[str, str, list[str]]] = []  # (label, stage or "land", arguments)
    plan += [(f"land {d[:7]}", "land", ["flights", d]) for d in days]
    plan += [(f"bronze {d[:7]}", "source_bronze", ["--source", "flights", "--ds", d]) for d in days]
    plan += [(f"land {s}", "land", [s, days[-1]]) for s in REFERENCE]
    plan += [(f"bronze {s}", "source_bronze", ["--source", s, "--ds", days[-1]]) for s in REFERENCE]
    plan += [("silver", "silver_flights", ["--ds", ",".join(days)])]
    plan += [("gold stats", "gold_stats", ["--ds", ",".join(days)])]
    plan += [("features", "features", ["--ds", days[-1]])]
    plan += [("profile", "profile_tables", ["--ds", days[-1]])]
    runs = []
    for label, stage, argv in plan:
        if stage == "land":
            result, phases, seconds = _land(settings, *argv)
        else:
            result, phases, seconds = _run_stage(spark, settings, stage, argv)
        run = StageRun(label, seconds, _rows(result), phases)
        if stage in STAGE_INPUTS:
            run.read_s = _scan_seconds(spark, settings, STAGE_INPUTS[stage])
        runs.append(run)
        print(f"  {label:<20} {seconds:7.1f}s  {run.rows:>9,} rows", flush=True)
    spark.stop()
    return session_s, runs


def print_table(session_s: float, submit_s: float | None, runs: list[StageRun]) -> None:
    """The per-stage table and the totals."""
    print(f"\napplication start (JVM + SparkSession), paid once per job server: {session_s:.1f}s")
    if submit_s is not None:
        print(
            f"spark-submit of the bronze stage of 10 rows (paid per stage without the server): {submit_s:.1f}s"
        )
    head = f"{'stage':<20} {'wall s':>7} {'rows':>9} {'rows/s':>9} {'validate':>9} {'write':>7} {'commit':>7} {'rest':>6} {'scan inputs s':>13}"
    print("\n" + head + "\n" + "-" * len(head))
    for r in runs:
        shares = {
            k: r.phases.get(k, 0.0) / r.seconds if r.seconds else 0.0 for k in ("validate", "write", "commit")
        }
        rest = max(0.0, 1 - sum(shares.values()))
        rate = f"{r.rows / r.seconds:,.0f}" if r.rows and r.seconds else "-"
        scan = f"{r.read_s:.1f}" if r.read_s is not None else "-"
        print(
            f"{r.name:<20} {r.seconds:7.1f} {r.rows:>9,} {rate:>9} {shares['validate']:>8.0%} "
            f"{shares['write']:>6.0%} {shares['commit']:>6.0%} {rest:>5.0%} {scan:>13}"
        )
    total = sum(r.seconds for r in runs)
    print(f"\nall stages: {total:.1f}s (+ {session_s:.1f}s application start)")
    for prefix in ("land ", "bronze 2"):
        group = [r for r in runs if r.name.startswith(prefix)]
        if group:
            print(
                f"  {prefix.strip():<7} drops: {len(group)}, {sum(r.seconds for r in group):.1f}s, "
                f"median {sorted(r.seconds for r in group)[len(group) // 2]:.1f}s per drop"
            )


def gate_ratio(repeat: int, sample: int) -> None:
    """The bronze gate of one monthly drop (2013-06) with and without GE, each on a fresh home."""
    from moulin.settings import load_settings
    from moulin.spark import build_spark_session

    settings = load_settings("local")
    spark = build_spark_session(settings, "moulin-gate-benchmark", QUIET)
    spark.sparkContext.setLogLevel("ERROR")
    best: dict[str, float] = {}
    from moulin.usecases.flights.sources import flight_drop_path, prepare_flight_drops

    for attempt in range(repeat + 1):  # the first round warms imports and the JIT: not counted
        for label, extra in (("gate without GE", ["--no-ge"]), ("gate with GE", [])):
            home = Path(tempfile.mkdtemp(prefix="moulin-gate-"))
            os.environ["MOULIN_HOME"] = str(home)
            local = load_settings("local")
            prepare_flight_drops(flight_drop_path(local, 6).parent, [6], sample or None)
            _land(local, "flights", "2013-06-01")
            argv = ["--source", "flights", "--ds", "2013-06-01", *extra]
            _, _, seconds = _run_stage(spark, local, "source_bronze", argv)
            if attempt:
                best[label] = min(best.get(label, seconds), seconds)
    spark.stop()
    print("\nbronze gate of one monthly drop (2013-06), best of", repeat)
    for label, seconds in best.items():
        print(f"  {label:<16} {seconds:6.1f}s")
    ratio = best["gate with GE"] / best["gate without GE"]
    print(f"  GE's cost: x{ratio:.2f} (goal <= 1.3; drop goal <= 10 s: {best['gate with GE']:.1f}s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", default="1-12", help="monthly drops, e.g. 1-12 or 1,2")
    parser.add_argument("--sample", type=int, default=0, help="flights per month (0: all)")
    parser.add_argument("--gate-repeat", type=int, default=2)
    parser.add_argument("--no-submit", action="store_true", help="skip the spark-submit start measurement")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("MOULIN_SPARK_MASTER", "local[2]")
    from moulin.usecases.flights.runner import parse_months

    home = Path(tempfile.mkdtemp(prefix="moulin-chain-"))
    print(f"flights chain on the local profile under {home} ({os.environ['MOULIN_SPARK_MASTER']})")
    session_s, runs = run_chain(home, parse_months(args.months), args.sample)
    submit_s = None
    if not args.no_submit:
        from moulin.settings import load_settings

        submit_s = _spark_submit_start(load_settings("local"))
    print_table(session_s, submit_s, runs)
    if args.gate_repeat:
        gate_ratio(args.gate_repeat, args.sample)


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # deltalake's native pools can abort at interpreter exit (delta-rs#2184)
