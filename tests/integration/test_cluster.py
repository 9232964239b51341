"""The real local HDFS: WebHDFS, Spark and the Hadoop shell agree; a DataNode can die."""

from __future__ import annotations

import time
import uuid

import pytest
from hdfs import InsecureClient

from moulin.cluster.local import LocalCluster
from moulin.storage import WarehouseFS

pytestmark = pytest.mark.integration


def _client(settings) -> InsecureClient:
    return InsecureClient(settings.hdfs.webhdfs_url, user=settings.hdfs_user)


def test_cluster_reports_three_live_datanodes(hdfs_cluster: LocalCluster) -> None:
    status = hdfs_cluster.status()
    assert status.namenode_running
    assert status.live_datanodes == 3
    assert status.capacity_total > 0


def test_webhdfs_file_is_read_by_spark_and_listed_by_the_hadoop_shell(
    hdfs_cluster: LocalCluster, hdfs_settings, spark
) -> None:
    path = f"/tests/webhdfs-{uuid.uuid4().hex}/people.csv"
    _client(hdfs_settings).write(path, data="id,name\n1,ada\n2,grace\n3,edsger\n", encoding="utf-8")

    df = spark.read.option("header", True).csv(f"{hdfs_settings.hdfs.namenode_uri}{path}")
    assert sorted(r["name"] for r in df.collect()) == ["ada", "edsger", "grace"]

    listing = hdfs_cluster.fs_shell("-ls", path.rsplit("/", 1)[0]).stdout
    assert path in listing
    assert " 2 " in listing  # replication factor 2, as configured


def test_up_twice_starts_nothing_twice(hdfs_cluster: LocalCluster) -> None:
    before = hdfs_cluster.running()
    messages: list[str] = []
    again = LocalCluster(hdfs_cluster.settings, log=messages.append)
    again.up()
    assert again.running() == before
    assert all(m.startswith("already running") for m in messages), messages


def test_port_taken_is_named(hdfs_settings, tmp_path) -> None:
    from dataclasses import replace

    from moulin.cluster.daemons import ClusterError

    # Another home with the same ports: its NameNode cannot bind the taken RPC port.
    other = LocalCluster(replace(hdfs_settings, home=tmp_path / "other"), log=lambda m: None)
    with pytest.raises(ClusterError, match=str(hdfs_settings.hdfs.namenode_rpc_port)):
        other.up()
    assert other.running() == {}


def test_losing_one_datanode_keeps_old_files_readable_and_new_writes_working(
    hdfs_cluster: LocalCluster, hdfs_settings, spark
) -> None:
    client = _client(hdfs_settings)
    fs = WarehouseFS(hdfs_settings)
    base = f"/tests/dn-loss-{uuid.uuid4().hex}"
    payloads = {f"{base}/f{i}.txt": f"file {i}\n" * (1000 + i) for i in range(6)}
    for path, text in payloads.items():
        client.write(path, data=text, encoding="utf-8")
    try:
        hdfs_cluster.stop_datanode(2)
        nn = hdfs_settings.hdfs.namenode_uri
        # The HDFS client (Spark's, the Hadoop shell's) fails over to a live replica.
        read_back = dict(spark.sparkContext.wholeTextFiles(f"{nn}{base}").collect())
        assert {k.split(nn, 1)[-1]: v for k, v in read_back.items()} == payloads
        for path, text in payloads.items():
            assert hdfs_cluster.fs_shell("-cat", path).stdout == text
            # WebHDFS through moulin's storage layer retries another replica.
            assert fs.read_bytes(f"{nn}{path}").decode() == text
        # New writes while the DataNode is down: Spark, and WebHDFS through moulin.
        target = f"{nn}{base}/after"
        spark.range(1000).write.parquet(target)
        assert spark.read.parquet(target).count() == 1000
        fs.write_bytes(f"{nn}{base}/new.txt", b"still writable\n")
        assert fs.read_bytes(f"{nn}{base}/new.txt") == b"still writable\n"
    finally:
        hdfs_cluster.up()  # restarts the stopped DataNode only
    deadline = time.monotonic() + 60
    while hdfs_cluster.status().live_datanodes < 3 and time.monotonic() < deadline:
        time.sleep(1)
    assert hdfs_cluster.status().live_datanodes == 3
