"""Faults injected at every step of a Delta write, then the table checked against its invariants.

See ``tests/fault_harness.py``; ``benchmarks/faults.py`` runs the full table of
faults (every step, every kind, more runs) and prints it.
"""

from __future__ import annotations

import pytest
from fault_harness import (
    WRITE_STEPS,
    Check,
    InjectedFault,
    InjectedInterrupt,
    arm,
    check_after_fault,
    check_vacuum_leaves_only_referenced,
    compare_rows,
    disarm,
    run_killed_write,
    sort_rows,
    table_rows,
)

from moulin.delta import DeltaStoreError, DeltaTableStore
from moulin.delta.errors import CommitOutcomeUnknownError
from moulin.delta.hadoop_fs import HadoopFS

pytestmark = pytest.mark.integration

SCHEMA = "id long, part int, name string"


def batch(offset: int, n: int = 6) -> list[tuple]:
    return [(i, i % 2, f"n{i}") for i in range(offset, offset + n)]


def setup_table(spark, uri: str) -> list[tuple]:
    DeltaTableStore(spark).write(
        spark.createDataFrame(batch(0), SCHEMA), uri, partition_by=["part"], app_id="seed", app_version=0
    )
    return sort_rows(batch(0))


def faulted_write(spark, store, uri: str, mode: str, app_version: int = 1):
    df = spark.createDataFrame(batch(100), SCHEMA)
    return store.write(df, uri, mode=mode, app_id="faults.write", app_version=app_version)


def expected_after(old: list[tuple], mode: str) -> list[tuple]:
    return sort_rows(batch(100)) if mode == "overwrite" else sort_rows(old + batch(100))


def run_fault_then_retry(spark, uri: str, step: str, kind: str, mode: str) -> Check:
    old = setup_table(spark, uri)
    new = expected_after(old, mode)
    store = DeltaTableStore(spark)
    arm(store, step, kind)
    try:
        faulted_write(spark, store, uri, mode)
    except (InjectedFault, InjectedInterrupt, DeltaStoreError):
        pass
    disarm(store)
    check = Check()
    reader = DeltaTableStore(spark)
    check_after_fault(reader, uri, old, new, check)
    faulted_write(spark, DeltaTableStore(spark), uri, mode)  # the retry (idempotent)
    compare_rows(table_rows(reader, uri), new, check, "after the retry")
    check_vacuum_leaves_only_referenced(reader, uri, check)
    compare_rows(table_rows(reader, uri), new, check, "after VACUUM")
    return check


@pytest.fixture(params=["local", "hdfs"])
def base_dir(request) -> str:
    return request.getfixturevalue("local_dir" if request.param == "local" else "hdfs_dir")


def test_read_back_failure_after_the_commit_keeps_the_committed_files(spark, base_dir) -> None:
    """The commit landed, then reading its version back failed (a DataNode restarting):
    the data files the new log entry names must stay, and the retry must not duplicate."""
    uri = f"{base_dir}/readback"
    old = setup_table(spark, uri)
    store = DeltaTableStore(spark)
    calls = {"n": 0}
    real = store._version_of

    def flaky_version_of(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("DataNode 127.0.0.1 restarting: connection refused")
        return real(*args, **kwargs)

    store._version_of = flaky_version_of
    try:
        result = faulted_write(spark, store, uri, "append")
        assert result.committed and result.version == 1
    except DeltaStoreError:
        pass  # reporting a failure is allowed; deleting committed files is not
    check = Check()
    check_after_fault(DeltaTableStore(spark), uri, old, expected_after(old, "append"), check)
    assert check.ok, check.violations
    retry = faulted_write(spark, DeltaTableStore(spark), uri, "append")
    assert not retry.committed
    assert table_rows(DeltaTableStore(spark), uri) == expected_after(old, "append")


@pytest.mark.parametrize("kind", ["raise", "interrupt"])
@pytest.mark.parametrize("step", WRITE_STEPS)
def test_append_fault_at_each_step(spark, local_dir, step: str, kind: str) -> None:
    check = run_fault_then_retry(spark, f"{local_dir}/t", step, kind, "append")
    assert check.ok, check.violations


@pytest.mark.parametrize("step", ["moved", "commit-reply-lost", "read-back"])
def test_overwrite_fault(spark, local_dir, step: str) -> None:
    check = run_fault_then_retry(spark, f"{local_dir}/t", step, "raise", "overwrite")
    assert check.ok, check.violations


@pytest.mark.parametrize("step", ["moved", "read-back"])
def test_sigkill_during_write(spark, local_dir, step: str) -> None:
    uri = f"{local_dir}/killed"
    old = setup_table(spark, uri)
    new = expected_after(old, "append")
    run_killed_write(uri, batch(100), SCHEMA, step, app_id="faults.write", app_version=1)
    check = Check()
    reader = DeltaTableStore(spark)
    check_after_fault(reader, uri, old, new, check)
    faulted_write(spark, DeltaTableStore(spark), uri, "append")
    compare_rows(table_rows(reader, uri), new, check, "after the retry")
    check_vacuum_leaves_only_referenced(reader, uri, check)
    assert check.ok, check.violations


def test_unknown_outcome_keeps_files_and_says_rerun(spark, local_dir) -> None:
    """When the log cannot be read after a failed commit, nothing is deleted."""
    uri = f"{local_dir}/unknown"
    old = setup_table(spark, uri)
    store = DeltaTableStore(spark)
    arm(store, "commit-reply-lost", "raise")

    def unreadable_log(*_args, **_kwargs):
        raise OSError("NameNode in safe mode")

    store._find_write = unreadable_log
    with pytest.raises(CommitOutcomeUnknownError, match="same app_id/app_version") as err:
        faulted_write(spark, store, uri, "append")
    assert uri in str(err.value)
    check = Check()
    check_after_fault(DeltaTableStore(spark), uri, old, expected_after(old, "append"), check)
    assert check.ok, check.violations


def test_no_staging_folder_left_behind(spark, local_dir) -> None:
    uri = f"{local_dir}/clean"
    setup_table(spark, uri)
    DeltaTableStore(spark).write(spark.createDataFrame(batch(50), SCHEMA), uri)
    assert not HadoopFS(spark, uri).exists(f"{uri}/_staging")
