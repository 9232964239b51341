"""A small client of Airflow's REST API (``/api/v2``) as the platform's admin.

``moulin platform status`` and the tests read DAG runs and task states through it,
as an operator's tools would; it logs in with the generated admin password.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from moulin.errors import MoulinError
from moulin.platform import secrets
from moulin.settings import Settings


class AirflowApiError(MoulinError):
    """The api-server refused a call or does not answer; the message names the URL."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AirflowClient:
    """Calls to one api-server with a token of the admin user."""

    def __init__(self, settings: Settings, timeout_s: float = 30.0) -> None:
        self.base = settings.platform.api_url
        self.user = settings.platform.admin_user
        self._settings = settings
        self.timeout_s = timeout_s
        self._token: str | None = None

    def _request(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        url = self.base + path
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise AirflowApiError(f"{method} {url} answered {exc.code}: {detail}", exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            raise AirflowApiError(
                f"{method} {url} failed: {exc}: is the platform up (`moulin platform status`)?"
            ) from None
        return json.loads(text) if text else None

    def token(self) -> str:
        """A JWT of the admin user (fetched once)."""
        if self._token is None:
            password = secrets.read_secret(self._settings, secrets.ADMIN_PASSWORD)
            answer = self._request(
                "POST", "/auth/token", {"username": self.user, "password": password}, auth=False
            )
            self._token = answer["access_token"]
        return self._token

    def health(self) -> dict:
        """``/api/v2/monitor/health``: the database, scheduler, triggerer and dag-processor."""
        return self._request("GET", "/api/v2/monitor/health", auth=False)

    def get(self, path: str, **query: Any) -> Any:
        suffix = ("?" + urllib.parse.urlencode(query, doseq=True)) if query else ""
        return self._request("GET", "/api/v2" + path + suffix)

    def post(self, path: str, body: Any) -> Any:
        return self._request("POST", "/api/v2" + path, body)

    def patch(self, path: str, body: Any) -> Any:
        return self._request("PATCH", "/api/v2" + path, body)

    def dag_ids(self) -> list[str]:
        return sorted(d["dag_id"] for d in self.get("/dags", limit=100)["dags"])

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.patch(f"/dags/{dag_id}", {"is_paused": paused})

    def dag_runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns", limit=100, order_by="run_after")["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        quoted = urllib.parse.quote(run_id, safe="")
        return self.get(f"/dags/{dag_id}/dagRuns/{quoted}/taskInstances", limit=100)["task_instances"]

    def trigger(self, dag_id: str, conf: dict | None = None, logical_date: str | None = None) -> dict:
        return self.post(f"/dags/{dag_id}/dagRuns", {"conf": conf or {}, "logical_date": logical_date})

    def clear_run(self, dag_id: str, run_id: str) -> list[dict]:
        """Clear every task of run ``run_id`` (the UI's "Clear"): the scheduler runs them again
        for the same logical date.  Returns the cleared task instances."""
        body = {"dry_run": False, "dag_run_id": run_id, "reset_dag_runs": True, "only_failed": False}
        return self.post(f"/dags/{dag_id}/clearTaskInstances", body)["task_instances"]

    def connection_exists(self, conn_id: str) -> bool:
        """Whether Airflow's database holds the connection ``conn_id``."""
        try:
            self.get("/connections/" + urllib.parse.quote(conn_id, safe=""))
        except AirflowApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def create_connection(self, connection: dict) -> bool:
        """Create the connection unless it exists; True if created, False if it existed
        (left as it was)."""
        try:
            self.post("/connections", connection)
        except AirflowApiError as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def put_connection(self, connection: dict) -> None:
        """Create the connection, or replace its fields if it exists."""
        try:
            self.post("/connections", connection)
        except AirflowApiError as exc:
            if exc.status != 409:
                raise
            self.patch(f"/connections/{connection['connection_id']}", connection)

    def wait_for_runs(self, dag_id: str, count: int, timeout_s: float, poll_s: float = 5.0) -> list[dict]:
        """Wait until ``dag_id`` has ``count`` finished runs (success or failed); return all its runs."""
        deadline = time.monotonic() + timeout_s
        while True:
            runs = self.dag_runs(dag_id)
            done = [r for r in runs if r["state"] in ("success", "failed")]
            if len(done) >= count:
                return runs
            if time.monotonic() > deadline:
                states = [(r["dag_run_id"], r["state"]) for r in runs]
                raise AirflowApiError(
                    f"{dag_id}: {len(done)} of {count} runs finished in {timeout_s:.0f} s: {states}"
                )
            time.sleep(poll_s)
