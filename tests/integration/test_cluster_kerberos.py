"""Kerberos end to end on a cluster on hosts: an MIT KDC on its own host, HDFS in secure
mode (Kerberos RPC, SPNEGO on WebHDFS, SASL data transfer), moulin with its keytab.

moulin (its Spark driver on the driver's host, executors on a standalone worker's
host with moulin's HDFS token, and deltalake) writes a raw and a quarantine table
and zones them; then processes with no ticket, with outsider's or
analyst's, each also claiming to be moulin (``user.name``, ``HADOOP_USER_NAME``),
are refused -- for want of authentication, or by permission, never "not found" --
while engineer's ticket reads both.  moulin then runs the flights chain (the DAG
tasks' functions, Spark stages through spark-submit of the job entry point, training
and report included) and the mail chain (``tests/kerberos_chain.py``): the accounting
identity holds, counted from the landed files, the gates and the Delta tables, moulin
reads every table and the outsider none.

Marker ``hosts`` (deselected by default; about 10 minutes on 2 cores, 8.5 of them the
chains; root, Debian's
krb5-kdc, krb5-admin-server and krb5-user):

    PYTHONPATH=. .venv/bin/python -m pytest tests/integration/test_cluster_kerberos.py -m hosts -q
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hosts_helpers import REPO, cluster_on_hosts, hosts_settings, python_on_driver

from moulin.cluster import netns
from moulin.cluster.multihost import MultiHostCluster

TABLES = ("raw/events", "quarantine/events")
ROWS = 300
FLIGHTS_SAMPLE = 40  # flights per month (three months: one per split, so training runs)
MAIL_LIMIT = 15  # messages per corpus group

pytestmark = [
    pytest.mark.hosts,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("ip") is None or not Path("/usr/sbin/krb5kdc").exists(),
        reason="needs root and MIT Kerberos (apt-get install -y krb5-kdc krb5-admin-server krb5-user)",
    ),
]


def probe(
    cluster: MultiHostCluster,
    env: dict[str, str],
    *args: str,
    timeout: float = 300,
    script: str = "kerberos_probe.py",
) -> dict:
    """Run ``tests/<script> ARGS`` on the driver's host with ``env``; its JSON line."""
    return python_on_driver(cluster, script, *args, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def secure_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A secure cluster on hosts (KDC, NameNode, two DataNodes, a Spark master and worker,
    driver) holding a raw and a quarantine table written by moulin; removed whatever happens."""
    settings = hosts_settings(
        tmp_path_factory.mktemp("kerberos-home"),
        workers=1,
        MOULIN_SPARK_WORKER_CORES="2",  # the flights training's two DDP ranks: a barrier stage of 2 tasks
    )
    with cluster_on_hosts(settings, datanodes=2, spark=True, kerberos=True) as cluster:
        network = cluster.network()
        written = probe(cluster, {}, "write", ",".join(TABLES), str(ROWS))
        assert written["task_hosts"] == [network.host("spark-worker-0").address], written
        assert written["rows"] == {t: ROWS for t in TABLES}, written
        assert written["zones"]["raw"] == "data-engineering 750", written
        assert written["zones"]["quarantine"] == "data-engineering 750", written
        yield cluster


def as_user(cluster: MultiHostCluster, user: str | None) -> dict[str, str]:
    """The environment of a process with ``user``'s ticket (None: no ticket at all), which
    also claims to be moulin through HADOOP_USER_NAME."""
    env = {"KRB5CCNAME": "FILE:/nonexistent/moulin-test-no-ticket"} if user is None else cluster.ticket(user)
    return {**env, "HADOOP_USER_NAME": "moulin"}


def test_keytabs_are_private_and_one_per_daemon_and_user(secure_cluster: MultiHostCluster) -> None:
    realm = secure_cluster.realm()
    keytabs = sorted(p.stem for p in realm.keytab_dir.iterdir())
    expected = [
        "analyst",
        "datanode-0",
        "datanode-1",
        "dpo",
        "engineer",
        "hdfs",
        "moulin",
        "namenode",
        "outsider",
    ]
    assert keytabs == expected
    for path in realm.keytab_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # Host-based principals: the NameNode's keytab holds nn/ and HTTP/ of its hostname.
    listed = subprocess.run(
        ["klist", "-kt", str(realm.keytab("namenode"))],
        capture_output=True,
        text=True,
        env={**os.environ, **realm.env()},
    ).stdout
    hostname = secure_cluster.network().host("namenode").hostname
    assert f"nn/{hostname}@{realm.name}" in listed and f"HTTP/{hostname}@{realm.name}" in listed


@pytest.mark.parametrize("table", TABLES)
def test_no_ticket_is_refused_for_want_of_authentication_even_claiming_moulin(
    secure_cluster: MultiHostCluster, table: str
) -> None:
    out = probe(secure_cluster, as_user(secure_cluster, None), "read", table, "moulin")
    assert out["webhdfs"]["status"] == 401 and "Authentication required" in out["webhdfs"]["text"], out
    assert out["webhdfs_claim"]["status"] == 401, out  # user.name=moulin is not an identity
    assert not out["deltalake"]["ok"], out
    text = out["deltalake"]["text"]
    assert "GSSAPI" in text and "credentials" in text, text
    assert "not found" not in text.lower() and "no such file" not in text.lower(), text


@pytest.mark.parametrize("user", ["outsider", "analyst"])
@pytest.mark.parametrize("table", TABLES)
def test_a_ticket_of_another_group_is_refused_by_permission_whatever_user_it_claims(
    secure_cluster: MultiHostCluster, user: str, table: str
) -> None:
    out = probe(secure_cluster, as_user(secure_cluster, user), "read", table, "moulin")
    assert out["webhdfs"]["status"] == 403, out
    assert "AccessControlException" in out["webhdfs"]["text"] and f"user={user}" in out["webhdfs"]["text"], (
        out
    )
    # Claiming moulin through user.name is refused outright.
    assert (
        out["webhdfs_claim"]["status"] == 403 and "Usernames not matched" in out["webhdfs_claim"]["text"]
    ), out
    # HADOOP_USER_NAME=moulin changes nothing for deltalake's client: the ticket decides.
    assert not out["deltalake"]["ok"], out
    text = out["deltalake"]["text"]
    assert "AccessControlException" in text and "Permission denied" in text and f"user={user}" in text, text


@pytest.mark.parametrize("table", TABLES)
def test_engineers_ticket_reads_raw_and_quarantine(secure_cluster: MultiHostCluster, table: str) -> None:
    out = probe(secure_cluster, as_user(secure_cluster, "engineer"), "read", table, "moulin")
    assert out["webhdfs"]["status"] == 200 and "FileStatuses" in out["webhdfs"]["text"], out
    assert out["deltalake"] == {"ok": True, "rows": ROWS}, out


def cluster_check(cluster: MultiHostCluster, env: dict[str, str]) -> tuple[int, str]:
    """``moulin cluster check`` on the driver's host with the client settings and ``env``."""
    moulin = str(Path(sys.executable).with_name("moulin"))
    command = cluster.driver_command([moulin, "cluster", "check"], {"PYTHONPATH": str(REPO), **env})
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    return result.returncode, result.stdout + result.stderr


def test_cluster_check_passes_with_what_the_administrator_handed_over(
    secure_cluster: MultiHostCluster,
) -> None:
    code, out = cluster_check(secure_cluster, {})
    assert code == 0, out
    for line in (
        "ok    core-site.xml",
        "ok    krb5.conf",
        "ok    keytab",
        "ok    KDC",
        "ok    Kerberos login",
    ):
        assert line in out, out
    assert "may read, write and list it" in out, out


def test_cluster_check_names_a_principal_without_write_access_and_a_foreign_keytab(
    secure_cluster: MultiHostCluster,
) -> None:
    realm = secure_cluster.realm()
    outsider = {
        "MOULIN_HDFS_KERBEROS_PRINCIPAL": realm.principal("outsider"),
        "MOULIN_HDFS_KERBEROS_KEYTAB": str(realm.keytab("outsider")),
        "MOULIN_HDFS_USER": "outsider",
    }
    code, out = cluster_check(secure_cluster, outsider)
    assert code == 1 and "FAIL  warehouse" in out and "may not write it" in out, out
    # moulin's principal with another user's keytab: the keytab check says so, login is not tried.
    code, out = cluster_check(secure_cluster, {"MOULIN_HDFS_KERBEROS_KEYTAB": str(realm.keytab("analyst"))})
    assert code == 1 and "holds no key of moulin@" in out and "skip  login" in out, out


def test_token_file_of_a_real_namenode_is_labelled_for_its_rpc_address(
    secure_cluster: MultiHostCluster,
) -> None:
    out = probe(secure_cluster, {}, "token")
    namenode = secure_cluster.network().host("namenode").address
    service = f"{namenode}:{secure_cluster.settings().hdfs.namenode_rpc_port}"
    assert out["mode"] == "600" and out["count"] == 1, out
    assert out["alias"] == out["service"] == service and out["kind"] == "HDFS_DELEGATION_TOKEN", out
    assert out["owner"].startswith("moulin") and out["identifier_bytes"] > 0, out


#: Tables the chains write that moulin reads back and the outsider may not (curated and
#: raw zones, the quarantines, a personal table).
CHAIN_TABLES = (
    "bronze/flights",
    "quarantine/flights",
    "silver/flights",
    "gold/carrier_delay_stats",
    "gold/flight_features",
    "bronze/mail",
    "quarantine/mail",
    "silver/mail_messages",
)


def test_flights_and_mail_chains_run_as_moulin_with_accounting_and_the_outsider_is_refused(
    secure_cluster: MultiHostCluster,
) -> None:
    """The flights chain (landings, bronze gates, silver, gold, features, profile, training,
    report: the DAG tasks' functions, Spark stages through spark-submit of the job entry
    point) and the mail chain (``moulin mail run``'s runner) as moulin on the driver's host."""
    started = time.monotonic()
    flights = probe(
        secure_cluster, {}, "flights", str(FLIGHTS_SAMPLE), timeout=1500, script="kerberos_chain.py"
    )
    for ds, gate in flights["gates"].items():
        # Rows in, counted three ways: the landed file (WebHDFS), the gate, the two Delta tables.
        assert gate["landed_lines"] == FLIGHTS_SAMPLE == gate["stage"]["rows_read"], (ds, gate)
        assert gate["landed_lines"] == gate["bronze_rows"] + gate["quarantine_rows"], (ds, gate)
        assert (gate["bronze_rows"], gate["quarantine_rows"]) == (
            gate["stage"]["rows_bronze"],
            gate["stage"]["rows_quarantined"],
        ), (ds, gate)
    bronze_total = sum(g["bronze_rows"] for g in flights["gates"].values())
    assert flights["tables"]["silver_flights"] == flights["silver_rows"] == bronze_total, flights
    assert flights["tables"]["flight_features"] == flights["features_rows"], flights
    assert flights["features_rows"] == flights["silver_rows"] - flights["cancelled"], flights
    assert all(flights["splits"].get(s) for s in ("train", "validation", "test")), flights
    assert flights["models"] and flights["tables"]["gold_carrier_delay_stats"] > 0, flights
    assert set(flights["dimensions"]) == {"weather", "planes", "airports", "airlines"}, flights

    mail = probe(secure_cluster, {}, "mail", str(MAIL_LIMIT), timeout=900, script="kerberos_chain.py")
    assert len(mail["gates"]) == 2, mail
    for ds, gate in mail["gates"].items():
        assert gate["messages_dropped"] == gate["stage"]["rows_read"] > 0, (ds, gate)
        assert gate["messages_dropped"] == gate["bronze_rows"] + gate["quarantine_rows"], (ds, gate)
        assert gate["bronze_rows"] == gate["stage"]["rows_bronze"], (ds, gate)
    assert mail["silver_rows"] == sum(g["bronze_rows"] for g in mail["gates"].values()), mail

    # The zones as the privacy command sets them; then moulin reads every table, the outsider none.
    zones = probe(secure_cluster, {}, "zones", script="kerberos_chain.py")
    assert zones["zones"]["curated"] == "analysts 750" and zones["personal"], zones
    expected_rows = {
        "bronze/flights": bronze_total,
        "silver/flights": flights["silver_rows"],
        "gold/flight_features": flights["features_rows"],
        "bronze/mail": sum(g["bronze_rows"] for g in mail["gates"].values()),
        "silver/mail_messages": mail["silver_rows"],
    }
    for table in CHAIN_TABLES:
        mine = probe(secure_cluster, as_user(secure_cluster, "moulin"), "read", table, "moulin")
        assert mine["webhdfs"]["status"] == 200 and mine["deltalake"]["ok"], (table, mine)
        if table in expected_rows:
            assert mine["deltalake"]["rows"] == expected_rows[table], (table, mine)
        theirs = probe(secure_cluster, as_user(secure_cluster, "outsider"), "read", table, "moulin")
        assert theirs["webhdfs"]["status"] == 403, (table, theirs)
        assert "AccessControlException" in theirs["deltalake"].get("text", ""), (table, theirs)
    print(
        f"\nchains on the secure cluster: flights {flights['seconds']} s, mail {mail['seconds']} s, "
        f"test {time.monotonic() - started:.0f} s"
    )


def test_down_removes_the_kdc_with_every_host(secure_cluster: MultiHostCluster) -> None:
    network = secure_cluster.network()
    kdc_pids = netns.pids_in(network.host("kdc").namespace)
    assert kdc_pids
    secure_cluster.down()
    assert netns.namespaces_with(network.stem) == []
    assert not any(netns._alive(pid) for pid in kdc_pids)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert network.stem not in links
