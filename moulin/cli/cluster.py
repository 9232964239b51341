"""``moulin cluster``: the local HDFS (and Spark standalone) cluster."""

from __future__ import annotations

import argparse

from moulin.cluster.commands import cluster_command
from moulin.command_line import add_action, add_actions, add_command
from moulin.settings import load_settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``moulin cluster``."""
    p = add_command(
        sub,
        "cluster",
        help="the local HDFS (and Spark standalone) cluster",
        description="The local HDFS cluster (and Spark standalone), profile hdfs-local unless --profile says.",
        run=_cmd_cluster,
    )
    actions = add_actions(p)
    a = add_action(
        actions,
        "up",
        help="start the NameNode and DataNodes (--spark: Spark standalone too)",
        description="Start what is not running of the NameNode and DataNodes (WebHDFS on), with --spark "
        "a Spark standalone master and workers too; print each daemon's state.",
    )
    a.add_argument("--spark", action="store_true", help="also start a Spark standalone master and workers")
    a.add_argument(
        "--hosts",
        type=int,
        default=0,
        metavar="N",
        help="run each daemon on a host of its own: N DataNode hosts, a NameNode host, the Spark "
        "master's and each worker's (--spark) and a driver host, as Linux network namespaces on one "
        "bridge (root; addresses from settings network.subnet); 0: all on this machine",
    )
    a.add_argument(
        "--kerberos",
        action="store_true",
        help="with --hosts: an MIT KDC on a host of its own, and HDFS in secure mode (Kerberos RPC, "
        "SPNEGO on WebHDFS, SASL data transfer); moulin authenticates with its keytab",
    )
    a = add_action(
        actions,
        "down",
        help="stop the processes the cluster started (and remove its hosts)",
        description="Stop only the processes `moulin cluster up` started (its pid files); for a cluster "
        "on hosts, remove every namespace, link and hosts file of its network too.",
    )
    a.add_argument(
        "--leftovers",
        action="store_true",
        help="also remove networks of hosts whose owner is gone (a killed test run)",
    )
    add_action(
        actions,
        "status",
        help="live DataNodes, capacity used, Spark workers; exit 3 if the NameNode is down",
        description="Print the daemons' state: live DataNodes, capacity used, Spark workers (and the "
        "hosts of a cluster on hosts); exit code 3 if the NameNode is not running.",
    )
    add_action(
        actions,
        "check",
        help="check the cluster settings and files handed over: reachable, authenticated, permissions",
        description="Check what an administrator handed over -- core-site.xml and hdfs-site.xml "
        "(MOULIN_HADOOP_CONF_DIR), krb5.conf, moulin's keytab and principal, the Spark master URL -- "
        "from files to network: each file is valid, the KDC, NameNode, WebHDFS and Spark master "
        "answer, moulin's ticket is accepted and it may write the warehouse; each failure says "
        "what to do.  Exit code 1 if a check failed.",
    )
    add_action(
        actions,
        "env",
        help="the settings of a moulin process on the driver's host (shell lines)",
        description="Write and print the MOULIN_* settings (export lines) a moulin process on the "
        "driver's host of a cluster on hosts uses.",
    )
    a = add_action(
        actions,
        "exec",
        help="run a command on the driver's host of a cluster on hosts",
        description="Run COMMAND (default: a shell) on the driver's host of the cluster started with "
        "`moulin cluster up --hosts N`, with the settings that name the cluster's hosts.",
    )
    a.add_argument("command", nargs=argparse.REMAINDER, help="the command and its arguments (after --)")


def _cmd_cluster(args: argparse.Namespace) -> int:
    return cluster_command(args, load_settings(args.profile or "hdfs-local"))
