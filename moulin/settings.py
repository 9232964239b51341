"""One typed settings object for the whole platform.

Every path, host and port that moulin uses comes from :class:`Settings`.  A
settings object is built from a named *profile* (``local``, ``hdfs-local`` or
``cluster``) and then overridden by environment variables:

* ``MOULIN_PROFILE`` picks the profile (default ``local``);
* ``MOULIN_<FIELD>`` overrides a top-level field, e.g. ``MOULIN_HOME``,
  ``MOULIN_WAREHOUSE_URI``;
* ``MOULIN_<SECTION>_<FIELD>`` overrides a field of a section, e.g.
  ``MOULIN_HDFS_NAMENODE_RPC_PORT=19820`` or ``MOULIN_SPARK_MASTER=local[2]``.

Values are converted to the field's type; a value that does not convert is an
error naming the variable.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from moulin.errors import MoulinError
from moulin.identifiers import check_relative_path

PROFILES = ("local", "hdfs-local", "cluster")
ENV_PREFIX = "MOULIN_"

# The repository root: the package is installed editable from a checkout, and
# infra/, schemas/ and dags/ live beside it.
REPO_ROOT = Path(__file__).resolve().parents[1]


class SettingsError(MoulinError, ValueError):
    """A profile or an environment override is invalid."""


# A user or group name in HDFS settings.
_ACCOUNT = re.compile(r"[A-Za-z0-9._@][A-Za-z0-9._@-]*")


@dataclass(frozen=True)
class HdfsSettings:
    """The local HDFS cluster started by ``moulin cluster up`` (profile ``hdfs-local``)."""

    host: str = "127.0.0.1"
    # Address the daemons bind (0.0.0.0 in containers); empty: same as host.
    bind_host: str = ""
    namenode_rpc_port: int = 9820
    namenode_http_port: int = 9870
    datanodes: int = 3
    replication: int = 2
    # DataNode i listens on base + 10*i (data), +1 (http), +2 (ipc).
    datanode_base_port: int = 9900
    # Hosts of the DataNodes, comma-separated, the i-th for DataNode i (each host its own
    # machine, as `moulin cluster up --hosts` makes them); empty: all on `host`.
    datanode_hosts: str = ""
    # How long `cluster up` waits for all DataNodes to report live.
    start_timeout_s: int = 120
    heap_mb: int = 512
    # Access (see moulin.privacy.access).  The HDFS user moulin acts as: WebHDFS
    # (user.name), Spark's JVM and deltalake (both through HADOOP_USER_NAME, which
    # moulin exports).  Empty: the operating-system user running moulin.  The
    # NameNode's superuser is the OS user that started it (`moulin cluster up`).
    user: str = ""
    # Members of this group are HDFS superusers too (dfs.permissions.superusergroup).
    superuser_group: str = "supergroup"
    # Groups of users on the local NameNode (hadoop.user.group.static.mapping.overrides,
    # "user=group1,group2;user2=group3"; a user listed with no group has none).  A
    # real cluster resolves groups through unix or LDAP instead.  Defaults:
    #   moulin   - the service account of the pipelines: every zone group;
    #   engineer - a data engineer: raw, quarantine and the curated layers;
    #   analyst  - an analyst: the curated layers only;
    #   dpo      - the data-protection officer: personal-data tables, ops, curated layers;
    #   outsider - an authenticated user of no group (reads nothing in the zones).
    group_mapping: str = (
        "moulin=moulin-services,data-engineering,analysts,privacy;"
        "engineer=data-engineering,analysts;"
        "analyst=analysts;"
        "dpo=privacy,analysts;"
        "outsider="
    )
    # Permission mask of what moulin's Spark (profiles other than local) and the local
    # cluster's clients create (fs.permissions.umask-mode): 027 gives new folders 750 and
    # new files 640 (group reads, others nothing).  Empty: the cluster's own (Hadoop: 022).
    umask: str = "027"
    # Kerberos (a secure cluster): the principal moulin authenticates as, with its keytab
    # (kinit into a ticket cache of its own, see moulin.kerberos); empty: simple
    # authentication (user.name / HADOOP_USER_NAME).  krb5_conf: the realm's krb5.conf
    # (empty: /etc/krb5.conf).
    kerberos_principal: str = ""
    kerberos_keytab: Path | None = None
    krb5_conf: Path | None = None

    @property
    def kerberos(self) -> bool:
        """Whether moulin authenticates to HDFS with Kerberos."""
        return bool(self.kerberos_principal)

    def datanode_host(self, index: int) -> str:
        """The host of DataNode ``index``: its entry of ``datanode_hosts``, else ``host``."""
        hosts = [h.strip() for h in self.datanode_hosts.split(",") if h.strip()]
        return hosts[index] if index < len(hosts) else self.host

    @property
    def namenode_uri(self) -> str:
        """The ``hdfs://host:port`` URI of the NameNode."""
        return f"hdfs://{self.host}:{self.namenode_rpc_port}"

    @property
    def webhdfs_url(self) -> str:
        """The NameNode's HTTP address, which serves WebHDFS and JMX."""
        return f"http://{self.host}:{self.namenode_http_port}"

    def groups(self) -> dict[str, tuple[str, ...]]:
        """``group_mapping`` parsed: user -> groups (SettingsError if malformed)."""
        result: dict[str, tuple[str, ...]] = {}
        for entry in filter(None, (e.strip() for e in self.group_mapping.split(";"))):
            user, sep, groups = entry.partition("=")
            names = tuple(g.strip() for g in groups.split(",") if g.strip())
            if not sep or not user.strip() or any(not _ACCOUNT.fullmatch(n) for n in (user.strip(), *names)):
                raise SettingsError(
                    f"MOULIN_HDFS_GROUP_MAPPING: {entry!r} is not 'user=group1,group2' "
                    "(names of letters, digits, '.', '_', '-', '@')"
                )
            result[user.strip()] = names
        return result

    def datanode_ports(self, index: int) -> tuple[int, int, int]:
        """(data transfer, http, ipc) ports of DataNode ``index`` (0-based)."""
        base = self.datanode_base_port + 10 * index
        return base, base + 1, base + 2


@dataclass(frozen=True)
class SparkSettings:
    """How Spark sessions are built (see :mod:`moulin.spark`)."""

    master: str = "local[*]"
    driver_memory: str = "4g"
    shuffle_partitions: int = 8
    ui_enabled: bool = False
    # Run platform stages on a long-lived job server (one Spark application for
    # many stages, see moulin.jobs.server) instead of one spark-submit each; it
    # stops after job_server_idle_s without work.  Off for the cluster profile.
    job_server: bool = True
    job_server_idle_s: int = 600
    # Spark standalone cluster started by `moulin cluster up --spark`.
    standalone_host: str = "127.0.0.1"
    standalone_port: int = 7077
    standalone_webui_port: int = 8180
    standalone_workers: int = 2
    worker_cores: int = 1
    worker_memory: str = "2g"
    worker_webui_base_port: int = 8181
    # Hosts of the standalone workers, comma-separated, the i-th for worker i; empty: all
    # on standalone_host.
    worker_hosts: str = ""
    # Ship moulin and its Python environment with every spark-submitted job (on for the
    # cluster profile): executors on hosts without moulin run the shipped code zip
    # with the shipped environment (--archives), never this host's virtualenv
    # path (see moulin.jobs.shipping, `moulin package`).
    ship_code: bool = False
    # Where `moulin package` writes the code zip and environment archives; empty:
    # <home>/dist/jobs.
    packages_dir: Path | None = None

    def worker_host(self, index: int) -> str:
        """The host of standalone worker ``index``: its entry of ``worker_hosts``, else
        ``standalone_host``."""
        hosts = [h.strip() for h in self.worker_hosts.split(",") if h.strip()]
        return hosts[index] if index < len(hosts) else self.standalone_host

    @property
    def standalone_url(self) -> str:
        """The ``spark://host:port`` URL of the standalone master."""
        return f"spark://{self.standalone_host}:{self.standalone_port}"


@dataclass(frozen=True)
class NetworkSettings:
    """The test network of ``moulin cluster up --hosts N``: each daemon (and the driver)
    a host of its own, a Linux network namespace on one bridge (see moulin.cluster.netns)."""

    # Addresses of the hosts; 198.51.100.0/24 is TEST-NET-2 (RFC 5737), routed nowhere.
    subnet: str = "198.51.100.0/24"
    # Hostnames are <role>.<prefix><run id>.<domain> (.test is reserved, RFC 6761).
    domain: str = "moulin.test"
    # Start of every namespace name (<prefix><run id>-<host>): leftovers are found by it.
    prefix: str = "mln"


@dataclass(frozen=True)
class PlatformSettings:
    """The services of ``moulin platform up``: PostgreSQL, Airflow's components, health limits."""

    # PostgreSQL (Debian package) holding Airflow's metadata database.
    postgres_host: str = "127.0.0.1"
    postgres_port: int = 15432
    # Folder of initdb/postgres; empty: the newest /usr/lib/postgresql/<version>/bin.
    postgres_bin_dir: Path | None = None
    # Data folder; empty: <home>/platform/postgres, or, when moulin runs as root (PostgreSQL
    # refuses root), /var/lib/postgresql/moulin-<digest of home> owned by postgres_os_user.
    postgres_data_dir: Path | None = None
    postgres_os_user: str = "postgres"
    # Airflow's api-server (UI, REST API, task execution API).
    api_host: str = "127.0.0.1"
    api_port: int = 8280
    admin_user: str = "admin"
    # LocalExecutor: tasks running at once (each may start a Spark job).
    parallelism: int = 2
    # How long `platform up` waits for each service to answer.
    start_timeout_s: int = 240
    # HDFS health (ops/hdfs_health): alert below/above these.
    health_min_live_datanodes: int = 3
    health_max_missing_blocks: int = 0
    health_max_under_replicated_blocks: int = 0
    health_min_free_fraction: float = 0.10
    # A run of a DAG with a deadline that lasts longer than this raises a deadline alert.
    flights_model_deadline_s: int = 3600
    health_deadline_s: int = 600

    @property
    def api_url(self) -> str:
        """Base URL of the Airflow api-server (UI and REST API)."""
        return f"http://{self.api_host}:{self.api_port}"


@dataclass(frozen=True)
class SqlEndpointSettings:
    """The SQL endpoint of ``moulin platform up``: Spark's Thrift JDBC/ODBC server (HiveServer2
    protocol) over the catalog of ``moulin sql`` (see :mod:`moulin.platform.sql_endpoint`)."""

    # Started by `moulin platform up` (false: the platform runs without it).
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 10000
    # How often the endpoint looks for new commits of the catalog's tables (seconds): a commit
    # is served within about this long; a query reads the snapshot current when it was planned.
    refresh_s: float = 5.0
    # How long a replaced snapshot stays in the endpoint's catalog for queries still being planned.
    keep_replaced_s: float = 120.0
    # Spark master of the endpoint's application; empty: spark.master.
    master: str = ""
    driver_memory: str = "1g"
    # How long `platform up` and `moulin sql-endpoint serve` wait for the port to answer.
    start_timeout_s: int = 180

    @property
    def jdbc_url(self) -> str:
        """``jdbc:hive2://host:port/`` (beeline, JDBC and ODBC clients)."""
        return f"jdbc:hive2://{self.host}:{self.port}/"


@dataclass(frozen=True)
class Settings:
    """Resolved configuration of one moulin process."""

    profile: str = "local"
    # State of this installation: cluster data and logs, pid files, local warehouse.
    home: Path = field(default_factory=lambda: Path.home() / ".moulin")
    # Downloaded distributions (Hadoop jars); shared between homes.
    dist_dir: Path | None = None
    # Root of the lakehouse; every table lives under it.  Empty means derived
    # from the profile (local: file://<home>/warehouse, hdfs-local: hdfs://.../moulin).
    warehouse_uri: str = ""
    # Hadoop client configuration of a real cluster (profile `cluster`).
    hadoop_conf_dir: Path | None = None
    # Python of the training environment (petastorm, torch); empty: <repo>/.venv-train.
    training_python: str = ""
    # Warehouse file locks (WarehouseFS.lock: landing manifests, SQL watermarks):
    # how long to wait for a lock held by another run, and the age after which a
    # lock is presumed left by a dead process and broken.  A holder must finish
    # within lock_stale_after_s.
    lock_timeout_s: int = 300
    lock_stale_after_s: int = 600
    # Folder of a team's table contracts and source specs (sources/*.yaml); it is
    # searched before the contracts shipped with moulin.  Empty: only those.
    contracts_dir: Path | None = None
    # Folder of your own use cases (one folder each with its usecase.py, framing.yaml and
    # contracts/), written by `moulin usecase new` and found beside moulin's own
    # (moulin/usecases/).  Empty: <home>/usecases.
    user_usecases_dir: Path | None = None
    # Great Expectations validates frames of up to this many rows with its pandas
    # engine on the driver (faster for small frames: see quality.ge.validate); 0: always Spark.
    ge_local_max_rows: int = 200_000
    # Where the operating system's packages install shared data (Debian's
    # dataset-* packages under datasets/, their documentation under doc/).
    system_share_dir: Path = Path("/usr/share")
    hdfs: HdfsSettings = field(default_factory=HdfsSettings)
    spark: SparkSettings = field(default_factory=SparkSettings)
    platform: PlatformSettings = field(default_factory=PlatformSettings)
    network: NetworkSettings = field(default_factory=NetworkSettings)
    sql_endpoint: SqlEndpointSettings = field(default_factory=SqlEndpointSettings)

    @property
    def hadoop_dist_dir(self) -> Path:
        """Folder holding the Hadoop jars used for the local HDFS."""
        return (self.dist_dir or self.home / "dist") / "hadoop-2.7.3"

    @property
    def datasets_dir(self) -> Path:
        """Folder of the data packages installed by ``bin/setup`` (e.g. the e-mail corpus)."""
        return (self.dist_dir or self.home / "dist") / "datasets"

    @property
    def system_datasets_dir(self) -> Path:
        """Folder of data sets installed as operating-system packages (e.g. Fashion-MNIST)."""
        return self.system_share_dir / "datasets"

    @property
    def system_docs_dir(self) -> Path:
        """Documentation of operating-system packages (a data set's README)."""
        return self.system_share_dir / "doc"

    @property
    def job_packages_dir(self) -> Path:
        """Folder of the job packages (code zip, environment archives) of ``moulin package``."""
        return self.spark.packages_dir or self.home / "dist" / "jobs"

    @property
    def logs_dir(self) -> Path:
        """Logs of moulin's own commands: ``<logs_dir>/<command>/`` (see :mod:`moulin.console`)."""
        return self.home / "logs"

    @property
    def cluster_dir(self) -> Path:
        """Data, logs, configs and pid files of the local cluster."""
        return self.home / "cluster"

    @property
    def warehouse(self) -> str:
        """The warehouse root URI, without a trailing slash."""
        if self.warehouse_uri:
            return self.warehouse_uri.rstrip("/")
        if self.profile == "hdfs-local":
            return f"{self.hdfs.namenode_uri}/moulin"
        if self.profile == "cluster":
            raise SettingsError(
                "profile 'cluster' needs MOULIN_WAREHOUSE_URI (e.g. hdfs://namenode:8020/moulin)"
            )
        return (self.home / "warehouse").resolve().as_uri()

    @property
    def hdfs_user(self) -> str:
        """The HDFS user moulin acts as: ``hdfs.user``, else the operating-system user."""
        if self.hdfs.user:
            if not _ACCOUNT.fullmatch(self.hdfs.user):
                raise SettingsError(f"MOULIN_HDFS_USER={self.hdfs.user!r} is not a valid user name")
            return self.hdfs.user
        try:
            return getpass.getuser()
        except Exception:  # noqa: BLE001 - no login name and no passwd entry (containers)
            raise SettingsError(
                "cannot tell the operating-system user running moulin: set MOULIN_HDFS_USER"
            ) from None

    @property
    def training_python_path(self) -> str:
        """Interpreter of the training environment (falls back to this one)."""
        if self.training_python:
            return self.training_python
        candidate = REPO_ROOT / ".venv-train" / "bin" / "python"
        return str(candidate) if candidate.exists() else sys.executable

    @property
    def contract_dirs(self) -> tuple[Path, ...]:
        """Folders searched for contracts, in order: ``contracts_dir``, the ``contracts/`` folder of
        each use case under :attr:`own_usecases_dir`, then moulin's own (``schemas/``)."""
        own = REPO_ROOT / "schemas"
        # the contracts a use case of this installation drafted for its own tables
        usecases = tuple(sorted(self.own_usecases_dir.glob("*/contracts")))
        if self.contracts_dir is None or Path(self.contracts_dir).resolve() == own.resolve():
            return (*usecases, own)
        return (Path(self.contracts_dir), *usecases, own)

    @property
    def usecases_dir(self) -> Path:
        """Folder of moulin's own use cases, one folder each holding its ``framing.yaml`` (see :mod:`moulin.framing`)."""
        return Path(__file__).resolve().parent / "usecases"

    @property
    def own_usecases_dir(self) -> Path:
        """Folder of this installation's own use cases: ``user_usecases_dir``, else ``<home>/usecases``."""
        return Path(self.user_usecases_dir) if self.user_usecases_dir else self.home / "usecases"

    @property
    def usecase_dirs(self) -> tuple[Path, ...]:
        """Folders searched for use cases, in order: moulin's own, then :attr:`own_usecases_dir`."""
        return (self.usecases_dir, self.own_usecases_dir)

    def table_uri(self, *parts: str) -> str:
        """URI of a table (or any object) under the warehouse root.

        A part may hold ``/`` between folder names (``"gold/flight_features"``); slashes
        at its ends are dropped.  Every folder name is checked by
        :func:`moulin.identifiers.check_path_part` (no ``..``, ``.``, empty names,
        backslashes or control characters), so no part can leave the warehouse:
        :class:`moulin.errors.UnsafeNameError` otherwise.
        """

        cleaned = [
            check_relative_path(p.strip("/") if isinstance(p, str) else p, "warehouse path") for p in parts
        ]
        return "/".join([self.warehouse, *cleaned])


def _profile_defaults(profile: str) -> dict[str, Any]:
    if profile == "local":
        return {}
    if profile == "hdfs-local":
        return {}
    if profile == "cluster":
        conf = os.environ.get("HADOOP_CONF_DIR")
        return {
            "hadoop_conf_dir": Path(conf) if conf else None,
            "spark": {
                "master": os.environ.get("SPARK_MASTER", "yarn"),
                "job_server": False,
                "ship_code": True,
            },
        }
    raise SettingsError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)}")


def _convert(value: str, target: Any, var: str) -> Any:
    type_name = target if isinstance(target, str) else getattr(target, "__name__", str(target))
    try:
        if "bool" in type_name:
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if "int" in type_name:
            return int(value)
        if "float" in type_name:
            return float(value)
        if "Path" in type_name:
            return Path(value).expanduser() if value else None
        return value
    except ValueError:
        raise SettingsError(f"environment variable {var}={value!r} is not a valid {type_name}") from None


def _apply(obj: Any, overrides: Mapping[str, Any]) -> Any:
    changes = {}
    names = {f.name: f for f in fields(obj)}
    for key, value in overrides.items():
        if key not in names:
            raise SettingsError(f"unknown setting {key!r} for {type(obj).__name__}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            changes[key] = _apply(current, value)
        else:
            changes[key] = value
    return replace(obj, **changes)


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name == "profile":
            continue
        default = getattr(Settings(), f.name)
        if dataclasses.is_dataclass(default):
            section: dict[str, Any] = {}
            for sub in fields(default):
                var = f"{ENV_PREFIX}{f.name}_{sub.name}".upper()
                if var in env:
                    section[sub.name] = _convert(env[var], sub.type, var)
            if section:
                result[f.name] = section
        else:
            var = f"{ENV_PREFIX}{f.name}".upper()
            if var in env:
                result[f.name] = _convert(env[var], f.type, var)
    return result


def load_settings(profile: str | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings of ``profile`` (default: ``$MOULIN_PROFILE`` or ``local``),
    then apply ``MOULIN_*`` environment overrides."""
    env = os.environ if env is None else env
    profile = profile or env.get("MOULIN_PROFILE", "local")
    base = _apply(Settings(profile=profile), _profile_defaults(profile))
    settings = _apply(base, _env_overrides(env))
    if settings.hdfs.replication > settings.hdfs.datanodes:
        raise SettingsError(
            f"hdfs replication {settings.hdfs.replication} exceeds the number of "
            f"DataNodes {settings.hdfs.datanodes}: lower MOULIN_HDFS_REPLICATION"
        )
    return settings


def describe(settings: Settings) -> dict[str, Any]:
    """A plain dict of the settings (for ``moulin settings`` and logs)."""
    data = dataclasses.asdict(settings)
    data["warehouse"] = settings.warehouse
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in data.items()}
