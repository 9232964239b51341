from pathlib import Path

import pytest

from moulin.settings import SettingsError, describe, load_settings
from moulin.spark import spark_conf


def test_local_profile_is_the_default_and_uses_file_uris(tmp_path: Path) -> None:
    s = load_settings(env={"MOULIN_HOME": str(tmp_path)})
    assert s.profile == "local"
    assert s.warehouse == (tmp_path / "warehouse").resolve().as_uri()
    assert s.table_uri("bronze", "flights") == s.warehouse + "/bronze/flights"


def test_hdfs_local_profile_points_at_the_namenode() -> None:
    s = load_settings("hdfs-local", env={"MOULIN_HDFS_NAMENODE_RPC_PORT": "19820"})
    assert s.warehouse == "hdfs://127.0.0.1:19820/moulin"
    assert s.hdfs.namenode_rpc_port == 19820


def test_env_overrides_are_typed() -> None:
    s = load_settings(env={"MOULIN_SPARK_UI_ENABLED": "yes", "MOULIN_HDFS_DATANODES": "4"})
    assert s.spark.ui_enabled is True
    assert s.hdfs.datanodes == 4


def test_bad_override_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="MOULIN_HDFS_NAMENODE_RPC_PORT"):
        load_settings(env={"MOULIN_HDFS_NAMENODE_RPC_PORT": "ninety"})


def test_unknown_profile_and_impossible_replication_are_refused() -> None:
    with pytest.raises(SettingsError, match="unknown profile"):
        load_settings("yarn-please", env={})
    with pytest.raises(SettingsError, match="replication"):
        load_settings(env={"MOULIN_HDFS_REPLICATION": "5"})


def test_cluster_profile_needs_a_warehouse_and_reads_hadoop_conf_dir(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HADOOP_CONF_DIR", str(tmp_path))
    s = load_settings("cluster", env={})
    assert s.hadoop_conf_dir == tmp_path
    assert s.spark.master == "yarn"
    with pytest.raises(SettingsError, match="MOULIN_WAREHOUSE_URI"):
        _ = s.warehouse
    s2 = load_settings("cluster", env={"MOULIN_WAREHOUSE_URI": "hdfs://nn:8020/lake/"})
    assert s2.warehouse == "hdfs://nn:8020/lake"
    assert describe(s2)["warehouse"] == "hdfs://nn:8020/lake"


def test_spark_conf_from_profile() -> None:
    conf = spark_conf(load_settings("hdfs-local", env={}))
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert conf["spark.sql.execution.arrow.pyspark.enabled"] == "true"
    assert conf["spark.sql.adaptive.enabled"] == "true"
    assert conf["spark.hadoop.fs.defaultFS"] == "hdfs://127.0.0.1:9820"
    assert conf["spark.hadoop.dfs.replication"] == "2"
    assert spark_conf(load_settings("local", env={}))["spark.hadoop.fs.defaultFS"] == "file:///"


def test_missing_java_is_named(monkeypatch, tmp_path) -> None:
    from moulin.cluster.daemons import ClusterError, java_executable

    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ClusterError, match="java was not found"):
        java_executable()
