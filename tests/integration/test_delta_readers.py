"""Tables written by moulin.delta read by independent readers, the ``moulin table``
CLI, and (where its jar is on the classpath) Delta Lake's own Spark source."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest
from pyspark.sql import functions as F

from moulin.delta import DeltaTableStore

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _table(spark, uri: str):
    df = spark.range(0, 40, numPartitions=2).select(
        "id",
        ((F.col("id") % 4) + 1).cast("int").alias("month"),
        F.concat(F.lit("c"), (F.col("id") % 3).cast("string")).alias("carrier"),
        (F.col("id") / 4).alias("delay"),
        F.expr("date_add(date'2013-01-01', cast(id as int))").alias("day"),
        F.expr("timestamp_seconds(1357000000 + id * 3600)").alias("sched"),
    )
    DeltaTableStore(spark).write(df, uri, partition_by=["month"])
    DeltaTableStore(spark).write(df.filter("id < 8").withColumn("id", F.col("id") + 100), uri)
    return df


def _replay_log(table_dir: Path) -> list[str]:
    """Data files of the latest version, replaying the JSON log by hand (an independent reader)."""
    live: dict[str, None] = {}
    for entry in sorted((table_dir / "_delta_log").glob("*.json")):
        for line in entry.read_text().splitlines():
            action = json.loads(line)
            if "add" in action:
                live[unquote(action["add"]["path"])] = None
            elif "remove" in action:
                live.pop(unquote(action["remove"]["path"]), None)
    return [str(table_dir / p) for p in live]


def test_independent_readers_see_same_rows_and_schema(spark, local_dir) -> None:
    import duckdb
    import polars as pl
    from deltalake import DeltaTable

    uri = f"{local_dir}/flights"
    _table(spark, uri)
    expected = sorted(tuple(r) for r in DeltaTableStore(spark).read(uri).collect())
    assert len(expected) == 48
    names = ["id", "month", "carrier", "delay", "day", "sched"]

    arrow = DeltaTable(uri).to_pyarrow_table()
    assert arrow.schema.names == names
    assert [str(t) for t in arrow.schema.types] == [
        "int64",
        "int32",
        "string",
        "double",
        "date32[day]",
        "timestamp[us, tz=UTC]",
    ]
    as_tuples = lambda recs: sorted(  # noqa: E731
        (r["id"], r["month"], r["carrier"], r["delay"], r["day"], r["sched"].replace(tzinfo=None))
        for r in recs
    )
    assert as_tuples(arrow.to_pylist()) == expected

    frame = pl.read_delta(uri)
    assert frame.columns == names and frame.height == 48
    assert as_tuples(frame.to_dicts()) == expected

    files = _replay_log(Path(uri.removeprefix("file://")))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rel = con.sql(
        f"SELECT id, month, carrier, delay, day, sched FROM read_parquet({files!r}, hive_partitioning = true)"
    )
    got = sorted((r[0], int(r[1]), r[2], r[3], r[4], r[5].replace(tzinfo=None)) for r in rel.fetchall())
    assert got == expected


def test_moulin_table_count_twenty_times(spark, local_dir, moulin_env) -> None:
    uri = f"{local_dir}/cli"
    _table(spark, uri)
    cli = REPO / ".venv" / "bin" / "moulin"
    cmd = [str(cli)] if cli.exists() else [sys.executable, "-m", "moulin.cli"]
    env = {**os.environ, "MOULIN_PROFILE": "local"}
    for i in range(20):
        done = subprocess.run(
            [*cmd, "table", "count", uri], capture_output=True, text=True, env=env, timeout=120
        )
        assert done.returncode == 0, f"run {i}: rc={done.returncode} {done.stderr[-2000:]}"
        assert done.stdout.strip() == "48"
    for action in ("show", "schema", "history"):
        done = subprocess.run(
            [*cmd, "table", action, uri], capture_output=True, text=True, env=env, timeout=120
        )
        assert done.returncode == 0, done.stderr[-2000:]
    done = subprocess.run(
        [*cmd, "table", "count", f"{local_dir}/nope"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 1 and "no Delta table at" in done.stderr


def _delta_spark_available(spark) -> bool:
    try:
        spark._jvm.java.lang.Class.forName("io.delta.sql.DeltaSparkSessionExtension")
        return True
    except Exception:  # noqa: BLE001 - py4j raises a generic error for ClassNotFound
        return False


def test_delta_spark_interop(spark, local_dir) -> None:
    if not _delta_spark_available(spark):
        pytest.skip(
            "io.delta.sql.DeltaSparkSessionExtension is not on Spark's classpath (the delta-spark jar "
            "comes from Maven Central, unreachable here): native `delta` source interop not tested"
        )
    uri = f"{local_dir}/interop"
    df = _table(spark, uri)
    native = spark.read.format("delta").load(uri)
    assert native.count() == 48
    other = f"{local_dir}/native"
    df.write.format("delta").partitionBy("month").save(other)
    assert DeltaTableStore(spark).read(other).count() == 40
