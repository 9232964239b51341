"""A cluster on hosts (network namespaces on one bridge): the NameNode, two DataNodes,
the Spark master, two workers and moulin's driver each on a host of its own.

From the driver's host, moulin writes a Delta table (Spark on the workers stages
the files, deltalake commits over HDFS RPC) that deltalake and Spark read back
exactly, and a file through WebHDFS; no daemon serves on loopback; removal leaves
no namespace, link, hosts file or process.

Marker ``hosts`` (deselected by default, about 3-4 minutes on 2 cores, root):

    PYTHONPATH=. .venv/bin/python -m pytest tests/integration/test_cluster_hosts.py -m hosts -q
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hosts_helpers import REPO, cluster_on_hosts, hosts_env, hosts_settings, python_on_driver

from moulin.cluster import netns
from moulin.cluster.multihost import MultiHostCluster

pytestmark = [
    pytest.mark.hosts,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("ip") is None, reason="hosts as network namespaces need root"
    ),
]


def run_on_driver(cluster: MultiHostCluster, *args: str, timeout: float = 420) -> dict:
    """Run ``tests/hosts_driver.py ARGS`` on the driver's host; its JSON line."""
    return python_on_driver(cluster, "hosts_driver.py", *args, timeout=timeout)


def leftovers_of(stem: str) -> dict[str, list[str]]:
    """Namespaces, links, hosts files and processes of the network ``stem...`` still there."""
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    procs = subprocess.run(["pgrep", "-af", stem], capture_output=True, text=True).stdout
    return {
        "namespaces": netns.namespaces_with(stem),
        "links": [line for line in links.splitlines() if stem in line],
        "etc": [p.name for p in netns.NETNS_ETC_DIR.glob(f"{stem}*")] if netns.NETNS_ETC_DIR.is_dir() else [],
        "processes": [line for line in procs.splitlines() if "pgrep" not in line],
    }


@pytest.fixture(scope="module")
def hosts_cluster(tmp_path_factory: pytest.TempPathFactory):
    """The cluster on hosts, up for this module; removed (namespaces, links, processes)
    even when a test or the start fails."""
    with cluster_on_hosts(
        hosts_settings(tmp_path_factory.mktemp("hosts-home")), datanodes=2, spark=True
    ) as cluster:
        yield cluster


def test_delta_table_written_from_the_driver_host_reads_back_exactly_and_spark_runs_on_the_workers(
    hosts_cluster: MultiHostCluster,
) -> None:
    network = hosts_cluster.network()
    out = run_on_driver(hosts_cluster, "roundtrip", "hosts/roundtrip", "5000")
    workers = {network.host(f"spark-worker-{i}").address for i in range(2)}
    assert out["driver"] == network.host("driver").address
    assert out["task_hosts"] and set(out["task_hosts"]) <= workers, out
    assert out["delta_exact"] and out["delta_rows"] == 5000 and out["spark_count"] == 5000, out
    assert out["webhdfs_exact"], out
    status = hosts_cluster.cluster().status()
    assert status.live_datanodes == 2 and len(status.spark_workers) == 2


def test_no_daemon_serves_its_ports_on_loopback(hosts_cluster: MultiHostCluster) -> None:
    network = hosts_cluster.network()
    settings = hosts_cluster.settings()
    configured = {
        settings.hdfs.namenode_rpc_port,
        settings.hdfs.namenode_http_port,
        settings.spark.standalone_port,
    }
    configured |= {p for i in range(settings.hdfs.datanodes) for p in settings.hdfs.datanode_ports(i)}
    for host in network.hosts:
        listening = subprocess.run(
            [*network.exec_prefix(host.role), "ss", "-ltnH"], capture_output=True, text=True, timeout=10
        ).stdout.split("\n")
        for line in filter(None, listening):
            local = line.split()[3]
            address, port = local.rsplit(":", 1)
            if int(port) in configured:
                assert host.address in address, f"{host.role} serves {local}, not on its address"
            # Only the DataNode's internal web server (behind its HTTP port) is on loopback.
            if "127.0.0.1" in address:
                assert host.role.startswith("datanode-"), f"{host.role} listens on {local}"


def test_cli_status_names_the_hosts_and_exec_runs_on_the_drivers_host(
    hosts_cluster: MultiHostCluster,
) -> None:
    network = hosts_cluster.network()
    moulin = str(Path(sys.executable).with_name("moulin"))
    # The session's MOULIN_* (another cluster's ports) are not this cluster's.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOULIN_")}
    env.update(hosts_env(hosts_cluster.base.home), PYTHONPATH=str(REPO))
    status = subprocess.run(
        [moulin, "cluster", "status"], capture_output=True, text=True, env=env, timeout=120
    )
    assert status.returncode == 0, status.stderr
    assert "live datanodes: 2" in status.stdout and "spark workers: 2" in status.stdout, status.stdout
    for host in network.hosts:
        assert f"{host.address:<15} {host.hostname}" in status.stdout, status.stdout
    namenode = network.host("namenode").hostname
    script = f"getent hosts {namenode}; echo $MOULIN_HDFS_HOST $SPARK_LOCAL_IP"
    ran = subprocess.run(
        [moulin, "cluster", "exec", "--", "sh", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    resolved, settings_line = ran.stdout.strip().splitlines()
    assert resolved.split()[0] == network.host("namenode").address
    assert settings_line.split() == [namenode, network.host("driver").address]


def test_down_removes_every_namespace_link_hosts_file_and_process(hosts_cluster: MultiHostCluster) -> None:
    network = hosts_cluster.network()
    pids = [pid for ns in network.namespaces for pid in netns.pids_in(ns)]
    assert len(pids) >= 6  # NameNode, 2 DataNodes, master, 2 workers
    hosts_cluster.down()
    assert leftovers_of(network.stem) == {"namespaces": [], "links": [], "etc": [], "processes": []}
    assert not any(Path(f"/proc/{pid}").exists() and netns._alive(pid) for pid in pids)
    assert hosts_cluster.network() is None
    assert network.stem not in netns.leftovers()
