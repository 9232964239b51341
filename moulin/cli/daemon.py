"""``moulin daemon``: one daemon of the local cluster in the foreground (a container's command)."""

from __future__ import annotations

import argparse

from moulin.cluster.local import LocalCluster
from moulin.command_line import add_action, add_actions, add_command
from moulin.settings import load_settings

#: The daemons ``moulin daemon`` runs: (role, what it is, numbered: several run, told apart by --index).
DAEMONS = (
    ("namenode", "the NameNode (formatted on first start)", False),
    ("datanode", "a DataNode", True),
    ("spark-master", "the Spark standalone master", False),
    ("spark-worker", "a Spark standalone worker", True),
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``moulin daemon``."""
    p = add_command(
        sub,
        "daemon",
        help="run one cluster daemon in the foreground (containers)",
        description="Replace this process by one cluster daemon in the foreground (a container's "
        "command), profile hdfs-local unless --profile says.",
        run=_cmd_daemon,
    )
    roles = add_actions(p, "role")
    for role, what, numbered in DAEMONS:
        a = add_action(roles, role, help=f"run {what}", description=f"Run {what} in the foreground.")
        if numbered:
            a.add_argument(
                "--index", type=int, default=0, help="DataNode / worker number (ports, data folder)"
            )
        else:
            a.set_defaults(index=0)  # one of its kind


def _cmd_daemon(args: argparse.Namespace) -> int:
    LocalCluster(load_settings(args.profile or "hdfs-local")).exec_daemon(args.role, args.index)
    return 0  # not reached: exec replaced this process
