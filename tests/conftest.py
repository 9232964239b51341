"""Session-wide fixtures: one settings object, one Spark session and one real
local HDFS cluster per test session (started on first use, stopped at the end).

Tests run under a private MOULIN_HOME with free ports, so they never touch a
cluster a developer started by hand.  The Hadoop jars are shared (~/.moulin/dist).
"""

from __future__ import annotations

import logging
import os
import random
import signal
from dataclasses import replace
from pathlib import Path

import pytest

from moulin.cluster.ports import free_hdfs_port_env
from moulin.settings import Settings, load_settings

# py4j logs "Closing down clientserver connection" from __del__ at interpreter
# exit, after pytest closed its capture streams.
logging.getLogger("py4j").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def moulin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """MOULIN_* variables of this test session, exported to os.environ (and so to
    every subprocess: the CLI, Airflow, training jobs)."""
    home = Path(os.environ.get("MOULIN_TEST_HOME") or tmp_path_factory.mktemp("moulin-home"))
    env = {
        **free_hdfs_port_env(),
        "MOULIN_HOME": str(home),
        "MOULIN_DIST_DIR": os.environ.get("MOULIN_DIST_DIR", str(Path.home() / ".moulin" / "dist")),
        "MOULIN_SPARK_MASTER": "local[2]",
        "MOULIN_SPARK_DRIVER_MEMORY": "3g",
        "MOULIN_SPARK_SHUFFLE_PARTITIONS": "4",
        "MOULIN_SPARK_JOB_SERVER_IDLE_S": "120",
    }
    for key in [k for k in os.environ if k.startswith("MOULIN_") and k not in env]:
        if key not in ("MOULIN_TEST_HOME",):
            del os.environ[key]
    os.environ.update(env)
    return env


@pytest.fixture(scope="session", autouse=True)
def _stop_job_servers(moulin_env: dict[str, str]):
    """Stop the job servers that the session's stages started (moulin.jobs.server)."""
    yield
    from moulin.jobs.server import stop_servers

    stop_servers(load_settings("local"))


@pytest.fixture(scope="session")
def settings(moulin_env: dict[str, str]) -> Settings:
    """Settings of the ``local`` profile under the test home."""
    return load_settings("local")


@pytest.fixture(scope="session")
def hdfs_settings(moulin_env: dict[str, str]) -> Settings:
    """Settings of the ``hdfs-local`` profile under the test home."""
    return load_settings("hdfs-local")


@pytest.fixture(scope="session")
def spark(settings: Settings, hdfs_settings: Settings):
    """The one Spark session of the test run; reads and writes both file:// and hdfs://."""
    from moulin.spark import build_spark_session

    extra = {
        "spark.hadoop.dfs.replication": str(hdfs_settings.hdfs.replication),
        "spark.hadoop.dfs.client.block.write.replace-datanode-on-failure.policy": "NEVER",
    }
    session = build_spark_session(settings, app_name="moulin-tests", extra_conf=extra)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def hdfs_cluster(hdfs_settings: Settings):
    """The real local HDFS: 1 NameNode + 3 DataNodes, up for the whole session."""
    from moulin.cluster.local import LocalCluster

    cluster = LocalCluster(hdfs_settings, log=lambda msg: None)

    def interrupt(signum, frame):  # SIGTERM (e.g. `timeout`) still runs the teardown below
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        cluster.up()
        yield cluster
    finally:
        cluster.down()
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def hdfs_warehouse(hdfs_cluster, hdfs_settings: Settings) -> str:
    """The warehouse root on the test HDFS (hdfs://127.0.0.1:<port>/moulin)."""
    return hdfs_settings.warehouse


@pytest.fixture
def local_dir(tmp_path: Path) -> str:
    """A fresh folder as a file:// URI (for local tables)."""
    return tmp_path.resolve().as_uri()


@pytest.fixture
def hdfs_dir(hdfs_warehouse: str, request: pytest.FixtureRequest) -> str:
    """A fresh folder on the test HDFS, unique per test."""
    name = request.node.name.replace("[", "_").replace("]", "_")
    return f"{hdfs_warehouse}/tests/{name}-{random.randrange(1 << 30):x}"


def with_profile(settings: Settings, profile: str) -> Settings:
    """``settings`` with another profile name (helper for tests)."""
    return replace(settings, profile=profile)
