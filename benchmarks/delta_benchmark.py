"""Delta write overhead and file skipping of moulin.delta, against plain Spark Parquet.

    .venv/bin/python benchmarks/delta_benchmark.py [--rows 10000000] [--hdfs] [--files 16]

Writes the same DataFrame as plain Spark Parquet and as a Delta table through
``DeltaTableStore`` on local disk (and, with ``--hdfs``, on a local HDFS started
for the run under a temporary MOULIN_HOME with free ports, then stopped), prints
the Delta/Parquet write-time ratio (target <= 1.15), and a selective read
(``id < rows/files``) whose files are chosen from the Delta log's statistics
against a full scan (target >= 5x fewer bytes).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_df(spark, rows: int, files: int):
    from pyspark.sql import functions as F

    return spark.range(0, rows, numPartitions=files).select(
        "id",
        ((F.col("id") % 12) + 1).cast("int").alias("month"),
        F.element_at(
            F.array(*[F.lit(c) for c in ("AA", "DL", "UA", "B6", "WN", "EV")]),
            ((F.col("id") % 6) + 1).cast("int"),
        ).alias("carrier"),
        ((F.hash("id") % 1200) / 10.0).alias("dep_delay"),
        (F.abs(F.hash("id", F.lit(1))) % 5000).cast("int").alias("distance"),
        F.expr("date_add(date'2013-01-01', cast(id % 365 as int))").alias("day"),
        F.expr("timestamp_seconds(1357000000 + id)").alias("sched"),
    )


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(spark, base: str, rows: int, files: int, repeat: int) -> dict:
    from moulin.delta import DeltaTableStore
    from moulin.delta.hadoop_fs import HadoopFS

    store = DeltaTableStore(spark)
    fs = HadoopFS(spark, base)
    df = make_df(spark, rows, files)
    # warm up the JVM, the codecs and the FS client
    make_df(spark, 10_000, 2).write.mode("overwrite").parquet(f"{base}/warmup-parquet")
    store.write(make_df(spark, 10_000, 2), f"{base}/warmup-delta", mode="overwrite")
    parquet_t, delta_t = [], []
    for i in range(repeat):
        parquet_t.append(timed(lambda i=i: df.write.mode("overwrite").parquet(f"{base}/parquet-{i}")))
        delta_t.append(timed(lambda i=i: store.write(df, f"{base}/delta-{i}", mode="overwrite")))
    uri = f"{base}/delta-0"
    parquet_best, delta_best = min(parquet_t), min(delta_t)

    snap = store.snapshot(uri)
    all_files = snap.files()
    cutoff = rows // files
    selected = snap.select([("id", "<", cutoff)])
    all_bytes = sum(f.size for f in all_files)
    sel_bytes = sum(f.size for f in selected)
    full_t = timed(lambda: store.read(uri).agg({"dep_delay": "avg"}).collect())
    sel_t = timed(lambda: store.read(uri, filters=[("id", "<", cutoff)]).agg({"dep_delay": "avg"}).collect())
    n_sel = store.read(uri, filters=[("id", "<", cutoff)]).count()
    parquet_bytes = sum(f.size for f in fs.list_files(f"{base}/parquet-0") if f.relative.endswith(".parquet"))
    return {
        "parquet_s": parquet_t,
        "delta_s": delta_t,
        "ratio": delta_best / parquet_best,
        "files": len(all_files),
        "selected_files": len(selected),
        "all_bytes": all_bytes,
        "parquet_bytes": parquet_bytes,
        "selected_bytes": sel_bytes,
        "bytes_factor": all_bytes / max(sel_bytes, 1),
        "full_scan_s": full_t,
        "selective_s": sel_t,
        "selected_rows": n_sel,
        "cutoff": cutoff,
    }


def report(where: str, rows: int, r: dict) -> None:
    print(f"\n== {where}: {rows:,} rows, {r['files']} data files ==")
    print(f"plain Parquet write: {', '.join(f'{t:.2f}s' for t in r['parquet_s'])}")
    print(f"Delta write        : {', '.join(f'{t:.2f}s' for t in r['delta_s'])}")
    ok = "OK" if r["ratio"] <= 1.15 else "ABOVE TARGET"
    print(f"Delta/Parquet (best of each): {r['ratio']:.3f}  (target <= 1.15: {ok})")
    print(f"bytes: Delta data {r['all_bytes']:,}  Parquet data {r['parquet_bytes']:,}")
    ok = "OK" if r["bytes_factor"] >= 5 else "BELOW TARGET"
    print(
        f"selective read id < {r['cutoff']:,}: {r['selected_files']}/{r['files']} files, "
        f"{r['selected_bytes']:,} of {r['all_bytes']:,} bytes -> {r['bytes_factor']:.1f}x fewer "
        f"(target >= 5x: {ok}); {r['selected_rows']:,} rows"
    )
    print(f"time: full scan {r['full_scan_s']:.2f}s, selective {r['selective_s']:.2f}s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--files", type=int, default=16, help="Spark partitions = data files per write")
    parser.add_argument("--repeat", type=int, default=3, help="writes of each kind (best is compared)")
    parser.add_argument(
        "--hdfs", action="store_true", help="also benchmark on a local HDFS started for the run"
    )
    parser.add_argument("--master", default="local[*]")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="moulin-delta-bench-"))
    env = {"MOULIN_HOME": str(tmp / "home"), "MOULIN_SPARK_MASTER": args.master}
    env.setdefault(
        "MOULIN_DIST_DIR", os.environ.get("MOULIN_DIST_DIR", str(Path.home() / ".moulin" / "dist"))
    )
    if args.hdfs:
        from moulin.cluster.ports import free_hdfs_port_env

        env.update(free_hdfs_port_env())
    os.environ.update(env)
    from moulin.settings import load_settings
    from moulin.spark import build_spark_session

    local = load_settings("local")
    cluster = None
    try:
        extra = {}
        if args.hdfs:
            from moulin.cluster.local import LocalCluster

            hdfs_settings = load_settings("hdfs-local")
            cluster = LocalCluster(hdfs_settings, log=lambda msg: None)
            print(f"starting a local HDFS at {hdfs_settings.hdfs.namenode_uri} ...", flush=True)
            cluster.up()
            extra = {
                "spark.hadoop.dfs.replication": str(hdfs_settings.hdfs.replication),
                "spark.hadoop.dfs.client.block.write.replace-datanode-on-failure.policy": "NEVER",
            }
        extra["spark.ui.showConsoleProgress"] = "false"
        spark = build_spark_session(local, app_name="delta-benchmark", extra_conf=extra)
        print(f"Spark {spark.version}, master {spark.sparkContext.master}, {os.cpu_count()} CPUs", flush=True)
        targets = [("local disk", (tmp / "data").as_uri())]
        if args.hdfs:
            targets.append(("local HDFS", f"{hdfs_settings.warehouse}/bench-{os.getpid()}"))
        for where, base in targets:
            report(where, args.rows, bench(spark, base, args.rows, args.files, args.repeat))
        spark.stop()
    finally:
        if cluster is not None:
            cluster.down()
        shutil.rmtree(tmp, ignore_errors=True)
    sys.stdout.flush()
    os._exit(0)  # deltalake's native pools can abort at interpreter exit (delta-rs#2184)


if __name__ == "__main__":
    main()
