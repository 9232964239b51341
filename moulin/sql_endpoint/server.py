"""The SQL endpoint's process: a Spark driver that runs Spark's Thrift JDBC/ODBC server.

:func:`serve` (``moulin sql-endpoint serve``, the daemon ``moulin platform up`` starts)
builds a Spark session from the profile's settings (:func:`moulin.spark.build_spark_session`:
the platform's Spark, its HDFS and user), with

* an in-memory catalog, filled from moulin's catalog by :class:`~moulin.sql_endpoint.sync.CatalogSync`
  (databases ``bronze``, ``silver``, ``gold``, ``views``, ...), nothing persisted: every start
  rebuilds it from the contracts and the Delta logs, which stay the one source of truth;
* the query guard (``spark.sql.extensions``: ``java/moulin/sqlendpoint/QueryGuard.java``),
  configured with this session as the trusted one and the readers of :mod:`moulin.sql_endpoint.users`;
* Spark's Thrift server (HiveServer2 protocol, binary transport) on ``sql_endpoint.host:port``
  with ``hive.server2.authentication=CUSTOM``: ``PasswordFile.java`` checks passwords against
  the users file.

It then syncs the catalog every ``refresh_s`` seconds until SIGTERM or SIGINT, which stop
the Thrift server and Spark.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from moulin.cluster.daemons import ClusterError, port_open
from moulin.settings import Settings
from moulin.spark import build_spark_session
from moulin.sql_endpoint import users
from moulin.sql_endpoint.jar import build_jar
from moulin.sql_endpoint.sync import CatalogSync, audit_spool, served_file, state_dir

log = logging.getLogger(__name__)

#: Loggers too loud for the endpoint's log: FileStreamSink warns with a stack trace at every
#: plan of a snapshot table (its location is a glob, which has no streaming metadata).
_QUIET_LOGGERS = ("org.apache.spark.sql.execution.streaming.FileStreamSink",)


class SqlEndpointError(ClusterError):
    """The SQL endpoint cannot start or answer; the message says what to do."""


def spark_conf(settings: Settings, jar: Path) -> dict[str, str]:
    """The endpoint's additions to the profile's Spark configuration (pure, testable)."""
    ep = settings.sql_endpoint
    conf = {
        "spark.master": ep.master or settings.spark.master,
        "spark.driver.memory": ep.driver_memory,
        "spark.driver.extraClassPath": str(jar),
        "spark.sql.extensions": "moulin.sqlendpoint.Extensions",
        "spark.sql.catalogImplementation": "in-memory",
        "spark.sql.warehouse.dir": (state_dir(settings) / "spark-warehouse").resolve().as_uri(),
        # Snapshot tables list their files in their location: partitions are never tracked
        # in the catalog (no partition repair at CREATE TABLE, no catalog file index).
        "spark.sql.hive.manageFilesourcePartitions": "false",
        # Every JDBC session its own Spark session (temporary state apart), one catalog.
        "spark.sql.hive.thriftServer.singleSession": "false",
        "spark.scheduler.mode": "FAIR",
        # The Thrift server's execution Hive (a throw-away Derby) logs here, not in the cwd.
        "spark.driver.extraJavaOptions": (
            f"-Duser.timezone=UTC -Dderby.stream.error.file={state_dir(settings) / 'derby.log'}"
        ),
    }
    return conf


def hive_conf(settings: Settings) -> dict[str, str]:
    """The Thrift server's HiveServer2 options (set as JVM system properties and SQL options)."""
    ep = settings.sql_endpoint
    return {
        "hive.server2.thrift.bind.host": ep.host,
        "hive.server2.thrift.port": str(ep.port),
        "hive.server2.transport.mode": "binary",
        "hive.server2.authentication": "CUSTOM",
        "hive.server2.custom.authentication.class": "moulin.sqlendpoint.PasswordFile",
        "hive.server2.enable.doAs": "false",
        "moulin.sql.endpoint.users": str(users.users_file(settings)),
    }


def wait_until_answering(settings: Settings, alive: Callable[[], bool], log_file: Path) -> None:
    """Wait until the endpoint's port answers: it listens once its catalog is in step
    (SqlEndpointError after ``start_timeout_s``, or at once when ``alive()`` turns false)."""
    ep = settings.sql_endpoint
    deadline = time.monotonic() + ep.start_timeout_s
    while not port_open(ep.host, ep.port):
        if not alive():
            raise SqlEndpointError(f"the SQL endpoint exited while starting; see {log_file}")
        if time.monotonic() > deadline:
            raise SqlEndpointError(
                f"the SQL endpoint did not answer on {ep.host}:{ep.port} within {ep.start_timeout_s} s; "
                f"see {log_file}"
            )
        time.sleep(0.5)


def serve(settings: Settings, say: Callable[[str], None] = print) -> int:
    """Run the endpoint until SIGTERM/SIGINT (see the module); returns the exit code."""

    ep = settings.sql_endpoint
    if port_open(ep.host, ep.port):
        raise SqlEndpointError(
            f"port {ep.port} on {ep.host} is taken (another endpoint or service): stop it, or set "
            "MOULIN_SQL_ENDPOINT_PORT"
        )
    say(f"SQL endpoint: starting (profile {settings.profile}, warehouse {settings.warehouse})")
    jar = build_jar(settings)
    users.write_users_file(settings)
    served_file(settings).unlink(missing_ok=True)
    spark = build_spark_session(
        settings, app_name="moulin-sql-endpoint", extra_conf=spark_conf(settings, jar)
    )
    jvm = spark._jvm
    level = jvm.org.apache.logging.log4j.Level.ERROR
    for name in _QUIET_LOGGERS:
        jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(name, level)
    readers = users.readers(settings)
    jvm.moulin.sqlendpoint.QueryGuard.configure(
        spark._jsparkSession, ",".join(readers), users.reader_group(), str(audit_spool(settings))
    )
    say("SQL endpoint: Spark is up; serving the catalog")
    sync = CatalogSync(spark, settings, say)
    for line in sync.sync():
        say(line)
    for key, value in hive_conf(settings).items():
        jvm.java.lang.System.setProperty(key, value)
        spark.conf.set(key, value)
    server = jvm.org.apache.spark.sql.hive.thriftserver.HiveThriftServer2.startWithContext(
        spark._jsparkSession.sqlContext()
    )
    sync.write_status()
    say(f"SQL endpoint: {ep.jdbc_url} (readers: {', '.join(readers)}; refresh every {ep.refresh_s:g} s)")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.wait(ep.refresh_s):
            try:
                for line in sync.sync():
                    say(line)
            except Exception as exc:  # noqa: BLE001 - one failed pass must not stop the endpoint
                say(f"sync failed ({type(exc).__name__}: {exc}); trying again in {ep.refresh_s:g} s")
    finally:
        say("SQL endpoint: stopping")
        served_file(settings).unlink(missing_ok=True)
        server.stop()
        spark.stop()
    return 0
