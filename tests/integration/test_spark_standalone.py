"""`moulin cluster up --spark`: a Spark standalone master and two workers run a job on HDFS data."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from dataclasses import replace

import pytest

from moulin.cluster.local import LocalCluster
from moulin.cluster.ports import port_free
from moulin.storage import WarehouseFS

pytestmark = pytest.mark.integration


def _free_ports(count: int) -> list[int]:
    for base in range(41000, 48000, 50):
        ports = list(range(base, base + count))
        if all(port_free(p) for p in ports):
            return ports
    raise RuntimeError("no free ports for the Spark standalone cluster")


def test_standalone_cluster_runs_a_job_reading_hdfs(hdfs_cluster, hdfs_settings) -> None:
    master, webui, w0, w1 = _free_ports(4)
    spark_settings = replace(
        hdfs_settings.spark, standalone_port=master, standalone_webui_port=webui,
        worker_webui_base_port=w0, worker_memory="1g",
    )  # fmt: skip
    assert w1 == w0 + 1
    settings = replace(hdfs_settings, spark=spark_settings)
    cluster = LocalCluster(settings, log=lambda m: None)
    uri = settings.table_uri("tests", f"standalone-{uuid.uuid4().hex}.txt")
    WarehouseFS(settings).write_bytes(uri, "".join(f"{i}\n" for i in range(1000)).encode())
    try:
        status = cluster.up(with_spark=True)
        assert status.spark_master_running
        assert len(status.spark_workers) == 2
        job = textwrap.dedent(f"""
            from pyspark.sql import SparkSession
            spark = (SparkSession.builder.master("spark://127.0.0.1:{master}")
                     .config("spark.executor.memory", "512m").config("spark.cores.max", "2")
                     .config("spark.pyspark.python", {sys.executable!r}).getOrCreate())
            total = spark.read.text({uri!r}).selectExpr("sum(cast(value as int))").first()[0]
            print("TOTAL", total)
            spark.stop()
        """)
        result = subprocess.run([sys.executable, "-c", job], capture_output=True, text=True, timeout=240)
        assert f"TOTAL {sum(range(1000))}" in result.stdout, result.stderr[-2000:]
    finally:
        stopped = cluster.down(spark_only=True)
    assert set(stopped) == {"spark-master", "spark-worker-0", "spark-worker-1"}
    assert hdfs_cluster.status().live_datanodes == 3
