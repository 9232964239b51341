"""The local cluster: a real Apache HDFS (1 NameNode, N DataNodes) and, optionally,
a Spark standalone master with workers, all on this machine.

Everything it writes (configs, data, logs, pid files) lives under
``settings.cluster_dir``.  ``up`` is idempotent; ``down`` stops only processes
recorded in its pid files.
"""

from __future__ import annotations

import getpass
import json
import os
import string
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from moulin.cluster.daemons import (
    ClusterError,
    Daemon,
    DaemonSet,
    java_executable,
    port_open,
    tail,
)
from moulin.cluster.dist import hadoop_jars
from moulin.cluster.files import symlink_atomic, write_once
from moulin.cluster.netns import Network, in_namespace
from moulin.settings import REPO_ROOT, Settings

INFRA_HADOOP = REPO_ROOT / "infra" / "hadoop"
NAMENODE_CLASS = "org.apache.hadoop.hdfs.server.namenode.NameNode"
DATANODE_CLASS = "org.apache.hadoop.hdfs.server.datanode.DataNode"
FSSHELL_CLASS = "org.apache.hadoop.fs.FsShell"
SPARK_MASTER_CLASS = "org.apache.spark.deploy.master.Master"
SPARK_WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
# The daemons' HTTP servers look up webapps/<name>/WEB-INF/web.xml on the classpath.
WEBAPPS = ("hdfs", "datanode", "secondary")
WEB_XML = "<web-app/>\n"


@dataclass
class ClusterStatus:
    """What ``moulin cluster status`` reports."""

    namenode_running: bool
    live_datanodes: int
    dead_datanodes: int
    capacity_total: int
    capacity_used: int
    spark_master_running: bool
    spark_workers: list[dict]

    def lines(self) -> list[str]:
        used = self.capacity_used / 2**20
        total = self.capacity_total / 2**30
        out = [
            f"namenode: {'running' if self.namenode_running else 'stopped'}",
            f"live datanodes: {self.live_datanodes}",
            f"dead datanodes: {self.dead_datanodes}",
            f"capacity used: {used:.1f} MiB of {total:.1f} GiB",
            f"spark master: {'running' if self.spark_master_running else 'stopped'}",
            f"spark workers: {len(self.spark_workers)}",
        ]
        for worker in self.spark_workers:
            out.append(
                f"  worker {worker.get('id')} {worker.get('state')} "
                f"cores={worker.get('cores')} memory={worker.get('memory')}MB"
            )
        return out


class LocalCluster:
    """Start, stop and inspect the local HDFS (and Spark standalone) cluster."""

    def __init__(
        self,
        settings: Settings,
        log: Callable[[str], None] = print,
        network: Network | None = None,
        extra_conf: Callable[[str], dict[str, dict[str, str]]] | None = None,
        java_options: Callable[[str], list[str]] | None = None,
        admin_env: Callable[[], dict[str, str]] | None = None,
    ) -> None:
        """``network``: run each daemon on its own host of that network (its namespace,
        named after the daemon), with the hosts ``settings`` name; None: on this machine.
        ``extra_conf(daemon name)``: more properties per file ("core-site.xml",
        "hdfs-site.xml") of that daemon's configuration (security, see moulin.cluster.kdc);
        ``java_options(daemon name)``: more JVM options of that daemon (or "client");
        ``admin_env()``: the environment of the Hadoop shell acting as the HDFS
        administrator (a Kerberos ticket cache); None: the OS user is the superuser.
        """
        self.settings = settings
        self.hdfs = settings.hdfs
        self.root = settings.cluster_dir
        self.daemons = DaemonSet(self.root, self.hdfs.host)
        self.log = log
        self.network = network
        self.extra_conf = extra_conf
        self._java_options = java_options
        self.admin_env = admin_env

    # --------------------------------------------------------------- hosts
    def _netns(self, name: str) -> str | None:
        """The namespace daemon (or client) ``name`` runs in (client: the driver's)."""
        if self.network is None:
            return None
        role = "driver" if name == "client" else name
        # A daemon the network has no host for never ran (e.g. Spark's without --spark).
        return self.network.host(role).namespace if self.network.has(role) else None

    def _address(self, host: str) -> str:
        """The address of ``host`` (a hostname of the network, or an address)."""
        if self.network is None or not any(host in (h.hostname, h.address) for h in self.network.hosts):
            return host
        return self.network.address_of(host)

    def probe(self, action: Callable[[], object]):
        """Run ``action`` where the cluster's clients are: on the driver's host of the
        network (its sockets), else here."""
        if self.network is None:
            return action()
        return in_namespace(self.network.host("driver").namespace, action, timeout_s=30)

    def _url(self, url: str) -> str:
        """``url`` with its host replaced by its address when the cluster runs on a network
        (a probe's thread resolves names through this machine's /etc/hosts)."""
        if self.network is None:
            return url
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(url)
        netloc = f"{self._address(parts.hostname or '')}:{parts.port}" if parts.port else parts.netloc
        return urlunsplit(parts._replace(netloc=netloc))

    # ----------------------------------------------------------------- configs
    def _node_dir(self, name: str) -> Path:
        return self.root / name

    def _conf_dir(self, name: str) -> Path:
        return self.root / "conf" / name

    def _render_conf(self, name: str, dn_index: int | None) -> Path:
        """The config folder of daemon (or client) ``name``.  Running daemons re-read it
        (Hadoop loads its XML files whenever it makes a Configuration), so each file is
        written only when its content changes, and then in one rename."""
        conf = self._conf_dir(name)
        ports = self.hdfs.datanode_ports(dn_index or 0)
        dn_host = self.hdfs.datanode_host(dn_index or 0)
        extra = self.extra_conf(name) if self.extra_conf else {}
        values = {
            "host": self.hdfs.host,
            "bind_host": self.hdfs.bind_host or self.hdfs.host,
            "dn_bind_host": self.hdfs.bind_host or dn_host,
            "namenode_rpc_port": self.hdfs.namenode_rpc_port,
            "namenode_http_port": self.hdfs.namenode_http_port,
            "replication": self.hdfs.replication,
            "cluster_dir": str(self.root),
            "node_dir": str(self._node_dir(name)),
            "dn_data_port": ports[0],
            "dn_http_port": ports[1],
            "dn_ipc_port": ports[2],
            "user": getpass.getuser(),
            "superuser_group": self.hdfs.superuser_group,
            "group_mapping": ";".join(
                f"{user}={','.join(groups)}" for user, groups in self.hdfs.groups().items()
            ),
            "umask": self.hdfs.umask or "022",  # Hadoop's default
        }
        if self.hdfs.datanode_hosts:
            extra.setdefault("hdfs-site.xml", {})["dfs.datanode.hostname"] = dn_host
        for template in ("core-site.xml", "hdfs-site.xml"):
            text = string.Template((INFRA_HADOOP / template).read_text()).substitute(
                values, extra=properties_xml(extra.get(template, {}))
            )
            write_once(conf / template, text)
        write_once(conf / "log4j.properties", (INFRA_HADOOP / "log4j.properties").read_bytes())
        return conf

    def _webapps_root(self) -> Path:
        """The classpath folder holding ``webapps/<name>/WEB-INF/web.xml``, shared by every
        daemon: written once (in one rename each), never rewritten while a daemon's
        HTTP server may be parsing it."""
        root = self.root / "webapps-root"
        for app in WEBAPPS:
            write_once(root / "webapps" / app / "WEB-INF" / "web.xml", WEB_XML)
        return root

    def prepare_files(self, with_spark: bool = False) -> None:
        """Write every file the daemons share or read (jars, configs, webapps, Spark's
        home) before any of them starts, so none is written while another daemon reads it."""
        hadoop_jars(self.settings)
        self._webapps_root()
        for name, index in [("namenode", None), ("client", None)] + [
            (f"datanode-{i}", i) for i in range(self.hdfs.datanodes)
        ]:
            self._render_conf(name, index)
        if with_spark:
            self._daemon_spark_home()

    def classpath(self, conf_dir: Path) -> str:
        """The Java classpath of a daemon or client using ``conf_dir``."""
        jars = hadoop_jars(self.settings)
        return os.pathsep.join([str(conf_dir), str(self._webapps_root()), *map(str, jars)])

    def java_options(self, name: str) -> list[str]:
        """JVM options of daemon (or client) ``name`` beyond heap and logging (Kerberos)."""
        return self._java_options(name) if self._java_options else []

    def _java_command(self, name: str, main_class: str, args: list[str], conf: Path) -> list[str]:
        return [
            java_executable(),
            f"-Xmx{self.hdfs.heap_mb}m",
            *self.java_options(name),
            f"-Dhadoop.log.dir={self.daemons.log_dir}",
            f"-Dhadoop.log.file={self.daemons.log_dir / (name + '.log')}",
            f"-Dlog4j.configuration=file:{conf / 'log4j.properties'}",
            f"-Dmoulin.daemon={name}@{self.root}",
            "-cp",
            self.classpath(conf),
            main_class,
            *args,
        ]

    def namenode(self) -> Daemon:
        conf = self._render_conf("namenode", None)
        return Daemon(
            name="namenode",
            command=lambda: self._java_command("namenode", NAMENODE_CLASS, [], conf),
            ports=(
                ("rpc", self.hdfs.namenode_rpc_port),
                ("http", self.hdfs.namenode_http_port),
            ),
            marker=f"-Dmoulin.daemon=namenode@{self.root}",
            netns=self._netns("namenode"),
            address=self._address(self.hdfs.bind_host or self.hdfs.host),
        )

    def datanode(self, index: int) -> Daemon:
        name = f"datanode-{index}"
        conf = self._render_conf(name, index)
        data, http, ipc = self.hdfs.datanode_ports(index)
        return Daemon(
            name=name,
            command=lambda: self._java_command(name, DATANODE_CLASS, [], conf),
            ports=(("data", data), ("http", http), ("ipc", ipc)),
            marker=f"-Dmoulin.daemon={name}@{self.root}",
            netns=self._netns(name),
            address=self._address(self.hdfs.bind_host or self.hdfs.datanode_host(index)),
        )

    def _spark_home(self) -> Path:
        try:
            import pyspark
        except ImportError:
            raise ClusterError(
                "the Spark standalone cluster needs pyspark: run moulin from the platform environment (.venv)"
            ) from None
        return Path(pyspark.__file__).parent

    def spark_master(self) -> Daemon:
        sp = self.settings.spark
        return Daemon(
            name="spark-master",
            command=lambda: self._spark_command(
                "spark-master",
                SPARK_MASTER_CLASS,
                [
                    "--host",
                    sp.standalone_host,
                    "--port",
                    str(sp.standalone_port),
                    "--webui-port",
                    str(sp.standalone_webui_port),
                ],
            ),
            ports=(("rpc", sp.standalone_port), ("web ui", sp.standalone_webui_port)),
            marker=f"-Dmoulin.daemon=spark-master@{self.root}",
            netns=self._netns("spark-master"),
            address=self._address(sp.standalone_host),
        )

    def spark_worker(self, index: int) -> Daemon:
        sp = self.settings.spark
        name = f"spark-worker-{index}"
        work_dir = self._node_dir(name)
        web_port = sp.worker_webui_base_port + index
        return Daemon(
            name=name,
            command=lambda: self._spark_command(
                name,
                SPARK_WORKER_CLASS,
                [
                    sp.standalone_url,
                    "--host",
                    sp.worker_host(index),
                    "--cores",
                    str(sp.worker_cores),
                    "--memory",
                    sp.worker_memory,
                    "--webui-port",
                    str(web_port),
                    "--work-dir",
                    str(work_dir),
                ],
            ),
            ports=(("web ui", web_port),),
            marker=f"-Dmoulin.daemon={name}@{self.root}",
            netns=self._netns(name),
            address=self._address(sp.worker_host(index)),
        )

    def _daemon_spark_home(self) -> Path:
        """A SPARK_HOME for the standalone daemons: pip's pyspark lacks the RELEASE
        file by which Spark's launcher finds ``jars/`` when a worker starts an
        executor, so link pyspark's folders beside one."""
        source = self._spark_home()
        home = self.root / "spark-home"
        write_once(home / "RELEASE", "Spark (pyspark package) for moulin's standalone cluster\n")
        for entry in source.iterdir():
            link = home / entry.name
            if link.exists() and not link.is_symlink():
                continue
            symlink_atomic(link, entry)  # running workers read jars/ through it
        return home

    def _spark_command(self, name: str, main_class: str, args: list[str]) -> list[str]:
        home = self._daemon_spark_home()
        # Workers build their executors' classpath from SPARK_HOME, and Spark's
        # launcher asks SPARK_SCALA_VERSION outside a source build (`env` execs
        # java in place, so the pid file still names the daemon).
        return [
            "/usr/bin/env",
            f"SPARK_HOME={home}",
            "SPARK_SCALA_VERSION=2.13",
            java_executable(),
            "-Xmx512m",
            *self.java_options(name),
            f"-Dmoulin.daemon={name}@{self.root}",
            "-cp",
            f"{home / 'jars'}/*",
            main_class,
            *args,
        ]

    # -------------------------------------------------------------- lifecycle
    def up(self, with_spark: bool = False) -> ClusterStatus:
        """Start what is not running and wait until every DataNode is live."""
        java_executable()
        self.prepare_files(with_spark)
        self._format_if_needed()
        namenode = self.namenode()
        self._start(namenode)
        self._wait(
            lambda: self.probe(lambda: port_open(self._address(self.hdfs.host), self.hdfs.namenode_rpc_port)),
            f"NameNode RPC port {self.hdfs.namenode_rpc_port}",
            "namenode",
            watch=[namenode],
        )
        datanodes = [self.datanode(index) for index in range(self.hdfs.datanodes)]
        for datanode in datanodes:
            self._start(datanode)
        self._wait(
            lambda: self._jmx_state().get("NumLiveDataNodes", 0) >= self.hdfs.datanodes,
            f"{self.hdfs.datanodes} live DataNodes",
            "datanode-0",
            watch=[namenode, *datanodes],
        )
        self._wait(lambda: not self._safemode(), "NameNode to leave safe mode", "namenode", watch=[namenode])
        self.prepare_warehouse()
        if with_spark:
            master = self.spark_master()
            self._start(master)
            sp = self.settings.spark
            self._wait(
                lambda: self.probe(lambda: port_open(self._address(sp.standalone_host), sp.standalone_port)),
                f"Spark master port {sp.standalone_port}",
                "spark-master",
                watch=[master],
            )
            workers = [self.spark_worker(index) for index in range(sp.standalone_workers)]
            for worker in workers:
                self._start(worker)
            self._wait(
                lambda: len(self._spark_workers()) >= sp.standalone_workers,
                f"{sp.standalone_workers} Spark workers",
                "spark-worker-0",
                watch=[master, *workers],
            )
        return self.status()

    def prepare_warehouse(self) -> bool:
        """With ``hdfs.user`` set (moulin acting as a user that is not the superuser), create
        the warehouse root on this cluster owned by that user, acting as the OS user (the
        NameNode's superuser); True if it did anything.  Only the root is handed over:
        give existing data to that user with ``moulin.privacy.access.apply_permissions``
        run as the superuser.
        """
        from urllib.parse import urlparse

        from hdfs import InsecureClient
        from hdfs.util import HdfsError

        user = self.hdfs.user
        if not user or not self.settings.warehouse.startswith(self.hdfs.namenode_uri + "/"):
            return False
        path = "/" + urlparse(self.settings.warehouse).path.strip("/")
        if self.admin_env is not None:  # secure mode: the administrator's ticket, no user.name
            self.fs_shell("-mkdir", "-p", path, admin=True)
            self.fs_shell("-chown", user, path, admin=True)
            self.fs_shell("-chmod", "755", path, admin=True)
            self.log(f"warehouse {self.settings.warehouse} is owned by HDFS user {user}")
            return True
        client = InsecureClient(self._url(self.hdfs.webhdfs_url), user=getpass.getuser())

        def hand_over() -> bool:
            status = client.status(path, strict=False)
            if status is not None and status["owner"] == user:
                return False
            if status is None:
                client.makedirs(path, permission="755")
            client.set_owner(path, owner=user)
            return True

        try:
            if not self.probe(hand_over):
                return False
        except HdfsError as exc:  # the NameNode runs as another OS user
            self.log(
                f"warning: could not give the warehouse {self.settings.warehouse} to HDFS user {user} "
                f"({' '.join(str(exc).split())[:300]}): do it as the HDFS superuser"
            )
            return False
        self.log(f"warehouse {self.settings.warehouse} is owned by HDFS user {user}")
        return True

    def down(self, spark_only: bool = False) -> list[str]:
        """Stop every daemon this cluster started (per its pid files), or only the
        Spark standalone ones; return their names."""
        stopped = []
        sp = self.settings.spark
        candidates = [self.spark_worker(i) for i in range(sp.standalone_workers)]
        candidates += [self.spark_master()]
        if not spark_only:
            candidates += [self.datanode(i) for i in range(self.hdfs.datanodes)]
            candidates += [self.namenode()]
        for daemon in candidates:
            if self.daemons.stop(daemon):
                stopped.append(daemon.name)
                self.log(f"stopped {daemon.name}")
        return stopped

    def exec_daemon(self, role: str, index: int = 0) -> None:
        """Replace this process by one daemon in the foreground (for containers)."""
        if role == "namenode":
            self._format_if_needed()
        daemons = {
            "namenode": self.namenode,
            "datanode": lambda: self.datanode(index),
            "spark-master": self.spark_master,
            "spark-worker": lambda: self.spark_worker(index),
        }
        if role not in daemons:
            raise ClusterError(f"unknown daemon role {role!r}: choose one of {', '.join(daemons)}")
        command = daemons[role]().command()
        self.log(f"exec {role}: {' '.join(command[:3])} ...")
        # A daemon runs as the OS user (the NameNode's is the HDFS superuser).
        os.environ.pop("HADOOP_USER_NAME", None)
        os.execv(command[0], command)

    def stop_datanode(self, index: int) -> None:
        """Stop one DataNode (fault-injection in tests)."""
        self.daemons.stop(self.datanode(index), timeout_s=5)

    def running(self) -> dict[str, int]:
        """Names and pids of this cluster's daemons that run now."""
        sp = self.settings.spark
        names = [self.namenode()] + [self.datanode(i) for i in range(self.hdfs.datanodes)]
        names += [self.spark_master()] + [self.spark_worker(i) for i in range(sp.standalone_workers)]
        result = {}
        for daemon in names:
            pid = self.daemons.pid(daemon)
            if pid:
                result[daemon.name] = pid
        return result

    def status(self) -> ClusterStatus:
        """Live DataNodes, capacity and Spark workers, as reported by the daemons."""
        state = self._jmx_state()
        workers = self._spark_workers()
        return ClusterStatus(
            namenode_running=bool(self.daemons.pid(self.namenode())),
            live_datanodes=int(state.get("NumLiveDataNodes", 0)),
            dead_datanodes=int(state.get("NumDeadDataNodes", 0)),
            capacity_total=int(state.get("CapacityTotal", 0)),
            capacity_used=int(state.get("CapacityUsed", 0)),
            spark_master_running=bool(self.daemons.pid(self.spark_master())),
            spark_workers=workers,
        )

    def fs_shell(
        self, *args: str, check: bool = True, admin: bool = False, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        """Run the Hadoop shell (``hdfs dfs``) against this cluster (on the driver's host of a
        network); ``admin``: as the HDFS administrator (secure mode); ``env``: more variables."""
        conf = self._render_conf("client", None)
        child_env = {**os.environ, **(self.admin_env() if admin and self.admin_env else {}), **(env or {})}
        cmd = [
            *(self.network.exec_prefix("driver") if self.network is not None else []),
            java_executable(),
            "-Xmx256m",
            *self.java_options("client"),
            f"-Dlog4j.configuration=file:{conf / 'log4j.properties'}",
            "-Dhadoop.root.logger=WARN,console",
            "-cp",
            self.classpath(conf),
            FSSHELL_CLASS,
            *args,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, env=child_env, timeout=300)
        if check and result.returncode != 0:
            raise ClusterError(f"hdfs dfs {' '.join(args)} failed: {result.stderr.strip()[-2000:]}")
        return result

    # ---------------------------------------------------------------- helpers
    def _start(self, daemon: Daemon) -> None:
        pid, started = self.daemons.start(daemon)
        self.log(f"{'started' if started else 'already running'}: {daemon.name} (pid {pid})")

    def _format_if_needed(self) -> None:
        if (self.root / "namenode" / "current" / "VERSION").exists():
            return
        self.log("formatting the NameNode (first start)")
        conf = self._render_conf("namenode", None)
        cmd = self._java_command(
            "namenode-format",
            NAMENODE_CLASS,
            ["-format", "-nonInteractive", "-clusterid", "moulin-local"],
            conf,
        )
        if self.network is not None:  # on the NameNode's host (secure mode logs in to the KDC)
            cmd = [*self.network.exec_prefix("namenode"), *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            log = tail(self.daemons.log_dir / "namenode-format.log", 30)
            raise ClusterError(
                f"NameNode format failed (code {result.returncode}): {(result.stderr or result.stdout)[-2000:]}"
                f"\n{log}"
            )

    def _log_path(self, name: str) -> Path:
        log_path = self.daemons.log_dir / f"{name}.log"
        return log_path if log_path.exists() else self.daemons.log_file(name)

    def _wait(
        self, ready: Callable[[], bool], what: str, log_name: str, watch: Sequence[Daemon] = ()
    ) -> None:
        """Wait until ``ready()``; fail at once if a daemon of ``watch`` stopped meanwhile."""
        deadline = time.monotonic() + self.hdfs.start_timeout_s
        while time.monotonic() < deadline:
            if ready():
                return
            for daemon in watch:
                if not self.daemons.pid(daemon):
                    log_path = self._log_path(daemon.name)
                    raise ClusterError(
                        f"{daemon.name} stopped while waiting for {what}; see {log_path}:\n{tail(log_path)}"
                    )
            time.sleep(1)
        log_path = self._log_path(log_name)
        raise ClusterError(
            f"timed out after {self.hdfs.start_timeout_s}s waiting for {what}; "
            f"see {log_path}:\n{tail(log_path)}"
        )

    def _get_json(self, url: str) -> dict:
        def get() -> dict:
            try:
                with urllib.request.urlopen(self._url(url), timeout=5) as response:
                    return json.loads(response.read().decode())
            except (urllib.error.URLError, OSError, ValueError):
                return {}

        return self.probe(get)

    def _jmx_state(self) -> dict:
        url = f"{self.hdfs.webhdfs_url}/jmx?qry=Hadoop:service=NameNode,name=FSNamesystemState"
        beans = self._get_json(url).get("beans", [])
        return beans[0] if beans else {}

    def _safemode(self) -> bool:
        url = f"{self.hdfs.webhdfs_url}/jmx?qry=Hadoop:service=NameNode,name=NameNodeInfo"
        beans = self._get_json(url).get("beans", [])
        return bool(beans and beans[0].get("Safemode"))

    def _spark_workers(self) -> list[dict]:
        sp = self.settings.spark
        data = self._get_json(f"http://{sp.standalone_host}:{sp.standalone_webui_port}/json/")
        return [w for w in data.get("workers", []) if w.get("state") == "ALIVE"]


def properties_xml(properties: dict[str, str]) -> str:
    """Hadoop configuration ``<property>`` lines of ``properties`` (escaped)."""
    from xml.sax.saxutils import escape

    return "".join(
        f"  <property><name>{escape(k)}</name><value>{escape(str(v))}</value></property>\n"
        for k, v in properties.items()
    )
