"""What the tests of a cluster on hosts (network namespaces, marker ``hosts``) share: the
settings of a small cluster, its start and removal whatever happens, and scripts run on
the driver's host that answer with a JSON line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from moulin.cluster import netns
from moulin.cluster.multihost import MultiHostCluster
from moulin.settings import Settings, load_settings

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent


def hosts_env(home: Path, workers: int = 2, **extra: str) -> dict[str, str]:
    """The ``MOULIN_*`` variables of a small cluster on hosts under ``home`` (each host has
    the default ports: hosts share none), with ``extra`` ones (``MOULIN_...=value``)."""
    return {
        "MOULIN_HOME": str(home),
        "MOULIN_DIST_DIR": os.environ.get("MOULIN_DIST_DIR", str(Path.home() / ".moulin" / "dist")),
        "MOULIN_SPARK_STANDALONE_WORKERS": str(workers),
        "MOULIN_SPARK_WORKER_MEMORY": "1g",
        "MOULIN_HDFS_REPLICATION": "2",
        "MOULIN_HDFS_HEAP_MB": "384",
        **extra,
    }


def hosts_settings(home: Path, workers: int = 2, **extra: str) -> Settings:
    """Settings of :func:`hosts_env`."""
    return load_settings("hdfs-local", env=hosts_env(home, workers, **extra))


@contextmanager
def cluster_on_hosts(settings: Settings, **up: object) -> Iterator[MultiHostCluster]:
    """The cluster on hosts of ``settings``, started with ``up`` (``datanodes=``, ``spark=``,
    ``kerberos=``) after the networks of earlier killed runs are removed; removed
    (namespaces, links, processes) even when the start, a test or a SIGTERM fails it."""
    netns.remove_leftovers()
    cluster = MultiHostCluster(settings, log=lambda m: None)

    def interrupt(signum, frame):  # SIGTERM (e.g. `timeout`) still runs the teardown
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    network = None
    try:
        cluster.up(owner_pid=os.getpid(), **up)
        network = cluster.network()
        yield cluster
    finally:
        cluster.down()
        if network is not None:
            netns.destroy(network)
        signal.signal(signal.SIGTERM, previous)


def driver_json(cluster: MultiHostCluster, argv: list[str], env: dict[str, str], timeout: float) -> dict:
    """Run ``argv`` on the driver's host (``PYTHONPATH`` the repository, plus ``env``); the
    last JSON line it printed.  Fails with its output when it fails or prints none."""
    command = cluster.driver_command(argv, {"PYTHONPATH": str(REPO), **env})
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in result.stdout.replace("\r", "\n").splitlines() if line.startswith("{")]
    output = (result.stdout[-3000:] + "\n" + result.stderr[-5000:]).strip()
    assert result.returncode == 0 and lines, f"{' '.join(argv[:3])} failed ({result.returncode}):\n{output}"
    return json.loads(lines[-1])


def python_on_driver(
    cluster: MultiHostCluster,
    script: str,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 420,
) -> dict:
    """``tests/<script> ARGS`` run by this Python on the driver's host; its JSON line."""
    base = {"MOULIN_SPARK_DRIVER_MEMORY": "1g", "PYSPARK_PYTHON": sys.executable}
    return driver_json(
        cluster, [sys.executable, str(TESTS / script), *args], {**base, **(env or {})}, timeout
    )
