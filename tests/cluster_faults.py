"""Cluster faults on the real local HDFS (and a Spark standalone cluster), and their checks.

Used by ``tests/integration/test_cluster_faults.py`` (one run of each fault) and by
``benchmarks/cluster_faults.py`` (several runs, printed as a table).  Each scenario
injects one fault into a real operation, lets the operation finish (it either
succeeds or raises), retries it the way a scheduler would, then checks the data
against what a clean run leaves, with the checkers of :mod:`fault_harness`:

* :func:`land_with_datanode_kill`: a DataNode SIGKILLed while ``land_file``
  streams a few-MB drop through WebHDFS (the DataNode serving the upload, or one
  in its block pipeline);
* :func:`delta_write_with_datanode_kill`: a DataNode SIGKILLed while Spark writes
  a Delta table on HDFS (the one receiving the most blocks once staging files
  appear);
* on a cluster on hosts (:mod:`moulin.cluster.multihost`), the same Delta write with
  the busiest DataNode's link down (``fault=link_down(network)``), the landing with
  the DataNode's link down for ``hold_s`` (``land_with_datanode_kill(..., fault=link_down(network),
  hold_s=30)``), :func:`delta_write_with_path_cut`: the driver-NameNode path dropped,
  then restored, :func:`delta_write_with_worker_link_down`: a Spark worker's host cut
  off mid-task, then restored, and on a Kerberised one
  :func:`delta_write_across_ticket_expiry`: moulin's ticket expiring mid-write;
* :func:`delta_writes_around_namenode_restart`: the NameNode stopped (or killed)
  and started between two writes of the same Spark session;
* :func:`delta_write_with_worker_kill`: a Spark standalone worker (with its
  executor) SIGKILLed while it runs a task of a Delta write.

Every scenario restores what it killed before it returns (in a ``finally``) and
waits until the cluster is healthy again: the NameNode out of safe mode and every
DataNode live with a heartbeat received after the fault (:func:`restore_hdfs`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from fault_harness import Check, check_vacuum_leaves_only_referenced, check_versions

from moulin.cluster.ports import port_free

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


class ClusterFaultError(AssertionError):
    """A fault could not be injected, or the cluster did not come back healthy."""


@dataclass
class FaultRun:
    """What one fault did: where it hit, how the operation ended, what the checks found."""

    fault: str
    where: str
    fired: bool = False  # the fault hit while the operation was in flight
    first_attempt: str = "not run"  # "ok", "committed", or "failed: <error>"
    retried: bool = False
    recovery_s: float | None = None  # from the fault until the operation converged
    restore_s: float | None = None  # from the restart until the cluster was healthy again
    check: Check = field(default_factory=Check)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        def secs(value: float | None) -> str:
            return f"{value:.1f}s" if value is not None else "-"

        return (
            f"{self.fault} @ {self.where}: fired={self.fired} first={self.first_attempt} "
            f"retried={self.retried} recovery={secs(self.recovery_s)} restore={secs(self.restore_s)} "
            f"violations={self.check.violations} rows lost={self.check.rows_lost} "
            f"duplicated={self.check.rows_duplicated} notes={self.notes}"
        )


def describe(exc: BaseException) -> str:
    """An exception on one line, short."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


# --------------------------------------------------------------------- the cluster
def _get_json(url: str, timeout: float = 3) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read().decode())
    except (OSError, ValueError):
        return {}


def namenode_info(cluster) -> dict:
    """The NameNode's ``NameNodeInfo`` JMX bean (empty when it does not answer)."""
    url = f"{cluster.hdfs.webhdfs_url}/jmx?qry=Hadoop:service=NameNode,name=NameNodeInfo"
    beans = _get_json(url).get("beans", [])
    return beans[0] if beans else {}


def datanode_index(cluster, port: int) -> int | None:
    """The index of the DataNode listening on ``port`` (data, http or ipc)."""
    for index in range(cluster.hdfs.datanodes):
        if port in cluster.hdfs.datanode_ports(index):
            return index
    return None


def datanode_xceivers(cluster) -> dict[int, int]:
    """Active data-transfer threads (block writes and reads in flight) per live DataNode."""
    out = {}
    for index in range(cluster.hdfs.datanodes):
        http = cluster.hdfs.datanode_ports(index)[1]
        url = f"http://{cluster.hdfs.datanode_host(index)}:{http}/jmx?qry=Hadoop:service=DataNode,name=DataNodeInfo"
        beans = _get_json(url, timeout=1).get("beans", [])
        if beans:
            out[index] = int(beans[0].get("XceiverCount", 0))
    return out


def kill_daemon(cluster, daemon) -> float:
    """SIGKILL ``daemon`` and its process group (children included); the wall time of the kill."""
    pid = cluster.daemons.pid(daemon)
    if pid is None:
        raise ClusterFaultError(f"{daemon.name} is not running: nothing to kill")
    at = time.time()
    try:
        os.killpg(pid, signal.SIGKILL)  # the daemons run in their own session (start_new_session)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 10
    while cluster.daemons.pid(daemon) is not None:
        if time.monotonic() > deadline:
            raise ClusterFaultError(f"{daemon.name} (pid {pid}) still runs 10 s after SIGKILL")
        time.sleep(0.05)
    # A JVM shows as a zombie when its main thread is gone, while its other threads
    # may still hold its sockets: wait for its ports, so that a restart can bind them.
    host = cluster.daemons.host
    for what, port in daemon.ports:
        while not _bindable(host, port):
            if time.monotonic() > deadline:
                raise ClusterFaultError(f"{daemon.name}'s {what} port {port} still taken 10 s after SIGKILL")
            time.sleep(0.05)
    return at


def _bindable(host: str, port: int) -> bool:
    """Whether a server could listen on ``port`` now (SO_REUSEADDR, as Java and
    :func:`moulin.cluster.daemons.ensure_port_free` bind: TIME_WAIT does not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def kill_datanode(cluster, index: int) -> float:
    """SIGKILL DataNode ``index``; the wall time of the kill."""
    return kill_daemon(cluster, cluster.datanode(index))


def hdfs_health_problem(cluster, since: float) -> str | None:
    """Why the HDFS is not healthy yet (None when it is).

    Healthy: the NameNode answers and is out of safe mode, no DataNode is dead,
    every DataNode is live and sent a heartbeat after ``since`` (the wall time of
    the fault; a killed DataNode keeps looking live for ~40 s until the NameNode
    declares it dead, so "live" alone does not prove it came back).
    """
    bean = namenode_info(cluster)
    if not bean:
        return "the NameNode does not answer"
    if bean.get("Safemode"):
        return f"the NameNode is in safe mode ({bean['Safemode'][:100]})"
    live = json.loads(bean.get("LiveNodes") or "{}")
    dead = json.loads(bean.get("DeadNodes") or "{}")
    if dead:
        return f"dead DataNodes: {sorted(dead)}"
    if len(live) < cluster.hdfs.datanodes:
        return f"{len(live)} live DataNodes of {cluster.hdfs.datanodes}"
    # lastContact is in whole seconds since the DataNode's last heartbeat (every 3 s).
    allowed = min(4.0, time.time() - since - 1.5)
    stale = [name for name, node in live.items() if float(node.get("lastContact", 1e9)) > allowed]
    if stale:
        return f"no heartbeat since the fault from {sorted(stale)}"
    return None


def restore_hdfs(cluster, since: float, timeout_s: float = 120) -> float:
    """Start every stopped HDFS daemon and wait until the cluster is healthy; the seconds it took."""
    start = time.monotonic()
    cluster.up()
    deadline = start + timeout_s
    while True:
        problem = hdfs_health_problem(cluster, since)
        if problem is None:
            return time.monotonic() - start
        if time.monotonic() > deadline:
            raise ClusterFaultError(f"the HDFS is not healthy {timeout_s:.0f} s after the restart: {problem}")
        time.sleep(0.5)


@dataclass(frozen=True)
class DataNodeFault:
    """How a DataNode is taken out, and put back before the cluster is restored."""

    name: str
    take_out: Callable[[object, int], float]  # (cluster, index) -> wall time of the fault
    put_back: Callable[[object, int], None] = lambda cluster, index: None
    back: str = "the DataNode restart"  # what brings it back, in the run's notes


#: The DataNode process SIGKILLed (restore_hdfs starts it again).
SIGKILL = DataNodeFault("DataNode SIGKILL", kill_datanode)


def link_down(network) -> DataNodeFault:
    """The DataNode's cable pulled (its host's link to the bridge down), then put back;
    its process runs on, unreachable."""
    from moulin.cluster import netns

    def take_out(cluster, index: int) -> float:
        at = time.time()
        netns.set_link(network, f"datanode-{index}", up=False)
        return at

    def put_back(cluster, index: int) -> None:
        netns.set_link(network, f"datanode-{index}", up=True)

    return DataNodeFault("DataNode link down", take_out, put_back, back="the link's return")


# ------------------------------------------------------------- 1. landing + DataNode
def make_drop(path: Path, size_mb: float = 6.0) -> bytes:
    """A CSV file of about ``size_mb`` MB with random content; its bytes."""
    lines = ["id,payload"]
    total, i = 0, 0
    salt = uuid.uuid4().hex
    while total < size_mb * 2**20:
        line = f"{i},{hashlib.sha256(f'{salt}{i}'.encode()).hexdigest() * 3}"
        lines.append(line)
        total += len(line) + 1
        i += 1
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(data)
    return data


def land_with_datanode_kill(
    cluster,
    settings,
    workdir: Path,
    victim: str = "webhdfs",
    size_mb: float = 6.0,
    kill_after_mb: float = 2.0,
    fault: DataNodeFault = SIGKILL,
    hold_s: float | None = None,
    timeout_s: float = 300,
) -> FaultRun:
    """Land a drop on HDFS with ``land_file``; take a DataNode out mid-upload (``fault``:
    SIGKILL, or on a cluster on hosts its link down); land again; check.

    ``victim``: ``"webhdfs"`` takes out the DataNode the NameNode redirected the
    WebHDFS upload to (the HTTP stream breaks, or hangs behind a pulled cable),
    ``"pipeline"`` another DataNode of the block's write pipeline (the busiest other one).
    ``hold_s``: put the DataNode back that many seconds after the fault, the landings
    still running (a cable plugged back in; without it, after the retry).  Each landing
    must end within ``timeout_s``.
    """
    from moulin.ingest.landing import MANIFEST, count_csv_rows, land_file, landing_dir, read_manifest
    from moulin.storage import WarehouseFS

    if victim not in ("webhdfs", "pipeline"):
        raise ValueError(f"victim {victim!r}: use 'webhdfs' or 'pipeline'")
    run = FaultRun(fault.name, f"land_file upload ({victim} DataNode)")
    # A lock left behind by the failed landing must fail the retry fast, not after 300 s.
    settings = replace(settings, lock_timeout_s=30)
    source, ds = f"faults_{uuid.uuid4().hex[:8]}", "2013-01-01"
    local = workdir / "drop.csv"
    data = make_drop(local, size_mb)
    sha = hashlib.sha256(data).hexdigest()
    fs = WarehouseFS(settings)
    client = fs._hdfs()
    state: dict = {"redirect_port": None, "killed_at": None, "victim": None, "uploads": 0}
    nn_http = cluster.hdfs.namenode_http_port

    real_request = client._session.request

    def request(method, url, **kwargs):
        parsed = urllib.parse.urlparse(url)
        if method == "PUT" and "op=CREATE" in parsed.query and parsed.port != nn_http:
            state["redirect_port"] = parsed.port  # the DataNode serving this upload
        return real_request(method, url, **kwargs)

    def kill_now() -> None:
        serving = datanode_index(cluster, state["redirect_port"] or -1)
        if victim == "webhdfs":
            if serving is None:
                raise ClusterFaultError(f"no DataNode serves the upload (redirected to {state})")
            index = serving
        else:
            busy = {i: n for i, n in datanode_xceivers(cluster).items() if i != serving}
            others = [i for i in range(cluster.hdfs.datanodes) if i != serving]
            index = max(busy, key=lambda i: busy[i]) if busy else others[0]
            run.notes.append(f"xceivers {busy}")
        state["victim"] = index
        state["killed_at"] = fault.take_out(cluster, index)
        if hold_s is not None:
            timer = threading.Timer(hold_s, put_back)
            timer.daemon = True
            state["timer"] = timer
            timer.start()

    lock = threading.Lock()

    def put_back() -> None:
        with lock:
            if state["victim"] is not None and state.get("back_at") is None:
                fault.put_back(cluster, state["victim"])
                state["back_at"] = time.time()

    real_upload = client.upload

    def upload(hdfs_path, local_path, **kwargs):
        if Path(local_path).name == local.name:
            state["uploads"] += 1
        if state["killed_at"] is None and Path(local_path).name == local.name:

            def progress(_path, nbytes):
                if state["killed_at"] is None and nbytes >= kill_after_mb * 2**20:
                    kill_now()

            kwargs["progress"] = progress
        return real_upload(hdfs_path, local_path, **kwargs)

    client._session.request = request
    client.upload = upload
    killed_at = None
    try:
        first = landed_at = None
        try:
            first = _bounded(lambda: land_file(settings, source, ds, local, fs=fs), timeout_s, "the landing")
            run.first_attempt = "ok"
            landed_at = time.time()
        except Exception as exc:  # noqa: BLE001 - the fault may fail the landing: then retried
            run.first_attempt = f"failed: {describe(exc)}"
        killed_at = state["killed_at"]
        run.fired = killed_at is not None
        run.notes.append(f"uploads of the drop by the first landing: {state['uploads']}")
        run.where += f", datanode-{state['victim']}" if state["victim"] is not None else ""
        # The retry (with the DataNode still down), as a rerun of the task does.
        run.retried = True
        try:
            again = _bounded(lambda: land_file(settings, source, ds, local, fs=fs), timeout_s, "the retry")
        except Exception as exc:  # noqa: BLE001
            run.check.add(f"the retry failed: {describe(exc)}")
            again = None
        if state.get("back_at") is not None and killed_at is not None:
            run.notes.append(f"the DataNode came back {state['back_at'] - killed_at:.1f}s after the fault")
        if again is not None and first is None:
            landed_at = time.time()
        if killed_at is not None and landed_at is not None:
            run.recovery_s = landed_at - killed_at  # until the drop was landed
        # After a landing that succeeded the retry is a no-op; after a failed one it lands.
        want = {"unchanged"} if first is not None else {"landed", "unchanged"}
        if again is not None and again.status not in want:
            run.check.add(f"the retry said {again.status!r} after a first attempt {run.first_attempt}")
        check_landing(fs, settings, source, ds, local.name, data, sha, run.check)
        folder = landing_dir(settings, source, ds)
        names = [f.uri.rsplit("/", 1)[-1] for f in fs.list(folder)]
        strays = [n for n in names if n not in (local.name, MANIFEST)]
        if any(n.endswith(".lock") for n in strays):
            run.check.add(f"a lock file was left behind: {strays}")
        elif strays:
            run.notes.append(f"stray files left (documented, harmless): {strays}")
        manifest = read_manifest(settings, source, ds, fs) or {}
        lost = count_csv_rows(data) - sum(
            count_csv_rows(fs.read_bytes(f["uri"]))
            for f in manifest.get("files", [])
            if f["file"] == local.name
        )
        run.check.rows_lost += max(lost, 0)
    finally:
        client.upload = real_upload
        client._session.request = real_request
        if state.get("timer") is not None:
            state["timer"].cancel()
        if state["killed_at"] is not None:
            put_back()
            run.restore_s = restore_hdfs(cluster, state["killed_at"])
    return run


def _bounded(action: Callable[[], object], timeout_s: float, what: str):
    """``action()`` in a thread, its result or exception; ClusterFaultError when it runs
    past ``timeout_s`` (the thread is left behind: a daemon)."""
    box: dict = {}

    def run() -> None:
        try:
            box["result"] = action()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=run, name="bounded", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise ClusterFaultError(f"{what} did not end within {timeout_s:.0f} s")
    if "error" in box:
        raise box["error"]
    return box["result"]


def check_landing(fs, settings, source: str, ds: str, name: str, data: bytes, sha: str, check: Check) -> None:
    """The manifest lists ``name`` once, with the right sha256 and size; the file reads back whole."""
    from moulin.ingest.landing import read_manifest

    try:
        manifest = read_manifest(settings, source, ds, fs)
    except Exception as exc:  # noqa: BLE001
        check.add(f"manifest unreadable: {describe(exc)}")
        return
    if manifest is None:
        check.add("no manifest after the retry")
        return
    entries = [f for f in manifest.get("files", []) if f.get("file") == name]
    if len(entries) != 1:
        check.add(f"the manifest lists {name} {len(entries)} times")
        return
    entry = entries[0]
    if entry.get("sha256") != sha:
        check.add(f"manifest sha256 {entry.get('sha256')} != {sha}")
    if entry.get("size") != len(data):
        check.add(f"manifest size {entry.get('size')} != {len(data)}")
    try:
        back = fs.read_bytes(entry["uri"])
    except Exception as exc:  # noqa: BLE001
        check.add(f"the landed file is unreadable: {describe(exc)}")
        return
    if back != data:
        check.add(
            f"the landed file differs: {len(back)} bytes read back of {len(data)}, "
            f"sha256 {hashlib.sha256(back).hexdigest()}"
        )
    if fs.size(entry["uri"]) != len(data):
        check.add(f"HDFS reports {fs.size(entry['uri'])} bytes for {entry['uri']}, not {len(data)}")


# ------------------------------------------------------------------ Delta tables
DELTA_SCHEMA = "id long, grp int, payload string"


def frame(spark, start: int, rows: int, partitions: int):
    """Deterministic rows ``start .. start+rows-1`` (id, grp, a 192-character payload)."""
    from pyspark.sql import functions as F

    return spark.range(start, start + rows, numPartitions=partitions).select(
        F.col("id"),
        (F.col("id") % 7).cast("int").alias("grp"),
        F.repeat(F.sha2(F.col("id").cast("string"), 256), 3).alias("payload"),
    )


def slowed(df, delay_s: float):
    """``df`` through a Python stage that sleeps ``delay_s`` per Arrow batch (10,000 rows)."""

    def slow(batches):  # a closure: pickled by value, so workers need not import this module
        import time

        for batch in batches:
            time.sleep(delay_s)
            yield batch

    return df.mapInArrow(slow, df.schema)


def seeded_slow_append(spark, uri: str, rows: int, partitions: int, delay_s: float, app_id: str):
    """Seed ``uri`` with 1,000 rows, and prepare an append of ``rows`` more whose Spark
    tasks are slowed by ``delay_s``: (store, old rows, old + new rows, the appended rows,
    the write to run in a thread, its outcome: ``result`` or ``error``, and ``at``, when it
    ended)."""
    from moulin.delta import AppTransaction, DeltaTableStore

    store = DeltaTableStore(spark)
    store.write(frame(spark, 0, 1000, 1), uri, transaction=AppTransaction("seed", 0))
    old = frame(spark, 0, 1000, 1)
    new = old.unionByName(frame(spark, 10_000_000, rows, partitions))
    data = slowed(frame(spark, 10_000_000, rows, partitions), delay_s)
    outcome: dict = {}

    def write() -> None:
        try:
            outcome["result"] = store.write(data, uri, transaction=AppTransaction(app_id, 1))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            outcome["error"] = exc
        outcome["at"] = time.time()

    return store, old, new, data, write, outcome


def compare_frames(actual, expected, check: Check, what: str) -> None:
    """Rows lost and duplicated between two DataFrames, as multisets (the semantics of
    :func:`fault_harness.compare_rows`), computed by Spark in one job on 64-bit row
    hashes (shuffling hashes, not the rows)."""
    from pyspark.sql import functions as F

    cols = [f"`{c}`" for c in expected.columns]

    def hashed(df, mine: int):
        return df.select(F.xxhash64(*cols).alias("h"), F.lit(mine).alias("a"), F.lit(1 - mine).alias("e"))

    per_row = (
        hashed(actual, 1)
        .unionByName(hashed(expected, 0))
        .groupBy("h")
        .agg(F.sum("a").alias("a"), F.sum("e").alias("e"))
    )
    row = per_row.agg(
        F.sum(F.greatest(F.col("e") - F.col("a"), F.lit(0))).alias("lost"),
        F.sum(F.greatest(F.col("a") - F.col("e"), F.lit(0))).alias("extra"),
    ).first()
    lost, extra = int(row["lost"] or 0), int(row["extra"] or 0)
    if lost or extra:
        check.add(f"{what}: {lost} row(s) lost, {extra} row(s) extra")
    check.rows_lost += lost
    check.rows_duplicated += extra


def check_table_after_fault(store, uri: str, old, new, check: Check) -> None:
    """Right after the fault: every version intact, the table at its old or its new content."""
    check_versions(store, uri, check)
    try:
        current = store.read(uri)
    except Exception as exc:  # noqa: BLE001
        check.add(f"latest version unreadable: {describe(exc)}")
        return
    for candidate in (new, old):
        probe = Check()
        compare_frames(current, candidate, probe, "")
        if probe.ok:
            return
    compare_frames(current, new, check, "table neither at its old nor at its new content")


def check_table_final(store, uri: str, expected, versions: int, check: Check) -> None:
    """After the retry: exactly the expected rows, every version readable, ``versions`` commits."""
    compare_frames(store.read(uri), expected, check, "after the retry")
    check_versions(store, uri, check)
    latest = store.version(uri)
    if latest != versions - 1:
        check.add(f"the table has {latest + 1} versions, expected {versions} (a commit repeated or missing)")


# ------------------------------------------------------------- 2. Delta + DataNode
def delta_write_with_datanode_kill(
    spark,
    cluster,
    uri: str,
    rows: int = 60_000,
    partitions: int = 4,
    delay_s: float = 0.8,
    fault: DataNodeFault = SIGKILL,
) -> FaultRun:
    """Seed a table, then append with a slow Spark write; once its tasks stream blocks to
    HDFS, take the busiest DataNode out (``fault``: SIGKILL, or its link down on a
    cluster on hosts).  Retry at once with the same app_id/app_version (the DataNode
    still out), put it back and restore the cluster, retry again if the data is not
    committed yet; check the table after each step."""
    from moulin.delta import AppTransaction, DeltaTableStore
    from moulin.delta.hadoop_fs import HadoopFS

    run = FaultRun(fault.name, "Spark Delta write on HDFS (block pipelines open)")
    store, old, new, data, write, outcome = seeded_slow_append(
        spark, uri, rows, partitions, delay_s, "faults.cluster"
    )

    # Small row groups: Parquet streams to HDFS while a task runs, so block pipelines
    # are open when the DataNode dies (a session conf, restored below).
    previous = spark.conf.get("parquet.block.size", None)
    spark.conf.set("parquet.block.size", str(256 * 1024))
    killed_at = None
    victim: int | None = None
    hfs = HadoopFS(spark, uri)

    def restore() -> float:
        if victim is not None:
            fault.put_back(cluster, victim)
        return restore_hdfs(cluster, killed_at or time.time())

    writer = threading.Thread(target=write, name="faulted-delta-write", daemon=True)
    try:
        writer.start()
        deadline = time.monotonic() + 60
        staged_at = None
        while writer.is_alive() and time.monotonic() < deadline:
            if staged_at is None:
                try:
                    if any("part-" in f.relative for f in hfs.list_files(f"{uri}/_staging")):
                        staged_at = time.monotonic()
                except Exception:  # noqa: BLE001 - the folder is being created
                    pass
            else:
                busy = datanode_xceivers(cluster)  # 1 = idle; 3 or more = a block being written
                waited = time.monotonic() - staged_at
                if busy and (max(busy.values()) > 1 or waited > 4 * delay_s + 2):
                    index = max(busy, key=lambda i: busy[i])
                    killed_at = fault.take_out(cluster, index)
                    victim = index
                    run.where += f", datanode-{index}"
                    run.notes.append(f"xceivers at the kill {busy}")
                    break
            time.sleep(0.05)
        writer.join(180)
        if writer.is_alive():
            raise ClusterFaultError("the faulted Delta write did not finish within 180 s")
        run.fired = killed_at is not None
        committed_at = None
        if "error" in outcome:
            run.first_attempt = f"failed: {describe(outcome['error'])}"
        else:
            run.first_attempt = "committed" if outcome["result"].committed else "not committed (no error)"
            committed_at = outcome["at"]

        def retry(when: str) -> bool:
            """One more attempt; True once the table holds the write."""
            nonlocal committed_at
            run.retried = True
            try:
                result = DeltaTableStore(spark).write(
                    data, uri, transaction=AppTransaction("faults.cluster", 1)
                )
            except Exception as exc:  # noqa: BLE001 - noted; the next step decides
                run.notes.append(f"retry {when} failed: {describe(exc)[:200]}")
                return False
            if committed_at is not None and result.committed:
                run.check.add(f"the retry {when} committed again after an attempt had committed")
            run.notes.append(
                f"retry {when}: {'committed' if result.committed else 'no-op (already committed)'}"
            )
            committed_at = committed_at or time.time()
            return True

        done = retry("with the DataNode down")
        run.restore_s = restore()
        reader = DeltaTableStore(spark)
        check_table_after_fault(reader, uri, old, new, run.check)
        if not done and not retry(f"after {fault.back}"):
            run.check.add(f"the retry after {fault.back} failed: " + run.notes[-1])
        if killed_at is not None and committed_at is not None:
            run.recovery_s = committed_at - killed_at
        check_table_final(reader, uri, new, 2, run.check)
        check_vacuum_leaves_only_referenced(reader, uri, run.check)
    finally:
        if previous is None:
            spark.conf.unset("parquet.block.size")
        else:
            spark.conf.set("parquet.block.size", previous)
        if killed_at is not None and run.restore_s is None:
            run.restore_s = restore()
    return run


# ----------------------------------------------- 2b. driver <-> NameNode path cut
def delta_write_with_path_cut(
    spark,
    cluster,
    network,
    uri: str,
    hold_s: float = 20.0,
    rows: int = 60_000,
    partitions: int = 4,
    delay_s: float = 0.8,
) -> FaultRun:
    """On a cluster on hosts: seed a table, then append with a slow Spark write from the
    driver's host; once its files are staged, drop every packet between the driver and
    the NameNode (both cables stay in) for ``hold_s``, then restore the path.  Retry
    with the same app_id/app_version if the write did not commit; check the table
    right after and at the end."""
    from moulin.cluster import netns
    from moulin.delta import AppTransaction, DeltaTableStore
    from moulin.delta.hadoop_fs import HadoopFS

    run = FaultRun("driver-NameNode path dropped", f"Spark Delta write, {hold_s:.0f} s without the NameNode")
    store, old, new, data, write, outcome = seeded_slow_append(
        spark, uri, rows, partitions, delay_s, "faults.path"
    )

    hfs = HadoopFS(spark, uri)
    cut_at = None
    mended = False
    writer = threading.Thread(target=write, name="path-cut-delta-write", daemon=True)
    try:
        writer.start()
        deadline = time.monotonic() + 60
        while writer.is_alive() and time.monotonic() < deadline and cut_at is None:
            try:
                if any("part-" in f.relative for f in hfs.list_files(f"{uri}/_staging")):
                    cut_at = time.time()
                    netns.cut_path(network, "driver", "namenode")
            except Exception:  # noqa: BLE001 - the folder is being created
                pass
            time.sleep(0.05)
        run.fired = cut_at is not None
        if cut_at is not None:
            time.sleep(max(0.0, cut_at + hold_s - time.time()))
            netns.cut_path(network, "driver", "namenode", cut=False)
            mended = True
            run.notes.append(
                f"the write was {'running' if writer.is_alive() else 'over'} when the path came back"
            )
        writer.join(240)
        if writer.is_alive():
            raise ClusterFaultError("the Delta write did not finish within 240 s of the path's return")
        committed_at = None
        if "error" in outcome:
            run.first_attempt = f"failed: {describe(outcome['error'])}"
        else:
            run.first_attempt = "committed" if outcome["result"].committed else "not committed (no error)"
            committed_at = outcome["at"]
        run.restore_s = restore_hdfs(cluster, cut_at or time.time())
        reader = DeltaTableStore(spark)
        check_table_after_fault(reader, uri, old, new, run.check)
        if committed_at is None:
            run.retried = True
            try:
                result = DeltaTableStore(spark).write(data, uri, transaction=AppTransaction("faults.path", 1))
                run.notes.append(f"retry: {'committed' if result.committed else 'no-op (already committed)'}")
                committed_at = time.time()
            except Exception as exc:  # noqa: BLE001 - a violation: the path is back
                run.check.add(f"the retry after the path came back failed: {describe(exc)[:200]}")
        if cut_at is not None and committed_at is not None:
            run.recovery_s = committed_at - cut_at
        check_table_final(reader, uri, new, 2, run.check)
        check_vacuum_leaves_only_referenced(reader, uri, run.check)
    finally:
        if cut_at is not None and not mended:
            netns.cut_path(network, "driver", "namenode", cut=False)
    return run


# --------------------------------------------------------- 3. NameNode restarted
def restart_namenode(cluster, kill: bool = False) -> float:
    """Stop the NameNode (SIGTERM, or SIGKILL with ``kill``) and start it again; the wall time of the stop."""
    if kill:
        at = kill_daemon(cluster, cluster.namenode())
    else:
        at = time.time()
        cluster.daemons.stop(cluster.namenode())
    return at


def delta_writes_around_namenode_restart(spark, cluster, uri: str, kill: bool = False) -> FaultRun:
    """Write v0; restart the NameNode; write v1 with the same Spark session; check both versions.

    When the first write after the restart fails, that is noted (the HDFS clients
    would have needed a retry) and the write is retried once.
    """
    from moulin.delta import AppTransaction, DeltaTableStore

    run = FaultRun(
        "NameNode restart",
        f"between two Delta writes ({'SIGKILL' if kill else 'SIGTERM'}, same Spark session)",
    )
    store = DeltaTableStore(spark)
    v0, v1 = frame(spark, 0, 5000, 2), frame(spark, 5000, 5000, 2)
    store.write(v0, uri, transaction=AppTransaction("faults.nn", 0))
    stopped_at = None
    try:
        stopped_at = restart_namenode(cluster, kill=kill)
        run.fired = True
        run.restore_s = restore_hdfs(cluster, stopped_at)
        # deltalake's own HDFS client (hdfs-native) first: a fresh read of the log.
        try:
            DeltaTableStore(None).version(uri)
            run.notes.append("deltalake's first read after the restart: ok")
        except Exception as exc:  # noqa: BLE001 - documented
            run.notes.append(f"deltalake's first read after the restart failed: {describe(exc)[:200]}")
        # Then the write, whose first HDFS call goes through the Spark session's (cached) client.
        started = time.monotonic()
        try:
            DeltaTableStore(spark).write(v1, uri, transaction=AppTransaction("faults.nn", 1))
            run.first_attempt = "ok"
            run.notes.append(f"first write after the restart: ok in {time.monotonic() - started:.1f}s")
        except Exception as exc:  # noqa: BLE001 - documented, then retried
            run.first_attempt = f"failed: {describe(exc)}"
            run.retried = True
            try:
                DeltaTableStore(spark).write(v1, uri, transaction=AppTransaction("faults.nn", 1))
                run.notes.append("the write failed once after the restart; its retry committed")
            except Exception as again:  # noqa: BLE001
                run.check.add(f"the retry after the NameNode restart failed: {describe(again)}")
        run.recovery_s = time.time() - stopped_at
        reader = DeltaTableStore(spark)
        compare_frames(reader.read(uri, version=0), v0, run.check, "version 0")
        check_table_final(reader, uri, v0.unionByName(v1), 2, run.check)
    finally:
        if stopped_at is not None and run.restore_s is None:
            run.restore_s = restore_hdfs(cluster, stopped_at)
    return run


# ------------------------------------------------- 4. Spark standalone worker killed
def free_port_block(count: int) -> list[int]:
    """``count`` consecutive free ports (for a Spark standalone master, its UI and workers)."""
    for base in range(41000, 48000, 50):
        ports = list(range(base, base + count))
        if all(port_free(p) for p in ports):
            return ports
    raise ClusterFaultError("no free ports for the Spark standalone cluster")


def jvm_slowed(df, every: int, sleep_ms: int):
    """``df`` with a JVM-side pause of ``sleep_ms`` at every ``every``-th id (rows unchanged).

    ``reflect`` calls ``Thread.sleep`` in the executor itself: no Python worker to
    start on the executors, which keeps a standalone run short.
    """
    from pyspark.sql import functions as F

    pause = F.expr(
        f"CASE WHEN id % {every} = 0 THEN reflect('java.lang.Thread', 'sleep', CAST({sleep_ms} AS BIGINT)) END"
    )
    # substring(.., 0, 0) is empty: the pause feeds a kept column, so it is not pruned.
    return df.withColumn("payload", F.concat("payload", F.substring(F.coalesce(pause, F.lit("")), 0, 0)))


def _wait_for(ready, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise ClusterFaultError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.25)


_STANDALONE_JOB = r"""
import json, os, sys, time
sys.path.insert(0, {tests!r})
from moulin.settings import load_settings
from moulin.spark import build_spark_session
from moulin.delta import AppTransaction, DeltaTableStore
from cluster_faults import frame, jvm_slowed

spec = json.loads(sys.argv[1])
spark = build_spark_session(load_settings("hdfs-local"), app_name="moulin-worker-fault", extra_conf={{
    "spark.master": spec["master"], "spark.executor.memory": "512m", "spark.executor.cores": "1",
    "spark.cores.max": "2", "spark.driver.memory": "1g", "spark.ui.showConsoleProgress": "false",
    # Short-lived JVMs on a small machine: C1 only, serial GC (starts faster).
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC -XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC -XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
    **spec.get("conf", {{}}),
}})
jvm = spark._jvm  # task attempts ("Starting task 1.1 in stage 0.0") are logged at INFO
jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(
    "org.apache.spark.scheduler.TaskSetManager", jvm.org.apache.logging.log4j.Level.INFO)
print("SESSION", time.time(), flush=True)
deadline = time.monotonic() + 90  # both executors up, so that both run a task at once
while spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() < 3 and time.monotonic() < deadline:
    time.sleep(0.2)
per_partition = spec["rows"] // spec["partitions"]
df = jvm_slowed(frame(spark, 0, spec["rows"], spec["partitions"]), per_partition // spec["pauses"], spec["pause_ms"])
try:
    result = DeltaTableStore(spark).write(df, spec["uri"], transaction=AppTransaction("faults.worker", 1))
    print("RESULT", json.dumps({{"at": time.time(), "committed": result.committed, "version": result.version}}),
          flush=True)
except Exception as exc:
    print("FAILED", time.time(), type(exc).__name__, " ".join(str(exc).split())[:500], flush=True)
spark.stop()
sys.stdout.flush()
os._exit(0)
"""


def delta_write_with_worker_kill(
    spark,
    hdfs_cluster,
    uri: str,
    rows: int = 20_000,
    partitions: int = 2,
    pauses: int = 4,
    pause_ms: int = 500,
    victim: int = 0,
    timeout_s: float = 240,
) -> FaultRun:
    """Start a Spark standalone master + 2 one-core workers; a driver (a subprocess)
    writes a Delta table on HDFS with a slow stage (``pauses`` x ``pause_ms`` per
    task); once both executors run a task (two open task-attempt files in the
    staging folder), SIGKILL worker ``victim`` with its executor; Spark reschedules
    the lost task on the other executor; check the table with ``spark`` (the
    caller's session); stop the standalone cluster."""
    from moulin.cluster.daemons import port_open
    from moulin.cluster.local import LocalCluster
    from moulin.delta import DeltaTableStore
    from moulin.delta.hadoop_fs import HadoopFS

    run = FaultRun("Spark worker SIGKILL", "standalone worker + its executor mid-task (Delta write on HDFS)")
    settings = hdfs_cluster.settings
    master, webui, w0, _w1 = free_port_block(4)
    sp = replace(
        settings.spark, standalone_port=master, standalone_webui_port=webui,
        worker_webui_base_port=w0, worker_memory="1g", standalone_workers=2, worker_cores=1,
    )  # fmt: skip
    cluster = LocalCluster(replace(settings, spark=sp), log=lambda m: None)
    spec = {
        "master": f"spark://{sp.standalone_host}:{master}",
        "uri": uri,
        "rows": rows,
        "partitions": partitions,
        "pauses": pauses,
        "pause_ms": pause_ms,
    }
    code = _STANDALONE_JOB.format(tests=str(TESTS))
    hfs = HadoopFS(spark, uri)
    killed_at = None
    proc = None
    t0 = time.time()
    timeline: dict[str, float] = {}
    try:
        # The master first; then the driver, whose JVM starts while the workers register.
        cluster.daemons.start(cluster.spark_master())
        _wait_for(lambda: port_open(sp.standalone_host, master), "the Spark master port", 60)
        timeline["master up"] = time.time() - t0
        proc = subprocess.Popen(
            [sys.executable, "-c", code, json.dumps(spec)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        for index in range(2):
            cluster.daemons.start(cluster.spark_worker(index))
        master_json = f"http://{sp.standalone_host}:{webui}/json/"
        _wait_for(
            lambda: sum(w.get("state") == "ALIVE" for w in _get_json(master_json).get("workers", [])) >= 2,
            "2 Spark workers",
            60,
        )
        timeline["workers registered"] = time.time() - t0
        deadline = time.monotonic() + timeout_s
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                files = hfs.list_files(f"{uri}/_staging")
            except Exception:  # noqa: BLE001 - the folder is being created
                files = []
            running = [f.relative for f in files if "/attempt_" in f.relative and "part-" in f.relative]
            if len(running) >= 2:  # both one-core executors run a task
                timeline["2 tasks running"] = time.time() - t0
                killed_at = kill_daemon(cluster, cluster.spark_worker(victim))  # the worker and its executor
                timeline["kill"] = killed_at - t0
                run.where += f", spark-worker-{victim} while {len(running)} tasks ran"
                break
            time.sleep(0.1)
        try:
            out, err = proc.communicate(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise ClusterFaultError(
                f"the driver did not finish within {timeout_s:.0f} s: {err[-2000:]}"
            ) from None
        # "Starting task 1.1 in stage 0.0": the second attempt of partition 1.
        again = re.findall(r"Starting task (\d+\.[1-9]\d*) in stage", err)
        run.fired = killed_at is not None and bool(again)
        run.notes.append(f"task attempts rescheduled: {again}")
        if killed_at is not None and not again:
            run.notes.append("the kill hit no running task (the driver started no second attempt)")
        session = next((line for line in out.splitlines() if line.startswith("SESSION")), None)
        if session is not None:
            timeline["driver session"] = float(session.split()[1]) - t0
        result = next((line for line in out.splitlines() if line.startswith(("RESULT", "FAILED"))), None)
        if result is None:
            raise ClusterFaultError(f"the driver printed no result (exit {proc.returncode}): {err[-3000:]}")
        if result.startswith("FAILED"):
            run.first_attempt = f"failed: {result.split(' ', 2)[2]}"
            run.check.add(f"the write failed although one worker survived: {result[:400]}")
        else:
            info = json.loads(result.split(" ", 1)[1])
            run.first_attempt = "committed" if info["committed"] else "not committed"
            timeline["committed"] = info["at"] - t0
            if killed_at is not None:
                run.recovery_s = info["at"] - killed_at
        timeline["driver exited"] = time.time() - t0
        reader = DeltaTableStore(spark)
        if reader.exists(uri):
            check_table_final(reader, uri, frame(spark, 0, rows, partitions), 1, run.check)
            check_vacuum_leaves_only_referenced(reader, uri, run.check)
        else:
            run.check.add("no table was written")
            run.check.rows_lost += rows
        timeline["checked"] = time.time() - t0
        run.notes.append(
            "timeline: "
            + ", ".join(f"{k} {v:.1f}s" for k, v in sorted(timeline.items(), key=lambda kv: kv[1]))
        )
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        # The whole standalone cluster goes: the killed worker is not restarted.
        run.notes.append(f"stopped {cluster.down(spark_only=True)} at {time.time() - t0:.1f}s")
    return run


# ------------------------------------- 5. Spark worker host cut off (cluster on hosts)
def delta_write_with_worker_link_down(
    spark,
    hdfs_cluster,
    network,
    uri: str,
    rows: int = 20_000,
    partitions: int = 2,
    pauses: int = 10,
    pause_ms: int = 1000,
    victim: int = 0,
    hold_s: float = 40,
    lost_after_s: int = 20,
    timeout_s: float = 300,
) -> FaultRun:
    """On a cluster on hosts with a Spark standalone master and 2 one-core workers (each
    on a host of its own): a driver (a subprocess on the driver's host) writes a Delta
    table with a slow stage (``pauses`` x ``pause_ms`` per task); once both executors run
    a task, take worker ``victim``'s link down (the worker and its executor run on,
    unreachable), put it back ``hold_s`` later.  The driver declares an executor lost
    after ``lost_after_s`` without a heartbeat (``spark.network.timeout``) and reruns its
    task on the other executor; the write must commit exactly the rows, once.  Then wait
    until both workers are alive on the master again."""
    from moulin.cluster import netns
    from moulin.delta import DeltaTableStore
    from moulin.delta.hadoop_fs import HadoopFS

    role = f"spark-worker-{victim}"
    run = FaultRun("Spark worker link down", f"{role}'s host cut off mid-task (Delta write on HDFS)")
    sp = hdfs_cluster.settings.spark
    master_json = f"http://{sp.standalone_host}:{sp.standalone_webui_port}/json/"

    def alive_workers() -> int:
        return sum(w.get("state") == "ALIVE" for w in _get_json(master_json).get("workers", []))

    _wait_for(lambda: alive_workers() >= 2, "2 alive Spark workers before the run", 90)
    spec = {
        "master": f"spark://{sp.standalone_host}:{sp.standalone_port}",
        "uri": uri,
        "rows": rows,
        "partitions": partitions,
        "pauses": pauses,
        "pause_ms": pause_ms,
        "conf": {
            "spark.network.timeout": f"{lost_after_s}s",
            "spark.network.timeoutInterval": "2s",
            "spark.executor.heartbeatInterval": "2s",
        },
    }
    code = _STANDALONE_JOB.format(tests=str(TESTS))
    hfs = HadoopFS(spark, uri)
    cut_at = back_at = None
    proc = None
    t0 = time.time()
    timeline: dict[str, float] = {}
    log = Path(f"/tmp/moulin-worker-link-{uuid.uuid4().hex[:8]}.log")
    try:
        with open(log, "w") as err_file:
            proc = subprocess.Popen(
                [sys.executable, "-c", code, json.dumps(spec)],
                stdout=subprocess.PIPE,
                stderr=err_file,
                text=True,
                cwd=REPO,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            deadline = time.monotonic() + timeout_s
            while proc.poll() is None and time.monotonic() < deadline:
                if cut_at is None:
                    try:
                        files = hfs.list_files(f"{uri}/_staging")
                    except Exception:  # noqa: BLE001 - the folder is being created
                        files = []
                    running = [
                        f.relative for f in files if "/attempt_" in f.relative and "part-" in f.relative
                    ]
                    if len(running) >= 2:  # both one-core executors run a task
                        timeline["2 tasks running"] = time.time() - t0
                        cut_at = time.time()
                        netns.set_link(network, role, up=False)
                        timeline["link down"] = cut_at - t0
                        run.where += f" while {len(running)} tasks ran"
                elif back_at is None and time.time() >= cut_at + hold_s:
                    netns.set_link(network, role, up=True)
                    back_at = time.time()
                    timeline["link up"] = back_at - t0
                time.sleep(0.1)
            try:
                out, _ = proc.communicate(timeout=max(deadline - time.monotonic(), 1))
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
                raise ClusterFaultError(
                    f"the driver did not finish within {timeout_s:.0f} s: {log.read_text()[-2000:]}"
                ) from None
        err = log.read_text()
        again = re.findall(r"Starting task (\d+\.[1-9]\d*) in stage", err)
        lost = re.findall(r"Lost executor (\S+)", err)
        run.fired = cut_at is not None
        run.notes.append(f"task attempts rescheduled: {again}; executors lost: {sorted(set(lost))}")
        result = next((line for line in out.splitlines() if line.startswith(("RESULT", "FAILED"))), None)
        if result is None:
            raise ClusterFaultError(f"the driver printed no result (exit {proc.returncode}): {err[-3000:]}")
        if result.startswith("FAILED"):
            run.first_attempt = f"failed: {result.split(' ', 2)[2]}"
            run.check.add(f"the write failed although one worker stayed reachable: {result[:400]}")
        else:
            info = json.loads(result.split(" ", 1)[1])
            run.first_attempt = "committed" if info["committed"] else "not committed"
            timeline["committed"] = info["at"] - t0
            if cut_at is not None:
                run.recovery_s = info["at"] - cut_at
        reader = DeltaTableStore(spark)
        if reader.exists(uri):
            check_table_final(reader, uri, frame(spark, 0, rows, partitions), 1, run.check)
            check_vacuum_leaves_only_referenced(reader, uri, run.check)
        else:
            run.check.add("no table was written")
            run.check.rows_lost += rows
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if cut_at is not None and back_at is None:  # the write ended first
            netns.set_link(network, role, up=True)
            back_at = time.time()
            timeline["link up (after the write)"] = back_at - t0
        log.unlink(missing_ok=True)
    if cut_at is not None:
        started = time.monotonic()
        _wait_for(lambda: alive_workers() >= 2, "both Spark workers alive after the link's return", 120)
        run.restore_s = time.monotonic() - started
    run.notes.append(
        "timeline: " + ", ".join(f"{k} {v:.1f}s" for k, v in sorted(timeline.items(), key=lambda kv: kv[1]))
    )
    return run


# ------------------------------------------ 6. Kerberos ticket expiring mid-write
def ticket_end(settings) -> float | None:
    """When moulin's ticket (its TGT, in its cache) expires: a wall time; None without one."""
    from datetime import datetime

    from moulin import kerberos

    shown = subprocess.run(
        ["klist", "-c", f"FILE:{kerberos.cache_path(settings)}"],
        capture_output=True,
        text=True,
        env={**os.environ, **kerberos.krb5_env(settings), "LC_ALL": "C"},
        timeout=30,
    ).stdout
    for line in shown.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[4].startswith("krbtgt/"):
            end = datetime.strptime(f"{parts[2]} {parts[3]}", "%m/%d/%y %H:%M:%S")
            return time.mktime(end.timetuple())  # klist shows local time
    return None


def delta_write_across_ticket_expiry(
    spark, settings, uri: str, rows: int = 40_000, partitions: int = 2, margin_s: float = 30
) -> FaultRun:
    """On a Kerberised cluster whose KDC gives moulin's principal short tickets: seed a
    table, then run an append whose slowed Spark stage lasts until ``margin_s`` after
    moulin's ticket expires (the staging, then deltalake's commit, after the expiry).
    Record how the write ends: committed (moulin, or its clients, got a new ticket), or
    an error (does it name moulin's principal?).  Then retry as a scheduler would, in
    the same process, and check the table."""
    from moulin import kerberos
    from moulin.delta import AppTransaction, DeltaTableStore

    principal = settings.hdfs.kerberos_principal
    run = FaultRun("Kerberos ticket expiry", f"{principal}'s ticket, mid Delta write")
    kerberos.login(settings)
    end = ticket_end(settings)
    if end is None:
        raise ClusterFaultError(f"no ticket of {principal} in {kerberos.cache_path(settings)}")
    if end - time.time() < 60:  # too little left for a seed and a write: wait for a fresh one
        time.sleep(max(0.0, end - time.time() + 1))
        kerberos.login(settings)
        end = ticket_end(settings) or end
    run.notes.append(f"ticket lifetime left at the start: {end - time.time():.0f}s")
    store = DeltaTableStore(spark)
    store.write(frame(spark, 0, 1000, 1), uri, transaction=AppTransaction("seed", 0))
    left = end - time.time()
    if left < 10:
        raise ClusterFaultError(f"the ticket has {left:.0f}s left after the seed: give it a longer life")
    batches = max(1, -(-rows // partitions // 10_000))  # Arrow batches per task
    delay = (left + margin_s) / batches
    new = frame(spark, 0, 1000, 1).unionByName(frame(spark, 10_000_000, rows, partitions))
    data = slowed(frame(spark, 10_000_000, rows, partitions), delay)
    run.fired = True
    committed_at = None
    try:
        result = _bounded(
            lambda: store.write(data, uri, transaction=AppTransaction("faults.ticket", 1)),
            left + margin_s + 150,
            "the write across the ticket's expiry",
        )
        run.first_attempt = "committed" if result.committed else "not committed (no error)"
        committed_at = time.time()
        run.notes.append(f"the write ended {committed_at - end:.0f}s after the ticket's expiry")
    except ClusterFaultError as exc:  # hung: this Spark session cannot write any more
        run.first_attempt = f"hung: {exc}"
        run.check.add(f"the write hung after {principal}'s ticket expired (a JVM prompting for a login?)")
        return run
    except Exception as exc:  # noqa: BLE001 - recorded, then retried
        run.first_attempt = f"failed: {describe(exc)}"
        run.notes.append(
            f"the write failed {time.time() - end:.0f}s after the expiry; the error "
            + ("names" if principal in str(exc) else "does not name")
            + f" {principal}"
        )
    if time.time() < end:
        run.fired = False
        run.notes.append("the write ended before the ticket expired")
    if committed_at is None:
        run.retried = True
        try:
            kerberos.login(settings)  # as a new task process would: a new ticket from the keytab
            result = DeltaTableStore(spark).write(data, uri, transaction=AppTransaction("faults.ticket", 1))
            run.notes.append(f"retry after a new login: {'committed' if result.committed else 'no-op'}")
            committed_at = time.time()
        except Exception as exc:  # noqa: BLE001
            run.check.add(f"the retry after a new login failed: {describe(exc)[:300]}")
    if committed_at is not None:
        run.recovery_s = committed_at - end
    kerberos.login(settings)
    reader = DeltaTableStore(spark)
    check_table_final(reader, uri, new, 2, run.check)
    return run
