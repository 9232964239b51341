"""``moulin sql-endpoint``: run the SQL endpoint, see what it serves, log in to it.

``serve`` runs it in the foreground (the daemon of ``moulin platform up``); ``status``
prints its URL and the version served of each table; ``password USER`` prints a user's
password (generated the first time); ``beeline USER [-e SQL]`` opens Beeline logged in as
USER.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from moulin.cluster.daemons import process_alive
from moulin.command_line import add_action, add_actions, add_command
from moulin.settings import load_settings
from moulin.spark import act_as_hdfs_user
from moulin.sql_endpoint import client, users


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``moulin sql-endpoint``."""
    p = add_command(
        sub,
        "sql-endpoint",
        help="the JDBC/ODBC SQL endpoint (Spark's Thrift server) over the catalog",
        description="Spark's Thrift JDBC/ODBC server over the tables by name (<layer>.<table>), "
        "started by `moulin platform up`; profile hdfs-local unless --profile says.",
        run=_run,
    )
    actions = add_actions(p)
    add_action(
        actions,
        "serve",
        help="run the endpoint in the foreground",
        description="Run the endpoint in the foreground until SIGTERM or Ctrl-C.",
    )
    add_action(
        actions,
        "status",
        help="its URL and the version served of each table",
        description="Print the endpoint's JDBC URL and, per table, the Delta version served or why it is refused.",
    )
    _add_user(
        add_action(
            actions,
            "password",
            help="print a user's password (generated the first time)",
            description="Print USER's password of the endpoint (generated the first time, kept in a 0600 file).",
        )
    )
    a = add_action(
        actions,
        "beeline",
        help="open Beeline logged in as a user",
        description="Open Beeline (Hive JDBC) on the endpoint, logged in as USER; -e runs SQL and exits.",
    )
    _add_user(a)
    a.add_argument("-e", dest="sql", help="run these statements and exit")


def _add_user(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("user", help="a user of hdfs.group_mapping (analyst, engineer, dpo, ...)")


def _run(args: argparse.Namespace) -> int:
    from moulin.sql_endpoint.server import serve
    from moulin.sql_endpoint.sync import read_served

    settings = load_settings(args.profile or "hdfs-local")
    if args.action == "serve":
        act_as_hdfs_user(settings)
        return serve(
            settings, say=lambda line: print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}", flush=True)
        )
    if args.action == "password":
        print(users.password(settings, args.user))
        return 0
    if args.action == "beeline":
        command = client.beeline_command(settings, args.user, args.sql)
        sys.stdout.flush()
        os.execvp(command[0], command)
    served = read_served(settings)
    if not served or not process_alive(int(served["pid"]), "sql-endpoint serve"):
        print(f"the SQL endpoint is not running ({settings.sql_endpoint.jdbc_url})")
        return 3
    print(f"SQL endpoint: {served['url']} (pid {served['pid']})")
    for name, table in served["tables"].items():
        what = (
            f"version {table['version']}"
            if table["state"] == "table"
            else f"{table['state']}: {table['message']}"
        )
        print(f"  {name:<32} {what}")
    return 0
