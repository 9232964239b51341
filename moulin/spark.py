"""The one Spark session factory: every session is built here from the profile."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

from moulin import kerberos
from moulin.console import spark_conf as console_spark_conf
from moulin.settings import Settings, load_settings

log = logging.getLogger(__name__)

#: Under simple authentication, Hadoop's Java client (UserGroupInformation, read
#: once per JVM) and delta-rs's HDFS client (hdfs-native) act as this user.
HADOOP_USER_VAR = "HADOOP_USER_NAME"


def act_as_hdfs_user(
    settings: Settings, env: MutableMapping[str, str] | None = None
) -> MutableMapping[str, str]:
    """Set ``HADOOP_USER_NAME`` to ``settings.hdfs_user`` in ``env`` and return it.

    Default ``env``: this process's environment, so that a JVM started afterwards
    (Spark) and deltalake act as the configured HDFS user; pass a child's
    environment (spark-submit, job server) to make it act as that user too.
    """
    env = os.environ if env is None else env
    env[HADOOP_USER_VAR] = settings.hdfs_user
    # Under Kerberos the ticket decides who acts (HADOOP_USER_NAME is ignored).
    kerberos.login(settings, env)
    return env


def spark_conf(settings: Settings, app_name: str = "moulin") -> dict[str, str]:
    """The Spark configuration a session of ``settings`` gets (pure, testable)."""
    conf: dict[str, str] = {
        "spark.app.name": app_name,
        "spark.master": settings.spark.master,
        "spark.driver.memory": settings.spark.driver_memory,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.adaptive.coalescePartitions.enabled": "true",
        "spark.sql.shuffle.partitions": str(settings.spark.shuffle_partitions),
        "spark.ui.enabled": str(settings.spark.ui_enabled).lower(),
        # Delta readers (delta-rs, polars, DuckDB) read INT64 microsecond timestamps.
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.parquet.compression.codec": "snappy",
        # No _SUCCESS markers in table folders.
        "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
        "spark.hadoop.parquet.summary.metadata.level": "NONE",
        "spark.driver.extraJavaOptions": " ".join(
            ["-Duser.timezone=UTC", *kerberos.driver_java_options(settings)]
        ),
        "spark.executor.extraJavaOptions": " ".join(
            ["-Duser.timezone=UTC", *kerberos.java_options(settings)]
        ),
        # Executors act as the driver's user anyway (SPARK_USER); this covers
        # Hadoop clients they start themselves.
        f"spark.executorEnv.{HADOOP_USER_VAR}": settings.hdfs_user,
    }
    if kerberos.executors_need_tokens(settings):
        # Executors on standalone workers read moulin's HDFS token from a file written
        # before the session starts (build_spark_session), and the secure client files.
        conf["spark.executorEnv.HADOOP_TOKEN_FILE_LOCATION"] = str(kerberos.token_path(settings))
        if settings.hadoop_conf_dir:
            conf["spark.executor.extraClassPath"] = str(settings.hadoop_conf_dir)
            conf["spark.executorEnv.HADOOP_CONF_DIR"] = str(settings.hadoop_conf_dir)
    if not settings.spark.ship_code:
        # Executors on this host run this environment's Python.  With shipped code
        # (cluster profile) they run the shipped environment's, which spark-submit
        # sets (moulin.jobs.submit): a local virtualenv path means nothing there.
        conf["spark.pyspark.python"] = sys.executable
    if settings.profile != "local" and settings.hdfs.umask:
        conf["spark.hadoop.fs.permissions.umask-mode"] = settings.hdfs.umask
    if settings.profile == "hdfs-local":
        conf["spark.hadoop.fs.defaultFS"] = settings.hdfs.namenode_uri
        conf["spark.hadoop.dfs.replication"] = str(settings.hdfs.replication)
        # With few DataNodes, never fail a write for want of a replacement node.
        conf["spark.hadoop.dfs.client.block.write.replace-datanode-on-failure.policy"] = "NEVER"
    if settings.profile == "local":
        conf["spark.hadoop.fs.defaultFS"] = "file:///"
    return conf


def build_spark_session(
    settings: Settings | None = None,
    app_name: str = "moulin",
    extra_conf: Mapping[str, Any] | None = None,
):
    """Return a SparkSession configured from ``settings`` (default: the current profile).

    Sessions use UTC, Arrow, adaptive execution and the profile's file system.
    For the ``cluster`` profile, ``HADOOP_CONF_DIR`` from the settings is exported
    so that Spark finds the cluster's Hadoop client configuration.

    ``HADOOP_USER_NAME`` is set to ``settings.hdfs_user`` in this process before
    the JVM starts, so Spark and deltalake act as that HDFS user (under simple
    authentication; Kerberos ignores it).  A JVM keeps the user it started with:
    a session already running as another user is returned with a warning.
    """
    from pyspark.sql import SparkSession

    settings = settings or load_settings()
    act_as_hdfs_user(settings)
    if kerberos.executors_need_tokens(settings):
        kerberos.ensure_token_file(settings)
    if settings.hadoop_conf_dir:
        os.environ.setdefault("HADOOP_CONF_DIR", str(settings.hadoop_conf_dir))
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder
    conf = spark_conf(settings, app_name)
    conf.update(console_spark_conf())  # no stage progress bars in a command's console
    conf.update({k: str(v) for k, v in (extra_conf or {}).items()})
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    user = session.sparkContext.sparkUser()
    if user != settings.hdfs_user:
        log.warning(
            "this Spark session acts as HDFS user %r, not %r: its JVM was started before "
            "(or SPARK_USER is set); start a new process to act as %r",
            user,
            settings.hdfs_user,
            settings.hdfs_user,
        )
    return session
