"""PostgreSQL from the Debian package as Airflow's metadata database.

One server per moulin home: ``initdb`` once (password authentication on TCP, no
trust), then ``postgres`` as a daemon whose pid and log files live under
``<home>/platform`` like every other service.  PostgreSQL refuses to run as root:
when moulin runs as root, the server runs as ``platform.postgres_os_user`` with its
data folder under that account's reach (see :func:`data_dir`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from moulin.cluster.daemons import ClusterError, Daemon, run_as_kwargs
from moulin.cluster.files import exclusive_lock
from moulin.platform import secrets
from moulin.settings import Settings

DATABASE = "airflow"
ROLE = "airflow"


class PostgresError(ClusterError):
    """PostgreSQL is missing, cannot start or refuses the database; the message says what to do."""


def bin_dir(settings: Settings) -> Path:
    """Folder of ``initdb`` and ``postgres`` (the newest installed version by default)."""
    configured = settings.platform.postgres_bin_dir
    if configured:
        candidates = [Path(configured)]
    else:
        root = Path("/usr/lib/postgresql")
        versions = sorted(
            (p for p in root.glob("*/bin") if p.parent.name.isdigit()), key=lambda p: int(p.parent.name)
        )
        candidates = versions[::-1]
    for folder in candidates:
        if (folder / "postgres").exists() and (folder / "initdb").exists():
            return folder
    raise PostgresError(
        "PostgreSQL's server was not found (no /usr/lib/postgresql/<version>/bin/postgres): "
        "install the Debian package `postgresql` (bin/setup does) or set MOULIN_PLATFORM_POSTGRES_BIN_DIR"
    )


def _as_root() -> bool:
    return os.geteuid() == 0


def data_dir(settings: Settings) -> Path:
    """The server's data folder (see :class:`~moulin.settings.PlatformSettings`)."""
    if settings.platform.postgres_data_dir:
        return Path(settings.platform.postgres_data_dir)
    if _as_root():
        digest = hashlib.sha256(str(settings.home.resolve()).encode()).hexdigest()[:12]
        return Path("/var/lib/postgresql") / f"moulin-{digest}"
    return settings.home / "platform" / "postgres"


def daemon(settings: Settings) -> Daemon:
    """The ``postgres`` server process."""
    pg = settings.platform
    folder = data_dir(settings)
    command = [
        str(bin_dir(settings) / "postgres"),
        "-D", str(folder),
        "-p", str(pg.postgres_port),
        "-h", pg.postgres_host,
        "-k", str(folder),  # its Unix socket stays in its own folder
        "-c", "logging_collector=off",
        "-c", "shared_buffers=32MB",
        "-c", "max_connections=60",
    ]  # fmt: skip
    return Daemon(
        name="postgres",
        command=lambda: command,
        ports=(("port", pg.postgres_port),),
        marker=str(folder),
        run_as=pg.postgres_os_user if _as_root() else None,
        stop_signal=signal.SIGINT,
    )


INITDB_PREFIX = ".moulin-initdb-"


def _staging_prefix(folder: Path) -> str:
    """Name prefix of the folders where ``initdb`` builds ``folder`` (beside it)."""
    return f".{folder.name}{INITDB_PREFIX}"


def initialise(settings: Settings, log) -> bool:
    """Create the data folder with ``initdb`` unless it exists; True if it did.

    ``initdb`` builds the cluster in a sibling folder that is renamed into place only
    when complete, so the data folder is never half-made; a sibling left by an
    interrupted ``initdb`` (moulin's by its name) is removed.  A folder that moulin did
    not make is never removed: an absent or empty one is initialised, one that holds
    other files is refused with a PostgresError naming it.
    """
    folder = data_dir(settings)
    if (folder / "PG_VERSION").exists():
        return False
    # Two `platform up` at once: the second waits, then finds the folder made.
    with exclusive_lock(settings.home / "platform" / ".postgres-initdb.lock"):
        return _initialise_locked(settings, folder, log)


def _initialise_locked(settings: Settings, folder: Path, log) -> bool:
    if (folder / "PG_VERSION").exists():
        return False
    if folder.is_symlink():  # the rename below must land in the link's target
        folder = folder.resolve()
    if folder.is_dir() and any(folder.iterdir()):
        raise PostgresError(
            f"the PostgreSQL data folder {folder} is not empty but holds no database cluster "
            "(no PG_VERSION); moulin did not create it and leaves it alone: move its files away "
            "or empty it, or set MOULIN_PLATFORM_POSTGRES_DATA_DIR to an absent or empty folder"
        )
    if folder.exists() and not folder.is_dir():
        raise PostgresError(
            f"the PostgreSQL data folder {folder} is a file: move it away "
            "or set MOULIN_PLATFORM_POSTGRES_DATA_DIR to an absent or empty folder"
        )
    folder.parent.mkdir(parents=True, exist_ok=True)
    for leftover in folder.parent.glob(_staging_prefix(folder) + "*"):
        shutil.rmtree(leftover, ignore_errors=True)  # from an interrupted initdb of moulin's
    password, _ = secrets.ensure_secret(settings, secrets.DB_PASSWORD)
    account = run_as_kwargs(settings.platform.postgres_os_user if _as_root() else None)
    initdb = bin_dir(settings) / "initdb"
    staging = Path(tempfile.mkdtemp(prefix=_staging_prefix(folder), dir=folder.parent))
    work = Path(tempfile.mkdtemp(prefix="moulin-initdb-"))
    try:
        pwfile = work / "pw"
        secrets.write_private(pwfile, password + "\n")
        if account:
            for path in (staging, work, pwfile):
                os.chown(path, account["user"], account["group"])
        command = [
            str(initdb),
            "-D", str(staging),
            "-U", ROLE,
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=scram-sha-256",
            "--encoding=UTF8",
            "--no-instructions",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, cwd=work, **account)
        if result.returncode != 0:
            raise PostgresError(f"initdb of {folder} failed:\n{(result.stdout + result.stderr)[-2000:]}")
        if not (staging / "PG_VERSION").exists():
            raise PostgresError(f"initdb of {folder} made no PG_VERSION:\n{result.stdout[-2000:]}")
        try:
            os.rename(staging, folder)  # replaces an empty folder, never a non-empty one
        except OSError as exc:
            raise PostgresError(
                f"could not move the new database cluster into {folder} ({exc}): "
                "set MOULIN_PLATFORM_POSTGRES_DATA_DIR to an absent folder on the same file system"
            ) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)  # gone if renamed into place
    log(f"postgres: initialised {folder}")
    return True


def sqlalchemy_uri(settings: Settings, driver: str = "postgresql+psycopg2") -> str:
    """Airflow's metadata database URI (it holds the password: never log it)."""
    pg = settings.platform
    password = secrets.read_secret(settings, secrets.DB_PASSWORD)
    return f"{driver}://{ROLE}:{password}@{pg.postgres_host}:{pg.postgres_port}/{DATABASE}"


def wait_and_create_database(settings: Settings, timeout_s: float) -> None:
    """Wait until the server accepts logins, then create the ``airflow`` database once."""
    import psycopg2

    pg = settings.platform
    password = secrets.read_secret(settings, secrets.DB_PASSWORD)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn = psycopg2.connect(
                host=pg.postgres_host, port=pg.postgres_port, user=ROLE, password=password,
                dbname="postgres", connect_timeout=3,
            )  # fmt: skip
            break
        except psycopg2.OperationalError as exc:
            if time.monotonic() > deadline:
                raise PostgresError(
                    f"PostgreSQL on {pg.postgres_host}:{pg.postgres_port} did not accept a login within "
                    f"{timeout_s:.0f} s ({str(exc).strip()}): see its log under {settings.home / 'platform' / 'logs'}"
                ) from None
            time.sleep(0.5)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{DATABASE}" OWNER "{ROLE}"')
    finally:
        conn.close()
