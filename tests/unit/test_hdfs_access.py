"""The HDFS user moulin acts as, the group mapping and permission settings, and the
zone declaration (moulin.privacy.access); the real NameNode checks are in
tests/integration/test_hdfs_permissions.py."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest

from moulin.settings import SettingsError, load_settings
from moulin.spark import act_as_hdfs_user, spark_conf


def test_hdfs_user_defaults_to_the_os_user_and_is_overridden_by_env() -> None:
    assert load_settings("hdfs-local", env={}).hdfs_user == getpass.getuser()
    assert load_settings("hdfs-local", env={"MOULIN_HDFS_USER": "moulin"}).hdfs_user == "moulin"
    with pytest.raises(SettingsError, match="MOULIN_HDFS_USER"):
        _ = load_settings(env={"MOULIN_HDFS_USER": "a b"}).hdfs_user


def test_group_mapping_defaults_and_errors() -> None:
    hdfs = load_settings(env={}).hdfs
    groups = hdfs.groups()
    assert groups["moulin"] == ("moulin-services", "data-engineering", "analysts", "privacy")
    assert groups["analyst"] == ("analysts",)
    assert groups["engineer"] == ("data-engineering", "analysts")
    assert groups["dpo"] == ("privacy", "analysts")
    assert groups["outsider"] == ()
    assert hdfs.superuser_group == "supergroup" and hdfs.umask == "027"
    custom = load_settings(env={"MOULIN_HDFS_GROUP_MAPPING": "svc=etl, bi ;bob=bi;"}).hdfs.groups()
    assert custom == {"svc": ("etl", "bi"), "bob": ("bi",)}
    for bad in ("svc", "=etl", "svc=e<tl", "svc=etl;x y=bi"):
        with pytest.raises(SettingsError, match="MOULIN_HDFS_GROUP_MAPPING"):
            load_settings(env={"MOULIN_HDFS_GROUP_MAPPING": bad}).hdfs.groups()


def test_spark_and_child_processes_act_as_the_hdfs_user() -> None:
    settings = load_settings("hdfs-local", env={"MOULIN_HDFS_USER": "moulin"})
    conf = spark_conf(settings)
    assert conf["spark.executorEnv.HADOOP_USER_NAME"] == "moulin"
    assert conf["spark.hadoop.fs.permissions.umask-mode"] == "027"
    assert "spark.hadoop.fs.permissions.umask-mode" not in spark_conf(load_settings("local", env={}))
    cluster = load_settings("cluster", env={"MOULIN_HDFS_UMASK": ""})
    assert "spark.hadoop.fs.permissions.umask-mode" not in spark_conf(cluster)
    env = {"HADOOP_USER_NAME": "someone-else", "PATH": "/bin"}
    assert act_as_hdfs_user(settings, env) is env
    assert env == {"HADOOP_USER_NAME": "moulin", "PATH": "/bin"}


def test_job_server_name_counts_the_exported_user_once() -> None:
    from moulin.jobs.server import server_name

    settings = load_settings("hdfs-local", env={"MOULIN_HDFS_USER": "moulin"})
    # The caller's environment lacks HADOOP_USER_NAME; the server it starts has it.
    assert server_name(settings, env={}) == server_name(settings, env={"HADOOP_USER_NAME": "moulin"})
    other = load_settings("hdfs-local", env={"MOULIN_HDFS_USER": "analyst"})
    assert server_name(other, env={}) != server_name(settings, env={})


def test_cluster_configs_enable_permissions(tmp_path: Path) -> None:
    from moulin.cluster.local import LocalCluster

    settings = load_settings(
        "hdfs-local",
        env={"MOULIN_HOME": str(tmp_path), "MOULIN_HDFS_GROUP_MAPPING": "svc=etl,bi;nobody="},
    )
    conf = LocalCluster(settings, log=lambda _: None)._render_conf("namenode", None)
    core, hdfs_site = (conf / "core-site.xml").read_text(), (conf / "hdfs-site.xml").read_text()
    assert "<name>hadoop.user.group.static.mapping.overrides</name><value>svc=etl,bi;nobody=</value>" in core
    assert "<name>fs.permissions.umask-mode</name><value>027</value>" in core
    assert "<name>dfs.permissions.enabled</name><value>true</value>" in hdfs_site
    assert "<name>dfs.permissions.superusergroup</name><value>supergroup</value>" in hdfs_site


def test_daemons_run_as_the_os_user(tmp_path: Path, monkeypatch) -> None:
    """HADOOP_USER_NAME exported for moulin's clients never reaches the daemons (the
    NameNode's user is the HDFS superuser): a real daemon process writes its environment."""
    import sys
    import time

    from moulin.cluster import daemons

    seen = tmp_path / "env.txt"
    monkeypatch.setenv("HADOOP_USER_NAME", "moulin")
    marker = f"probe-{tmp_path.name}"
    script = "import os, sys, time; open(sys.argv[1], 'w').write('\\n'.join(f'{k}=' for k in os.environ)); time.sleep(30)"
    daemon = daemons.Daemon(
        name="probe",
        command=lambda: [sys.executable, "-c", script, str(seen), marker],
        ports=(),
        marker=marker,
    )
    group = daemons.DaemonSet(tmp_path)
    group.start(daemon)
    try:
        for _ in range(50):
            if seen.exists() and "PATH=" in seen.read_text():
                break
            time.sleep(0.1)
        env = seen.read_text()
    finally:
        group.stop(daemon)
    assert "PATH=" in env and "HADOOP_USER_NAME" not in env


def test_zone_declaration() -> None:
    from moulin.privacy.access import PERSONAL, ZONES, AccessError, _path_of, personal_table_uris

    folders = {f: z for z in ZONES for f in z.folders}
    assert {f: folders[f].group for f in ("raw", "quarantine")} == dict.fromkeys(
        ("raw", "quarantine"), "data-engineering"
    )
    assert {folders[f].group for f in ("bronze", "silver", "gold", "features")} == {"analysts"}
    assert folders["ops"].group == "privacy" and PERSONAL.group == "privacy"
    assert all(z.mode == 0o750 and z.file_mode == 0o640 for z in (*ZONES, PERSONAL))
    groups = {g for gs in load_settings(env={}).hdfs.groups().values() for g in gs}
    assert {z.group for z in (*ZONES, PERSONAL)} <= groups  # every zone group has members

    settings = load_settings("hdfs-local", env={})

    class C:
        def __init__(self, table: str, personal: tuple[str, ...]) -> None:
            self.table, self.personal_data = table, personal

    uris = personal_table_uris(settings, [C("silver/customers", ("email",)), C("silver/flights", ())])
    assert uris == [settings.table_uri("silver", "customers")]
    assert _path_of(settings, "silver/customers") == "/moulin/silver/customers"
    with pytest.raises(AccessError, match="hdfs://"):
        _path_of(settings, "file:///tmp/silver")
    with pytest.raises(AccessError, match=r"\.\."):
        _path_of(settings, settings.warehouse + "/silver/../raw")
