"""``moulin cluster check`` on files an administrator might hand over: each wrong file,
setting or unreachable address is named with what to do, and what needs an earlier
failed check is skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from moulin.cluster.check import FAIL, OK, SKIP, check, read_hadoop_xml, read_krb5_conf
from moulin.cluster.ports import port_free
from moulin.settings import load_settings

CORE = """<?xml version="1.0"?>
<configuration>
  <property><name>fs.defaultFS</name><value>hdfs://127.0.0.1:{port}</value></property>
  <property><name>hadoop.security.authentication</name><value>kerberos</value></property>
</configuration>
"""
SITE = """<configuration>
  <property><name>dfs.namenode.kerberos.principal</name><value>nn/_HOST@EXAMPLE.TEST</value></property>
  <property><name>dfs.namenode.http-address</name><value>0.0.0.0:{port}</value></property>
</configuration>
"""
KRB5 = """[libdefaults]
  default_realm = EXAMPLE.TEST
[realms]
  EXAMPLE.TEST = {
    kdc = 127.0.0.1:{port}
  }
"""


def closed_port() -> int:
    port = 47811
    while not port_free(port):
        port += 1
    return port


@pytest.fixture
def handed_over(tmp_path: Path) -> dict[str, str]:
    """A secure cluster's client files, all pointing at closed loopback ports."""
    port = closed_port()
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "core-site.xml").write_text(CORE.format(port=port))
    (conf / "hdfs-site.xml").write_text(SITE.format(port=port))
    (tmp_path / "krb5.conf").write_text(KRB5.replace("{port}", str(port)))
    keytab = tmp_path / "moulin.keytab"
    keytab.write_bytes(b"\x05\x02")
    keytab.chmod(0o600)
    return {
        "MOULIN_HOME": str(tmp_path / "home"),
        "MOULIN_HADOOP_CONF_DIR": str(conf),
        "MOULIN_HDFS_KERBEROS_PRINCIPAL": "moulin@EXAMPLE.TEST",
        "MOULIN_HDFS_KERBEROS_KEYTAB": str(keytab),
        "MOULIN_HDFS_KRB5_CONF": str(tmp_path / "krb5.conf"),
        "MOULIN_SPARK_MASTER": f"spark://127.0.0.1:{port}",
        "MOULIN_WAREHOUSE_URI": f"hdfs://127.0.0.1:{port}/moulin",
    }


def findings(env: dict[str, str]) -> dict[str, tuple[str, str, str]]:
    report = check(load_settings("cluster", env=env))
    return {f.what: (f.status, f.detail, f.fix) for f in report.findings}


def test_the_files_are_read_as_hadoop_and_kerberos_read_them(handed_over) -> None:
    props = read_hadoop_xml(Path(handed_over["MOULIN_HADOOP_CONF_DIR"]) / "core-site.xml")
    assert props["hadoop.security.authentication"] == "kerberos"
    default, realms = read_krb5_conf(Path(handed_over["MOULIN_HDFS_KRB5_CONF"]))
    assert default == "EXAMPLE.TEST" and realms["EXAMPLE.TEST"][0].startswith("127.0.0.1:")


def test_a_broken_config_file_is_named_with_what_is_wrong(handed_over) -> None:
    site = Path(handed_over["MOULIN_HADOOP_CONF_DIR"]) / "hdfs-site.xml"
    site.write_text("<configuration><property>")
    status, detail, _ = findings(handed_over)["hdfs-site.xml"]
    assert status == FAIL and "not well-formed XML" in detail


def test_a_keytab_others_can_read_fails_with_chmod(handed_over) -> None:
    Path(handed_over["MOULIN_HDFS_KERBEROS_KEYTAB"]).chmod(0o644)
    status, detail, fix = findings(handed_over)["keytab"]
    assert status == FAIL and "mode 644" in detail and fix.startswith("chmod 600")


def test_a_principal_of_another_realm_than_krb5_conf_knows_fails(handed_over) -> None:
    got = findings({**handed_over, "MOULIN_HDFS_KERBEROS_PRINCIPAL": "moulin@OTHER.TEST"})
    status, detail, _ = got["krb5.conf"]
    assert status == FAIL and "no [realms] entry for OTHER.TEST" in detail
    assert got["kdc"][0] == SKIP  # nothing is tried against a KDC krb5.conf does not name


def test_unreachable_kdc_namenode_and_spark_master_are_each_named(handed_over) -> None:
    got = findings(handed_over)
    assert got["core-site.xml"][0] == OK and got["hdfs-site.xml"][0] == OK
    for what in ("KDC", "NameNode RPC", "WebHDFS", "Spark master"):
        status, detail, fix = got[what]
        assert status == FAIL and "does not accept connections" in detail and fix, what
    assert got["login"][0] == SKIP


def test_kerberos_in_core_site_without_a_principal_says_which_settings_to_give(handed_over) -> None:
    env = {k: v for k, v in handed_over.items() if "KERBEROS" not in k}
    status, _, fix = findings(env)["moulin's principal"]
    assert status == FAIL and "MOULIN_HDFS_KERBEROS_PRINCIPAL" in fix
