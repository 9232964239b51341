"""Faults injected at every step of a Delta write, then the table checked against its invariants.

See ``tests/fault_harness.py``; ``benchmarks/faults.py`` runs the full table of
faults (every step, every kind, every write path, more runs) and prints it.
"""

from __future__ import annotations

import pytest
from fault_harness import (
    WRITE_STEPS,
    Check,
    InjectedFault,
    batch,
    check_after_fault,
    check_vacuum_leaves_only_referenced,
    compare_rows,
    delta_write_fault,
    expected_rows,
    run_op_killed_after,
    seed_table,
    sort_rows,
    table_rows,
    write_in_mode,
)

from moulin.delta import AppTransaction, DeltaStoreError, DeltaTableStore
from moulin.delta.errors import CommitOutcomeUnknownError
from moulin.delta.hadoop_fs import HadoopFS

pytestmark = pytest.mark.integration


@pytest.fixture(params=["local", "hdfs"])
def base_dir(request) -> str:
    return request.getfixturevalue("local_dir" if request.param == "local" else "hdfs_dir")


def test_read_back_failure_after_the_commit_keeps_the_committed_files(spark, base_dir) -> None:
    """The commit landed, then reading its version back failed (a DataNode restarting):
    the data files the new log entry names must stay, and the retry must not duplicate."""
    uri = f"{base_dir}/readback"
    old = seed_table(spark, uri)
    store = DeltaTableStore(spark)
    calls = {"n": 0}

    def flaky_read_back(step: str, _uri: str) -> None:
        if step == "read_back":
            calls["n"] += 1
            if calls["n"] == 1:
                raise OSError("DataNode 127.0.0.1 restarting: connection refused")

    store.fault_hook = flaky_read_back
    try:
        result = write_in_mode(spark, store, uri, "append")
        assert result.committed and result.version == 1
    except DeltaStoreError:
        pass  # reporting a failure is allowed; deleting committed files is not
    check = Check()
    check_after_fault(DeltaTableStore(spark), uri, old, expected_rows(old, "append"), check)
    assert check.ok, check.violations
    retry = write_in_mode(spark, DeltaTableStore(spark), uri, "append")
    assert not retry.committed
    assert table_rows(DeltaTableStore(spark), uri) == expected_rows(old, "append")


@pytest.mark.parametrize("kind", ["raise", "interrupt"])
@pytest.mark.parametrize("step", WRITE_STEPS)
def test_append_fault_at_each_step(spark, local_dir, step: str, kind: str) -> None:
    check, _ = delta_write_fault(spark, f"{local_dir}/t", step, kind, "append")
    assert check.ok, check.violations


@pytest.mark.parametrize("mode", ["overwrite", "replace_where", "schema_merge"])
@pytest.mark.parametrize("step", ["moved", "commit-reply-lost", "read-back"])
def test_other_write_modes_fault(spark, local_dir, mode: str, step: str) -> None:
    check, _ = delta_write_fault(spark, f"{local_dir}/t", step, "raise", mode)
    assert check.ok, check.violations


@pytest.mark.parametrize("step", ["moved", "read-back"])
def test_sigkill_during_write(spark, local_dir, step: str) -> None:
    check, _ = delta_write_fault(spark, f"{local_dir}/killed", step, "sigkill", "append")
    assert check.ok, check.violations


def test_merge_killed_midway_then_retried(spark, local_dir) -> None:
    uri = f"{local_dir}/merge"
    old = seed_table(spark, uri)
    source = [(2, 0, "changed"), *batch(100, 3)]
    new = sort_rows([r for r in old if r[0] != 2] + source)
    run_op_killed_after("merge", uri, 0.5, rows=source)
    check = Check()
    reader = DeltaTableStore(spark)
    check_after_fault(reader, uri, old, new, check)
    df = spark.createDataFrame(source, "id long, part int, name string")
    DeltaTableStore(spark).merge(df, uri, keys=["id"], transaction=AppTransaction("faults.merge", 1))
    compare_rows(table_rows(reader, uri), new, check, "after the retry")
    check_vacuum_leaves_only_referenced(reader, uri, check)
    assert check.ok, check.violations


def test_unknown_outcome_keeps_files_and_says_rerun(spark, local_dir) -> None:
    """When the log cannot be read after a failed commit, nothing is deleted."""
    uri = f"{local_dir}/unknown"
    old = seed_table(spark, uri)
    store = DeltaTableStore(spark)

    def reply_lost_then_log_unreadable(step: str, _uri: str) -> None:
        if step == "committed":
            raise InjectedFault("failed at commit-reply-lost")
        if step == "log_lookup":
            raise OSError("NameNode in safe mode")

    store.fault_hook = reply_lost_then_log_unreadable
    with pytest.raises(CommitOutcomeUnknownError, match="same app_id/app_version") as err:
        write_in_mode(spark, store, uri, "append")
    assert uri in str(err.value)
    check = Check()
    check_after_fault(DeltaTableStore(spark), uri, old, expected_rows(old, "append"), check)
    assert check.ok, check.violations


def test_no_staging_folder_left_behind(spark, local_dir) -> None:
    uri = f"{local_dir}/clean"
    seed_table(spark, uri)
    write_in_mode(spark, DeltaTableStore(spark), uri, "append")
    assert not HadoopFS(spark, uri).exists(f"{uri}/_staging")
