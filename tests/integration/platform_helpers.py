"""Helpers of the platform tests (``test_platform.py``, ``test_scheduled_year.py``) and of
``benchmarks/year.py``: free ports, the platform under test, DAG runs and task states
read through Airflow's REST API, and the commits of bronze flights read from its Delta log."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from moulin.cluster.ports import free_hdfs_port_env, port_free
from moulin.platform.rest import AirflowClient
from moulin.settings import Settings

MOULIN = str(Path(sys.executable).with_name("moulin"))


def _free_block(count: int, start: int | None = None) -> list[int]:
    """``count`` consecutive free ports, from a random start between 12000 and 18000: below
    Linux's ephemeral ports (32768-60999, where a client's socket may take a port between
    the check and the bind) and HDFS's block (free_hdfs_port_env: 20000-40000)."""
    first = random.randrange(12000, 18000, 20) if start is None else start
    for base in range(first, first + 2000, 20):
        ports = list(range(base, base + count))
        if all(port_free(p) for p in ports):
            return ports
    raise RuntimeError(
        f"no {count} consecutive free ports between {first} and {first + 2000} for the platform"
    )


def platform_service_env(home: Path) -> dict[str, str]:
    """The environment of ``moulin platform up`` under ``home`` on free ports: this
    process's variables less any MOULIN_*/AIRFLOW*, the hdfs-local profile, a small
    Spark (local driver, a standalone master and workers of 1 GiB) and PostgreSQL,
    Airflow's API and the SQL endpoint on ports of their own."""
    pg, api, master, webui, w0, w1, jdbc = _free_block(7)
    assert w1 == w0 + 1
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOULIN_", "AIRFLOW"))}
    env.update(free_hdfs_port_env())
    env.update(
        {
            "MOULIN_PROFILE": "hdfs-local",
            "MOULIN_HOME": str(home),
            "MOULIN_DIST_DIR": os.environ.get("MOULIN_DIST_DIR", str(Path.home() / ".moulin" / "dist")),
            "MOULIN_SPARK_MASTER": "local[2]",
            "MOULIN_SPARK_DRIVER_MEMORY": "2g",
            "MOULIN_SPARK_SHUFFLE_PARTITIONS": "4",
            "MOULIN_SPARK_STANDALONE_PORT": str(master),
            "MOULIN_SPARK_STANDALONE_WEBUI_PORT": str(webui),
            "MOULIN_SPARK_WORKER_WEBUI_BASE_PORT": str(w0),
            "MOULIN_SPARK_WORKER_MEMORY": "1g",
            "MOULIN_PLATFORM_POSTGRES_PORT": str(pg),
            "MOULIN_PLATFORM_API_PORT": str(api),
            "MOULIN_SQL_ENDPOINT_PORT": str(jdbc),
            # A task whose process died is noticed within a minute (default: 5).
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
        }
    )
    return env


@dataclass
class PlatformUnderTest:
    settings: Settings
    env: dict[str, str]
    up_output: str
    client: AirflowClient

    def moulin(self, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
        return subprocess.run([MOULIN, *args], env=self.env, capture_output=True, text=True, timeout=timeout)

    def pid(self, name: str) -> int | None:
        path = self.settings.home / "platform" / "pids" / f"{name}.pid"
        return int(path.read_text()) if path.exists() else None


def _states(client: AirflowClient, dag_id: str, run_id: str) -> dict[str, tuple[str, int]]:
    return {t["task_id"]: (t["state"], t["try_number"]) for t in client.task_instances(dag_id, run_id)}


def _wait_run(client: AirflowClient, dag_id: str, run_id: str, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        run = client.get(f"/dags/{dag_id}/dagRuns/{run_id}")
        if run["state"] in ("success", "failed"):
            return run
        assert time.monotonic() < deadline, (
            f"{dag_id} {run_id} still {run['state']}: {_states(client, dag_id, run_id)}"
        )
        time.sleep(3)


def _bronze_commits_of(settings: Settings, ds: str) -> int:
    """How many commits of bronze flights' Delta log add files to partition ``ds`` (read
    from the log itself: a second write of the month would be a second commit)."""
    from moulin.storage import WarehouseFS

    fs = WarehouseFS(settings)
    commits = 0
    for entry in fs.list(settings.table_uri("bronze", "flights", "_delta_log")):
        if not entry.uri.endswith(".json"):
            continue
        actions = [
            json.loads(line) for line in fs.read_bytes(entry.uri).decode().splitlines() if line.strip()
        ]
        if any((a.get("add") or {}).get("partitionValues", {}).get("ds") == ds for a in actions):
            commits += 1
    return commits


#: The flights use case's sources (specs in schemas/sources/, DAGs ``source_<name>``).
FLIGHTS_SOURCES = ("flights", "weather", "airlines", "planes", "airports")


def window_flights_sources(env: dict[str, str], start: str, end: str, schedule: str = "@monthly") -> None:
    """Window the five flights sources on ``start``..``end`` (``schedule``): their specs with
    these dates, in ``<home>/contracts/sources/`` put first by ``MOULIN_CONTRACTS_DIR`` (the
    contracts still come from moulin's ``schemas/``); then ``moulin flights prepare`` writes
    every month's deliveries (``MOULIN_FLIGHTS_SAMPLE_PER_MONTH`` flights each) for the
    scheduled runs to find."""
    import yaml

    from moulin.settings import REPO_ROOT

    folder = Path(env["MOULIN_HOME"]) / "contracts" / "sources"
    folder.mkdir(parents=True, exist_ok=True)
    for name in FLIGHTS_SOURCES:
        spec = yaml.safe_load((REPO_ROOT / "schemas" / "sources" / f"{name}.yaml").read_text())
        spec.update(schedule=schedule, start_date=start, end_date=end)
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    env["MOULIN_CONTRACTS_DIR"] = str(folder.parent)
    sample = env.get("MOULIN_FLIGHTS_SAMPLE_PER_MONTH", "0")
    done = subprocess.run(
        [MOULIN, "flights", "prepare", "--sample", sample, "--months", "1-12"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
