"""Running moulin's Airflow: its environment (home, DAG folder, database) from the settings."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from moulin.errors import MoulinError
from moulin.settings import REPO_ROOT, Settings

DAGS_FOLDER = REPO_ROOT / "dags"


def airflow_env(settings: Settings) -> dict[str, str]:
    """Environment variables that point Airflow at moulin's DAGs and a home under MOULIN_HOME."""
    home = settings.home / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "MOULIN_PROFILE": settings.profile,
        **({"MOULIN_WAREHOUSE_URI": settings.warehouse_uri} if settings.warehouse_uri else {}),
    }


def airflow_command(settings: Settings, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the ``airflow`` CLI of this environment with moulin's Airflow settings."""
    env = dict(os.environ)
    env.update(airflow_env(settings))
    airflow = Path(sys.executable).with_name("airflow")
    cmd = [str(airflow) if airflow.exists() else "airflow", *args]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise MoulinError(
            f"`airflow {' '.join(args)}` failed with code {result.returncode}:\n"
            f"{(result.stdout + result.stderr)[-4000:]}"
        )
    return result


def stream_airflow_command(settings: Settings, args: list[str], log_path: Path, on_line) -> int:
    """Run the ``airflow`` CLI, writing its output to ``log_path`` as it comes and
    calling ``on_line(line)`` for each line; return its exit code."""
    env = dict(os.environ)
    env.update(airflow_env(settings))
    airflow = Path(sys.executable).with_name("airflow")
    cmd = [str(airflow) if airflow.exists() else "airflow", *args]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            on_line(line.rstrip("\n"))
        return proc.wait()


def ensure_airflow_db(settings: Settings) -> None:
    """Create or upgrade Airflow's metadata database (idempotent)."""
    marker = settings.home / "airflow" / ".db-migrated"
    if not marker.exists():
        airflow_command(settings, "db", "migrate")
        marker.write_text("ok\n")


@contextlib.contextmanager
def data_errors_fail_the_task() -> Iterator[None]:
    """Turn a :class:`~moulin.errors.DataError` raised inside into Airflow's
    ``AirflowFailException``: the task fails at once, without retries (the same input
    would fail the same way); any other error keeps the task's retries."""
    from moulin.errors import DataError

    try:
        yield
    except DataError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(exc)) from exc
