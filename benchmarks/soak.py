"""Soak: hundreds of commits to one Delta table, and many monthly drops landed in a row.

    .venv/bin/python benchmarks/soak.py [--commits 300] [--rows 100] [--no-compaction] [--hdfs --drops 50]

Appends ``--commits`` small batches to one table (local disk) through
``DeltaTableStore.write`` and prints, at commits 10, 100 and the last: the time
to open the table (deltalake, latest version), to list its files with
statistics, and Spark's ``read().count()``, the number of data files and of
checkpoints in the log.  Auto-compaction is on unless ``--no-compaction``.
With ``--hdfs`` it then lands ``--drops`` monthly raw files in a row on a local
HDFS (started for the run) and prints the landing time of the first, middle and
last drop.  Every figure is the median of 5 repeats.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def median_s(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def table_figures(spark, store, uri: str) -> dict:
    from deltalake import DeltaTable

    from moulin.delta.log import Snapshot, open_delta

    log = Path(uri.removeprefix("file://")) / "_delta_log"
    return {
        "open_ms": 1000 * median_s(lambda: DeltaTable(uri).version()),
        "files_ms": 1000 * median_s(lambda: Snapshot(uri, open_delta(uri)).files()),
        "count_s": median_s(lambda: store.read(uri).count()),
        "data_files": len(store.file_uris(uri)),
        "checkpoints": len(list(log.glob("*.checkpoint.parquet"))),
        "rows": store.count(uri),
    }


def soak_commits(spark, base: str, commits: int, rows: int, compaction: bool) -> list[tuple[int, dict]]:
    from moulin.delta import AppTransaction, CompactionPolicy, DeltaTableStore

    store = DeltaTableStore(spark, compaction=CompactionPolicy() if compaction else None)
    uri = f"{base}/soak"
    marks = sorted({10, 100, commits} & set(range(1, commits + 1)))
    out = []
    for i in range(commits):
        df = spark.range(i * rows, (i + 1) * rows, numPartitions=1).selectExpr(
            "id", "cast(id % 7 as int) as k", "id * 1.5 as x"
        )
        store.write(df, uri, transaction=AppTransaction("soak", i))
        if i + 1 in marks:
            figures = table_figures(spark, store, uri)
            if figures["rows"] != (i + 1) * rows:
                raise SystemExit(f"after {i + 1} commits the table holds {figures['rows']} rows")
            out.append((i + 1, figures))
            print(f"  commit {i + 1}: {figures}", flush=True)
    return out


def soak_drops(settings, drops: int, tmp: Path) -> list[tuple[int, float]]:
    from moulin.ingest.landing import land_file, read_manifest
    from moulin.storage import WarehouseFS

    fs = WarehouseFS(settings)
    out = []
    for n in range(drops):
        year, month = 2013 + n // 12, n % 12 + 1
        ds = f"{year}-{month:02d}-01"
        local = tmp / f"flights_{year}_{month:02d}.csv"
        local.write_bytes(b"id,x\n" + b"".join(f"{i},{i * n}\n".encode() for i in range(20000)))
        start = time.perf_counter()
        land_file(settings, "soak_flights", ds, local, fs=fs)
        seconds = time.perf_counter() - start
        manifest = read_manifest(settings, "soak_flights", ds, fs) or {}
        if [f["rows"] for f in manifest.get("files", [])] != [20000]:
            raise SystemExit(f"drop {ds}: manifest {manifest}")
        out.append((n + 1, seconds))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=300)
    parser.add_argument("--rows", type=int, default=100, help="rows per commit")
    parser.add_argument("--no-compaction", action="store_true", help="turn auto-compaction off")
    parser.add_argument("--hdfs", action="store_true", help="also land monthly drops on a local HDFS")
    parser.add_argument("--drops", type=int, default=50)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="moulin-soak-"))
    os.environ.update({"MOULIN_HOME": str(tmp / "home"), "MOULIN_SPARK_MASTER": "local[2]"})
    if args.hdfs:
        from moulin.cluster.ports import free_hdfs_port_env

        os.environ.update(free_hdfs_port_env())
    from moulin.settings import load_settings
    from moulin.spark import build_spark_session

    spark = build_spark_session(load_settings("local"), app_name="moulin-soak")
    spark.sparkContext.setLogLevel("ERROR")
    cluster = None
    try:
        mode = "off" if args.no_compaction else "on"
        print(f"{args.commits} commits of {args.rows} rows, auto-compaction {mode} ...", flush=True)
        marks = soak_commits(
            spark, (tmp / "tables").as_uri(), args.commits, args.rows, not args.no_compaction
        )
        print("\n| commits | open ms | files+stats ms | Spark count s | data files | checkpoints |")
        print("|---|---|---|---|---|---|")
        for n, f in marks:
            print(
                f"| {n} | {f['open_ms']:.1f} | {f['files_ms']:.1f} | {f['count_s']:.2f} | "
                f"{f['data_files']} | {f['checkpoints']} |"
            )
        if args.hdfs:
            from moulin.cluster.local import LocalCluster

            hdfs_settings = load_settings("hdfs-local")
            cluster = LocalCluster(hdfs_settings, log=lambda msg: None)
            cluster.up()
            print(f"\n{args.drops} monthly drops landed on HDFS ...", flush=True)
            times = soak_drops(hdfs_settings, args.drops, tmp)
            picks = sorted({1, max(1, args.drops // 2), args.drops})
            print("| drop | landing s |\n|---|---|")
            for n, seconds in times:
                if n in picks:
                    print(f"| {n} | {seconds:.2f} |")
            print(f"all {args.drops} manifests checked (20,000 rows each)")
        return 0
    finally:
        if cluster is not None:
            cluster.down()
        spark.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
