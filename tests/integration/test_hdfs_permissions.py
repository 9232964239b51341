"""HDFS permissions on the real local NameNode: zones set by moulin.privacy.access,
checked as other users through WebHDFS, Spark (its own JVM) and deltalake.

Everything lives under a warehouse of its own (``/moulin-permission-tests/<random>``);
the session's other tests act as the OS user, the NameNode's superuser, and are not affected.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pyarrow as pa
import pytest
from hdfs import InsecureClient
from hdfs.util import HdfsError

from moulin.privacy.access import AccessError, apply_permissions
from moulin.settings import Settings
from moulin.storage import StorageError, WarehouseFS

pytestmark = pytest.mark.integration

# Run as another HDFS user: a Spark session built by moulin (MOULIN_HDFS_USER set, so
# build_spark_session exports HADOOP_USER_NAME before its JVM starts), then deltalake
# in the same process.  Prints one JSON line: what each read gave.
SPARK_CHECK = r"""
import json, os, sys
from moulin.settings import load_settings
from moulin.spark import build_spark_session

reads = json.loads(sys.argv[1])
settings = load_settings()
spark = build_spark_session(settings, app_name="permissions-check")
out = {"spark_user": spark.sparkContext.sparkUser(), "env_user": os.environ.get("HADOOP_USER_NAME")}
for name, fmt, uri in reads:
    try:
        out["spark:" + name] = {"rows": spark.read.format(fmt).load(uri).count()}
    except Exception as exc:
        out["spark:" + name] = {"error": type(exc).__name__, "message": str(exc)[:3000]}
    if fmt == "parquet":
        from deltalake import DeltaTable
        try:
            out["deltalake:" + name] = {"rows": DeltaTable(uri).to_pyarrow_table().num_rows}
        except Exception as exc:
            out["deltalake:" + name] = {"error": type(exc).__name__, "message": str(exc)[:3000]}
print("RESULT " + json.dumps(out), flush=True)
sys.stdout.flush()
os._exit(0)
"""

# deltalake alone, acting as HADOOP_USER_NAME from the environment.
DELTALAKE_CHECK = r"""
import json, os, sys
from deltalake import DeltaTable
out = {}
for name, uri in json.loads(sys.argv[1]):
    try:
        out[name] = {"rows": DeltaTable(uri).to_pyarrow_table().num_rows}
    except Exception as exc:
        out[name] = {"error": type(exc).__name__, "message": str(exc)[:3000]}
print("RESULT " + json.dumps(out), flush=True)
sys.stdout.flush()
os._exit(0)
"""


def _result(done: subprocess.CompletedProcess) -> dict:
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise AssertionError(f"no result (code {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HADOOP_USER_NAME"}
    env.update(extra)
    return env


def _spark_as(user: str, reads: list[tuple[str, str, str]]) -> dict:
    env = _child_env(
        MOULIN_PROFILE="hdfs-local",
        MOULIN_HDFS_USER=user,
        MOULIN_SPARK_MASTER="local[1]",
        MOULIN_SPARK_DRIVER_MEMORY="512m",
    )
    done = subprocess.run(
        [sys.executable, "-c", SPARK_CHECK, json.dumps(reads)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    return _result(done)


def _deltalake_as(user: str, tables: list[tuple[str, str]]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", DELTALAKE_CHECK, json.dumps(tables)],
        env=_child_env(HADOOP_USER_NAME=user),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return _result(done)


def _denied(outcome: dict, user: str) -> None:
    """``outcome`` is a permission error for ``user`` (not a missing file or another failure)."""
    assert "error" in outcome, f"expected a permission error for {user}, got {outcome}"
    message = outcome["message"]
    assert "AccessControlException" in message and "Permission denied" in message, message
    assert f"user={user}" in message, message


def _user(settings: Settings, user: str) -> Settings:
    return replace(settings, hdfs=replace(settings.hdfs, user=user))


@pytest.fixture(scope="module")
def zoned(hdfs_warehouse: str, hdfs_settings: Settings) -> dict:
    """A warehouse of its own with a raw file, a quarantine table, a curated table and a
    personal-data table (in the same curated layer), after apply_permissions."""
    from deltalake import write_deltalake

    # A top-level folder of its own: the session warehouse's folders may have been
    # created with the 027 umask (750) by other tests' Spark jobs, closing them to others.
    root = f"{hdfs_settings.hdfs.namenode_uri}/moulin-permission-tests/{random.getrandbits(32):x}"
    settings = replace(hdfs_settings, warehouse_uri=root)
    uris = {
        "raw": settings.table_uri("raw", "crm", "ds=2024-01-01", "customers.csv"),
        "quarantine": settings.table_uri("quarantine", "crm"),
        "curated": settings.table_uri("silver", "flights"),
        "personal": settings.table_uri("silver", "customers"),
        "unzoned": settings.table_uri("scratch", "notes.txt"),
    }
    fs = WarehouseFS(settings)  # as the OS user: the NameNode's superuser
    fs.write_bytes(uris["raw"], b"id,name\n1,Ann\n2,Bob\n")
    fs.write_bytes(uris["unzoned"], b"left alone\n")
    write_deltalake(uris["quarantine"], pa.table({"id": [1], "reason": ["bad date"]}))
    write_deltalake(uris["curated"], pa.table({"carrier": ["AA", "DL", "UA"], "delay": [1.0, 2.5, 0.0]}))
    write_deltalake(
        uris["personal"], pa.table({"id": [1, 2], "email": ["ann@example.org", "bob@example.org"]})
    )
    lines: list[str] = []
    applied = apply_permissions(settings, [uris["personal"]], say=lines.append)
    return {"settings": settings, "uris": uris, "applied": applied, "lines": lines}


def test_zones_get_their_owner_group_and_mode(zoned: dict) -> None:
    settings, uris, applied = zoned["settings"], zoned["uris"], zoned["applied"]
    by_zone = {a.zone: a for a in applied}
    assert set(by_zone) == {"root", "raw", "quarantine", "curated", "personal"}
    assert by_zone["personal"].uri == uris["personal"]
    assert by_zone["curated"].uri == settings.table_uri("silver")
    client = InsecureClient(settings.hdfs.webhdfs_url, user=settings.hdfs_user)

    def stat(uri: str) -> tuple[str, str, str]:
        st = client.status(uri.split(settings.hdfs.namenode_uri, 1)[1])
        return st["owner"], st["group"], st["permission"]

    me = settings.hdfs_user
    assert stat(settings.warehouse)[::2] == (me, "755")
    assert stat(settings.table_uri("raw")) == (me, "data-engineering", "750")
    assert stat(uris["raw"]) == (me, "data-engineering", "640")
    assert stat(uris["quarantine"]) == (me, "data-engineering", "750")
    assert stat(uris["quarantine"] + "/_delta_log") == (me, "data-engineering", "750")
    assert stat(settings.table_uri("silver")) == (me, "analysts", "750")
    assert stat(uris["curated"]) == (me, "analysts", "750")
    # The personal table keeps the privacy group inside the analysts' layer.
    assert stat(uris["personal"]) == (me, "privacy", "750")
    for name, st in client.list(
        uris["personal"].split(settings.hdfs.namenode_uri, 1)[1] + "/_delta_log", status=True
    ):
        assert (st["group"], st["permission"]) == ("privacy", "640"), name
    # A folder of no zone is named and left alone.
    assert any("(no zone)" in line and "scratch" in line for line in zoned["lines"])
    assert stat(settings.table_uri("scratch"))[1:] != ("analysts", "750")
    # Idempotent: a second run changes nothing.
    again = apply_permissions(settings, [uris["personal"]], say=lambda _: None)
    assert [(a.zone, a.uri, a.entries) for a in again] == [(a.zone, a.uri, a.entries) for a in applied]
    assert sum(a.changed for a in again) == 0
    assert sum(a.changed for a in applied) > 0


def test_webhdfs_as_other_users(zoned: dict) -> None:
    settings, uris = zoned["settings"], zoned["uris"]

    def read(user: str, uri: str) -> bytes:
        client = InsecureClient(settings.hdfs.webhdfs_url, user=user)
        with client.read(uri.split(settings.hdfs.namenode_uri, 1)[1]) as reader:
            return reader.read()

    def denied(user: str, uri: str) -> None:
        with pytest.raises(HdfsError) as info:
            read(user, uri)
        assert info.value.exception == "AccessControlException", info.value
        assert f"Permission denied: user={user}" in str(info.value)

    curated_log = uris["curated"] + "/_delta_log/00000000000000000000.json"
    personal_log = uris["personal"] + "/_delta_log/00000000000000000000.json"
    quarantine_log = uris["quarantine"] + "/_delta_log/00000000000000000000.json"
    for uri in (uris["raw"], quarantine_log, personal_log, curated_log):
        denied("outsider", uri)
    assert read("analyst", curated_log)
    denied("analyst", uris["raw"])
    denied("analyst", personal_log)
    assert read("engineer", uris["raw"]).startswith(b"id,name")
    assert read("engineer", quarantine_log)
    denied("engineer", personal_log)
    assert read("dpo", personal_log)
    # A missing file is another error: the checks above are not passing by accident.
    with pytest.raises(HdfsError) as info:
        read("engineer", settings.table_uri("raw", "crm", "missing.csv"))
    assert info.value.exception == "FileNotFoundException"
    # moulin's own WebHDFS client acts as the configured user (MOULIN_HDFS_USER).
    with pytest.raises(StorageError, match="Permission denied: user=outsider"):
        WarehouseFS(_user(settings, "outsider")).read_bytes(uris["raw"])
    assert WarehouseFS(_user(settings, "engineer")).read_bytes(uris["raw"]).startswith(b"id,name")
    assert WarehouseFS(settings).read_bytes(uris["raw"]).startswith(b"id,name")  # the superuser


def test_spark_and_deltalake_as_other_users(zoned: dict) -> None:
    uris = zoned["uris"]
    reads = {
        "outsider": [
            ("raw", "text", uris["raw"]),
            ("quarantine", "parquet", uris["quarantine"]),
            ("personal", "parquet", uris["personal"]),
        ],
        "analyst": [
            ("curated", "parquet", uris["curated"]),
            ("raw", "text", uris["raw"]),
            ("personal", "parquet", uris["personal"]),
        ],
    }
    # (engineer reading raw is checked through WebHDFS: a third JVM costs ~20 s on 2 cores)
    tables = [(name, uris[name]) for name in ("quarantine", "personal", "curated")]
    with ThreadPoolExecutor(max_workers=4) as pool:
        spark = {user: pool.submit(_spark_as, user, r) for user, r in reads.items()}
        lake = {user: pool.submit(_deltalake_as, user, tables) for user in ("outsider", "analyst")}
        spark_out = {user: f.result() for user, f in spark.items()}
        lake_out = {user: f.result() for user, f in lake.items()}

    for user, out in spark_out.items():  # the JVM and deltalake act as MOULIN_HDFS_USER
        assert out["spark_user"] == user and out["env_user"] == user, out
    outsider = spark_out["outsider"]
    for key in (
        "spark:raw",
        "spark:quarantine",
        "spark:personal",
        "deltalake:quarantine",
        "deltalake:personal",
    ):
        _denied(outsider[key], "outsider")
    analyst = spark_out["analyst"]
    assert analyst["spark:curated"] == {"rows": 3}
    assert analyst["deltalake:curated"] == {"rows": 3}
    _denied(analyst["spark:raw"], "analyst")
    _denied(analyst["spark:personal"], "analyst")
    _denied(analyst["deltalake:personal"], "analyst")

    _denied(lake_out["outsider"]["quarantine"], "outsider")
    _denied(lake_out["outsider"]["personal"], "outsider")
    _denied(lake_out["outsider"]["curated"], "outsider")
    assert lake_out["analyst"]["curated"] == {"rows": 3}
    _denied(lake_out["analyst"]["personal"], "analyst")
    _denied(lake_out["analyst"]["quarantine"], "analyst")


def test_only_the_superuser_or_owner_may_apply(zoned: dict) -> None:
    settings, uris = zoned["settings"], zoned["uris"]
    with pytest.raises(AccessError, match="superuser"):
        apply_permissions(settings, [uris["personal"]], say=lambda _: None, as_user="analyst")
    with pytest.raises(AccessError, match="hdfs://"):
        apply_permissions(replace(settings, warehouse_uri="file:///tmp/x"), [], say=lambda _: None)


def test_a_service_user_owns_the_warehouse_and_applies_as_owner(
    hdfs_cluster, hdfs_settings: Settings
) -> None:
    """MOULIN_HDFS_USER=moulin: `cluster up` hands it the warehouse root; it writes, and sets
    the zones as the owner of what it wrote (no superuser needed); others cannot write."""
    from moulin.cluster.local import LocalCluster

    root = f"{hdfs_settings.hdfs.namenode_uri}/moulin-permission-tests/svc-{random.getrandbits(32):x}"
    settings = _user(replace(hdfs_settings, warehouse_uri=root), "moulin")
    cluster = LocalCluster(settings, log=lambda _: None)
    assert cluster.prepare_warehouse() is True
    assert cluster.prepare_warehouse() is False  # already done
    fs = WarehouseFS(settings)
    raw = settings.table_uri("raw", "crm", "ds=2024-01-02", "customers.csv")
    fs.write_bytes(raw, b"id\n1\n")
    fs.write_bytes(settings.table_uri("gold", "stats.json"), b"{}")
    with pytest.raises(HdfsError, match="Permission denied: user=analyst"):
        WarehouseFS(_user(settings, "analyst")).write_bytes(settings.table_uri("gold", "x.json"), b"{}")
    applied = apply_permissions(settings, [], say=lambda _: None)
    assert {a.zone: (a.owner, a.group) for a in applied if a.zone != "root"} == {
        "raw": ("moulin", "data-engineering"),
        "curated": ("moulin", "analysts"),
    }
    assert WarehouseFS(_user(settings, "engineer")).read_bytes(raw) == b"id\n1\n"
    with pytest.raises(StorageError, match="Permission denied: user=analyst"):
        WarehouseFS(_user(settings, "analyst")).read_bytes(raw)
