"""Fault injection for moulin's write paths, and the invariants checked after each fault.

Used by the fault tests (``tests/integration/test_delta_faults.py``) and by
``benchmarks/faults.py``.  A fault is a write path, a named step and a kind:

* ``raise``: an ordinary exception at that step (a timeout, a DataNode error);
* ``interrupt``: a ``BaseException`` at that step, as Airflow raises on SIGTERM;
* ``sigkill``: the writing process is killed at that step (run in a subprocess,
  see :func:`run_killed_write`).

After the fault the checker reads the table: every committed version readable,
no log entry pointing to a missing file, the table at its old or its new
content and nothing in between, then (after the retry) exactly the expected
rows, and after VACUUM no file on disk that the table does not reference.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

FaultKind = Literal["raise", "interrupt", "sigkill"]
# Named steps of DeltaTableStore.write; "commit-reply-lost" fails after the commit
# landed (the call raised although the log holds it), "read-back" fails the read of
# the committed version.
WRITE_STEPS = ("staged", "moved", "before_commit", "commit-reply-lost", "read-back", "before_metadata")
# ... and the store's fault-hook step (moulin.delta.write_protocol.WriteStep) each fires at
_HOOK_STEPS = {step: step for step in WRITE_STEPS} | {
    "commit-reply-lost": "committed",
    "read-back": "read_back",
}
REPO = Path(__file__).resolve().parents[1]


class InjectedFault(Exception):
    """An ordinary failure injected at a named step."""


class InjectedInterrupt(BaseException):  # noqa: N818 - mirrors KeyboardInterrupt / SIGTERM
    """An interrupt injected at a named step (what a SIGTERM handler raises)."""


def _fail(kind: FaultKind, step: str) -> None:
    if kind == "sigkill":
        os.kill(os.getpid(), 9)
    if kind == "interrupt":
        raise InjectedInterrupt(f"interrupted at {step}")
    raise InjectedFault(f"failed at {step}")


def arm(store, step: str, kind: FaultKind, once: bool = True) -> None:
    """Make ``store``'s next write fail at ``step`` with ``kind``."""
    state = {"fired": False}

    def should_fire() -> bool:
        if once and state["fired"]:
            return False
        state["fired"] = True
        return True

    at_step = _HOOK_STEPS.get(step)
    if at_step is None:
        raise ValueError(f"unknown write step {step!r}: use one of {WRITE_STEPS}")

    def hook(at: str, _uri: str) -> None:
        if at == at_step and should_fire():
            _fail(kind, step)

    store.fault_hook = hook


def disarm(store) -> None:
    """Remove every injected fault from ``store``."""
    store.fault_hook = None


@dataclass
class Check:
    """Invariant violations found on one table."""

    violations: list[str] = field(default_factory=list)
    rows_lost: int = 0
    rows_duplicated: int = 0

    def add(self, what: str) -> None:
        self.violations.append(what)

    @property
    def ok(self) -> bool:
        return not self.violations and not self.rows_lost and not self.rows_duplicated


def sort_rows(rows) -> list[tuple]:
    """Rows as tuples in one order whatever their values (None first)."""
    return sorted((tuple(r) for r in rows), key=lambda r: [(v is not None, str(v)) for v in r])


def table_rows(store, uri: str, version: int | None = None) -> list[tuple]:
    """All rows of a version, sorted by :func:`sort_rows`."""
    return sort_rows(store.read(uri, version=version).collect())


def check_versions(store, uri: str, check: Check) -> None:
    """Every committed version reads, and every file its log names exists."""
    from moulin.delta.hadoop_fs import HadoopFS

    fs = HadoopFS(store.spark, uri)
    latest = store.version(uri)
    for version in range(latest + 1):
        try:
            uris = store.file_uris(uri, version=version)
        except Exception as exc:  # noqa: BLE001 - reported as a violation
            check.add(f"version {version}: log unreadable ({type(exc).__name__}: {exc})")
            continue
        missing = [u for u in uris if not fs.exists(u)]
        if missing:
            check.add(
                f"version {version}: {len(missing)} file(s) named by the log are missing: {missing[:2]}"
            )
            continue
        try:
            store.read(uri, version=version).count()
        except Exception as exc:  # noqa: BLE001
            check.add(f"version {version}: unreadable ({type(exc).__name__}: {str(exc)[:200]})")


def compare_rows(actual: list[tuple], expected: list[tuple], check: Check, what: str) -> None:
    """Rows lost and duplicated between ``expected`` and ``actual`` (multisets)."""
    from collections import Counter

    have, want = Counter(actual), Counter(expected)
    lost = sum((want - have).values())
    extra = sum((have - want).values())
    if lost or extra:
        check.add(f"{what}: {lost} row(s) lost, {extra} row(s) extra")
    check.rows_lost += lost
    check.rows_duplicated += extra


def check_after_fault(store, uri: str, old_rows: list[tuple], new_rows: list[tuple], check: Check) -> None:
    """Right after the fault: all versions intact and the table at old or new content."""
    check_versions(store, uri, check)
    try:
        rows = table_rows(store, uri)
    except Exception as exc:  # noqa: BLE001
        check.add(f"latest version unreadable: {type(exc).__name__}: {str(exc)[:200]}")
        return
    if rows != old_rows and rows != new_rows:
        compare_rows(rows, new_rows, check, "table neither at its old nor at its new content")


def check_vacuum_leaves_only_referenced(store, uri: str, check: Check) -> None:
    """VACUUM (retention 0) removes every orphan; only the latest snapshot's files remain."""
    from moulin.delta.hadoop_fs import HadoopFS

    store.vacuum(uri, retention_hours=0, force=True)
    fs = HadoopFS(store.spark, uri)
    on_disk = {
        f.relative
        for f in fs.list_files(uri)
        if not f.relative.startswith("_delta_log/")
        and not f.relative.rsplit("/", 1)[-1].startswith((".", "_"))
    }
    referenced = {u[len(uri) + 1 :] for u in store.file_uris(uri)}
    if on_disk - referenced:
        check.add(f"after VACUUM, unreferenced files remain: {sorted(on_disk - referenced)[:3]}")
    if referenced - on_disk:
        check.add(f"after VACUUM, referenced files are missing: {sorted(referenced - on_disk)[:3]}")
    if fs.exists(f"{uri}/_staging"):
        check.add("after VACUUM, the _staging folder remains")


_KILLED_WRITE = r"""
import json, sys
from moulin.settings import load_settings
from moulin.spark import build_spark_session
from moulin.delta import AppTransaction, DeltaTableStore
sys.path.insert(0, {tests!r})
import fault_harness

spec = json.loads(sys.argv[1])
spark = build_spark_session(load_settings("local"), app_name="moulin-fault")
store = DeltaTableStore(spark)
df = spark.createDataFrame(spec["rows"], spec["schema"])
fault_harness.arm(store, spec["step"], "sigkill")
store.write(df, spec["uri"], mode=spec["mode"], partition_by=spec["partition_by"],
            transaction=AppTransaction(spec["app_id"], spec["app_version"]))
print("FAULT NOT FIRED")
"""


def run_killed_write(
    uri: str,
    rows: list[tuple],
    schema: str,
    step: str,
    mode: str = "append",
    partition_by: list[str] | None = None,
    app_id: str = "faults.write",
    app_version: int = 1,
    timeout_s: float = 300,
) -> float:
    """Run one write in a new process that SIGKILLs itself at ``step``; its wall seconds.

    Raises AssertionError if the process was not killed (the fault did not fire).
    """
    spec = {
        "uri": uri,
        "rows": [list(r) for r in rows],
        "schema": schema,
        "step": step,
        "mode": mode,
        "partition_by": partition_by,
        "app_id": app_id,
        "app_version": app_version,
    }
    code = _KILLED_WRITE.format(tests=str(Path(__file__).resolve().parent))
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    elapsed = time.monotonic() - start
    if proc.returncode != -9:
        raise AssertionError(
            f"the write at step {step} was not killed (exit {proc.returncode}): {proc.stdout[-500:]} "
            f"{proc.stderr[-2000:]}"
        )
    return elapsed


def timed(action: Callable[[], object]) -> tuple[object, float]:
    """``action()`` and its wall seconds."""
    start = time.monotonic()
    out = action()
    return out, time.monotonic() - start


# ---------------------------------------------------------------- Delta write faults
WRITE_SCHEMA = "id long, part int, name string"
WRITE_MODES = ("append", "overwrite", "replace_where", "schema_merge")


def batch(offset: int, n: int = 6) -> list[tuple]:
    """Rows ``(id, id % 2, "n<id>")`` from ``offset``."""
    return [(i, i % 2, f"n{i}") for i in range(offset, offset + n)]


def seed_table(spark, uri: str) -> list[tuple]:
    """A two-partition table of six rows (version 0); its rows."""
    from moulin.delta import AppTransaction, DeltaTableStore

    DeltaTableStore(spark).write(
        spark.createDataFrame(batch(0), WRITE_SCHEMA),
        uri,
        partition_by=["part"],
        transaction=AppTransaction("seed", 0),
    )
    return sort_rows(batch(0))


def write_in_mode(spark, store, uri: str, mode: str, app_version: int = 1):
    """The faulted write of ``mode`` (rows 100..105), idempotent as ``faults.write``."""
    from moulin.delta import AppTransaction

    rows = batch(100)
    kwargs: dict = {"transaction": AppTransaction("faults.write", app_version)}
    if mode == "replace_where":
        rows = [r for r in rows if r[1] == 0]
        kwargs.update(mode="overwrite", replace_where={"part": 0})
    elif mode == "schema_merge":
        df = spark.createDataFrame([(*r, r[0] * 2) for r in rows], WRITE_SCHEMA + ", extra long")
        return store.write(df, uri, schema_mode="merge", **kwargs)
    else:
        kwargs["mode"] = mode
    return store.write(spark.createDataFrame(rows, WRITE_SCHEMA), uri, **kwargs)


def expected_rows(old: list[tuple], mode: str) -> list[tuple]:
    """The table's rows after a clean write of ``mode`` over ``old``."""
    new = batch(100)
    if mode == "overwrite":
        return sort_rows(new)
    if mode == "replace_where":
        return sort_rows([r for r in old if r[1] != 0] + [r for r in new if r[1] == 0])
    if mode == "schema_merge":
        return sort_rows([(*r, None) for r in old] + [(*r, r[0] * 2) for r in new])
    return sort_rows(old + new)


def delta_write_fault(spark, uri: str, step: str, kind: FaultKind, mode: str) -> tuple[Check, float]:
    """Seed, fault one write at ``step``, check, retry, check, VACUUM, check; (check, retry seconds)."""
    from moulin.delta import DeltaStoreError, DeltaTableStore

    old = seed_table(spark, uri)
    new = expected_rows(old, mode)
    check = Check()
    if kind == "sigkill":
        if mode != "append":
            raise ValueError("sigkill faults run appends")
        run_killed_write(uri, batch(100), WRITE_SCHEMA, step, app_id="faults.write", app_version=1)
    else:
        store = DeltaTableStore(spark)
        arm(store, step, kind)
        try:
            write_in_mode(spark, store, uri, mode)
        except (InjectedFault, InjectedInterrupt, DeltaStoreError):
            pass
        disarm(store)
    reader = DeltaTableStore(spark)
    check_after_fault(reader, uri, _widen(old, mode, reader, uri), new, check)
    _, seconds = timed(lambda: write_in_mode(spark, DeltaTableStore(spark), uri, mode))
    compare_rows(table_rows(reader, uri), new, check, "after the retry")
    check_vacuum_leaves_only_referenced(reader, uri, check)
    compare_rows(table_rows(reader, uri), new, check, "after VACUUM")
    return check, seconds


def _widen(old: list[tuple], mode: str, store, uri: str) -> list[tuple]:
    """The old rows with a null ``extra`` when the table already has that column."""
    if mode == "schema_merge" and "extra" in store.read(uri).columns:
        return sort_rows([(*r, None) for r in old])
    return old


# ---------------------------------------------------------------- killed operations
_KILLED_OP = r"""
import json, sys, time
from moulin.settings import load_settings
from moulin.spark import build_spark_session
from moulin.delta import AppTransaction, DeltaTableStore

spec = json.loads(sys.argv[1])
spark = build_spark_session(load_settings("local"), app_name="moulin-fault-op")
store = DeltaTableStore(spark)
uri = spec["uri"]
if spec["op"] == "merge":
    df = spark.createDataFrame(spec["rows"], spec["schema"])
    df = df.cache(); df.count()
    print("READY", flush=True)
    store.merge(df, uri, keys=["id"], transaction=AppTransaction("faults.merge", 1))
elif spec["op"] == "optimize":
    print("READY", flush=True)
    store.optimize(uri)
elif spec["op"] == "vacuum":
    print("READY", flush=True)
    store.vacuum(uri, retention_hours=0, force=True)
print("DONE", flush=True)
time.sleep(600)
"""


def run_op_killed_after(op: str, uri: str, delay_s: float, rows=None, schema: str = WRITE_SCHEMA) -> str:
    """Run ``op`` (merge|optimize|vacuum) in a new process, SIGKILL it ``delay_s`` after it starts.

    Returns ``"killed"`` or ``"finished"`` (the operation ended before the kill).
    """
    spec = {"op": op, "uri": uri, "rows": [list(r) for r in (rows or [])], "schema": schema}
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_OP, json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("READY"):
                break
        else:
            raise AssertionError(f"the {op} process ended before it was ready (exit {proc.wait()})")
        time.sleep(delay_s)
        finished = False
        import select

        ready, _, _ = select.select([proc.stdout], [], [], 0)
        if ready and proc.stdout.readline().startswith("DONE"):
            finished = True
        proc.kill()
        proc.wait(60)
        return "finished" if finished else "killed"
    finally:
        if proc.poll() is None:
            proc.kill()
