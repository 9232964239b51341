"""Atomic warehouse writes, crash recovery and locks, on file:// and on the real hdfs://.

Crashes are simulated with ``WarehouseFS.fault_hook`` raising at a step of a
write; a fresh ``WarehouseFS`` (another process, after the crash) must then
read the old or the new content, never nothing.  Concurrency tests run real
threads against the real file systems; a short sleep after the read of the
manifest or watermark widens the race window so that they fail without the
locks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import moulin.ingest.database as database_module
import moulin.ingest.landing as landing_module
from moulin.ingest import extract_to_landing, land_file, read_manifest, read_watermark
from moulin.settings import Settings
from moulin.storage import LockTimeoutError, WarehouseFS
from moulin.usecases.flights.sources import build_source_database

pytestmark = pytest.mark.integration

OLD = b'{"version": "old"}\n'
NEW = b'{"version": "new", "padding": "' + b"x" * 5000 + b'"}\n'
PLANE_COLUMNS = ["tailnum", "year", "type", "manufacturer", "model", "engines", "seats", "speed", "engine"]


class Crash(Exception):
    """Stands for the process dying at a step of a write."""


def crash_at(step: str):
    def hook(name: str) -> None:
        if name == step:
            raise Crash(step)

    return hook


@pytest.fixture(params=["file", "hdfs"])
def wh(request: pytest.FixtureRequest) -> Settings:
    """Settings whose warehouse is on file:// or on the session's real HDFS."""
    if request.param == "hdfs":
        request.getfixturevalue("hdfs_cluster")
        return request.getfixturevalue("hdfs_settings")
    return request.getfixturevalue("settings")


@pytest.fixture
def base(wh: Settings) -> str:
    """A fresh folder under the warehouse."""
    return wh.table_uri("tests", f"atomic-{uuid.uuid4().hex[:12]}")


def names(fs: WarehouseFS, folder: str) -> list[str]:
    return [f.uri.rsplit("/", 1)[1] for f in fs.list(folder)]


def write(fs: WarehouseFS, how: str, uri: str, data: bytes, tmp_path: Path) -> None:
    if how == "write_bytes":
        fs.write_bytes(uri, data)
    else:
        local = tmp_path / f"upload-{uuid.uuid4().hex}"
        local.write_bytes(data)
        fs.put_file(local, uri)


# ---------------------------------------------------------------- (a) crashes
# What a reader finds after a crash at each step: a write that got past its
# backup step is complete and rolled forward.
AFTER_CRASH = {"tmp_written": OLD, "backup_made": NEW, "renamed": NEW}


@pytest.mark.parametrize("how", ["write_bytes", "put_file"])
@pytest.mark.parametrize("step", list(AFTER_CRASH))
def test_crash_during_an_overwrite_leaves_the_old_or_the_new_content(wh, base, tmp_path, how, step) -> None:
    expected = AFTER_CRASH[step]
    uri = f"{base}/_state.json"
    WarehouseFS(wh).write_bytes(uri, OLD)
    crashing = WarehouseFS(wh)
    crashing.fault_hook = crash_at(step)
    if uri.startswith("file:") and step == "backup_made":
        # file:// has no backup step: os.replace overwrites atomically.
        write(crashing, how, uri, NEW, tmp_path)
    else:
        with pytest.raises(Crash):
            write(crashing, how, uri, NEW, tmp_path)

    after = WarehouseFS(wh)  # the next process
    assert after.read_bytes(uri) == expected
    assert after.exists(uri) and after.size(uri) == len(expected)
    assert after.recover(uri)
    leftovers = [n for n in names(after, base) if n != "_state.json"]
    # Backups are gone once their write is complete; only a temporary file of a
    # write that crashed before its backup step stays behind (hidden, beside the target).
    assert all(re.fullmatch(r"\._state\.json\.[0-9a-f]{32}\.tmp", n) for n in leftovers), leftovers
    assert len(leftovers) == (1 if step == "tmp_written" else 0)


def test_read_alone_recovers_a_write_cut_between_backup_and_rename(hdfs_settings, hdfs_cluster) -> None:
    uri = hdfs_settings.table_uri("tests", f"atomic-{uuid.uuid4().hex[:12]}", "report.html")
    WarehouseFS(hdfs_settings).write_bytes(uri, OLD)
    crashing = WarehouseFS(hdfs_settings)
    crashing.fault_hook = crash_at("backup_made")
    with pytest.raises(Crash):
        crashing.write_bytes(uri, NEW)
    raw = crashing._hdfs()  # what a reader without recovery would see
    assert raw.status(WarehouseFS._split(uri)[1], strict=False) is None
    assert WarehouseFS(hdfs_settings).read_bytes(uri) == NEW  # no exists() first


def test_a_reader_recovering_during_a_live_write_does_not_break_it(hdfs_settings, hdfs_cluster) -> None:
    base = hdfs_settings.table_uri("tests", f"atomic-{uuid.uuid4().hex[:12]}")
    uri = f"{base}/_manifest.json"
    writer = WarehouseFS(hdfs_settings)
    writer.write_bytes(uri, OLD)
    seen = []

    def reader_in_the_gap(step: str) -> None:
        if step == "backup_made":  # the target is missing right now
            seen.append(WarehouseFS(hdfs_settings).read_bytes(uri))

    writer.fault_hook = reader_in_the_gap
    writer.write_bytes(uri, NEW)  # its own rename finds the work done by the reader
    assert seen == [NEW]
    assert WarehouseFS(hdfs_settings).read_bytes(uri) == NEW
    assert names(writer, base) == ["_manifest.json"]


def test_a_backup_whose_temporary_file_is_lost_is_put_back(wh, base) -> None:
    uri = f"{base}/model.bin"
    fs = WarehouseFS(wh)
    fs.write_bytes(uri, OLD)
    if uri.startswith("file:"):
        # No write makes backups on file://; recovery works there the same way.
        folder = WarehouseFS._split(base)[1]
        os.rename(f"{folder}/model.bin", f"{folder}/.model.bin.{uuid.uuid4().hex}.old")
    else:
        fs.fault_hook = crash_at("backup_made")
        with pytest.raises(Crash):
            fs.write_bytes(uri, NEW)
        tmp = [n for n in names(fs, base) if n.endswith(".tmp")]
        assert len(tmp) == 1
        fs.delete(f"{base}/{tmp[0]}")
    assert "model.bin" not in names(fs, base)
    after = WarehouseFS(wh)
    assert after.exists(uri)
    assert after.read_bytes(uri) == OLD
    assert names(after, base) == ["model.bin"]


def test_a_crashed_first_write_leaves_no_file_and_a_deleted_file_stays_deleted(wh, base) -> None:
    fs = WarehouseFS(wh)
    fs.fault_hook = crash_at("tmp_written")
    with pytest.raises(Crash):
        fs.write_bytes(f"{base}/new.json", NEW)
    assert not WarehouseFS(wh).exists(f"{base}/new.json")

    uri = f"{base}/gone.json"
    WarehouseFS(wh).write_bytes(uri, OLD)
    fs.fault_hook = crash_at("renamed")  # leaves a backup behind on HDFS
    with pytest.raises(Crash):
        fs.write_bytes(uri, NEW)
    WarehouseFS(wh).delete(uri)
    after = WarehouseFS(wh)
    assert not after.exists(uri)
    assert not any(n.startswith(".gone.json") for n in names(after, base))


# ---------------------------------------------------------------- (c) locks
def test_lock_timeout_names_the_lock_file_and_its_holder(wh, base) -> None:
    uri = f"{base}/_manifest.json"
    first, second = WarehouseFS(wh), WarehouseFS(wh)
    with first.lock(uri) as holder:
        record = json.loads(first.read_bytes(f"{uri}.lock"))
        assert record["token"] == holder.token and record["pid"] == os.getpid()
        assert set(record) == {"host", "pid", "acquired_at", "token"}
        start = time.monotonic()
        with pytest.raises(LockTimeoutError) as info:
            with second.lock(uri, timeout_s=0.5):
                pass
        assert 0.5 <= time.monotonic() - start < 5
        message = str(info.value)
        assert f"{uri}.lock" in message
        assert f"pid {os.getpid()}" in message and holder.token in message
        assert f"delete {uri}.lock" in message
        assert info.value.lock_uri == f"{uri}.lock" and info.value.holder.token == holder.token
    assert not first.exists(f"{uri}.lock")
    with second.lock(uri, timeout_s=0.5):  # released: taken at once
        assert second.exists(f"{uri}.lock")
    assert not second.exists(f"{uri}.lock")


def test_stale_lock_is_broken_and_a_fresh_one_is_waited_for(wh, base, caplog) -> None:
    uri = f"{base}/_state.json"
    fs = WarehouseFS(wh)
    long_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    dead = {"host": "dead-host", "pid": 4242, "acquired_at": long_ago, "token": "dead" * 8}
    fs.write_bytes(f"{uri}.lock", json.dumps(dead).encode())
    with pytest.raises(LockTimeoutError, match="dead-host"):
        with fs.lock(uri, timeout_s=0.3, stale_after_s=7200):
            pass
    with caplog.at_level(logging.WARNING, logger="moulin.storage"):
        with fs.lock(uri, timeout_s=5, stale_after_s=600) as me:
            assert json.loads(fs.read_bytes(f"{uri}.lock"))["token"] == me.token
    assert "broke stale lock" in caplog.text and "dead-host" in caplog.text
    assert not fs.exists(f"{uri}.lock")
    assert names(fs, base) == []  # nothing moved aside is left


def test_waiters_breaking_one_stale_lock_together_still_exclude_each_other(wh, base) -> None:
    uri = f"{base}/_state.json"
    long_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    dead = {"host": "dead-host", "pid": 4242, "acquired_at": long_ago, "token": "dead" * 8}
    WarehouseFS(wh).write_bytes(f"{uri}.lock", json.dumps(dead).encode())
    gate = threading.Barrier(4)
    inside: list[int] = []
    overlaps: list[list[int]] = []

    def work(i: int) -> None:
        fs = WarehouseFS(wh)
        gate.wait()
        with fs.lock(uri, timeout_s=60, stale_after_s=600):
            inside.append(i)
            if len(inside) > 1:
                overlaps.append(list(inside))
            time.sleep(0.05)
            inside.remove(i)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))
    assert overlaps == []
    assert WarehouseFS(wh).list(base) == []


def test_release_leaves_a_lock_taken_over_by_another_holder(wh, base) -> None:
    uri = f"{base}/_state.json"
    fs = WarehouseFS(wh)
    other = {"host": "h", "pid": 1, "acquired_at": datetime.now(UTC).isoformat(), "token": "b" * 32}
    with fs.lock(uri):
        fs.write_bytes(f"{uri}.lock", json.dumps(other).encode())  # as if broken and retaken
    assert json.loads(fs.read_bytes(f"{uri}.lock"))["token"] == "b" * 32


def test_lock_excludes_concurrent_holders(wh, base) -> None:
    uri = f"{base}/counter"
    inside = []
    overlaps = []

    def work(i: int) -> None:
        fs = WarehouseFS(wh)
        for _ in range(2):
            with fs.lock(uri, timeout_s=60):
                inside.append(i)
                if len(inside) > 1:
                    overlaps.append(list(inside))
                time.sleep(0.01)
                inside.remove(i)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))
    assert overlaps == []


# ---------------------------------------------------------------- (b) landings
def test_concurrent_landings_into_one_folder_all_reach_the_manifest(wh, tmp_path, monkeypatch) -> None:
    source, ds = f"conc_{uuid.uuid4().hex[:8]}", "2013-05-01"
    drops = []
    for i in range(8):
        drop = tmp_path / f"part_{i}.csv"
        drop.write_text("id,value\n" + "".join(f"{i},{j}\n" for j in range(i + 1)))
        drops.append(drop)
    real_read = landing_module.read_manifest

    def slow_read(*args, **kwargs):  # widen the read-modify-write window
        manifest = real_read(*args, **kwargs)
        time.sleep(0.1)
        return manifest

    monkeypatch.setattr(landing_module, "read_manifest", slow_read)
    gate = threading.Barrier(8)

    def land(drop: Path):
        gate.wait()
        return land_file(wh, source, ds, drop)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(land, drops))
    assert all(r.status == "landed" for r in results)

    manifest = read_manifest(wh, source, ds)
    by_name = {f["file"]: f for f in manifest["files"]}
    assert sorted(by_name) == sorted(d.name for d in drops)
    fs = WarehouseFS(wh)
    for i, drop in enumerate(drops):
        entry = by_name[drop.name]
        assert entry["sha256"] == hashlib.sha256(drop.read_bytes()).hexdigest()
        assert entry["rows"] == i + 1
        assert fs.sha256(entry["uri"]) == entry["sha256"]
    folder = entry["uri"].rsplit("/", 1)[0]
    assert not fs.exists(f"{folder}/_manifest.json.lock")


# ---------------------------------------------------------------- (d) watermarks
def test_concurrent_incremental_extractions_keep_the_watermark(wh, tmp_path, monkeypatch) -> None:
    source = f"planes_{uuid.uuid4().hex[:8]}"
    db = build_source_database(tmp_path / "src.sqlite", planes_limit=25)
    real_read = database_module.read_watermark

    def slow_read(*args, **kwargs):  # widen the read-watermark -> write-watermark window
        value = real_read(*args, **kwargs)
        time.sleep(0.3)
        return value

    monkeypatch.setattr(database_module, "read_watermark", slow_read)
    gate = threading.Barrier(2)

    def run(ds: str):
        gate.wait()
        return extract_to_landing(
            wh,
            source,
            ds,
            f"sqlite:///{db}",
            PLANE_COLUMNS,
            tmp_path / "stage" / ds,
            table="planes",
            watermark="plane_id",
        )

    with ThreadPoolExecutor(2) as pool:
        first, second = sorted(pool.map(run, ["2013-01-01", "2013-02-01"]), key=lambda r: -r.rows)
    assert (first.rows, second.rows) == (25, 0)  # no row extracted twice
    assert first.manifest["watermark_before"] is None and first.manifest["watermark_after"] == 25
    assert second.manifest["watermark_before"] == 25  # the later run saw the earlier one's watermark
    assert real_read(wh, source) == 25

    build_source_database(db, planes_limit=30)
    third = extract_to_landing(
        wh,
        source,
        "2013-03-01",
        f"sqlite:///{db}",
        PLANE_COLUMNS,
        tmp_path / "stage",
        table="planes",
        watermark="plane_id",
    )
    assert third.rows == 5 and read_watermark(wh, source) == 30
