"""Kerberos settings without a KDC: the secure-mode properties each daemon gets, the
principals' local names, the settings a driver of a secure cluster uses, and the
errors of moulin's login that say what to fix, and the token file's format (pure functions:
the token file written from a real NameNode is checked in
tests/integration/test_cluster_kerberos.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from moulin import kerberos
from moulin.cluster import netns
from moulin.cluster.kdc import Realm
from moulin.cluster.multihost import client_env, on_network, roles
from moulin.settings import load_settings
from moulin.spark import spark_conf


@pytest.fixture
def network() -> netns.Network:
    return netns.plan(roles(2, 0, kdc=True), run_id="a1b2c3")


def test_each_daemon_gets_secure_mode_and_its_own_keytab(network, tmp_path: Path) -> None:
    realm = Realm(network, tmp_path / "kerberos")
    assert realm.name == "MLNA1B2C3.MOULIN.TEST"
    assert realm.host_principals("datanode-1") == [
        "dn/datanode-1.mlna1b2c3.moulin.test@MLNA1B2C3.MOULIN.TEST",
        "HTTP/datanode-1.mlna1b2c3.moulin.test@MLNA1B2C3.MOULIN.TEST",
    ]
    nn = realm.hadoop_conf("namenode")
    assert nn["core-site.xml"]["hadoop.security.authentication"] == "kerberos"
    assert nn["hdfs-site.xml"]["dfs.data.transfer.protection"] == "authentication"
    assert nn["hdfs-site.xml"]["dfs.block.access.token.enable"] == "true"
    assert nn["hdfs-site.xml"]["dfs.namenode.keytab.file"] == str(realm.keytab("namenode"))
    dn = realm.hadoop_conf("datanode-1")["hdfs-site.xml"]
    assert dn["dfs.datanode.keytab.file"] == str(realm.keytab("datanode-1"))
    client = realm.hadoop_conf("client")["hdfs-site.xml"]
    assert not any(key.endswith("keytab.file") for key in client)  # a client holds no daemon's key


def test_principals_map_to_their_hdfs_users(network, tmp_path: Path) -> None:
    rules = Realm(network, tmp_path).auth_to_local().splitlines()
    assert rules[0] == r"RULE:[2:$1@$0](nn@MLNA1B2C3\.MOULIN\.TEST)s/.*/hdfs/"
    assert r"RULE:[1:$1@$0](.*@MLNA1B2C3\.MOULIN\.TEST)s/@.*//" in rules
    assert rules[-1] == "DEFAULT"


def test_the_driver_of_a_secure_cluster_uses_moulins_keytab_and_the_clients_files(
    network, tmp_path: Path
) -> None:
    base = load_settings("hdfs-local", env={"MOULIN_HOME": str(tmp_path)})
    settings = on_network(base, network)
    assert settings.hdfs.host == "namenode.mlna1b2c3.moulin.test"
    assert settings.hdfs.datanode_host(1) == "datanode-1.mlna1b2c3.moulin.test"
    assert settings.hdfs.kerberos_principal == "moulin@MLNA1B2C3.MOULIN.TEST"
    assert settings.hdfs.kerberos_keytab == tmp_path / "cluster" / "kerberos" / "keytabs" / "moulin.keytab"
    assert settings.hadoop_conf_dir == tmp_path / "cluster" / "conf" / "client"
    env = client_env(settings, network)
    assert env["MOULIN_HDFS_KERBEROS_PRINCIPAL"] == "moulin@MLNA1B2C3.MOULIN.TEST"
    assert env["SPARK_LOCAL_IP"] == network.host("driver").address
    assert "localhost" not in " ".join(env.values()) and "127.0.0.1" not in " ".join(env.values())
    # The same variables give a driver process the same settings.
    again = load_settings(env=env)
    assert again.hdfs == settings.hdfs
    conf = spark_conf(again)
    assert f"-Djava.security.krb5.conf={settings.hdfs.krb5_conf}" in conf["spark.driver.extraJavaOptions"]


def test_login_without_kerberos_does_nothing(tmp_path: Path) -> None:
    settings = load_settings("hdfs-local", env={"MOULIN_HOME": str(tmp_path)})
    env: dict[str, str] = {}
    assert kerberos.login(settings, env) is None and env == {}


def test_login_says_what_is_missing_or_unsafe(tmp_path: Path) -> None:
    env = {"MOULIN_HOME": str(tmp_path), "MOULIN_HDFS_KERBEROS_PRINCIPAL": "moulin@EXAMPLE.TEST"}
    with pytest.raises(kerberos.KerberosError, match="MOULIN_HDFS_KERBEROS_KEYTAB"):
        kerberos.login(load_settings("hdfs-local", env=env), {})
    keytab = tmp_path / "moulin.keytab"
    with pytest.raises(kerberos.KerberosError, match="cannot be read"):
        kerberos.login(
            load_settings("hdfs-local", env={**env, "MOULIN_HDFS_KERBEROS_KEYTAB": str(keytab)}), {}
        )
    keytab.write_bytes(b"\x05\x02")
    keytab.chmod(0o644)
    with pytest.raises(kerberos.KerberosError, match="chmod 600"):
        kerberos.login(
            load_settings("hdfs-local", env={**env, "MOULIN_HDFS_KERBEROS_KEYTAB": str(keytab)}), {}
        )


def test_airflow_connections_name_the_hosts_and_moulins_principal(network, tmp_path: Path) -> None:
    from moulin.jobs.connections import spark_connection_spec, webhdfs_connection_spec

    base = load_settings(
        "hdfs-local", env={"MOULIN_HOME": str(tmp_path), "MOULIN_SPARK_STANDALONE_WORKERS": "1"}
    )
    spark_net = netns.plan(roles(2, 1, kdc=True), run_id="a1b2c3")
    settings = on_network(base, spark_net)
    spark = spark_connection_spec(settings)
    assert spark.host == "spark://spark-master.mlna1b2c3.moulin.test:7077"
    assert spark.extra["principal"] == "moulin@MLNA1B2C3.MOULIN.TEST"
    assert "keytab" not in spark.extra  # the provider reads it as base64 content: the hook gets the path
    assert webhdfs_connection_spec(settings).host == "namenode.mlna1b2c3.moulin.test"


def test_executors_of_a_standalone_master_get_moulins_token_file_and_secure_files(
    network, tmp_path: Path
) -> None:
    base = load_settings(
        "hdfs-local", env={"MOULIN_HOME": str(tmp_path), "MOULIN_SPARK_STANDALONE_WORKERS": "1"}
    )
    settings = on_network(base, netns.plan(roles(2, 1, kdc=True), run_id="a1b2c3"))
    assert kerberos.executors_need_tokens(settings)
    conf = spark_conf(settings)
    assert conf["spark.executorEnv.HADOOP_TOKEN_FILE_LOCATION"] == str(kerberos.token_path(settings))
    assert conf["spark.executor.extraClassPath"] == str(settings.hadoop_conf_dir)
    # A driver with its own executors (local[N]) uses its ticket: no token file.
    local = on_network(base, network)
    assert not kerberos.executors_need_tokens(local)
    assert "spark.executorEnv.HADOOP_TOKEN_FILE_LOCATION" not in spark_conf(local)


def _fields(data: bytes, at: int, count: int) -> tuple[list[bytes], int]:
    """``count`` length-prefixed fields of ``data`` from ``at`` (Hadoop's Text.write)."""
    fields = []
    for _ in range(count):
        size, at = kerberos._read_vint(data, at)
        fields.append(data[at : at + size])
        at += size
    return fields, at


def test_the_token_storage_holds_the_webhdfs_token_labelled_for_the_namenodes_rpc() -> None:
    import base64

    # What WebHDFS's GETDELEGATIONTOKEN gives: Token.write of (identifier, password, kind, service).
    ident, password = bytes(range(40)), b"p" * 200  # a length over 127 takes a multi-byte vint
    raw = b"".join(
        kerberos._vint(len(x)) + x for x in (ident, password, b"WEBHDFS delegation", b"198.51.100.10:9870")
    )
    url_string = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    data = kerberos.token_storage(url_string, "198.51.100.10:9820")
    assert data[:5] == b"HDTS\x00"
    count, at = kerberos._read_vint(data, 5)
    assert count == 1
    fields, at = _fields(data, at, 5)  # alias, identifier, password, kind, service
    service = b"198.51.100.10:9820"
    assert fields == [service, ident, password, b"HDFS_DELEGATION_TOKEN", service]
    assert data[at:] == b"\x00"  # no secret keys


@pytest.mark.parametrize("value", [0, 1, 127, -112, -113, 128, 300, 70000, -1000, 2**31 - 1])
def test_vints_read_back_as_written(value: int) -> None:
    encoded = kerberos._vint(value)
    assert kerberos._read_vint(encoded + b"tail", 0) == (value, len(encoded))


def test_a_token_that_does_not_decode_is_named() -> None:
    with pytest.raises(kerberos.KerberosError, match="delegation token does not decode"):
        kerberos.token_storage("AAEC", "198.51.100.10:9820")  # a field longer than the token


def test_the_delegation_parameter_is_the_token_of_the_file(tmp_path: Path) -> None:
    import base64

    ident, password = b"\x00\x06moulin" + bytes(30), b"s" * 20
    raw = b"".join(kerberos._vint(len(x)) + x for x in (ident, password, b"WEBHDFS delegation", b"x:1"))
    path = tmp_path / "moulin.token"
    path.write_bytes(kerberos.token_storage(base64.urlsafe_b64encode(raw).decode(), "198.51.100.10:9820"))
    encoded = kerberos.webhdfs_delegation(path)
    assert "=" not in encoded
    decoded = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    fields, at = _fields(decoded, 0, 4)
    assert fields == [ident, password, b"HDFS_DELEGATION_TOKEN", b"198.51.100.10:9820"] and at == len(decoded)
    path.write_bytes(b"not a token file")
    with pytest.raises(kerberos.KerberosError, match="not a Hadoop token storage file"):
        kerberos.webhdfs_delegation(path)


def test_the_drivers_jvm_logs_in_again_from_moulins_keytab_never_by_prompting(
    network, tmp_path: Path
) -> None:
    """A ticket expiring mid-run: Java's GSS in the Spark driver gets a new one from the
    keytab (a JAAS entry that never prompts), executors keep the plain options."""
    settings = on_network(load_settings("hdfs-local", env={"MOULIN_HOME": str(tmp_path)}), network)
    conf = spark_conf(settings)
    jaas = kerberos.jaas_path(settings)
    assert f"-Djava.security.auth.login.config={jaas}" in conf["spark.driver.extraJavaOptions"]
    assert "login.config" not in conf["spark.executor.extraJavaOptions"]
    kerberos._write_jaas(settings)
    text = jaas.read_text()
    assert text.count("Krb5LoginModule required") == 2  # the krb5 entry and the generic one
    assert f'keyTab="{settings.hdfs.kerberos_keytab}"' in text and "doNotPrompt=true" in text
    assert f'principal="{settings.hdfs.kerberos_principal}"' in text
    assert jaas.stat().st_mode & 0o077 == 0


def test_a_ticket_is_renewed_only_once_logged_in_and_within_the_margin_of_its_end(tmp_path: Path) -> None:
    settings = load_settings("hdfs-local", env={"MOULIN_HOME": str(tmp_path)})
    now = 1_000_000.0
    assert not kerberos.renewal_due({}, now)  # no login in this process: nothing to renew
    assert not kerberos.renewal_due({"settings": settings, "ends": now + kerberos.MARGIN_S + 30}, now)
    assert kerberos.renewal_due({"settings": settings, "ends": now + kerberos.MARGIN_S - 1}, now)
    assert kerberos.renewal_due({"settings": settings, "ends": now - 5}, now)  # already expired
