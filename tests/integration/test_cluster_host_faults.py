"""A network fault on a cluster on hosts (network namespaces on one bridge): the link of
the DataNode serving a WebHDFS landing goes down mid-upload for 30 s, then comes back.

The landing, run on the driver's host by ``land_file`` (with the retry a scheduler
would make), ends with the drop landed once, its manifest and bytes exact, and the
HDFS healthy again.  The scenario is ``tests/cluster_faults.py``'s
:func:`land_with_datanode_kill` with ``fault=link_down(network)``, also run by
``benchmarks/cluster_faults.py --faults landing-link``.

Marker ``hosts`` (deselected by default, about 2 minutes on 2 cores, root):

    PYTHONPATH=. .venv/bin/python -m pytest tests/integration/test_cluster_host_faults.py -m hosts -q
"""

from __future__ import annotations

import os
import shutil
import sys

import pytest
from hosts_helpers import TESTS, cluster_on_hosts, driver_json, hosts_settings

from moulin.cluster.multihost import MultiHostCluster

pytestmark = [
    pytest.mark.hosts,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("ip") is None, reason="hosts as network namespaces need root"
    ),
]

# Run on the driver's host: one landing with the serving DataNode's link down 30 s.
_LANDING = r"""
import json, sys, tempfile
from pathlib import Path
sys.path.insert(0, {tests!r})
import cluster_faults as cf
from moulin.cluster.multihost import MultiHostCluster
from moulin.settings import load_settings

settings = load_settings()
hosts = MultiHostCluster(settings, log=lambda m: None)
cluster, network = hosts.cluster(), hosts.network()
with tempfile.TemporaryDirectory() as work:
    run = cf.land_with_datanode_kill(
        cluster, settings, Path(work), victim="webhdfs", fault=cf.link_down(network), hold_s=30
    )
print(run.summary(), file=sys.stderr)
print(json.dumps({{
    "fired": run.fired, "first": run.first_attempt, "retried": run.retried,
    "violations": run.check.violations, "rows_lost": run.check.rows_lost,
    "recovery_s": run.recovery_s, "problem": cf.hdfs_health_problem(cluster, since=0),
}}))
"""


@pytest.fixture(scope="module")
def hdfs_on_hosts(tmp_path_factory: pytest.TempPathFactory):
    """A NameNode, 3 DataNodes and the driver on hosts; removed whatever happens."""
    with cluster_on_hosts(
        hosts_settings(tmp_path_factory.mktemp("host-faults-home")), datanodes=3
    ) as cluster:
        yield cluster


def test_landing_rides_over_the_serving_datanodes_link_down_for_30_s(hdfs_on_hosts: MultiHostCluster) -> None:
    code = _LANDING.format(tests=str(TESTS))
    out = driver_json(hdfs_on_hosts, [sys.executable, "-c", code], {}, timeout=420)
    assert out["fired"], out
    assert out["violations"] == [] and out["rows_lost"] == 0, out
    assert out["retried"] and out["recovery_s"] is not None, out
    assert out["problem"] is None, out
