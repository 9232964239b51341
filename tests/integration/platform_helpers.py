"""Helpers of the platform tests (``test_platform.py``, ``test_scheduled_year.py``) and of
``benchmarks/year.py``: free ports, the platform under test, DAG runs and task states
read through Airflow's REST API, and the commits of bronze flights read from its Delta log."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from moulin.cluster.ports import port_free
from moulin.platform.rest import AirflowClient
from moulin.settings import Settings

MOULIN = str(Path(sys.executable).with_name("moulin"))


def _free_block(count: int, start: int = 42000) -> list[int]:
    for base in range(start, 52000, 20):
        ports = list(range(base, base + count))
        if all(port_free(p) for p in ports):
            return ports
    raise RuntimeError("no free block of ports for the platform")


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
