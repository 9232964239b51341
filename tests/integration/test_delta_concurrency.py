"""Concurrent writers and interrupted writes on Delta tables (local disk and HDFS)."""

from __future__ import annotations

import threading

import pytest
from pyspark.sql import functions as F

from moulin.delta import AppTransaction, ConcurrentWriteError, DeltaStoreError, DeltaTableStore
from moulin.delta.hadoop_fs import HadoopFS
from moulin.delta.write_protocol import WriteProtocol

pytestmark = pytest.mark.integration


@pytest.fixture(params=["local", "hdfs"])
def base_dir(request) -> str:
    return request.getfixturevalue("local_dir" if request.param == "local" else "hdfs_dir")


def data(spark, n: int, offset: int = 0):
    return spark.range(offset, offset + n, numPartitions=1).select(
        "id", (F.col("id") % 2).cast("int").alias("part")
    )


def ids(store, uri) -> list[int]:
    return sorted(r.id for r in store.read(uri).select("id").collect())


def test_two_concurrent_appends_both_land(spark, base_dir) -> None:
    uri = f"{base_dir}/appends"
    DeltaTableStore(spark).write(data(spark, 2), uri, partition_by=["part"])
    barrier = threading.Barrier(2, timeout=120)
    results, errors = [], []

    def append(offset: int) -> None:
        store = DeltaTableStore(spark)
        # both writers read the same version, then race to commit
        store.before_commit_hook = lambda uri, mode: barrier.wait()
        try:
            results.append(store.write(data(spark, 3, offset), uri))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(o,)) for o in (100, 200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    assert sorted(r.version for r in results) == [1, 2]
    assert ids(DeltaTableStore(spark), uri) == [0, 1, 100, 101, 102, 200, 201, 202]


def _race(spark, uri: str, first_mode: str, second_mode: str):
    """Writer A stops before its commit; writer B commits; then A commits."""
    go, paused = threading.Event(), threading.Event()
    outcome: dict = {}

    def hook(_uri, _mode) -> None:
        paused.set()
        go.wait(120)

    def writer_a() -> None:
        store = DeltaTableStore(spark)
        store.before_commit_hook = hook
        try:
            outcome["a"] = store.write(data(spark, 2, 500), uri, mode=first_mode)
        except Exception as exc:  # noqa: BLE001
            outcome["a"] = exc

    thread = threading.Thread(target=writer_a)
    thread.start()
    assert paused.wait(120)
    outcome["b"] = DeltaTableStore(spark).write(data(spark, 2, 700), uri, mode=second_mode)
    go.set()
    thread.join(120)
    return outcome


@pytest.mark.parametrize(("first", "second"), [("overwrite", "append"), ("append", "overwrite")])
def test_overwrite_racing_append_fails_cleanly(spark, local_dir, first: str, second: str) -> None:
    uri = f"{local_dir}/race"
    store = DeltaTableStore(spark)
    store.write(data(spark, 4), uri, partition_by=["part"])
    v0_files = {u[len(uri) + 1 :] for u in store.file_uris(uri)}
    outcome = _race(spark, uri, first, second)
    err = outcome["a"]
    assert isinstance(err, ConcurrentWriteError), err
    assert uri in str(err) and "rerun the write" in str(err)
    assert store.version(uri) == 1  # only the winner committed
    expected = [0, 1, 2, 3, 700, 701] if second == "append" else [700, 701]
    assert ids(store, uri) == expected
    # the loser's data files were removed: only files of versions 0 and 1 remain
    on_disk = {
        f.relative
        for f in HadoopFS(spark, uri).list_files(uri)
        if f.relative.endswith(".parquet") and not f.relative.rsplit("/", 1)[-1].startswith(".")
    }
    assert on_disk == v0_files | {u[len(uri) + 1 :] for u in store.file_uris(uri)}


def test_killed_write_leaves_previous_version_and_vacuum_removes_orphans(spark, base_dir) -> None:
    uri = f"{base_dir}/killed"
    store = DeltaTableStore(spark)
    store.write(data(spark, 4), uri, partition_by=["part"])
    fs = HadoopFS(spark, uri)
    # 1) a write killed after its files were moved into the table, before the commit
    killed = WriteProtocol(fs, uri)
    staged = killed.stage(data(spark, 6, 100), ["part"], {"id": "long", "part": "integer"})
    killed.move(staged)
    # 2) a write killed while Spark was still writing into its staging folder
    WriteProtocol(fs, uri).stage(data(spark, 6, 200), ["part"], {"id": "long", "part": "integer"})
    assert store.version(uri) == 0
    assert ids(store, uri) == [0, 1, 2, 3]  # orphan files are never read
    assert store.read(uri, filters=[("id", ">=", 100)]).count() == 0
    assert len(store.file_uris(uri)) == 2
    orphans = [f"{uri}/{rel}" for rel in staged.moved]
    assert all(fs.exists(o) for o in orphans) and fs.list_dir(f"{uri}/_staging")
    assert store.vacuum(uri) == []  # inside the default retention: kept
    removed = store.vacuum(uri, retention_hours=0, force=True)
    assert set(orphans) <= set(removed)
    assert not any(fs.exists(o) for o in orphans)
    assert not fs.exists(f"{uri}/_staging")
    assert ids(store, uri) == [0, 1, 2, 3] and store.read(uri).count() == 4


def test_failed_commit_leaves_no_files(spark, local_dir) -> None:
    uri = f"{local_dir}/failed"
    store = DeltaTableStore(spark)
    store.write(data(spark, 2), uri)

    def boom(_uri, _mode):
        raise RuntimeError("killed before commit")

    store.before_commit_hook = boom
    with pytest.raises(RuntimeError, match="killed before commit"):
        store.write(data(spark, 5, 10), uri)
    files = [f.relative for f in HadoopFS(spark, uri).list_files(uri) if f.relative.endswith(".parquet")]
    assert len([f for f in files if not f.rsplit("/", 1)[-1].startswith(".")]) == 1
    assert store.version(uri) == 0 and ids(store, uri) == [0, 1]


def test_bad_inputs_give_clear_errors_and_change_nothing(spark, tmp_path, local_dir) -> None:
    store = DeltaTableStore(spark)
    # a folder with files that is not a Delta table
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "data.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DeltaStoreError, match="no Delta table at .*plain"):
        store.read(plain.as_uri())
    with pytest.raises(DeltaStoreError, match="holds data.csv but is not a Delta table"):
        store.write(data(spark, 2), plain.as_uri())
    assert sorted(p.name for p in plain.iterdir()) == ["data.csv"]
    # a wrong path
    with pytest.raises(DeltaStoreError, match="no Delta table at"):
        store.history(f"{local_dir}/nope")
    assert not store.exists(f"{local_dir}/nope")
    with pytest.raises(DeltaStoreError, match="unsupported scheme 's3'"):
        store.read("s3://bucket/t")
    # a corrupt log entry, then a missing one
    uri = f"{local_dir}/corrupt"
    store.write(data(spark, 2), uri)
    store.write(data(spark, 2, 10), uri)
    log = tmp_path / "corrupt" / "_delta_log"
    good = (log / "00000000000000000001.json").read_bytes()
    (log / "00000000000000000001.json").write_text("{not json")
    with pytest.raises(DeltaStoreError, match="cannot read the Delta log of .*corrupt"):
        store.read(uri)
    with pytest.raises(DeltaStoreError, match="log entry is corrupt or missing"):
        store.write(data(spark, 2, 20), uri)
    assert (log / "00000000000000000001.json").read_text() == "{not json"
    assert not (log / "00000000000000000002.json").exists()
    (log / "00000000000000000001.json").write_bytes(good)
    (log / "00000000000000000000.json").unlink()
    with pytest.raises(DeltaStoreError, match="corrupt or missing"):
        store.read(uri)
    with pytest.raises(DeltaStoreError, match="mode 'upsert'"):
        store.write(data(spark, 2), f"{local_dir}/x", mode="upsert")
    with pytest.raises(DeltaStoreError, match="must be a non-negative int"):
        store.write(data(spark, 2), f"{local_dir}/x", transaction=AppTransaction("a", -1))


def test_concurrent_compactions_never_duplicate_rows(spark, local_dir) -> None:
    """Two compactions of the same files: one commits, the other changes nothing."""
    uri = f"{local_dir}/compactions"
    plain = DeltaTableStore(spark, compaction=None)
    for i in range(4):
        plain.write(data(spark, 2, 10 * i), uri)
    barrier = threading.Barrier(2, timeout=120)
    outcomes: list = []

    def optimize() -> None:
        store = DeltaTableStore(spark)

        def wait_after_move(step: str, _uri: str) -> None:  # both have planned and rewritten the same files
            if step == "moved":
                barrier.wait()

        store.fault_hook = wait_after_move
        try:
            outcomes.append(store.optimize(uri))
        except Exception as exc:  # noqa: BLE001 - reported below
            outcomes.append(exc)

    threads = [threading.Thread(target=optimize) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert sorted(type(o).__name__ for o in outcomes) == ["ConcurrentWriteError", "dict"], outcomes
    assert ids(plain, uri) == sorted(10 * i + k for i in range(4) for k in range(2))
    assert len(plain.file_uris(uri)) == 1
