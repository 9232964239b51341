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


def beeline_command(settings: Settings, user: str, sql: str | None = None) -> list[str]:
    """The command line of Beeline (pyspark's Hive JDBC jars) logged in as ``user``; with
    ``sql``, Beeline runs it and exits."""
    java = Path(os.environ["JAVA_HOME"]) / "bin" / "java" if os.environ.get("JAVA_HOME") else Path("java")
    command = [
        str(java),
        "-cp",
        f"{pyspark_jars_dir()}/*",
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
