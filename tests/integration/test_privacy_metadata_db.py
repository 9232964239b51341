"""The erasure's proof reads Airflow's metadata database on the platform's PostgreSQL
(started here on its own: ``initdb``, the server on a free port, the ``airflow``
database, as ``moulin platform up`` does), through ``pg_dump``."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from moulin.cluster.daemons import DaemonSet
from moulin.platform import airflow_services, postgres, secrets
from moulin.settings import Settings, load_settings


def _pg_dump() -> Path | None:
    try:
        exe = postgres.bin_dir(load_settings("local", env={})) / "pg_dump"
    except postgres.PostgresError:
        return None
    return exe if exe.exists() else None


pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(_pg_dump() is None, reason="PostgreSQL's server and pg_dump are not installed"),
]

SUBJECT = "bob@example.com"


@pytest.fixture
def platform_db(settings: Settings, tmp_path: Path):
    """A home whose platform wrote its Airflow database URI, with that PostgreSQL running."""
    from moulin.cluster.ports import port_free

    # under root the server runs as the postgres account, which must reach its data folder
    parent = Path(tempfile.mkdtemp(prefix="moulin-pgtest-"))
    os.chmod(parent, 0o755)
    port = next(p for p in range(47400, 47600) if port_free(p))
    pf = replace(settings.platform, postgres_port=port, postgres_data_dir=parent / "pgdata")
    home = replace(settings, home=tmp_path / "home", warehouse_uri="", platform=pf)
    airflow_services.prepare_secrets(home)  # the URI file the platform's Airflow reads
    postgres.initialise(home, log=lambda line: None)
    daemons = DaemonSet(home.home / "platform")
    server = postgres.daemon(home)
    try:
        daemons.start(server)
        postgres.wait_and_create_database(home, timeout_s=30)
        yield home, daemons, server
    finally:
        daemons.stop(server, timeout_s=30)
        shutil.rmtree(parent, ignore_errors=True)


def _connect(settings: Settings):
    import psycopg2

    return psycopg2.connect(
        host=settings.platform.postgres_host, port=settings.platform.postgres_port, user=postgres.ROLE,
        password=secrets.read_secret(settings, secrets.DB_PASSWORD), dbname=postgres.DATABASE,
    )  # fmt: skip


def test_the_proof_dumps_the_platforms_postgres_and_fails_when_it_is_down(platform_db, monkeypatch) -> None:
    from moulin.privacy import airflow_db
    from moulin.privacy.airflow_db import MetadataDatabaseError
    from moulin.privacy.erasure import local_log_dirs
    from moulin.privacy.scan import scan

    settings, daemons, server = platform_db
    password = secrets.read_secret(settings, secrets.DB_PASSWORD)
    commands: list[list[str]] = []
    real_run = airflow_db.subprocess.run

    def run(command, **kwargs):  # the password travels in the child's environment, never in argv
        commands.append(list(command))
        assert kwargs["env"].get("PGPASSWORD") == password
        return real_run(command, **kwargs)

    monkeypatch.setattr(airflow_db.subprocess, "run", run)
    with _connect(settings) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE dag_run (id serial PRIMARY KEY, conf jsonb, note text, payload bytea)")
        cur.execute(
            "INSERT INTO dag_run (conf, note, payload) VALUES (%s, %s, %s), (%s, %s, %s)",
            ('{"request_id": "erase-x"}', "jimbob@example.com", b"neighbour",
             '{"to": "Bob@Example.com"}', "ask bob@example.com.au", b"\x80\x04 bob@example.com"),
        )  # fmt: skip
    conn.close()
    name = f"postgresql://127.0.0.1:{settings.platform.postgres_port}/airflow (pg_dump)"
    needles = {"address": SUBJECT}
    assert scan(settings, needles, local_log_dirs(settings)).hits == [(name, "address")]
    assert commands and commands[0][0].endswith("/pg_dump")
    assert all(password not in part for command in commands for part in command)

    with _connect(settings) as conn, conn.cursor() as cur:
        cur.execute("UPDATE dag_run SET conf = '{}' WHERE conf->>'to' IS NOT NULL")
        assert cur.rowcount == 1
    conn.close()
    assert scan(settings, needles, local_log_dirs(settings)).hits == [(name, "address")]  # the bytea value
    with _connect(settings) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM dag_run WHERE payload <> 'neighbour'::bytea")
    conn.close()
    assert scan(settings, needles, local_log_dirs(settings)).hits == []

    daemons.stop(server, timeout_s=30)  # the platform is down: the proof cannot pass
    with pytest.raises(MetadataDatabaseError) as info:
        scan(settings, needles, local_log_dirs(settings))
    assert name in str(info.value) and "moulin platform up" in str(info.value)
    assert password not in str(info.value)
