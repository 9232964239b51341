"""``moulin cluster ...``: the actions of the cluster command, one function each."""

from __future__ import annotations

import argparse
import os
import sys

from moulin.cluster.local import LocalCluster
from moulin.cluster.multihost import MultiHostCluster
from moulin.settings import Settings


def cluster_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``moulin cluster <action>``; return the exit code."""
    hosts = MultiHostCluster(settings)
    on_hosts = getattr(args, "hosts", 0) or hosts.network() is not None
    if args.action == "up":
        if on_hosts:
            status = hosts.up(
                datanodes=args.hosts or settings.hdfs.datanodes, spark=args.spark, kerberos=args.kerberos
            )
            print("\n".join(status.lines()))
            print(_hosts_summary(hosts))
            return 0
        if args.kerberos:
            print(
                "moulin: --kerberos needs --hosts N (a KDC host and host-based principals)", file=sys.stderr
            )
            return 2
        status = LocalCluster(settings).up(with_spark=args.spark)
        print("\n".join(status.lines()))
        print(f"HDFS: {settings.hdfs.namenode_uri}  WebHDFS/UI: {settings.hdfs.webhdfs_url}")
        return 0
    if args.action == "down":
        if getattr(args, "leftovers", False):
            from moulin.cluster.netns import remove_leftovers

            removed = remove_leftovers(settings.network.prefix)
            print("\n".join(f"removed {r}" for r in removed) or "no leftover network")
        stopped = hosts.down() if on_hosts else LocalCluster(settings).down()
        processes = [s for s in stopped if " " not in s and "/" not in s]
        removed = len(stopped) - len(processes)
        if not stopped:
            print("nothing of ours was running")
        else:
            print(
                f"stopped {len(processes)} process(es)"
                + (f", removed {removed} namespace(s) and file(s)" if removed else "")
            )
        return 0
    if args.action == "check":
        from moulin.cluster.check import check

        report = check(settings)
        print("\n".join(report.lines()))
        return 0 if report.ok else 1
    if args.action == "env":
        path = hosts.env_file()
        print(path.read_text(), end="")
        return 0
    if args.action == "exec":
        command = [c for c in args.command if c != "--"] or [os.environ.get("SHELL", "/bin/sh")]
        argv = hosts.driver_command(command)
        sys.stdout.flush()
        os.execvp(argv[0], argv)
    cluster = hosts.cluster() if on_hosts else LocalCluster(settings)
    status = cluster.status()
    print("\n".join(status.lines()))
    if on_hosts:
        print(_hosts_summary(hosts))
    return 0 if status.namenode_running else 3


def _hosts_summary(hosts: MultiHostCluster) -> str:
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
