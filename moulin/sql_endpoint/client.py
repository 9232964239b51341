"""Clients of the SQL endpoint: a Python DB-API connection (PyHive) and Beeline's command line.

Both log in as a user of :mod:`moulin.sql_endpoint.users` with the password from its
secret file, so no password is typed or shown.
"""

from __future__ import annotations

import os
from pathlib import Path

from moulin.settings import Settings
from moulin.sql_endpoint import users
from moulin.sql_endpoint.jar import pyspark_jars_dir


def connect(settings: Settings, user: str, password: str | None = None):
    """A DB-API 2 connection (``pyhive.hive.Connection``) to the endpoint as ``user`` (its
    password from its secret file unless given)."""
    from pyhive import hive

    ep = settings.sql_endpoint
    secret = password if password is not None else users.password(settings, user)
    return hive.connect(host=ep.host, port=ep.port, username=user, password=secret, auth="CUSTOM")


def password_file(settings: Settings, user: str) -> Path:
    """``user``'s password file (created with its password when missing): Beeline's ``-w``."""
    users.password(settings, user)
    return users.password_secret(user).path(settings)


#: The jars Beeline needs, by name prefix (a JVM with all of pyspark's jars starts several
#: times slower): Beeline, Hive JDBC and its Thrift protocol (Spark's copy of hive-service).
BEELINE_JARS = (
    "hive-beeline-",
    "hive-jdbc-",
    "hive-service-rpc-",
    "hive-common-",
    "hive-serde-",
    "spark-hive-thriftserver_",
    "spark-common-utils_",
    "scala-library-",
    "libthrift-",
    "hadoop-client-api-",
    "hadoop-client-runtime-",
    "commons-cli-",
    "commons-io-",
    "commons-lang-2",
    "commons-lang3-",
    "guava-",
    "httpclient-",
    "httpcore-",
    "jline-2",
    "super-csv-",
    "slf4j-api-",
    "log4j-api-",
    "log4j-core-",
    "log4j-slf4j2-impl-",
)


def beeline_classpath() -> str:
    """Beeline's class path: :data:`BEELINE_JARS` from pyspark's jars (all of them when one is missing)."""
    folder = pyspark_jars_dir()
    names = sorted(p.name for p in folder.glob("*.jar"))
    chosen = [next((n for n in names if n.startswith(prefix)), None) for prefix in BEELINE_JARS]
    if None in chosen:
        return f"{folder}/*"
    return os.pathsep.join(str(folder / n) for n in chosen if n)


def beeline_command(settings: Settings, user: str, sql: str | None = None) -> list[str]:
    """The command line of Beeline (pyspark's Hive JDBC jars) logged in as ``user``; with
    ``sql``, Beeline runs it and exits."""
    java = Path(os.environ["JAVA_HOME"]) / "bin" / "java" if os.environ.get("JAVA_HOME") else Path("java")
    command = [
        str(java),
        "-cp",
        beeline_classpath(),
        "org.apache.hive.beeline.BeeLine",
        "-u",
        settings.sql_endpoint.jdbc_url,
        "-n",
        user,
        "-w",
        str(password_file(settings, user)),
        "--showWarnings=false",
    ]
    if sql is not None:
        command += ["--silent=true", "--outputformat=table", "-e", sql]
    return command
