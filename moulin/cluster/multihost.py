"""The cluster with every daemon on a host of its own: ``moulin cluster up --hosts N``.

The NameNode, each of N DataNodes, the Spark master and each worker (with
``--spark``), and moulin's driver each get a host of a network of namespaces
(:mod:`moulin.cluster.netns`), with an address of ``settings.network.subnet`` and
a name ``<role>.<prefix><run id>.<domain>``.  Nothing talks over ``localhost``:
daemons bind their host's address, and clients (the driver) reach them by name,
from settings that :meth:`MultiHostCluster.client_env` hands over.

The network is recorded in ``<cluster_dir>/network.json``: ``moulin cluster down``
stops the daemons and removes every namespace, link and hosts file it made.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from moulin.cluster import netns
from moulin.cluster.daemons import ClusterError, DaemonSet, port_open
from moulin.cluster.files import write_atomic
from moulin.cluster.kdc import KDC_PORT, Realm
from moulin.cluster.local import ClusterStatus, LocalCluster
from moulin.cluster.netns import Network
from moulin.settings import HdfsSettings, Settings, SparkSettings

DRIVER = "driver"


def roles(datanodes: int, spark_workers: int, kdc: bool = False) -> list[str]:
    """The hosts of a cluster, in the order their addresses are given."""
    out = ["namenode", *(f"datanode-{i}" for i in range(datanodes))]
    if spark_workers:
        out += ["spark-master", *(f"spark-worker-{i}" for i in range(spark_workers))]
    if kdc:
        out.append("kdc")
    return [*out, DRIVER]


def realm_of(settings: Settings, network: Network) -> Realm | None:
    """The Kerberos realm of ``network`` (when it has a KDC host)."""
    if not network.has("kdc"):
        return None
    return Realm(network, settings.cluster_dir / "kerberos", settings.hdfs.user or "moulin")


def on_network(settings: Settings, network: Network) -> Settings:
    """``settings`` whose hosts are those of ``network`` (by name): what its daemons and
    its driver use (with a KDC host: moulin's principal, keytab and krb5.conf)."""
    datanodes = sorted(h.role for h in network.hosts if h.role.startswith("datanode-"))
    workers = sorted(h.role for h in network.hosts if h.role.startswith("spark-worker-"))
    hdfs: HdfsSettings = replace(
        settings.hdfs,
        host=network.host("namenode").hostname,
        bind_host="",
        datanodes=len(datanodes),
        replication=min(settings.hdfs.replication, len(datanodes)),
        datanode_hosts=",".join(network.host(r).hostname for r in datanodes),
    )
    spark: SparkSettings = settings.spark
    if network.has("spark-master"):
        master = network.host("spark-master").hostname
        spark = replace(
            spark,
            standalone_host=master,
            standalone_workers=len(workers),
            worker_hosts=",".join(network.host(r).hostname for r in workers),
            master=f"spark://{master}:{spark.standalone_port}",
        )
    realm = realm_of(settings, network)
    hadoop_conf_dir = settings.hadoop_conf_dir
    if realm is not None:
        hdfs = replace(
            hdfs,
            user=realm.service_user,
            kerberos_principal=realm.principal(realm.service_user),
            kerberos_keytab=realm.keytab(realm.service_user),
            krb5_conf=realm.krb5_conf,
        )
        # Spark's and deltalake's Hadoop clients read secure mode from the client's files.
        hadoop_conf_dir = settings.cluster_dir / "conf" / "client"
    return replace(settings, profile="hdfs-local", hdfs=hdfs, spark=spark, hadoop_conf_dir=hadoop_conf_dir)


def client_env(settings: Settings, network: Network) -> dict[str, str]:
    """The environment of a moulin process on the driver's host: the ``MOULIN_*``
    settings naming the cluster's hosts, and the driver's own name for Spark."""
    hdfs, spark = settings.hdfs, settings.spark
    driver = network.host(DRIVER)
    env = {
        "MOULIN_PROFILE": "hdfs-local",
        "MOULIN_HOME": str(settings.home),
        "MOULIN_HDFS_HOST": hdfs.host,
        "MOULIN_HDFS_BIND_HOST": "",
        "MOULIN_HDFS_NAMENODE_RPC_PORT": str(hdfs.namenode_rpc_port),
        "MOULIN_HDFS_NAMENODE_HTTP_PORT": str(hdfs.namenode_http_port),
        "MOULIN_HDFS_DATANODES": str(hdfs.datanodes),
        "MOULIN_HDFS_REPLICATION": str(hdfs.replication),
        "MOULIN_HDFS_DATANODE_BASE_PORT": str(hdfs.datanode_base_port),
        "MOULIN_HDFS_DATANODE_HOSTS": hdfs.datanode_hosts,
        "MOULIN_HDFS_HEAP_MB": str(hdfs.heap_mb),
        "MOULIN_HDFS_USER": hdfs.user,
        # Spark's driver advertises this name to executors on the workers' hosts.
        "SPARK_LOCAL_IP": driver.address,
        "SPARK_LOCAL_HOSTNAME": driver.hostname,
    }
    if settings.dist_dir:  # the Hadoop jars (the cluster's own commands, e.g. restoring a daemon)
        env["MOULIN_DIST_DIR"] = str(settings.dist_dir)
    if hdfs.kerberos:
        env.update(
            {
                "MOULIN_HDFS_KERBEROS_PRINCIPAL": hdfs.kerberos_principal,
                "MOULIN_HDFS_KERBEROS_KEYTAB": str(hdfs.kerberos_keytab),
                "MOULIN_HDFS_KRB5_CONF": str(hdfs.krb5_conf),
                "MOULIN_HADOOP_CONF_DIR": str(settings.hadoop_conf_dir),
                "HADOOP_CONF_DIR": str(settings.hadoop_conf_dir),
                "KRB5_CONFIG": str(hdfs.krb5_conf),
            }
        )
    if network.has("spark-master"):
        env.update(
            {
                "MOULIN_SPARK_MASTER": spark.master,
                "MOULIN_SPARK_STANDALONE_HOST": spark.standalone_host,
                "MOULIN_SPARK_STANDALONE_PORT": str(spark.standalone_port),
                "MOULIN_SPARK_STANDALONE_WORKERS": str(spark.standalone_workers),
                "MOULIN_SPARK_WORKER_HOSTS": spark.worker_hosts,
                # A standalone cluster runs one stage at a time per application.
                "MOULIN_SPARK_JOB_SERVER": "false",
            }
        )
    return env


class MultiHostCluster:
    """Make the network, start the cluster's daemons on its hosts, run commands on the
    driver's host, and remove it all."""

    def __init__(self, settings: Settings, log: Callable[[str], None] = print) -> None:
        self.base = settings
        self.log = log
        self.state_file = settings.cluster_dir / "network.json"

    # ----------------------------------------------------------------- state
    def network(self) -> Network | None:
        """The network recorded by ``up``, None when there is none."""
        try:
            return Network.from_json(self.state_file.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise ClusterError(
                f"{self.state_file} is unreadable ({exc}): remove the network with "
                f"`moulin cluster down --leftovers`, then delete that file"
            ) from None

    def settings(self, network: Network | None = None) -> Settings:
        """The settings of the cluster on ``network`` (default: the recorded one)."""
        network = network or self._need_network()
        return on_network(self.base, network)

    def cluster(self, network: Network | None = None) -> LocalCluster:
        """The daemons of the cluster on ``network`` (default: the recorded one)."""
        network = network or self._need_network()
        realm = realm_of(self.base, network)
        if realm is None:
            return LocalCluster(self.settings(network), log=self.log, network=network)
        return LocalCluster(
            self.settings(network),
            log=self.log,
            network=network,
            extra_conf=realm.hadoop_conf,
            java_options=lambda name: realm.java_options(),
            admin_env=lambda: self.ticket("hdfs"),
        )

    def realm(self) -> Realm | None:
        """The Kerberos realm of the recorded network, None without a KDC."""
        network = self._need_network()
        return realm_of(self.base, network)

    def ticket(self, user: str) -> dict[str, str]:
        """The environment of a process holding ``user``'s ticket (kinit from its keytab
        into a cache of its own): ``KRB5CCNAME``, ``KRB5_CONFIG``."""
        realm = self.realm()
        if realm is None:
            raise ClusterError(
                "this cluster has no KDC: start it with `moulin cluster up --hosts N --kerberos`"
            )
        cache = realm.root / "ccache" / user
        env = {**realm.env(), "KRB5CCNAME": f"FILE:{cache}"}
        network = self._need_network()
        result = subprocess.run(
            [*network.exec_prefix(DRIVER), "kinit", "-kt", str(realm.keytab(user)), realm.principal(user)],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=60,
        )
        if result.returncode != 0:
            raise ClusterError(f"kinit as {user} failed: {result.stderr.strip()[-500:]}")
        return env

    def _start_kdc(self, network: Network) -> None:
        realm = realm_of(self.base, network)
        if realm is None:
            return
        realm.create(
            [h.role for h in network.hosts if h.role == "namenode" or h.role.startswith("datanode-")]
        )
        cluster = self.cluster(network)
        daemons = DaemonSet(self.base.cluster_dir)
        kdc = realm.daemon()
        pid, started = daemons.start(kdc)
        self.log(f"{'started' if started else 'already running'}: kdc (pid {pid})")
        address = network.host("kdc").address
        cluster._wait(
            lambda: cluster.probe(lambda: port_open(address, KDC_PORT)),
            f"the KDC's port {KDC_PORT}",
            "kdc",
            watch=[kdc],
        )

    def _need_network(self) -> Network:
        network = self.network()
        if network is None:
            raise ClusterError(
                f"no cluster on hosts is up for home {self.base.home} (no {self.state_file}): "
                "start one with `moulin cluster up --hosts N`"
            )
        return network

    # ------------------------------------------------------------- lifecycle
    def up(
        self,
        datanodes: int,
        spark: bool = False,
        owner_pid: int | None = None,
        kerberos: bool = False,
    ) -> ClusterStatus:
        """Make the network (unless recorded) and start what is not running; on a failure
        of a first start, remove everything it made.  ``kerberos``: a KDC on a host of its
        own, and HDFS in secure mode (see moulin.cluster.kdc)."""
        if datanodes < 1:
            raise ClusterError(f"--hosts {datanodes}: a cluster needs at least one DataNode host")
        network = self.network()
        made = network is None
        if network is None:
            cfg = self.base.network
            network = netns.plan(
                roles(datanodes, self.base.spark.standalone_workers if spark else 0, kerberos),
                subnet=cfg.subnet,
                domain=cfg.domain,
                prefix=cfg.prefix,
                owner_pid=owner_pid,
            )
            # A realm belongs to one network (its name is the network's domain).
            shutil.rmtree(self.base.cluster_dir / "kerberos", ignore_errors=True)
            netns.create(network)
            _add_machine_name(network)
            write_atomic(self.state_file, network.to_json())
            self.log(
                f"network {network.run_id}: " + ", ".join(f"{h.role} {h.address}" for h in network.hosts)
            )
        try:
            self._start_kdc(network)
            return self.cluster(network).up(with_spark=network.has("spark-master"))
        except BaseException:
            if made:
                try:
                    self.down()
                except Exception as exc:  # noqa: BLE001 - the first error is the one to report
                    self.log(f"warning: removing the failed cluster: {exc}")
            raise

    def down(self) -> list[str]:
        """Stop the daemons, then remove the network's namespaces, links and hosts files."""
        network = self.network()
        if network is None:
            return []
        stopped: list[str] = []
        try:
            stopped += self.cluster(network).down()
            realm = realm_of(self.base, network)
            if realm is not None and DaemonSet(self.base.cluster_dir).stop(realm.daemon()):
                stopped.append("kdc")
        finally:  # whatever failed above, the namespaces go, and the processes left in them
            removed = netns.destroy(network)
        self.state_file.unlink(missing_ok=True)
        for item in removed:
            self.log(f"removed {item}")
        return stopped + removed

    # ------------------------------------------------------------ the driver
    def client_env(self) -> dict[str, str]:
        """``MOULIN_*`` settings (and Spark's) of a moulin process on the driver's host."""
        network = self._need_network()
        return client_env(self.settings(network), network)

    def driver_command(self, command: list[str], env: dict[str, str] | None = None) -> list[str]:
        """``command`` run on the driver's host with the client settings (``env`` on top);
        this process's other ``MOULIN_*`` variables are not passed on (they describe
        another cluster)."""
        network = self._need_network()
        variables = {**self.client_env(), **(env or {})}
        unset = [f"--unset={k}" for k in os.environ if k.startswith("MOULIN_") and k not in variables]
        return [
            *network.exec_prefix(DRIVER),
            "env",
            *unset,
            *(f"{k}={v}" for k, v in variables.items()),
            *command,
        ]

    def env_file(self) -> Path:
        """Write the client settings as a shell file to source; return its path."""
        path = self.base.cluster_dir / "client.env"
        lines = [f"export {k}={shlex.quote(v)}" for k, v in self.client_env().items()]
        write_atomic(path, "\n".join(lines) + "\n")
        return path


def _add_machine_name(network: Network) -> None:
    """Give each host this machine's name as its own (JVMs ask for the local host's
    address, e.g. ``InetAddress.getLocalHost()``, and would find none)."""
    name = socket.gethostname()
    for host in network.hosts:
        path = netns.NETNS_ETC_DIR / host.namespace / "hosts"
        text = path.read_text()
        if name and name not in text.split():
            path.write_text(text + f"{host.address} {name}\n")
