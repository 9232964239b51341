"""Cluster faults on the real local HDFS and a Spark standalone cluster: each ends, after
the retry a scheduler would make, with the same data as a clean run.

The scenarios live in ``tests/cluster_faults.py`` (shared with
``benchmarks/cluster_faults.py``, which runs them several times).  Every test
restarts what it killed in a ``finally`` and waits until the session's HDFS is
healthy again (3 live DataNodes, each with a heartbeat after the fault), so
later tests get the cluster they expect.  Run with ``-s`` to see what each fault
did (first attempt, retries, recovery time).

What the faults show on this cluster (asserted: the data; documented: the errors):

* WebHDFS landings ride over a dead DataNode: ``WarehouseFS`` re-uploads when the
  DataNode serving the upload dies, and the DataNode-side client drops a dead
  pipeline node; the first ``land_file`` call succeeds.
* A Delta write on HDFS while a DataNode is dead but not yet declared dead by the
  NameNode (~40 s here, 10.5 min with HDFS defaults) usually fails at its commit:
  deltalake's HDFS client (hdfs-native) neither excludes a refused DataNode when
  it writes the commit file nor fails over to another replica when it reads
  (hdfs-native issues #154/#229), so retries fail too until the DataNode is back
  or declared dead.  The write fails cleanly (nothing committed, its files removed)
  and a retry after the restart converges.
* After a NameNode restart the Spark session's first HDFS call fails with
  ``java.io.EOFException`` when its cached IPC connection was used less than
  ``ipc.client.connection.maxidletime`` (10 s) before the NameNode went down (the
  non-HA client does not retry); the write raises that ``Py4JJavaError`` before
  writing anything, and its retry commits.  deltalake's client reconnects.
"""

from __future__ import annotations

import pytest
from cluster_faults import (
    FaultRun,
    delta_write_with_datanode_kill,
    delta_write_with_worker_kill,
    delta_writes_around_namenode_restart,
    hdfs_health_problem,
    land_with_datanode_kill,
)

pytestmark = pytest.mark.integration


def assert_converged(run: FaultRun, hdfs_cluster) -> None:
    print(run.summary())  # shown with -s or on failure
    assert run.fired, f"the fault did not hit the operation in flight: {run.summary()}"
    assert run.check.ok, run.summary()
    assert hdfs_health_problem(hdfs_cluster, since=0) is None


@pytest.mark.parametrize("victim", ["webhdfs", "pipeline"])
def test_datanode_killed_while_a_drop_is_landed(hdfs_cluster, hdfs_settings, tmp_path, victim) -> None:
    """The landing succeeds or raises; the retry lands it; the manifest and the bytes are right."""
    run = land_with_datanode_kill(hdfs_cluster, hdfs_settings, tmp_path, victim=victim)
    assert_converged(run, hdfs_cluster)
    assert run.retried


def test_datanode_killed_while_spark_writes_a_delta_table(hdfs_cluster, spark, hdfs_dir) -> None:
    """The write commits or fails cleanly; retries with the same app_id/app_version (at
    once, then after the DataNode restart if needed) converge to the exact rows, one
    commit, every version readable, no orphan after VACUUM."""
    run = delta_write_with_datanode_kill(spark, hdfs_cluster, f"{hdfs_dir}/dn-kill")
    assert_converged(run, hdfs_cluster)


def test_namenode_restarted_between_two_writes(hdfs_cluster, spark, hdfs_dir) -> None:
    """Both versions read back exactly; the same Spark session writes after the restart."""
    run = delta_writes_around_namenode_restart(spark, hdfs_cluster, f"{hdfs_dir}/nn-restart")
    assert_converged(run, hdfs_cluster)


def test_spark_worker_killed_mid_stage(hdfs_cluster, spark, hdfs_dir) -> None:
    """A standalone worker and its executor die during a task; Spark reschedules it on
    the other worker; the write commits once with the exact rows."""
    run = delta_write_with_worker_kill(spark, hdfs_cluster, f"{hdfs_dir}/worker-kill")
    assert_converged(run, hdfs_cluster)
    assert run.first_attempt == "committed", run.summary()
