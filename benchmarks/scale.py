"""How the flights transformations scale: silver -> gold -> features at 1x, 4x and 16x the
data, on Spark ``local[2]`` over local disk, on the Spark standalone cluster (2 workers of
1 core) over the local HDFS, and in DuckDB on the same Parquet files.

    .venv/bin/python benchmarks/scale.py [--factors 1,4,16] [--from-home DIR] [--no-cluster]

The 1x bronze tables come from the real landing and quality gate of the twelve
monthly drops (``--from-home`` reuses the home of a ``benchmarks/chain.py`` run).
A factor k copies every bronze flight k times with new keys (flight number +
10000 per copy; dates, weather and planes unchanged, so each copy joins and splits
as the original does).  The moulin stages run as the DAG runs them (contract
checks with GE, Delta writes); DuckDB computes the same silver rows (joins,
UTC times), the three gold statistics and the feature table from the bronze
Parquet files and writes them as Parquet (no checks, no Delta log).

Prints per size and engine the seconds and rows/s, the log-log slope of time
against rows (goal <= 1.1) and the Spark / DuckDB ratio at each size.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
QUIET = {"spark.ui.showConsoleProgress": "false"}
DIMENSIONS = ("bronze_planes", "bronze_weather", "bronze_airports", "bronze_airlines")
MONTHS = [f"2013-{m:02d}-01" for m in range(1, 13)]


def replicate(spark, source, target, factor: int) -> int:
    """Bronze tables of ``source`` into ``target``'s warehouse, flights copied ``factor`` times."""
    from pyspark.sql import functions as F

    from moulin.contracts import load_contract
    from moulin.delta import DeltaTableStore
    from moulin.usecases.flights.stages import table_uri

    store = DeltaTableStore(spark)
    flights = store.read(table_uri(source, "bronze_flights"))
    copies = spark.range(factor).select(F.col("id").cast("int").alias("_copy"))
    scaled = flights.crossJoin(copies).withColumn("flight", F.col("flight") + F.col("_copy") * 10000)
    contract = load_contract("bronze_flights")
    store.write(
        scaled.drop("_copy"), table_uri(target, "bronze_flights"), mode="overwrite",
        partition_by=list(contract.partition_by) or None,
    )  # fmt: skip
    for name in DIMENSIONS:
        store.write(store.read(table_uri(source, name)), table_uri(target, name), mode="overwrite")
    return store.count(table_uri(target, "bronze_flights"))


def spark_run(spark, settings) -> dict[str, float]:
    """Seconds of the silver, gold and features stages (all months) under ``settings``."""
    from moulin.usecases.flights import stages

    seconds = {}
    start = time.perf_counter()
    stages.silver_flights(spark, settings, MONTHS)
    seconds["silver"] = time.perf_counter() - start
    start = time.perf_counter()
    stages.gold_stats(spark, settings, MONTHS)
    seconds["gold"] = time.perf_counter() - start
    start = time.perf_counter()
    stages.features(spark, settings, MONTHS[-1])
    seconds["features"] = time.perf_counter() - start
    spark.catalog.clearCache()
    return seconds


DUCKDB_SQL = """
CREATE OR REPLACE TEMP VIEW conformed AS
SELECT
  strftime(make_date(year, month, day), '%Y-%m-%d') || '_' || carrier || '_' || CAST(flight AS VARCHAR) || '_' || origin AS flight_id,
  make_date(year, month, day) AS dep_date, year, month, day, dayofweek(make_date(year, month, day)) + 1 AS day_of_week,
  carrier, flight, tailnum, origin, dest, hour AS sched_dep_hour,
  timezone('UTC', timezone('America/New_York', make_timestamp(year, month, day, hour, minute, 0))) AS sched_dep_utc,
  CAST(dep_delay AS DOUBLE) AS dep_delay, CAST(arr_delay AS DOUBLE) AS arr_delay,
  CAST(air_time AS DOUBLE) AS air_time, CAST(distance AS DOUBLE) AS distance,
  dep_time IS NULL AS cancelled,
  CASE WHEN dep_time IS NULL THEN NULL ELSE CAST(dep_delay >= 15 AS INT) END AS dep_delayed_15
FROM read_parquet({flights});
CREATE OR REPLACE TABLE silver AS
SELECT c.*, p.year AS plane_year, CAST(2013 - p.year AS DOUBLE) AS plane_age,
  w.temp, w.humid, w.wind_speed, w.precip, w.pressure, w.visib
FROM conformed c
LEFT JOIN (SELECT tailnum AS p_tailnum, year FROM read_parquet({planes})) p ON c.tailnum = p.p_tailnum
LEFT JOIN (SELECT origin AS w_origin, timezone('UTC', time_hour) AS w_hour, temp, humid, wind_speed, precip, pressure, visib
           FROM read_parquet({weather})) w
  ON c.origin = w.w_origin AND date_trunc('hour', c.sched_dep_utc) = w.w_hour;
COPY silver TO '{out}/silver.parquet' (FORMAT parquet);
"""

GOLD_SQL = """
COPY (
  SELECT {keys}, count(*) AS n_flights, sum(CAST(cancelled AS BIGINT)) AS n_cancelled,
    sum(CAST(NOT cancelled AND dep_delay IS NOT NULL AS BIGINT)) AS n_departed,
    sum(CAST(NOT cancelled AND dep_delay >= 15 AS BIGINT)) AS n_delayed_15,
    avg(CASE WHEN NOT cancelled AND dep_delay IS NOT NULL THEN CAST(dep_delay >= 15 AS DOUBLE) END) AS delay_rate,
    coalesce(sum(CASE WHEN NOT cancelled THEN dep_delay END), 0) AS sum_dep_delay,
    avg(CASE WHEN NOT cancelled THEN dep_delay END) AS mean_dep_delay,
    stddev_pop(CASE WHEN NOT cancelled THEN dep_delay END) AS std_dep_delay,
    max(CASE WHEN NOT cancelled THEN dep_delay END) AS max_dep_delay
  FROM silver GROUP BY {keys}
) TO '{out}/gold_{name}.parquet' (FORMAT parquet);
"""

FEATURES_SQL = """
CREATE OR REPLACE TEMP VIEW labelled AS
SELECT *, CASE WHEN dep_date <= DATE '{train}' THEN 'train'
               WHEN dep_date <= DATE '{validation}' THEN 'validation' ELSE 'test' END AS split
FROM silver WHERE NOT cancelled AND dep_delayed_15 IS NOT NULL;
COPY (
  WITH overall AS (SELECT coalesce(avg(CAST(dep_delayed_15 AS DOUBLE)), 0) AS p FROM labelled WHERE split = 'train'),
  routes AS (SELECT origin, dest, sum(dep_delayed_15) AS delayed, count(*) AS n FROM labelled WHERE split = 'train' GROUP BY ALL)
  SELECT l.*, (r.delayed + {m} * o.p) / (r.n + {m}) AS route_delay_rate
  FROM labelled l LEFT JOIN routes r USING (origin, dest) CROSS JOIN overall o
) TO '{out}/features' (FORMAT parquet, PARTITION_BY (split));
"""


def duckdb_run(spark, settings, out: Path) -> dict[str, float]:
    """Seconds of the same transformations in DuckDB on the bronze tables' Parquet files."""
    import duckdb

    from moulin.contracts import load_contract
    from moulin.delta import DeltaTableStore
    from moulin.usecases.flights.features import ROUTE_SMOOTHING
    from moulin.usecases.flights.mapreduce import STAT_KEYS
    from moulin.usecases.flights.stages import table_uri

    store = DeltaTableStore(spark)

    def files(name: str) -> str:
        return (
            "["
            + ", ".join(f"'{u.removeprefix('file://')}'" for u in store.file_uris(table_uri(settings, name)))
            + "]"
        )

    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET threads TO 2; SET TimeZone = 'UTC'")
    seconds = {}
    start = time.perf_counter()
    con.execute(DUCKDB_SQL.format(flights=files("bronze_flights"), planes=files("bronze_planes"),
                                  weather=files("bronze_weather"), out=out))  # fmt: skip
    seconds["silver"] = time.perf_counter() - start
    start = time.perf_counter()
    for name, keys in STAT_KEYS.items():
        con.execute(GOLD_SQL.format(keys=", ".join(keys), name=name, out=out))
    seconds["gold"] = time.perf_counter() - start
    split = load_contract("flight_features").split
    start = time.perf_counter()
    con.execute(FEATURES_SQL.format(train=split["train_until"], validation=split["validation_until"],
                                    m=ROUTE_SMOOTHING, out=out))  # fmt: skip
    seconds["features"] = time.perf_counter() - start
    seconds["silver_rows"] = con.execute("SELECT count(*) FROM silver").fetchone()[0]
    con.close()
    return seconds


def slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of log(seconds) against log(rows)."""
    xs = [math.log(r) for r, _ in points]
    ys = [math.log(s) for _, s in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else float("nan")


def prepare_1x(home: Path) -> None:
    """Land and gate the twelve monthly drops and the reference sources under ``home`` (their
    specs' landing and the real bronze stage)."""
    from chain import REFERENCE, _land, _run_stage

    from moulin.settings import load_settings
    from moulin.spark import build_spark_session
    from moulin.usecases.flights.sources import prepare_sources

    os.environ["MOULIN_HOME"] = str(home)
    settings = load_settings("local")
    prepare_sources(settings)
    spark = build_spark_session(settings, "moulin-scale-prepare", QUIET)
    spark.sparkContext.setLogLevel("ERROR")
    for source, ds in [*(("flights", ds) for ds in MONTHS), *((s, MONTHS[-1]) for s in REFERENCE)]:
        _land(settings, source, ds)
        _run_stage(spark, settings, "source_bronze", ["--source", source, "--ds", ds, "--no-ge"])
    spark.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factors", default="1,4,16")
    parser.add_argument("--from-home", help="a MOULIN_HOME whose local warehouse holds the 1x bronze tables")
    parser.add_argument("--no-cluster", action="store_true", help="skip the standalone cluster over HDFS")
    args = parser.parse_args()
    factors = [int(f) for f in args.factors.split(",")]
    os.environ.setdefault("MOULIN_SPARK_MASTER", "local[2]")
    from moulin.settings import load_settings
    from moulin.spark import build_spark_session

    work = Path(tempfile.mkdtemp(prefix="moulin-scale-"))
    source_home = Path(args.from_home) if args.from_home else work / "source"
    if not args.from_home:
        print(f"landing and gating the 1x data under {source_home} ...", flush=True)
        prepare_1x(source_home)
    source = replace(load_settings("local"), home=source_home)

    engines: dict[str, dict[int, tuple[int, dict[str, float]]]] = {"spark local[2]": {}, "duckdb": {}}
    os.environ["MOULIN_HOME"] = str(work / "local")
    local = load_settings("local")
    spark = build_spark_session(local, "moulin-scale-local", QUIET)
    spark.sparkContext.setLogLevel("ERROR")
    for k in factors:
        target = replace(local, home=work / f"local-{k}x")
        rows = replicate(spark, source, target, k)
        print(f"{k:>3}x: {rows:,} bronze flights", flush=True)
        engines["spark local[2]"][k] = (rows, spark_run(spark, target))
        print(f"      spark local[2] {engines['spark local[2]'][k][1]}", flush=True)
        duck = duckdb_run(spark, target, work / f"duckdb-{k}x")
        if duck.pop("silver_rows") != rows:  # a left join per flight: as many silver rows as bronze
            raise SystemExit(f"DuckDB's silver has not {rows:,} rows: its SQL does not match the stages")
        engines["duckdb"][k] = (rows, duck)
        print(f"      duckdb {duck}", flush=True)
    spark.stop()

    if not args.no_cluster:
        engines["spark standalone + HDFS"] = cluster_runs(work, source, factors)
    report(engines, factors)


def cluster_runs(work: Path, source, factors: list[int]) -> dict[int, tuple[int, dict[str, float]]]:
    """The same stages on a Spark standalone master with 2 workers over a local HDFS (both started here)."""
    from moulin.cluster.local import LocalCluster
    from moulin.cluster.ports import free_hdfs_port_env, port_free
    from moulin.settings import load_settings
    from moulin.spark import build_spark_session

    ports = next(
        list(range(b, b + 4)) for b in range(41000, 48000, 50) if all(port_free(p) for p in range(b, b + 4))
    )
    dist = source.dist_dir or source.home / "dist"
    if not (dist / "hadoop-2.7.3").exists():
        dist = Path.home() / ".moulin" / "dist"  # where bin/setup puts the Hadoop jars
    env = {**free_hdfs_port_env(), "MOULIN_HOME": str(work / "cluster"), "MOULIN_DIST_DIR": str(dist)}
    os.environ.update(env)
    settings = load_settings("hdfs-local")
    settings = replace(
        settings,
        spark=replace(settings.spark, standalone_port=ports[0], standalone_webui_port=ports[1],
                      worker_webui_base_port=ports[2], master=f"spark://127.0.0.1:{ports[0]}"),
    )  # fmt: skip
    cluster = LocalCluster(settings, log=lambda m: print(f"  cluster: {m}", flush=True))
    out: dict[int, tuple[int, dict[str, float]]] = {}
    try:
        cluster.up(with_spark=True)
        conf = {**QUIET, "spark.executor.memory": "1g", "spark.cores.max": "2"}
        spark = build_spark_session(settings, "moulin-scale-cluster", conf)
        spark.sparkContext.setLogLevel("ERROR")
        for k in factors:
            target = replace(settings, warehouse_uri=f"{settings.hdfs.namenode_uri}/scale-{k}x")
            rows = replicate(spark, source, target, k)
            out[k] = (rows, spark_run(spark, target))
            print(f"{k:>3}x on the standalone cluster over HDFS: {out[k][1]}", flush=True)
        spark.stop()
    finally:
        cluster.down()
    return out


def report(engines: dict[str, dict[int, tuple[int, dict[str, float]]]], factors: list[int]) -> None:
    """The table of seconds and rows/s, the slopes and the Spark / DuckDB ratios."""
    print(
        f"\n{'engine':<26} {'factor':>6} {'rows':>11} {'silver s':>9} {'gold s':>7} {'features s':>10} {'total s':>8} {'rows/s':>9}"
    )
    totals: dict[str, dict[int, float]] = {}
    for engine, runs in engines.items():
        for k in factors:
            if k not in runs:
                continue
            rows, sec = runs[k]
            total = sec["silver"] + sec["gold"] + sec["features"]
            totals.setdefault(engine, {})[k] = total
            print(f"{engine:<26} {k:>5}x {rows:>11,} {sec['silver']:>9.1f} {sec['gold']:>7.1f} "
                  f"{sec['features']:>10.1f} {total:>8.1f} {rows / total:>9,.0f}")  # fmt: skip
    print()
    for engine, runs in engines.items():
        points = [(runs[k][0], totals[engine][k]) for k in factors if k in runs]
        if len(points) > 1:
            print(f"log-log slope of time against rows, {engine}: {slope(points):.2f} (goal <= 1.1)")
    for engine in [e for e in engines if e != "duckdb"]:
        ratios = [
            f"{k}x {totals[engine][k] / totals['duckdb'][k]:.1f}"
            for k in factors
            if k in totals.get(engine, {})
        ]
        print(f"{engine} / DuckDB: {', '.join(ratios)} (goal: falling as the data grows)")


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # deltalake's native pools can abort at interpreter exit (delta-rs#2184)
