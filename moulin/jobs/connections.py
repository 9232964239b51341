"""The Airflow Connections of moulin's Spark and HDFS, built from the settings.

Two connections, both from :class:`moulin.settings.Settings` (no host or port
is written anywhere else):

* ``spark_default`` (type ``spark``): host = ``settings.spark.master``
  (``local[2]``, ``spark://host:7077``, ``yarn``), deploy mode ``client``; used by
  :func:`moulin.jobs.submit.submit_job` through the Spark provider's
  ``SparkSubmitHook``;
* ``webhdfs_default`` (type ``webhdfs``): the NameNode's HTTP address, login =
  the HDFS user moulin acts as.

Precedence: a connection **stored in Airflow** (its metadata database, which
``moulin platform up`` fills from :func:`airflow_connections`, or an
``AIRFLOW_CONN_<ID>`` variable, or a secrets backend) wins, so operators change
the Spark master in Airflow's UI without touching moulin.  Only where Airflow
has no such connection (the CLI, tests, a bare process) does moulin use the one
built here from the settings, and it passes it to the job's process as
``AIRFLOW_CONN_SPARK_DEFAULT`` (:func:`connection_env`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from moulin.settings import Settings

if TYPE_CHECKING:
    from airflow.models.connection import Connection

SPARK_CONN_ID = "spark_default"
WEBHDFS_CONN_ID = "webhdfs_default"


@dataclass(frozen=True)
class ConnectionSpec:
    """The fields of one Airflow Connection (pure data: no Airflow import)."""

    conn_id: str
    conn_type: str
    host: str
    port: int | None = None
    login: str | None = None
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The JSON form Airflow reads from an ``AIRFLOW_CONN_<ID>`` variable.

        JSON rather than a URI: a master such as ``local[2]`` is no URI host.
        """
        data: dict[str, Any] = {"conn_type": self.conn_type, "host": self.host}
        if self.port is not None:
            data["port"] = self.port
        if self.login is not None:
            data["login"] = self.login
        if self.description:
            data["description"] = self.description
        if self.extra:
            data["extra"] = self.extra
        return json.dumps(data, sort_keys=True)

    @property
    def env_var(self) -> str:
        """The variable through which Airflow finds this connection (``AIRFLOW_CONN_SPARK_DEFAULT``)."""
        return f"AIRFLOW_CONN_{self.conn_id.upper()}"


def spark_connection_spec(settings: Settings) -> ConnectionSpec:
    """``spark_default``: the settings' Spark master, client deploy mode (the job's output comes
    back); on a Kerberos cluster, moulin's principal (the hook's ``--principal``).  The keytab
    is not in the connection: the provider reads its ``keytab`` extra as the file's content
    in base64 (a password in a variable); :func:`moulin.jobs.submit.spark_hook` hands the
    hook the keytab's path instead."""
    extra: dict[str, Any] = {"deploy-mode": "client", "spark-binary": "spark-submit"}
    if settings.hdfs.kerberos:
        extra["principal"] = settings.hdfs.kerberos_principal
    return ConnectionSpec(
        conn_id=SPARK_CONN_ID,
        conn_type="spark",
        host=settings.spark.master,
        description=f"Spark master of moulin's {settings.profile} profile",
        extra=extra,
    )


def webhdfs_connection_spec(settings: Settings) -> ConnectionSpec:
    """``webhdfs_default``: the NameNode's HTTP address, acting as the settings' HDFS user."""
    return ConnectionSpec(
        conn_id=WEBHDFS_CONN_ID,
        conn_type="webhdfs",
        host=settings.hdfs.host,
        port=settings.hdfs.namenode_http_port,
        login=settings.hdfs_user,
        description=f"WebHDFS of moulin's {settings.profile} profile",
        extra={"use_ssl": False},
    )


def connection_specs(settings: Settings) -> list[ConnectionSpec]:
    """Every connection moulin's DAGs and jobs use, from ``settings``."""
    return [spark_connection_spec(settings), webhdfs_connection_spec(settings)]


def to_airflow(spec: ConnectionSpec) -> Connection:
    """``spec`` as an ``airflow.models.Connection`` (the kind stored in Airflow's database)."""
    from airflow.models.connection import Connection

    return Connection(
        conn_id=spec.conn_id,
        conn_type=spec.conn_type,
        description=spec.description or None,
        host=spec.host,
        port=spec.port,
        login=spec.login,
        extra=json.dumps(spec.extra) if spec.extra else None,
    )


def airflow_connections(settings: Settings) -> list[Connection]:
    """The Airflow Connections to store in Airflow's database (``moulin platform up``)."""
    return [to_airflow(spec) for spec in connection_specs(settings)]


def connection_env(settings: Settings) -> dict[str, str]:
    """``AIRFLOW_CONN_<ID>`` variables (JSON form) of every connection, for a process without Airflow's DB."""
    return {spec.env_var: spec.to_json() for spec in connection_specs(settings)}


def stored_connection(conn_id: str) -> Any | None:
    """The connection ``conn_id`` as Airflow resolves it (database, variables, secrets), or None."""
    from airflow.providers.common.compat.sdk import AirflowNotFoundException, BaseHook

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
