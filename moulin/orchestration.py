"""Running moulin's Airflow: its environment (home, DAG folder, database) from the settings."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from moulin.dagtests import END_MARK, START_MARK
from moulin.errors import MoulinError
from moulin.identifiers import check_path_part
from moulin.settings import REPO_ROOT, Settings

DAGS_FOLDER = REPO_ROOT / "dags"


def airflow_sqlite_path(settings: Settings) -> Path:
    """The SQLite metadata database of ``airflow dags test`` (the platform's Airflow uses PostgreSQL)."""
    return settings.home / "airflow" / "airflow.db"


def airflow_env(settings: Settings) -> dict[str, str]:
    """Environment variables that point Airflow at moulin's DAGs and a home under MOULIN_HOME."""
    home = settings.home / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_sqlite_path(settings)}",
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


@dataclass(frozen=True)
class DagTest:
    """One DAG run of :func:`run_dag_tests`."""

    dag_id: str
    logical_date: str
    label: str = ""
    conf: dict = field(default_factory=dict)


def run_dag_tests(
    settings: Settings,
    runs: list[DagTest],
    log_dir: Path,
    say: Callable[[str], None],
    relay: Callable[[str], str | None] = lambda line: None,
) -> list[dict]:
    """Run ``runs`` in order, as ``airflow dags test`` would, in one process (:mod:`moulin.dagtests`).

    Each run's output goes to ``<log_dir>/<dag_id>-<logical_date>.log``; ``say``
    gets a line when a run starts and ends, and the text ``relay`` returns for
    an output line (None: nothing).  Returns ``[{dag_id, logical_date, seconds}]``;
    raises :class:`MoulinError` naming the run that failed, its log and its
    last error lines.
    """

    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(airflow_env(settings))
    env["PYTHONUNBUFFERED"] = "1"
    plan = [{"dag_id": r.dag_id, "logical_date": r.logical_date, "conf": r.conf} for r in runs]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moulin.dagtests"],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(plan))
    proc.stdin.close()
    results: list[dict] = []
    preamble: list[str] = []
    log = None
    current: DagTest | None = None
    errors: list[str] = []
    started = time.monotonic()
    try:
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            if line.startswith(START_MARK):
                current = runs[json.loads(line[len(START_MARK) :])["index"]]
                number = len(results) + 1
                say(
                    f"[{number}/{len(runs)}] {current.label or current.dag_id} ({current.dag_id} @ {current.logical_date}) ..."
                )
                log = open(_log_path(log_dir, current), "w")  # noqa: SIM115 - closed at the run's end mark
                log.writelines(preamble)
                preamble, errors, started = [], [], time.monotonic()
                continue
            if line.startswith(END_MARK) and current is not None and log is not None:
                state = json.loads(line[len(END_MARK) :])["state"]
                log.close()
                log = None
                seconds = time.monotonic() - started
                if state != "success":
                    break
                say(f"      done in {seconds:.0f}s")
                results.append(
                    {
                        "dag_id": current.dag_id,
                        "logical_date": current.logical_date,
                        "seconds": round(seconds, 1),
                    }
                )
                continue
            if log is not None:
                log.write(raw)
            else:
                preamble.append(raw)
            shown = relay(line)
            if shown is not None:
                say(shown)
            elif "rror" in line:
                errors.append(line)
    finally:
        if log is not None:
            log.close()
        code = proc.wait()
    if code == 0 and len(results) == len(runs):
        return results
    if current is None:
        raise MoulinError(f"the DAG runs did not start (exit code {code}):\n" + "".join(preamble[-20:]))
    raise MoulinError(
        f"DAG run {current.dag_id} @ {current.logical_date} failed after {time.monotonic() - started:.0f}s; "
        f"full log: {_log_path(log_dir, current)}\n" + "\n".join(errors[-8:])
    )


def _log_path(log_dir: Path, run: DagTest) -> Path:
    return log_dir / f"{run.dag_id}-{run.logical_date}.log"


def ensure_airflow_db(settings: Settings) -> None:
    """Create or upgrade Airflow's metadata database (idempotent)."""
    marker = settings.home / "airflow" / ".db-migrated"
    if not marker.exists():
        airflow_command(settings, "db", "migrate")
        marker.write_text("ok\n")


def safe_run_id(run_id: str) -> str:
    """An Airflow run id made safe for file names (HDFS refuses ':'): other characters than
    letters, digits, ``.``, ``_`` and ``-`` become ``_`` and leading dots go (never ``.``
    or ``..``), so it is one folder name (:func:`moulin.identifiers.check_path_part`)."""
    return check_path_part(re.sub(r"[^A-Za-z0-9._-]", "_", run_id).lstrip(".") or "run", "run id")
