"""``moulin cluster ...``: the actions of the cluster command, one function each."""

from __future__ import annotations

import argparse
import os
import sys

from moulin.cluster.check import check as run_checks
from moulin.cluster.local import LocalCluster
from moulin.cluster.multihost import MultiHostCluster
from moulin.cluster.netns import remove_leftovers
from moulin.settings import Settings


def cluster_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``moulin cluster <action>``; return the exit code.  A cluster on hosts (one
    recorded in the home) is the one ``down``, ``status``, ``env`` and ``exec`` act on."""
    hosts = MultiHostCluster(settings)
    if args.action == "up":
        return up(settings, hosts, args.hosts, args.spark, args.kerberos)
    if args.action == "down":
        return down(settings, hosts, args.leftovers)
    if args.action == "check":
        return check(settings)
    if args.action == "env":
        print(hosts.env_file().read_text(), end="")
        return 0
    if args.action == "exec":
        return run_on_driver(hosts, args.command)
    return status(settings, hosts)


def up(settings: Settings, hosts: MultiHostCluster, count: int, spark: bool, kerberos: bool) -> int:
    """Start the cluster: on ``count`` DataNode hosts (and a host per other daemon), or on
    this machine when ``count`` is 0 and no cluster on hosts is recorded."""
    if count or hosts.network() is not None:
        result = hosts.up(datanodes=count or settings.hdfs.datanodes, spark=spark, kerberos=kerberos)
        print("\n".join(result.lines()))
        print(hosts_summary(hosts))
        return 0
    if kerberos:
        print("moulin: --kerberos needs --hosts N (a KDC host and host-based principals)", file=sys.stderr)
        return 2
    result = LocalCluster(settings).up(with_spark=spark)
    print("\n".join(result.lines()))
    print(f"HDFS: {settings.hdfs.namenode_uri}  WebHDFS/UI: {settings.hdfs.webhdfs_url}")
    return 0


def down(settings: Settings, hosts: MultiHostCluster, leftovers: bool) -> int:
    """Stop what ``up`` started (and remove a cluster on hosts); with ``leftovers``, also the
    networks of test runs that died."""
    if leftovers:
        removed = remove_leftovers(settings.network.prefix)
        print("\n".join(f"removed {r}" for r in removed) or "no leftover network")
    stopped = hosts.down() if hosts.network() is not None else LocalCluster(settings).down()
    processes = [s for s in stopped if " " not in s and "/" not in s]
    items = len(stopped) - len(processes)
    if not stopped:
        print("nothing of ours was running")
    else:
        print(
            f"stopped {len(processes)} process(es)"
            + (f", removed {items} namespace(s) and file(s)" if items else "")
        )
    return 0


def check(settings: Settings) -> int:
    """``moulin cluster check``: exit 1 when a check failed."""

    report = run_checks(settings)
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


def run_on_driver(hosts: MultiHostCluster, command: list[str]) -> int:
    """Replace this process by ``command`` (default: a shell) on the driver's host."""
    words = [c for c in command if c != "--"] or [os.environ.get("SHELL", "/bin/sh")]
    argv = hosts.driver_command(words)
    sys.stdout.flush()
    os.execvp(argv[0], argv)
    return 127  # not reached: exec replaced this process


def status(settings: Settings, hosts: MultiHostCluster) -> int:
    """Print the daemons' state (and the hosts); exit 3 when the NameNode is down."""
    on_hosts = hosts.network() is not None
    cluster = hosts.cluster() if on_hosts else LocalCluster(settings)
    result = cluster.status()
    print("\n".join(result.lines()))
    if on_hosts:
        print(hosts_summary(hosts))
    return 0 if result.namenode_running else 3


def hosts_summary(hosts: MultiHostCluster) -> str:
    """The hosts of the recorded network, one line each, and how to run on the driver's."""
    network = hosts.network()
    if network is None:
        return ""
    lines = [f"network {network.run_id} ({network.subnet}), hosts:"]
    lines += [
        f"  {h.role:<16} {h.address:<15} {h.hostname}  (namespace {h.namespace})" for h in network.hosts
    ]
    lines.append(
        "run moulin on the driver's host with `moulin cluster exec -- COMMAND`, "
        f"or source the settings of `moulin cluster env` inside `ip netns exec {network.host('driver').namespace}`"
    )
    return "\n".join(lines)
