"""Cluster faults on a real local HDFS and a Spark standalone cluster, several runs each.

    .venv/bin/python benchmarks/cluster_faults.py [--runs 3] [--faults landing,delta,namenode,worker]
    .venv/bin/python benchmarks/cluster_faults.py --runs 2 --faults datanode-link,namenode-path   (root)

Starts a 1 NameNode + 3 DataNode HDFS (replication 2) with
``moulin.cluster.local.LocalCluster`` under a temporary MOULIN_HOME with free
ports, and a local[2] Spark session, then runs the scenarios of
``tests/cluster_faults.py`` (the same ones as
``tests/integration/test_cluster_faults.py``):

* ``landing``: a DataNode SIGKILLed while ``land_file`` uploads a 6 MB drop
  (the DataNode serving the WebHDFS upload, then one of its block pipeline);
* ``delta``: a DataNode SIGKILLed while Spark writes a Delta table on HDFS;
* ``namenode``: the NameNode stopped (SIGTERM, then SIGKILL) and started between
  two Delta writes of the same Spark session;
* ``worker``: a Spark standalone worker (and its executor) SIGKILLed mid-task.

Faults at the network level run on a cluster on hosts instead (network namespaces on
one bridge, ``moulin.cluster.multihost``; root): a NameNode, 3 DataNodes and the
driver on hosts of their own, the benchmark's Spark session (local[2]) on the
driver's host:

* ``datanode-link``: the busiest DataNode's link to the bridge taken down while
  Spark writes a Delta table, put back after a retry;
* ``namenode-path``: every packet between the driver and the NameNode dropped for
  20 s during a Delta write (both cables in), then the path restored;
* ``landing-link``: the link of a DataNode down for 30 s while ``land_file`` uploads a
  6 MB drop (the DataNode serving the WebHDFS upload, then one of its block
  pipeline), the landing retried as a rerun of the task would;
* ``worker-link``: a Spark standalone worker's link down for 40 s while its executor
  runs a task of a Delta write (the cluster then also has a Spark master and 2
  one-core workers on hosts of their own); the driver declares the executor lost
  after 20 s without a heartbeat and reruns its task on the other worker;
* ``ticket-expiry`` (a cluster of its own, Kerberised: a KDC host too): moulin's
  principal gets tickets of 2 minutes at most; a Delta write whose slowed stage
  lasts until 30 s after the ticket's expiry must commit (the Spark driver logs in
  again from moulin's keytab, moulin renews its ticket cache before deltalake's
  commit), or fail with an error naming the principal (then retried after a login).

Each run retries the faulted operation as a scheduler would, then checks the data
against a clean run.  Prints one line per run, then the table: fault | where
injected | runs | invariant violations | rows lost | recovery time (s) (median
and max over the runs: from the fault until the operation's data was committed
or landed, retries included).  Stops the cluster at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

FAULTS = (
    "landing", "delta", "namenode", "worker",
    "datanode-link", "namenode-path", "landing-link", "worker-link", "ticket-expiry",
)  # fmt: skip
HOST_FAULTS = ("datanode-link", "namenode-path", "landing-link", "worker-link", "ticket-expiry")
# moulin's principal's ticket life on the Kerberised cluster of `ticket-expiry`.
SHORT_TICKET = "2 minutes"
# The network faults need root (namespaces): asked for by name only.
DEFAULT_FAULTS = tuple(f for f in FAULTS if f not in HOST_FAULTS)


def variants(spark, cluster, settings, workdir: Path, chosen: set[str]):
    """(fault, where injected, one run) of each selected scenario."""
    import cluster_faults as cf

    def table(name: str) -> str:
        return f"{settings.warehouse}/bench-faults/{name}-{uuid.uuid4().hex[:8]}"

    def scratch() -> Path:
        path = workdir / uuid.uuid4().hex[:8]
        path.mkdir(parents=True)
        return path

    out = []
    if "landing" in chosen:
        out.append(
            (
                "DataNode SIGKILL",
                "land_file upload: the WebHDFS DataNode",
                lambda: cf.land_with_datanode_kill(cluster, settings, scratch(), victim="webhdfs"),
            )
        )
        out.append(
            (
                "DataNode SIGKILL",
                "land_file upload: a pipeline DataNode",
                lambda: cf.land_with_datanode_kill(cluster, settings, scratch(), victim="pipeline"),
            )
        )
    if "delta" in chosen:
        out.append(
            (
                "DataNode SIGKILL",
                "Spark Delta write (blocks in flight)",
                lambda: cf.delta_write_with_datanode_kill(spark, cluster, table("dn-kill")),
            )
        )
    if "namenode" in chosen:
        for kill in (False, True):
            out.append(
                (
                    f"NameNode {'SIGKILL' if kill else 'SIGTERM'} + start",
                    "between two Delta writes",
                    lambda kill=kill: cf.delta_writes_around_namenode_restart(
                        spark, cluster, table("nn-restart"), kill=kill
                    ),
                )
            )
    network = getattr(cluster, "network", None)
    if "datanode-link" in chosen and network is not None:
        out.append(
            (
                "DataNode link down",
                "Spark Delta write (blocks in flight), cluster on hosts",
                lambda: cf.delta_write_with_datanode_kill(
                    spark, cluster, table("dn-link"), fault=cf.link_down(network)
                ),
            )
        )
    if "landing-link" in chosen and network is not None:
        for victim in ("webhdfs", "pipeline"):
            out.append(
                (
                    "DataNode link down 30 s",
                    f"land_file upload: the {victim} DataNode, cluster on hosts",
                    lambda victim=victim: cf.land_with_datanode_kill(
                        cluster, settings, scratch(), victim=victim, fault=cf.link_down(network), hold_s=30
                    ),
                )
            )
    if "worker-link" in chosen and network is not None:
        out.append(
            (
                "Spark worker link down 40 s",
                "standalone worker's host mid-task (Delta write), cluster on hosts",
                lambda: cf.delta_write_with_worker_link_down(spark, cluster, network, table("worker-link")),
            )
        )
    if "ticket-expiry" in chosen and network is not None and network.has("kdc"):
        out.append(
            (
                f"moulin's ticket expires ({SHORT_TICKET} life)",
                "Spark Delta write (staging, then commit), Kerberised cluster on hosts",
                lambda: cf.delta_write_across_ticket_expiry(spark, settings, table("ticket")),
            )
        )
    if "namenode-path" in chosen and network is not None:
        out.append(
            (
                "driver-NameNode path dropped 20 s",
                "Spark Delta write (files staged), cluster on hosts",
                lambda: cf.delta_write_with_path_cut(spark, cluster, network, table("nn-path")),
            )
        )
    if "worker" in chosen:
        out.append(
            (
                "Spark worker SIGKILL",
                "standalone worker + executor mid-task",
                lambda: cf.delta_write_with_worker_kill(spark, cluster, table("worker-kill")),
            )
        )
    return out


def run_once(one, cluster):
    """One run; a scenario that raises counts as a violation (and the HDFS is restored)."""
    import cluster_faults as cf

    try:
        return one()
    except Exception as exc:  # noqa: BLE001 - reported in the table
        run = cf.FaultRun("?", "?")
        run.check.add(f"scenario error: {cf.describe(exc)}")
        print(f"scenario error: {cf.describe(exc)}; restoring the HDFS", flush=True)
        cf.restore_hdfs(cluster, time.time())
        return run


def _reason(text: str) -> str:
    """An error or note without what varies between runs (URIs, py4j ids, colours), short."""
    text = re.sub(r"\x1b\[[0-9;]*m?", "", text)
    text = re.sub(r"hdfs://[^\s;,]+", "<uri>", text)
    text = re.sub(r"\bo\d+\.", "o<id>.", text)
    text = re.sub(r'"localhost":\d+', '"localhost":<port>', text)
    return " ".join(text.split())[:220]


def report(rows: list[tuple[str, str, list]]) -> None:
    header = ("fault", "where injected", "runs", "invariant violations", "rows lost", "recovery time (s)")
    lines = []
    for fault, where, runs in rows:
        times = [r.recovery_s for r in runs if r.recovery_s is not None]
        rec = f"{statistics.median(times):.1f} (max {max(times):.1f})" if times else "-"
        violations = sum(len(r.check.violations) for r in runs)
        lost = sum(r.check.rows_lost for r in runs)
        lines.append((fault, where, str(len(runs)), str(violations), str(lost), rec))
    widths = [max(len(x[i]) for x in [header, *lines]) for i in range(len(header))]
    fmt = " | ".join(f"{{:<{w}}}" for w in widths)
    print()
    print(fmt.format(*header))
    print("-+-".join("-" * w for w in widths))
    for line in lines:
        print(fmt.format(*line))
    print()
    print("first attempts (before any retry) and fault hits:")
    for fault, where, runs in rows:
        failed = [r.first_attempt for r in runs if r.first_attempt not in ("ok", "committed")]
        missed = sum(not r.fired for r in runs)
        print(
            f"  {fault} / {where}: {len(runs) - len(failed)} of {len(runs)} succeeded"
            + (f", {missed} run(s) where the fault missed the operation" if missed else "")
        )
        for reason in sorted({_reason(f.removeprefix("failed: ")) for f in failed}):
            print(f"      {reason}")
        notes = {_reason(n) for r in runs for n in r.notes if n.startswith(("retry", "the write", "deltal"))}
        for note in sorted(notes):
            print(f"      note: {note}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of each fault (default 3)")
    parser.add_argument(
        "--faults",
        default=",".join(DEFAULT_FAULTS),
        help=f"comma-separated subset of {','.join(FAULTS)} (the last four: root, a cluster on hosts)",
    )
    parser.add_argument("--on-driver-host", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    chosen = {f.strip() for f in args.faults.split(",") if f.strip()}
    unknown = chosen - set(FAULTS)
    if unknown:
        parser.error(f"unknown fault(s) {sorted(unknown)}: choose from {', '.join(FAULTS)}")
    if args.on_driver_host:
        on_driver_host(args.runs, chosen & set(HOST_FAULTS))
    if chosen & set(HOST_FAULTS) - {"ticket-expiry"}:
        on_hosts(args.runs, chosen & set(HOST_FAULTS) - {"ticket-expiry"})
    if "ticket-expiry" in chosen:
        on_hosts(args.runs, {"ticket-expiry"}, kerberos=True)
    if chosen & set(HOST_FAULTS):
        chosen -= set(HOST_FAULTS)
        if not chosen:
            sys.stdout.flush()
            os._exit(0)

    from moulin.cluster.ports import free_hdfs_port_env

    tmp = Path(tempfile.mkdtemp(prefix="moulin-cluster-faults-"))
    os.environ.update(
        {
            **free_hdfs_port_env(),
            "MOULIN_HOME": str(tmp / "home"),
            "MOULIN_DIST_DIR": os.environ.get("MOULIN_DIST_DIR", str(Path.home() / ".moulin" / "dist")),
            "MOULIN_SPARK_MASTER": "local[2]",
            "MOULIN_SPARK_DRIVER_MEMORY": "3g",
            "MOULIN_SPARK_SHUFFLE_PARTITIONS": "4",
        }
    )
    from moulin.cluster.local import LocalCluster
    from moulin.settings import load_settings
    from moulin.spark import build_spark_session

    settings = load_settings("hdfs-local")
    cluster = LocalCluster(settings, log=lambda msg: None)
    try:
        print(f"starting a local HDFS at {settings.hdfs.namenode_uri} ...", flush=True)
        cluster.up()
        spark = build_spark_session(
            load_settings("local"),
            app_name="cluster-faults-benchmark",
            extra_conf={
                "spark.hadoop.dfs.replication": str(settings.hdfs.replication),
                "spark.hadoop.dfs.client.block.write.replace-datanode-on-failure.policy": "NEVER",
                "spark.ui.showConsoleProgress": "false",
            },
        )
        print(f"Spark {spark.version}, {os.cpu_count()} CPUs, {args.runs} run(s) per fault", flush=True)
        rows = []
        for fault, where, one in variants(spark, cluster, settings, tmp / "work", chosen):
            runs = []
            for i in range(args.runs):
                started = time.monotonic()
                run = run_once(one, cluster)
                runs.append(run)
                print(
                    f"[{fault} / {where} #{i + 1}, {time.monotonic() - started:.0f}s] {run.summary()}",
                    flush=True,
                )
            rows.append((fault, where, runs))
        report(rows)
        spark.stop()
    finally:
        cluster.down()
        shutil.rmtree(tmp, ignore_errors=True)
    sys.stdout.flush()
    os._exit(0)  # deltalake's native pools can abort at interpreter exit (delta-rs#2184)


def on_hosts(runs: int, chosen: set[str], kerberos: bool = False) -> None:
    """Start a cluster on hosts, run this benchmark's network faults on its driver's host,
    then remove the cluster (namespaces, links, processes) whatever happened.  With
    ``kerberos``: a KDC too, HDFS in secure mode, and moulin's principal given tickets of
    :data:`SHORT_TICKET` (its maximum life)."""
    import subprocess

    from moulin.cluster import netns
    from moulin.cluster.multihost import MultiHostCluster
    from moulin.settings import load_settings

    tmp = Path(tempfile.mkdtemp(prefix="moulin-host-faults-"))
    env = {
        "MOULIN_HOME": str(tmp / "home"),
        "MOULIN_DIST_DIR": os.environ.get("MOULIN_DIST_DIR", str(Path.home() / ".moulin" / "dist")),
        "MOULIN_HDFS_REPLICATION": "2",
        "MOULIN_HDFS_HEAP_MB": "384",
        "MOULIN_SPARK_STANDALONE_WORKERS": "2",
        "MOULIN_SPARK_WORKER_CORES": "1",
        "MOULIN_SPARK_WORKER_MEMORY": "1g",
    }
    with_spark = "worker-link" in chosen
    netns.remove_leftovers()
    cluster = MultiHostCluster(load_settings("hdfs-local", env=env), log=lambda m: None)
    network = None

    def interrupt(signum, frame):  # SIGTERM (e.g. `timeout`) still removes the cluster
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        extra = ", a Spark master and 2 workers" if with_spark else ""
        extra += ", a KDC" if kerberos else ""
        print(f"starting a cluster on hosts (NameNode, 3 DataNodes{extra}, driver) ...", flush=True)
        cluster.up(datanodes=3, spark=with_spark, owner_pid=os.getpid(), kerberos=kerberos)
        network = cluster.network()
        realm = cluster.realm() if kerberos else None
        if realm is not None:
            principal = realm.principal(realm.service_user)
            realm._kadmin(f'modprinc -maxlife "{SHORT_TICKET}" -maxrenewlife "{SHORT_TICKET}" {principal}')
            print(f"{principal}: tickets of {SHORT_TICKET} at most", flush=True)
        print(", ".join(f"{h.role} {h.address}" for h in network.hosts), flush=True)
        command = cluster.driver_command(
            [sys.executable, str(Path(__file__).resolve()), "--on-driver-host", "--runs", str(runs),
             "--faults", ",".join(sorted(chosen))],
            env={
                "PYTHONPATH": str(REPO),
                "MOULIN_SPARK_MASTER": "local[2]",
                "MOULIN_SPARK_DRIVER_MEMORY": "2g",
                "MOULIN_SPARK_SHUFFLE_PARTITIONS": "4",
            },
        )  # fmt: skip
        subprocess.run(command, timeout=3600, check=False)
    finally:
        cluster.down()
        if network is not None:
            netns.destroy(network)
        shutil.rmtree(tmp, ignore_errors=True)


def on_driver_host(runs: int, chosen: set[str]) -> None:
    """The network faults, run on the driver's host of the cluster that :func:`on_hosts` started."""
    from moulin.cluster.multihost import MultiHostCluster
    from moulin.settings import load_settings
    from moulin.spark import build_spark_session

    settings = load_settings()
    cluster = MultiHostCluster(settings, log=lambda m: None).cluster()
    spark = build_spark_session(
        settings,
        app_name="cluster-faults-on-hosts",
        extra_conf={
            "spark.hadoop.dfs.replication": str(settings.hdfs.replication),
            "spark.hadoop.dfs.client.block.write.replace-datanode-on-failure.policy": "NEVER",
            # A DataNode behind a pulled cable answers nothing: give up on it after 15 s.
            "spark.hadoop.dfs.client.socket-timeout": "15000",
            "spark.ui.showConsoleProgress": "false",
        },
    )
    print(f"Spark {spark.version} on the driver's host, {runs} run(s) per fault", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="moulin-host-faults-work-") as work:
        for fault, where, one in variants(spark, cluster, settings, Path(work), chosen):
            done = []
            for i in range(runs):
                started = time.monotonic()
                run = run_once(one, cluster)
                done.append(run)
                print(
                    f"[{fault} / {where} #{i + 1}, {time.monotonic() - started:.0f}s] {run.summary()}",
                    flush=True,
                )
            rows.append((fault, where, done))
    report(rows)
    spark.stop()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
