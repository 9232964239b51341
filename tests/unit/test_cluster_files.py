"""Files the local cluster's daemons share while other processes start: configs,
``webapps-root/.../web.xml``, pid files.  None may ever be seen half-written, none is
rewritten when unchanged, and a daemon is never started twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from moulin.cluster.daemons import ClusterError, Daemon, DaemonSet, process_alive
from moulin.cluster.files import write_once
from moulin.cluster.local import LocalCluster
from moulin.settings import Settings, load_settings


@pytest.fixture
def cluster(tmp_path: Path) -> LocalCluster:
    """A cluster under a fresh home whose Hadoop jars are stand-ins (nothing starts)."""
    settings: Settings = replace(
        load_settings("hdfs-local", env={}), home=tmp_path / "home", dist_dir=tmp_path
    )
    jar_dir = settings.hadoop_dist_dir / "jars"
    jar_dir.mkdir(parents=True)
    (jar_dir / "hadoop-hdfs-2.7.3.jar").write_bytes(b"")
    try:
        from moulin.cluster.dist import jersey1_jars

        jersey1_jars()
    except Exception as exc:  # the Debian jars are a machine prerequisite
        pytest.skip(str(exc))
    return LocalCluster(settings, log=lambda _: None)


WEB_XML = "<web-app/>\n"
WEBAPPS = ("hdfs", "datanode", "secondary")


def _web_xmls(cluster: LocalCluster) -> list[Path]:
    return [cluster.root / "webapps-root" / "webapps" / app / "WEB-INF" / "web.xml" for app in WEBAPPS]


def test_concurrent_classpath_calls_never_expose_a_partial_web_xml(cluster: LocalCluster) -> None:
    # Daemons start while others already parse web.xml (DataNodes started one after the
    # other; `moulin cluster status`, `hdfs dfs` from other processes): a reader must only
    # ever see the whole file.
    conf = cluster._render_conf("client", None)
    cluster.classpath(conf)  # the file exists from here on
    stop = threading.Event()
    seen_bad: list[str] = []
    reads = 0

    def read() -> None:
        nonlocal reads
        while not stop.is_set():
            for path in _web_xmls(cluster):
                with open(path) as handle:
                    text = handle.read()
                reads += 1
                if text != WEB_XML:
                    seen_bad.append(repr(text))

    def write() -> None:
        for _ in range(300):
            cluster.classpath(conf)

    readers = [threading.Thread(target=read) for _ in range(2)]
    writers = [threading.Thread(target=write) for _ in range(4)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()
    assert reads > 100
    assert not seen_bad, f"{len(seen_bad)} of {reads} reads saw a partial web.xml, e.g. {seen_bad[:3]}"


def _shared_files(cluster: LocalCluster) -> list[Path]:
    names = ("namenode", "client", *(f"datanode-{i}" for i in range(cluster.hdfs.datanodes)))
    confs = [
        cluster.root / "conf" / name / file
        for name in names
        for file in ("core-site.xml", "hdfs-site.xml", "log4j.properties")
    ]
    return _web_xmls(cluster) + confs


def _build_commands(cluster: LocalCluster) -> None:
    """What `up`, `status`, `down` and `hdfs dfs` build (each renders its config)."""
    cluster.namenode().command()
    for index in range(cluster.hdfs.datanodes):
        cluster.datanode(index).command()
    cluster.classpath(cluster._render_conf("client", None))


def test_shared_files_are_written_once_and_not_rewritten(cluster: LocalCluster) -> None:
    _build_commands(cluster)
    shared = _shared_files(cluster)
    past = 1_000_000_000
    for path in shared:
        assert path.stat().st_size > 0
        os.utime(path, (past, past))
    before = {path: (path.stat().st_ino, path.stat().st_mtime) for path in shared}
    _build_commands(cluster)
    after = {path: (path.stat().st_ino, path.stat().st_mtime) for path in shared}
    rewritten = [str(path.relative_to(cluster.root)) for path in shared if after[path] != before[path]]
    assert rewritten == []
    assert list(cluster.root.rglob("*.tmp")) == []


def test_every_shared_file_is_written_before_any_daemon_starts(cluster: LocalCluster) -> None:
    cluster.prepare_files()
    for path in _shared_files(cluster):
        assert path.stat().st_size > 0, path
    assert not cluster.daemons.pid_dir.exists()  # nothing started


def test_a_changed_config_is_replaced_in_one_rename(cluster: LocalCluster) -> None:
    conf = cluster._render_conf("namenode", None)
    inode = (conf / "hdfs-site.xml").stat().st_ino
    cluster.hdfs = replace(cluster.hdfs, replication=1)
    cluster._render_conf("namenode", None)
    text = (conf / "hdfs-site.xml").read_text()
    assert "<name>dfs.replication</name><value>1</value>" in text
    assert (conf / "hdfs-site.xml").stat().st_ino != inode  # a new file, renamed over the old


def test_write_once_readers_see_the_old_or_the_new_content_never_a_mix(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "file.xml"
    versions = [b"a" * 1_000_000, b"b" * 1_500_000]
    write_once(path, versions[0])
    stop = threading.Event()
    bad: list[int] = []

    def read() -> None:
        while not stop.is_set():
            data = path.read_bytes()
            if data not in versions:
                bad.append(len(data))

    def write(offset: int) -> None:
        for i in range(60):
            write_once(path, versions[(i + offset) % 2])

    readers = [threading.Thread(target=read) for _ in range(2)]
    writers = [threading.Thread(target=write, args=(k,)) for k in range(2)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()
    assert not bad, f"readers saw {len(bad)} partial files (sizes {bad[:5]})"
    assert sorted(p.name for p in path.parent.iterdir()) == ["file.xml"]  # no temp file left


def _sleeper(marker: str, barrier: threading.Barrier | None = None) -> Daemon:
    def command() -> list[str]:
        if barrier is not None:  # let every caller pass its "is it running?" check first
            try:
                barrier.wait(timeout=1)
            except threading.BrokenBarrierError:
                pass  # the others wait for a lock: fine
        return [sys.executable, "-c", "import time; time.sleep(60)", marker]

    return Daemon(name="sleeper", command=command, ports=(), marker=marker)


def _kill_marked(marker: str) -> None:
    found = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    for pid in map(int, found):
        if process_alive(pid, marker):
            os.kill(pid, signal.SIGKILL)


def test_two_concurrent_starts_of_a_daemon_start_one_process(tmp_path: Path) -> None:
    marker = f"moulin-test-sleeper-{uuid.uuid4().hex}"
    daemons = DaemonSet(tmp_path / "set")
    results: list[tuple[int, bool]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def start() -> None:
        try:
            results.append(daemons.start(_sleeper(marker, barrier)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=start) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        running = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
        assert len(running) == 1, f"{len(running)} processes started: {running}"
        assert sorted(started for _, started in results) == [False, False, True]
        assert {pid for pid, _ in results} == {int(running[0])}
        assert daemons.pid_file("sleeper").read_text() == f"{running[0]}\n"
        assert daemons.stop(_sleeper(marker), timeout_s=5)
        assert daemons.pid(_sleeper(marker)) is None
    finally:
        _kill_marked(marker)


def test_waiting_for_daemons_fails_at_once_when_one_died(cluster: LocalCluster) -> None:
    dead = Daemon(name="datanode-1", command=lambda: [], ports=(), marker="never-running")
    cluster.daemons.log_dir.mkdir(parents=True)
    (cluster.daemons.log_dir / "datanode-1.log").write_text("SAXParseException; Premature end of file\n")
    start = time.monotonic()
    with pytest.raises(ClusterError, match="datanode-1 stopped while waiting for 3 live DataNodes") as info:
        cluster._wait(lambda: False, "3 live DataNodes", "datanode-0", watch=[dead])
    assert time.monotonic() - start < 5  # not the start timeout (120 s)
    assert "Premature end of file" in str(info.value)
