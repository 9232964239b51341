"""What a cluster job ships, and the settings that turn shipping on (no Spark here)."""

from __future__ import annotations

import sys

from moulin.jobs.shipping import _excluded
from moulin.settings import load_settings
from moulin.spark import spark_conf

CLUSTER_ENV = {"MOULIN_WAREHOUSE_URI": "hdfs://namenode.example:8020/moulin", "MOULIN_HOME": "/srv/moulin"}


def test_the_cluster_profile_ships_code_and_executors_get_no_local_python() -> None:
    cluster = load_settings("cluster", env=CLUSTER_ENV)
    assert cluster.spark.ship_code and not cluster.spark.job_server
    assert str(cluster.job_packages_dir) == "/srv/moulin/dist/jobs"
    assert "spark.pyspark.python" not in spark_conf(cluster)
    local = load_settings("local", env={"MOULIN_SPARK_PACKAGES_DIR": "/data/jobs"})
    assert not local.spark.ship_code and str(local.job_packages_dir) == "/data/jobs"
    assert spark_conf(local)["spark.pyspark.python"] == sys.executable
    shipping = load_settings("local", env={"MOULIN_SPARK_SHIP_CODE": "true"})
    assert shipping.spark.ship_code


def test_environment_archives_leave_moulin_and_the_spark_jars_out() -> None:
    site = "lib/python3.11/site-packages"
    for left_out in (
        f"{site}/__editable__.moulin-0.1.0.pth",
        f"{site}/__editable___moulin_0_1_0_finder.py",
        f"{site}/__pycache__/__editable___moulin_0_1_0_finder.cpython-311.pyc",
        f"{site}/moulin-0.1.0.dist-info",
        f"{site}/pyspark/jars",
        "bin/moulin",
    ):
        assert _excluded(left_out), left_out
    for kept in (
        "bin/python",
        f"{site}/torch/__init__.py",
        f"{site}/pyspark/sql/__init__.py",
        f"{site}/moulinette/__init__.py",
    ):
        assert not _excluded(kept), kept
