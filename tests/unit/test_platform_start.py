"""What ``moulin platform up`` decides on start: which Airflow Connections it creates
(never overwriting the operator's), and which PostgreSQL data folder it may initialise
(never removing one it did not make)."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from moulin.jobs.connections import SPARK_CONN_ID, WEBHDFS_CONN_ID
from moulin.platform import postgres, services
from moulin.platform.services import Platform
from moulin.settings import Settings, load_settings


@pytest.fixture
def home_settings(tmp_path: Path) -> Settings:
    return replace(load_settings("hdfs-local", env={}), home=tmp_path / "home")


# --------------------------------------------------------------------- connections
def test_only_missing_connections_are_created() -> None:
    wanted = [SPARK_CONN_ID, WEBHDFS_CONN_ID]
    assert services.connections_to_create(wanted, set()) == (wanted, [])
    assert services.connections_to_create(wanted, {SPARK_CONN_ID, "other"}) == (
        [WEBHDFS_CONN_ID],
        [SPARK_CONN_ID],
    )
    assert services.connections_to_create(wanted, set(wanted)) == ([], wanted)


class FakeAirflow:
    """Airflow's connection table as the REST API shows it: POST creates, 409 if it exists."""

    def __init__(self, existing: dict[str, dict]) -> None:
        self.table = dict(existing)
        self.created: list[str] = []

    def connection_exists(self, conn_id: str) -> bool:
        return conn_id in self.table

    def create_connection(self, connection: dict) -> bool:
        if connection["connection_id"] in self.table:
            return False
        self.table[connection["connection_id"]] = connection
        self.created.append(connection["connection_id"])
        return True


def test_platform_up_keeps_an_operators_connection(home_settings: Settings) -> None:
    operator_spark = {"connection_id": SPARK_CONN_ID, "conn_type": "spark", "host": "spark://prod:7077"}
    airflow = FakeAirflow({SPARK_CONN_ID: operator_spark})
    lines: list[str] = []
    platform = Platform(home_settings, log=lines.append)
    platform._store_connections(airflow)
    assert airflow.table[SPARK_CONN_ID] == operator_spark  # as the operator set it
    assert airflow.created == [WEBHDFS_CONN_ID]
    webhdfs = airflow.table[WEBHDFS_CONN_ID]
    assert webhdfs["port"] == home_settings.hdfs.namenode_http_port and webhdfs["conn_type"] == "webhdfs"
    assert any(f"connection {SPARK_CONN_ID} exists: kept" in line for line in lines)
    assert any(f"connection {WEBHDFS_CONN_ID} created" in line for line in lines)
    # A second `up` changes nothing.
    platform._store_connections(airflow)
    assert airflow.created == [WEBHDFS_CONN_ID] and airflow.table[SPARK_CONN_ID] == operator_spark


def test_a_connection_created_meanwhile_by_someone_else_is_kept(home_settings: Settings) -> None:
    class Racing(FakeAirflow):
        def connection_exists(self, conn_id: str) -> bool:
            return False  # checked before the operator's arrived

    theirs = {"connection_id": WEBHDFS_CONN_ID, "conn_type": "webhdfs", "host": "nn.prod"}
    airflow = Racing({WEBHDFS_CONN_ID: theirs})
    lines: list[str] = []
    Platform(home_settings, log=lines.append)._store_connections(airflow)
    assert airflow.table[WEBHDFS_CONN_ID] == theirs and airflow.created == [SPARK_CONN_ID]
    assert any(f"connection {WEBHDFS_CONN_ID} exists: kept" in line for line in lines)


# --------------------------------------------------------------------- postgres data folder
def _fake_bin(tmp_path: Path, initdb_body: str) -> Path:
    """A folder with a stand-in ``initdb`` (a shell script) and ``postgres``."""
    folder = tmp_path / "pgbin"
    folder.mkdir(parents=True)
    for name, body in (("initdb", initdb_body), ("postgres", "exit 0")):
        path = folder / name
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder


# The stand-in takes the data folder after -D, as initdb does.
_INITDB_OK = 'while [ "$1" != "-D" ]; do shift; done; echo 15 > "$2/PG_VERSION"; mkdir "$2/base"'
_INITDB_DIES = (
    'while [ "$1" != "-D" ]; do shift; done; echo 15 > "$2/PG_VERSION"; echo half > "$2/half"; exit 1'
)


def _settings_with(home_settings: Settings, data: Path, bin_dir: Path | None = None) -> Settings:
    platform = replace(
        home_settings.platform,
        postgres_data_dir=data,
        postgres_bin_dir=bin_dir or home_settings.platform.postgres_bin_dir,
    )
    return replace(home_settings, platform=platform)


@pytest.fixture
def as_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the stand-in initdb as this process's user even under root (it is no PostgreSQL)."""
    monkeypatch.setattr(postgres, "_as_root", lambda: False)


def test_a_folder_moulin_did_not_make_is_never_removed(home_settings, tmp_path, as_user) -> None:
    data = tmp_path / "pgdata"
    data.mkdir()
    (data / "important.txt").write_text("the operator's\n")
    settings = _settings_with(home_settings, data, _fake_bin(tmp_path, _INITDB_OK))
    with pytest.raises(postgres.PostgresError) as info:
        postgres.initialise(settings, log=lambda _: None)
    message = str(info.value)
    assert str(data) in message and "PG_VERSION" in message and "MOULIN_PLATFORM_POSTGRES_DATA_DIR" in message
    assert (data / "important.txt").read_text() == "the operator's\n"
    assert sorted(p.name for p in data.iterdir()) == ["important.txt"]


def test_an_absent_folder_appears_only_complete(home_settings, tmp_path, as_user) -> None:
    data = tmp_path / "parent" / "pgdata"
    settings = _settings_with(home_settings, data, _fake_bin(tmp_path, _INITDB_OK))
    lines: list[str] = []
    assert postgres.initialise(settings, log=lines.append) is True
    assert (data / "PG_VERSION").read_text() == "15\n" and (data / "base").is_dir()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert [p.name for p in data.parent.iterdir()] == ["pgdata"]  # no staging folder left
    assert postgres.initialise(settings, log=lines.append) is False


def test_an_empty_folder_is_initialised(home_settings, tmp_path, as_user) -> None:
    data = tmp_path / "pgdata"
    data.mkdir()
    settings = _settings_with(home_settings, data, _fake_bin(tmp_path, _INITDB_OK))
    assert postgres.initialise(settings, log=lambda _: None) is True
    assert (data / "PG_VERSION").exists()


def test_an_interrupted_initdb_leaves_no_data_folder_and_is_redone(home_settings, tmp_path, as_user) -> None:
    data = tmp_path / "parent" / "pgdata"
    failing = _settings_with(home_settings, data, _fake_bin(tmp_path / "a", _INITDB_DIES))
    with pytest.raises(postgres.PostgresError, match="initdb of .* failed"):
        postgres.initialise(failing, log=lambda _: None)
    assert not data.exists()  # never a half-made folder with a PG_VERSION in it
    # A staging folder left by a killed initdb (moulin's by its name) is cleaned up.
    (data.parent / ".pgdata.moulin-initdb-killed").mkdir()
    (data.parent / ".pgdata.moulin-initdb-killed" / "PG_VERSION").write_text("15\n")
    (data.parent / "neighbour").mkdir()  # not moulin's: left alone
    working = _settings_with(home_settings, data, _fake_bin(tmp_path / "b", _INITDB_OK))
    assert postgres.initialise(working, log=lambda _: None) is True
    assert sorted(p.name for p in data.parent.iterdir()) == ["neighbour", "pgdata"]


def _real_initdb() -> Path | None:
    try:
        return postgres.bin_dir(load_settings("hdfs-local", env={}))
    except postgres.PostgresError:
        return None


@pytest.mark.skipif(_real_initdb() is None, reason="PostgreSQL's server is not installed")
def test_real_initdb_into_an_absent_folder(home_settings) -> None:
    # Under root, initdb runs as the postgres account, which must reach the folder.
    parent = Path(tempfile.mkdtemp(prefix="moulin-pgtest-"))
    try:
        os.chmod(parent, 0o755)
        data = parent / "pgdata"
        settings = _settings_with(home_settings, data)
        assert postgres.initialise(settings, log=lambda _: None) is True
        assert (data / "PG_VERSION").exists() and (data / "postgresql.conf").exists()
        assert [p.name for p in parent.iterdir()] == ["pgdata"]
        assert postgres.initialise(settings, log=lambda _: None) is False
    finally:
        shutil.rmtree(parent, ignore_errors=True)
