"""Airflow's metadata database as the erasure's proof reads it.

Airflow keeps DAG-run confs, XCom values, task-instance notes and its own log of
commands in its metadata database, outside the warehouse and the log folders.
moulin's Airflow uses one of two databases under a moulin home:

* the platform's PostgreSQL (:mod:`moulin.platform.postgres`), once ``moulin
  platform up`` wrote the URI its Airflow reads
  (:func:`moulin.platform.airflow_services.db_uri_file`): the proof runs the
  Debian ``pg_dump`` beside the server's binaries with that URI's role and
  database, the password in the child's ``PGPASSWORD`` only (never on a command
  line), and reads the plain dump in memory;
* the SQLite file of ``airflow dags test``
  (:func:`moulin.orchestration.airflow_sqlite_path`), when it exists: its bytes
  as they stand (what was deleted but not overwritten included) and its rows
  through a read-only connection (a long value is split across pages in the file).

``bytea`` and BLOB values are written in hex by both dumps: they are decoded
too.  A database that cannot be read raises :class:`MetadataDatabaseError`: the
proof never passes without it.
"""

from __future__ import annotations

import binascii
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from moulin.errors import MoulinError
from moulin.orchestration import airflow_sqlite_path
from moulin.platform.airflow_services import db_uri_file
from moulin.platform.postgres import PostgresError, bin_dir
from moulin.settings import Settings

#: How long ``pg_dump`` may take (an Airflow metadata database is a few MiB to a few hundred).
DUMP_TIMEOUT_S = 600
#: Hex values of the dumps: PostgreSQL's ``bytea`` in COPY text (``\\x...``), SQLite's ``X'...'``.
_HEX_VALUES = re.compile(rb"\\\\x((?:[0-9a-fA-F]{2})+)|X'((?:[0-9a-fA-F]{2})+)'")


class MetadataDatabaseError(MoulinError):
    """Airflow's metadata database could not be read by the proof; the message names it and what to do."""


@dataclass(frozen=True)
class MetadataContent:
    """What the proof searches in one database: a name (no credentials) and the bytes."""

    name: str
    data: bytes


def with_hex_decoded(dump: bytes) -> bytes:
    """``dump`` followed by the bytes of its hex-written values (one per line)."""
    blobs = [binascii.unhexlify(m.group(1) or m.group(2)) for m in _HEX_VALUES.finditer(dump)]
    return dump + (b"\n" + b"\n".join(blobs) if blobs else b"")


def postgres_name(host: str, port: int | None, database: str) -> str:
    """How the proof names a PostgreSQL database: ``postgresql://host:port/db (pg_dump)``."""
    return f"postgresql://{host}:{port or 5432}/{database} (pg_dump)"


def pg_dump_executable(settings: Settings) -> Path:
    """The Debian ``pg_dump`` beside the platform server's ``initdb`` and ``postgres``."""

    try:
        folder = bin_dir(settings)
    except PostgresError as exc:
        raise MetadataDatabaseError(
            f"the erasure's proof cannot dump Airflow's metadata database: {exc}"
        ) from None
    exe = folder / "pg_dump"
    if not exe.exists():
        raise MetadataDatabaseError(
            f"the erasure's proof cannot dump Airflow's metadata database: {exe} does not exist; install "
            f"PostgreSQL's client of the server's version (apt-get install postgresql-client-{folder.parent.name})"
        )
    return exe


def dump_postgres(settings: Settings, uri: str) -> MetadataContent:
    """The plain ``pg_dump`` of the PostgreSQL database at SQLAlchemy ``uri`` (schema and
    rows, hex values decoded), in memory; the password goes to the child's environment only."""
    import sqlalchemy as sa

    url = sa.make_url(uri)
    host, database = url.host or "127.0.0.1", url.database or "postgres"
    name = postgres_name(host, url.port, database)
    command = [
        str(pg_dump_executable(settings)),
        "--host", host,
        "--port", str(url.port or 5432),
        "--username", url.username or "postgres",
        "--dbname", database,
        "--no-password",  # never prompt: fail with a message instead
        "--format=plain",
        "--no-owner",
        "--no-privileges",
        "--lock-wait-timeout=60s",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({"PGCONNECT_TIMEOUT": "10", "PGAPPNAME": "moulin-erasure-proof"})
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    what = f"Airflow's metadata database {name}"
    try:
        done = subprocess.run(command, env=env, capture_output=True, timeout=DUMP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise MetadataDatabaseError(
            f"the erasure's proof could not read {what}: pg_dump took over {DUMP_TIMEOUT_S} s; "
            "check the server's load and locks, then rerun the erasure"
        ) from None
    if done.returncode != 0:
        error = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise MetadataDatabaseError(
            f"the erasure's proof could not read {what} (pg_dump exited with {done.returncode}: "
            f"{' '.join(error[-3:]) or 'no message'}); it may hold the subject (DAG-run confs, XCom, "
            "task logs): start the platform's PostgreSQL (`moulin platform up`) and rerun the erasure"
        )
    return MetadataContent(name, with_hex_decoded(done.stdout))


def dump_sqlite(path: Path) -> MetadataContent:
    """The SQLite database ``path``: its file's bytes, then its rows as SQL (read-only; BLOBs decoded)."""
    import sqlite3

    try:
        data = path.read_bytes()
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60)
        conn.text_factory = lambda value: value.decode("utf-8", "replace")
        try:
            rows = "\n".join(conn.iterdump()).encode("utf-8", "replace")
        finally:
            conn.close()
    except (OSError, sqlite3.Error) as exc:
        raise MetadataDatabaseError(
            f"the erasure's proof could not read Airflow's metadata database {path} ({exc}); it may hold "
            "the subject: make it readable (stop the `airflow dags test` that locks it) and rerun the erasure"
        ) from None
    return MetadataContent(path.resolve().as_uri(), data + b"\n" + with_hex_decoded(rows))


def metadata_contents(settings: Settings) -> list[MetadataContent]:
    """The content of every Airflow metadata database of this moulin home (see the module
    docstring); raises :class:`MetadataDatabaseError` when one cannot be read."""

    out = []
    uri_file = db_uri_file(settings)
    if uri_file.exists():  # the platform's Airflow reads its database's URI there
        uri = uri_file.read_text().strip()
        if not uri.startswith("postgresql"):
            raise MetadataDatabaseError(
                f"{uri_file} names a database the erasure's proof cannot read (only PostgreSQL): "
                "point it at the platform's PostgreSQL (`moulin platform up` writes it)"
            )
        out.append(dump_postgres(settings, uri))
    sqlite_file = airflow_sqlite_path(settings)
    if sqlite_file.exists():
        out.append(dump_sqlite(sqlite_file))
    return out


def sidecar_files(settings: Settings) -> list[Path]:
    """The SQLite database's journal and write-ahead log, when they exist (searched as files)."""

    path = airflow_sqlite_path(settings)
    return [
        p for p in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-journal")) if p.is_file()
    ]
