"""Airflow 3's components as daemons: api-server, scheduler, dag-processor, triggerer.

They share one environment (:func:`service_env`): moulin's DAG folder and Airflow home
(:func:`moulin.orchestration.airflow_env`), the PostgreSQL metadata database, the
LocalExecutor, and authentication on.  Secrets reach Airflow through ``*_CMD``
options that read their 0600 files, so no secret sits in a command line, in the
environment of the processes or in a log.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from moulin.cluster.daemons import Daemon
from moulin.orchestration import airflow_env
from moulin.platform import postgres, secrets
from moulin.settings import Settings

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def airflow_executable() -> str:
    """The ``airflow`` script of this environment."""
    exe = Path(sys.executable).with_name("airflow")
    return str(exe) if exe.exists() else "airflow"


def passwords_file(settings: Settings) -> Path:
    """The simple auth manager's passwords file (mode 0600)."""
    return secrets.secrets_dir(settings) / "airflow-passwords.json"


def db_uri_file(settings: Settings) -> Path:
    """The file holding the metadata database URI with its password (mode 0600)."""
    return secrets.secrets_dir(settings) / "airflow-db.uri"


def prepare_secrets(settings: Settings) -> str | None:
    """Create the secrets the services read (idempotent); the admin password if it was
    generated now (to print once), else None."""
    password, created = secrets.ensure_secret(settings, secrets.ADMIN_PASSWORD)
    for secret in (secrets.JWT_SECRET, secrets.API_SECRET_KEY, secrets.FERNET_KEY, secrets.DB_PASSWORD):
        secrets.ensure_secret(settings, secret)
    secrets.write_private(
        passwords_file(settings), json.dumps({settings.platform.admin_user: password}) + "\n"
    )
    secrets.write_private(db_uri_file(settings), postgres.sqlalchemy_uri(settings))
    return password if created else None


def _cat(path: Path) -> str:
    return f"cat {shlex.quote(str(path))}"


def service_env(settings: Settings) -> dict[str, str]:
    """Environment of every Airflow component (and of ``airflow`` commands against the platform)."""
    pf = settings.platform
    env = airflow_env(settings)
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)  # the sqlite of `dags test`; *_CMD below
    env.update(
        {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD": _cat(db_uri_file(settings)),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(pf.parallelism),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(pf.parallelism),
            "AIRFLOW__CORE__FERNET_KEY_CMD": _cat(secrets.FERNET_KEY.path(settings)),
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{pf.admin_user}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file(settings)),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{pf.api_url}/execution/",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__API__HOST": pf.api_host,
            "AIRFLOW__API__PORT": str(pf.api_port),
            "AIRFLOW__API__BASE_URL": pf.api_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY_CMD": _cat(secrets.API_SECRET_KEY.path(settings)),
            "AIRFLOW__API_AUTH__JWT_SECRET_CMD": _cat(secrets.JWT_SECRET.path(settings)),
            # New and changed DAG files are picked up within half a minute.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
            "AIRFLOW__TRIGGERER__CAPACITY": "50",
            # After a scheduler crash, its tasks are reset and rerun within about a minute
            # (default: five): one machine, one scheduler.
            "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "60",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "MOULIN_HOME": str(settings.home),
            # The DAG processor builds a DAG for each use case there (dags/usecases.py).
            "MOULIN_USER_USECASES_DIR": str(settings.own_usecases_dir),
        }
    )
    return env


def daemons(settings: Settings) -> list[Daemon]:
    """The four components, in start order (the api-server first: tasks talk to it)."""
    exe = airflow_executable()
    env = service_env(settings)
    pf = settings.platform
    result = []
    for component in COMPONENTS:
        command = [exe, component]
        ports: tuple[tuple[str, int], ...] = ()
        if component == "api-server":
            command += ["--host", pf.api_host, "--port", str(pf.api_port)]
            ports = (("http", pf.api_port),)
        result.append(
            Daemon(
                name=f"airflow-{component}",
                command=lambda c=command: c,
                ports=ports,
                # The api-server renames its process "airflow api_server -- host:... port:...".
                marker="airflow api_server" if component == "api-server" else f"airflow {component}",
                env=env,
            )
        )
    return result
