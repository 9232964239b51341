"""``moulin platform up|down|status``: the services a team runs, on one machine.

PostgreSQL (Airflow's metadata database), the local HDFS and the Spark standalone
master with its workers (:class:`moulin.cluster.local.LocalCluster`), the SQL endpoint
(Spark's Thrift JDBC/ODBC server, ``moulin sql-endpoint serve``; off with
``MOULIN_SQL_ENDPOINT_ENABLED=false``), then Airflow's api-server, scheduler,
dag-processor and triggerer with the LocalExecutor.  Every
service has its pid and log files under ``<home>/platform`` (the cluster's under
``<home>/cluster``); ``up`` starts only what is not running and waits until each
service answers; ``down`` stops only what ``up`` started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from moulin.cluster.daemons import ClusterError, Daemon, DaemonSet, port_open, tail
from moulin.cluster.local import ClusterStatus, LocalCluster
from moulin.jobs.connections import ConnectionSpec, connection_specs
from moulin.jobs.server import stop_servers
from moulin.orchestration import DAGS_FOLDER
from moulin.platform import airflow_services, postgres
from moulin.platform.rest import AirflowApiError, AirflowClient
from moulin.settings import Settings


@dataclass
class PlatformStatus:
    """What ``moulin platform status`` reports."""

    services: dict[str, int | None]  # name -> pid (None: not running)
    health: dict = field(default_factory=dict)  # Airflow's /monitor/health, when it answers
    cluster: ClusterStatus | None = None
    memory_mib: dict[str, float] = field(default_factory=dict)  # resident memory per service

    @property
    def all_running(self) -> bool:
        return all(self.services.values()) and bool(self.cluster and self.cluster.namenode_running)

    def lines(self) -> list[str]:
        out = []
        for name, pid in self.services.items():
            memory = f"  {self.memory_mib[name]:.0f} MiB" if name in self.memory_mib else ""
            out.append(f"{name}: {'running (pid ' + str(pid) + ')' if pid else 'stopped'}{memory}")
        for component, state in sorted(self.health.items()):
            if isinstance(state, dict):
                out.append(f"airflow {component}: {state.get('status')}")
        if self.cluster:
            out += self.cluster.lines()
        if self.memory_mib:
            out.append(f"memory of all services: {sum(self.memory_mib.values()) / 1024:.2f} GiB")
        return out


def resident_mib(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants, in MiB (proportional set size)."""
    pids = [pid]
    index = 0
    while index < len(pids):
        try:
            children = open(f"/proc/{pids[index]}/task/{pids[index]}/children").read().split()
        except OSError:
            children = []
        pids += [int(c) for c in children]
        index += 1
    total_kib = 0
    for p in pids:
        try:
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024


class ConnectionStore(Protocol):
    """What ``platform up`` needs of Airflow's connections (:class:`AirflowClient`)."""

    def connection_exists(self, conn_id: str) -> bool: ...

    def create_connection(self, connection: dict) -> bool: ...


def connections_to_create(wanted: list[str], existing: set[str]) -> tuple[list[str], list[str]]:
    """Split the connection ids moulin wants into (to create, to keep): a connection that
    Airflow already holds is the operator's and is never overwritten."""
    create = [conn_id for conn_id in wanted if conn_id not in existing]
    keep = [conn_id for conn_id in wanted if conn_id in existing]
    return create, keep


#: The SQL endpoint's daemon name and the marker of its command line.
SQL_ENDPOINT = "sql-endpoint"
SQL_ENDPOINT_MARKER = "sql-endpoint serve"


def sql_endpoint_daemon(settings: Settings) -> Daemon:
    """The SQL endpoint as a daemon (``moulin sql-endpoint serve``, see :mod:`moulin.sql_endpoint`)."""
    moulin = str(Path(sys.executable).with_name("moulin"))
    return Daemon(
        name=SQL_ENDPOINT,
        command=lambda: [moulin, "--profile", settings.profile, "sql-endpoint", "serve"],
        ports=(("jdbc", settings.sql_endpoint.port),),
        marker=SQL_ENDPOINT_MARKER,
    )


def connection_body(spec: ConnectionSpec) -> dict:
    """A connection of :mod:`moulin.jobs.connections` as the REST API's connection body."""
    return {
        "connection_id": spec.conn_id,
        "conn_type": spec.conn_type,
        "description": spec.description or None,
        "host": spec.host,
        "port": spec.port,
        "login": spec.login,
        "extra": json.dumps(spec.extra) if spec.extra else None,
    }


class Platform:
    """The platform's services under one moulin home."""

    def __init__(self, settings: Settings, log: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.log = log
        self.daemons = DaemonSet(settings.home / "platform", settings.platform.api_host)
        self.cluster = LocalCluster(settings, log=log)

    # ------------------------------------------------------------------ up
    def up(self) -> PlatformStatus:
        """Start what is not running, in order, waiting until each answers."""
        pf = self.settings.platform
        postgres.bin_dir(self.settings)  # a clear error before anything starts
        admin_password = airflow_services.prepare_secrets(self.settings)
        if postgres.initialise(self.settings, self.log):  # a new, empty database: migrate it
            self._migrated_marker().unlink(missing_ok=True)
        self._start(postgres.daemon(self.settings))
        postgres.wait_and_create_database(self.settings, pf.start_timeout_s)
        self.log("postgres: accepting logins")
        self._migrate()
        self.log("hdfs + spark standalone: starting")
        self.cluster.up(with_spark=True)
        self.log("hdfs + spark standalone: ready")
        endpoint = sql_endpoint_daemon(self.settings) if self.settings.sql_endpoint.enabled else None
        if endpoint:
            self._start(endpoint)  # it starts its Spark while Airflow starts: waited for below
        for daemon in airflow_services.daemons(self.settings):
            self._start(daemon)
            if daemon.name == "airflow-api-server":
                self._wait(
                    lambda: port_open(pf.api_host, pf.api_port),
                    f"api-server on port {pf.api_port}",
                    daemon.name,
                )
                self._wait(self._api_answers, f"api-server health on {pf.api_url}", daemon.name)
        client = AirflowClient(self.settings)
        for component in ("scheduler", "dag_processor", "triggerer"):
            self._wait(
                lambda c=component: (client.health().get(c) or {}).get("status") == "healthy",
                f"airflow {component} heartbeat",
                "airflow-" + component.replace("_", "-"),
            )
        self._wait(
            lambda: not self._unparsed_dag_files(client),
            "the dag-processor to parse every DAG file of the DAGs folder",
            "airflow-dag-processor",
        )
        self.log("airflow: every DAG file parsed")
        self._store_connections(client)
        if endpoint:
            ep = self.settings.sql_endpoint
            self._wait(
                lambda: port_open(ep.host, ep.port),  # it listens once its catalog is in step
                f"the SQL endpoint on {ep.host}:{ep.port}",
                endpoint.name,
                timeout_s=ep.start_timeout_s,
            )
            self.log(f"sql endpoint: {ep.jdbc_url} (`moulin sql-endpoint password USER` gives a password)")
        if admin_password:
            # Printed once, here, never logged: it lives in a 0600 file afterwards.
            print(
                f"Airflow UI: {pf.api_url}  user {pf.admin_user}  password {admin_password}\n"
                f"(printed once; it is kept in {self.settings.home / 'secrets'} with mode 0600)"
            )
        return self.status()

    def _migrated_marker(self):
        return self.settings.home / "platform" / ".airflow-db-migrated"

    def _migrate(self) -> None:
        marker = self._migrated_marker()
        if marker.exists():
            return
        self.log("airflow: migrating the metadata database (about a minute the first time)")
        env = airflow_services.service_env(self.settings)
        result = subprocess.run(
            [airflow_services.airflow_executable(), "db", "migrate"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise ClusterError(
                f"`airflow db migrate` on PostgreSQL failed:\n{(result.stdout + result.stderr)[-3000:]}"
            )
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("ok\n")

    def _store_connections(self, client: ConnectionStore) -> None:
        """Create moulin's Airflow Connections that Airflow lacks; one that exists is the
        operator's (set in the UI, the CLI or by an earlier ``up``) and is kept as it is."""
        bodies = {spec.conn_id: connection_body(spec) for spec in connection_specs(self.settings)}
        existing = {conn_id for conn_id in bodies if client.connection_exists(conn_id)}
        create, keep = connections_to_create(list(bodies), existing)
        for conn_id in create:
            if client.create_connection(bodies[conn_id]):
                self.log(f"airflow: connection {conn_id} created from moulin's settings")
            else:  # created by someone else since the check
                keep.append(conn_id)
        for conn_id in keep:
            self.log(f"airflow: connection {conn_id} exists: kept as set in Airflow (not overwritten)")

    @staticmethod
    def _unparsed_dag_files(client: AirflowClient) -> list[str]:
        """DAG files of moulin's DAGs folder that Airflow holds neither a DAG nor an import
        error of yet: until there are none, a DAG may be missing from the UI and the API."""
        from pathlib import Path

        try:
            seen = {Path(d["fileloc"]).name for d in client.get("/dags", limit=1000)["dags"]}
            broken = {
                Path(e["filename"]).name for e in client.get("/importErrors", limit=1000)["import_errors"]
            }
        except AirflowApiError:
            return ["(the API did not answer)"]
        return sorted({p.name for p in DAGS_FOLDER.glob("*.py")} - seen - broken)

    def _api_answers(self) -> bool:
        try:
            AirflowClient(self.settings, timeout_s=5).health()
        except AirflowApiError:
            return False
        return True

    def _start(self, daemon) -> None:
        pid, started = self.daemons.start(daemon)
        self.log(f"{daemon.name}: {'started' if started else 'already running'} (pid {pid})")

    def _wait(self, ready: Callable[[], bool], what: str, name: str, timeout_s: float | None = None) -> None:
        timeout_s = timeout_s or self.settings.platform.start_timeout_s
        deadline = time.monotonic() + timeout_s
        while not ready():
            if time.monotonic() > deadline:
                log = self.daemons.log_file(name)
                raise ClusterError(
                    f"timed out after {timeout_s} s waiting for {what}; see {log}:\n{tail(log)}"
                )
            time.sleep(1.0)

    # ------------------------------------------------------------------ down / status
    def _all_daemons(self):
        endpoint = [sql_endpoint_daemon(self.settings)] if self.settings.sql_endpoint.enabled else []
        return [*airflow_services.daemons(self.settings), *endpoint, postgres.daemon(self.settings)]

    def down(self) -> list[str]:
        """Stop Airflow, PostgreSQL, Spark and HDFS (what ``up`` started); return their names."""
        stopped = []
        for daemon in reversed(airflow_services.daemons(self.settings)):
            if self.daemons.stop(daemon, timeout_s=30):
                stopped.append(daemon.name)
                self.log(f"stopped {daemon.name}")
        if self.daemons.stop(sql_endpoint_daemon(self.settings), timeout_s=30):
            stopped.append(SQL_ENDPOINT)
            self.log(f"stopped {SQL_ENDPOINT}")

        if stop_servers(self.settings):  # started by tasks: they outlive them by design
            stopped.append("job servers")
            self.log("stopped the job servers")
        if self.daemons.stop(postgres.daemon(self.settings), timeout_s=30):
            stopped.append("postgres")
            self.log("stopped postgres")
        stopped += self.cluster.down()
        return stopped

    def status(self) -> PlatformStatus:
        services: dict[str, int | None] = {}
        for daemon in self._all_daemons():
            services[daemon.name] = self.daemons.pid(daemon)
        names = [
            self.cluster.namenode(),
            *(self.cluster.datanode(i) for i in range(self.settings.hdfs.datanodes)),
        ]
        names += [self.cluster.spark_master()]
        names += [self.cluster.spark_worker(i) for i in range(self.settings.spark.standalone_workers)]
        running = self.cluster.running()
        services.update({d.name: running.get(d.name) for d in names})
        memory = {name: resident_mib(pid) for name, pid in services.items() if pid}
        health: dict = {}
        if services.get("airflow-api-server"):
            try:
                health = AirflowClient(self.settings, timeout_s=5).health()
            except AirflowApiError:
                health = {}
        cluster = self.cluster.status() if services.get("namenode") else None
        return PlatformStatus(services=services, health=health, cluster=cluster, memory_mib=memory)
