"""Fault campaign: every write path faulted at every named step, then checked against its invariants.

    .venv/bin/python benchmarks/faults.py [--runs 1] [--hdfs] [--writers 8 --appends 20] [--skip-kills]

Runs on the ``local`` profile under a temporary MOULIN_HOME (with ``--hdfs`` the
warehouse-file faults also run on a local HDFS started for the run).  For each
fault it prints: the fault, where it was injected, runs, invariant violations
(must be 0), rows lost (must be 0) and the recovery time (the retry until the
table or file is whole again).  Invariants (``tests/fault_harness.py``): every
committed version readable, no log entry naming a missing file, the table at its
old or new content and nothing in between, exactly the expected rows after the
retry (no loss, no duplicate), and no unreferenced file after the next VACUUM.
Exit status 1 when any fault has a violation.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


@dataclass
class Row:
    fault: str
    where: str
    runs: int = 0
    violations: list[str] = field(default_factory=list)
    rows_lost: int = 0
    recovery_s: list[float] = field(default_factory=list)


class Report:
    def __init__(self) -> None:
        self.rows: list[Row] = []

    def add(self, fault: str, where: str, check, seconds: float) -> None:
        row = next((r for r in self.rows if r.fault == fault and r.where == where), None)
        if row is None:
            row = Row(fault, where)
            self.rows.append(row)
        row.runs += 1
        row.violations += check.violations
        row.rows_lost += check.rows_lost
        row.recovery_s.append(seconds)
        status = "ok" if check.ok else f"VIOLATION {check.violations[:2]}"
        print(f"  {fault:<34} {where:<36} {status}", flush=True)

    def print(self) -> int:
        head = f"| {'fault':<34} | {'where injected':<36} | runs | violations | rows lost | recovery s |"
        print("\n" + head)
        print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
        bad = 0
        for r in self.rows:
            rec = max(r.recovery_s) if r.recovery_s else 0.0
            print(
                f"| {r.fault:<34} | {r.where:<36} | {r.runs:>4} | {len(r.violations):>10} | "
                f"{r.rows_lost:>9} | {rec:>10.2f} |"
            )
            bad += len(r.violations) + r.rows_lost
        total = sum(r.runs for r in self.rows)
        print(f"\n{total} fault runs, {bad} invariant violations / rows lost")
        for r in self.rows:
            for v in r.violations:
                print(f"  {r.fault} @ {r.where}: {v}")
        return 1 if bad else 0


def delta_writes(spark, base: str, report: Report, runs: int, kills: bool) -> None:
    import fault_harness as fh

    n = 0
    for mode in fh.WRITE_MODES:
        kinds = ["raise", "interrupt"] + (["sigkill"] if kills and mode == "append" else [])
        for step in fh.WRITE_STEPS:
            for kind in kinds:
                for _ in range(runs):
                    n += 1
                    check, seconds = fh.delta_write_fault(spark, f"{base}/w{n}", step, kind, mode)
                    report.add(f"Delta {mode} ({kind})", f"write step {step}", check, seconds)


def killed_operations(spark, base: str, report: Report, delays: list[float]) -> None:
    import fault_harness as fh

    from moulin.delta import AppTransaction, DeltaTableStore

    for n, delay in enumerate(delays):
        # MERGE: an update, inserts; killed at `delay` seconds into the operation
        uri = f"{base}/merge{n}"
        old = fh.seed_table(spark, uri)
        source = [(2, 0, "changed"), *fh.batch(100, 3)]
        new = fh.sort_rows([r for r in old if r[0] != 2] + source)
        outcome = fh.run_op_killed_after("merge", uri, delay, rows=source)
        check = fh.Check()
        reader = DeltaTableStore(spark)
        fh.check_after_fault(reader, uri, old, new, check)
        df = spark.createDataFrame(source, fh.WRITE_SCHEMA)
        _, seconds = fh.timed(
            lambda df=df, uri=uri: DeltaTableStore(spark).merge(
                df, uri, keys=["id"], transaction=AppTransaction("faults.merge", 1)
            )
        )
        fh.compare_rows(fh.table_rows(reader, uri), new, check, "after the retry")
        fh.check_vacuum_leaves_only_referenced(reader, uri, check)
        report.add("MERGE (sigkill)", f"{delay:.1f} s in ({outcome})", check, seconds)

        # OPTIMIZE: rows never change
        uri = f"{base}/optimize{n}"
        fh.seed_table(spark, uri)
        many = spark.range(1000, 21000).selectExpr(
            "id", "cast(id % 2 as int) as part", "concat('n', id) as name"
        )
        DeltaTableStore(spark, compaction=None).write(many.repartition(60), uri)  # ~120 small files
        rows = fh.table_rows(reader, uri)
        outcome = fh.run_op_killed_after("optimize", uri, delay)
        check = fh.Check()
        fh.check_after_fault(reader, uri, rows, rows, check)
        _, seconds = fh.timed(lambda uri=uri: DeltaTableStore(spark).optimize(uri))
        fh.compare_rows(fh.table_rows(reader, uri), rows, check, "after the retry")
        fh.check_vacuum_leaves_only_referenced(reader, uri, check)
        report.add("OPTIMIZE (sigkill)", f"{delay:.1f} s in ({outcome})", check, seconds)

        # VACUUM: the latest version stays whole
        uri = f"{base}/vacuum{n}"
        fh.seed_table(spark, uri)
        DeltaTableStore(spark).write(
            spark.createDataFrame(fh.batch(300), fh.WRITE_SCHEMA), uri, mode="overwrite"
        )
        rows = fh.table_rows(reader, uri)
        outcome = fh.run_op_killed_after("vacuum", uri, delay)
        check = fh.Check()
        try:
            fh.compare_rows(fh.table_rows(reader, uri), rows, check, "latest version after the kill")
        except Exception as exc:  # noqa: BLE001
            check.add(f"latest version unreadable after the kill: {exc}")
        _, seconds = fh.timed(
            lambda uri=uri, check=check, reader=reader: fh.check_vacuum_leaves_only_referenced(
                reader, uri, check
            )
        )
        fh.compare_rows(fh.table_rows(reader, uri), rows, check, "after the retry")
        report.add("VACUUM (sigkill)", f"{delay:.1f} s in ({outcome})", check, seconds)


class _Boom(Exception):
    pass


def _arm_fs(fs, step: str, occurrence: int) -> dict:
    """Fail ``fs``'s ``occurrence``-th pass through ``step``; the returned dict says if it fired."""
    seen = {"n": 0, "fired": False}

    def hook(at: str) -> None:
        if at == step:
            seen["n"] += 1
            if seen["n"] == occurrence:
                seen["fired"] = True
                raise _Boom(f"failed at {step} #{occurrence}")

    fs.fault_hook = hook
    return seen


def _fired(armed: dict, check) -> None:
    if not armed["fired"]:
        check.add("the fault did not fire (step not reached): the run proves nothing")


def warehouse_files(settings, report: Report, where: str, tmp: Path) -> None:
    """Raw landing with its manifest, SQL extraction with its watermark, checkpoint files."""
    import fault_harness as fh

    from moulin.ingest.database import extract_to_landing, read_watermark
    from moulin.ingest.landing import land_file, read_manifest
    from moulin.storage import WarehouseFS

    # A replaced file is backed up first on HDFS only (locally os.replace is atomic).
    steps = ["tmp_written", "renamed"] + (["backup_made"] if settings.warehouse.startswith("hdfs") else [])
    payload = tmp / "drop.csv"
    payload.write_bytes(b"a,b\n" + b"".join(f"{i},{i * i}\n".encode() for i in range(5000)))
    n = 0
    for step in steps:
        # Only replaced files are backed up: the manifest here, never a new raw file.
        targets = [(1, "manifest")] if step == "backup_made" else [(1, "raw file"), (2, "manifest")]
        for occurrence, what in targets:
            n += 1
            source = f"faults_land_{n}"
            fs = WarehouseFS(settings)
            # an earlier landing of another file, so the manifest exists and is replaced
            other = tmp / f"first_{n}.csv"
            other.write_bytes(b"a,b\n1,1\n")
            land_file(settings, source, "2013-01-01", other, fs=fs)
            armed = _arm_fs(fs, step, occurrence)
            check = fh.Check()
            try:
                land_file(settings, source, "2013-01-01", payload, fs=fs)
            except _Boom:
                pass
            _fired(armed, check)
            fresh = WarehouseFS(settings)
            start = time.monotonic()
            landing = land_file(settings, source, "2013-01-01", payload, fs=fresh)
            seconds = time.monotonic() - start
            manifest = read_manifest(settings, source, "2013-01-01", fresh) or {}
            files = {f["file"]: f for f in manifest.get("files", [])}
            if set(files) != {other.name, payload.name}:
                check.add(f"manifest lists {sorted(files)}")
            elif files[payload.name]["rows"] != 5000 or files[payload.name]["size"] != payload.stat().st_size:
                check.add(f"manifest entry wrong: {files[payload.name]}")
                check.rows_lost += max(0, 5000 - int(files[payload.name]["rows"]))
            if (
                fresh.read_bytes(files.get(payload.name, {}).get("uri", landing.manifest_uri))
                != payload.read_bytes()
            ):
                check.add("landed bytes differ from the source file")
            report.add(f"raw landing ({where})", f"{what}: {step}", check, seconds)

    db = tmp / "source.db"

    def extract(source: str, ds: str, fs: WarehouseFS | None = None):
        return extract_to_landing(
            settings, source, ds, f"sqlite:///{db}", ["tailnum"], tmp / "stage", table="planes",
            watermark="plane_id", fs=fs,
        )  # fmt: skip

    for step in steps:
        # A new ds has a new extract and manifest: only the watermark file is replaced (backed up).
        targets = (
            [(1, "watermark")]
            if step == "backup_made"
            else [(1, "raw JSON lines"), (2, "manifest"), (3, "watermark")]
        )
        for occurrence, what in targets:
            n += 1
            source = f"faults_sql_{n}"
            if db.exists():
                db.unlink()
            with sqlite3.connect(db) as conn:
                conn.execute("CREATE TABLE planes (plane_id INTEGER, tailnum TEXT)")
                conn.executemany("INSERT INTO planes VALUES (?, ?)", [(i, f"N{i}") for i in range(1, 101)])
            extract(source, "2013-01-01")
            with sqlite3.connect(db) as conn:
                conn.executemany("INSERT INTO planes VALUES (?, ?)", [(i, f"N{i}") for i in range(101, 151)])
            fs = WarehouseFS(settings)
            armed = _arm_fs(fs, step, occurrence)
            check = fh.Check()
            try:
                extract(source, "2013-02-01", fs)
            except _Boom:
                pass
            _fired(armed, check)
            start = time.monotonic()
            landing = extract(source, "2013-02-01")
            seconds = time.monotonic() - start
            if landing.rows != 50:
                check.add(f"second extraction landed {landing.rows} rows, expected 50")
                check.rows_lost += max(0, 50 - landing.rows)
            if read_watermark(settings, source) != 150:
                check.add(f"watermark {read_watermark(settings, source)}, expected 150")
            third = extract(source, "2013-03-01")
            if third.rows != 0:
                check.add(f"a third extraction re-read {third.rows} rows (duplicates)")
            report.add(f"SQL extraction ({where})", f"{what}: {step}", check, seconds)

    for step in steps:
        n += 1
        fs = WarehouseFS(settings)
        uri = settings.table_uri("models", "faults", f"run{n}", "checkpoints", "epoch-001.pt")
        old, new = b"old weights" * 1000, b"new weights" * 1200
        fs.write_bytes(uri, old)
        armed = _arm_fs(fs, step, 1)
        check = fh.Check()
        try:
            fs.write_bytes(uri, new)
        except _Boom:
            pass
        _fired(armed, check)
        start = time.monotonic()
        content = WarehouseFS(settings).read_bytes(uri)
        seconds = time.monotonic() - start
        if content not in (old, new):
            check.add(f"checkpoint holds {len(content)} bytes: neither old nor new")
        report.add(f"checkpoint write ({where})", f"replace: {step}", check, seconds)


_APPENDER = r"""
import json, sys, time
from moulin.settings import load_settings
from moulin.spark import build_spark_session
from moulin.delta import AppTransaction, DeltaTableStore

spec = json.loads(sys.argv[1])
spark = build_spark_session(load_settings("local"), app_name=f"appender-{spec['writer']}")
store = DeltaTableStore(spark)
retried = 0
for i in range(spec["appends"]):
    rows = [(spec["writer"] * 1000 + i, spec["writer"], i)]
    for attempt in range(20):
        try:
            store.write(spark.createDataFrame(rows, "id long, writer int, i int"), spec["uri"],
                        transaction=AppTransaction(f"writer-{spec['writer']}", i))
            break
        except Exception as exc:
            retried += 1
            time.sleep(0.2 * (attempt + 1))
    else:
        raise SystemExit(f"append {i} never landed")
print(json.dumps({"retried": retried}))
"""


def concurrent_appends(spark, base: str, writers: int, appends: int) -> dict:
    """``writers`` processes append ``appends`` times each to one table at once."""
    import subprocess

    from moulin.delta import AppTransaction, DeltaTableStore

    uri = f"{base}/concurrent"
    DeltaTableStore(spark).write(
        spark.createDataFrame([(-1, -1, -1)], "id long, writer int, i int"),
        uri,
        transaction=AppTransaction("seed", 0),
    )
    start = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _APPENDER, json.dumps({"uri": uri, "writer": w, "appends": appends})],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=REPO,
        )
        for w in range(writers)
    ]
    outs = [p.communicate(timeout=3600)[0] for p in procs]
    wall = time.monotonic() - start
    retried = sum(json.loads(o.strip().splitlines()[-1])["retried"] for o in outs if o.strip())
    ids = [r.id for r in DeltaTableStore(spark).read(uri).select("id").collect() if r.id >= 0]
    expected = {w * 1000 + i for w in range(writers) for i in range(appends)}
    return {
        "writers": writers,
        "appends": appends,
        "failed_processes": sum(1 for p in procs if p.returncode != 0),
        "rows_expected": len(expected),
        "rows_landed": len(set(ids)),
        "duplicates": len(ids) - len(set(ids)),
        "lost": len(expected - set(ids)),
        "retries_after_conflict": retried,
        "versions": DeltaTableStore(spark).version(uri),
        "wall_s": round(wall, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1, help="runs of each raise/interrupt fault")
    parser.add_argument("--hdfs", action="store_true", help="also fault warehouse files on a local HDFS")
    parser.add_argument("--skip-kills", action="store_true", help="no SIGKILLed processes (faster)")
    parser.add_argument("--writers", type=int, default=8, help="concurrent appending processes (0: skip)")
    parser.add_argument("--appends", type=int, default=20, help="appends per process")
    parser.add_argument(
        "--delays", default="0.1,0.5,1.0,2.0", help="seconds before killing MERGE/OPTIMIZE/VACUUM"
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="moulin-faults-"))
    env = {"MOULIN_HOME": str(tmp / "home"), "MOULIN_SPARK_MASTER": "local[2]"}
    if args.hdfs:
        from moulin.cluster.ports import free_hdfs_port_env

        env.update(free_hdfs_port_env())
    os.environ.update(env)
    from moulin.settings import load_settings
    from moulin.spark import build_spark_session

    settings = load_settings("local")
    spark = build_spark_session(settings, app_name="moulin-faults")
    spark.sparkContext.setLogLevel("ERROR")
    base = (tmp / "tables").as_uri()
    report = Report()
    cluster = None
    try:
        print("Delta writes ...", flush=True)
        delta_writes(spark, base, report, args.runs, not args.skip_kills)
        if not args.skip_kills:
            print("killed MERGE / OPTIMIZE / VACUUM ...", flush=True)
            killed_operations(spark, base, report, [float(d) for d in args.delays.split(",")])
        print("warehouse files (local) ...", flush=True)
        warehouse_files(settings, report, "local", tmp)
        if args.hdfs:
            from moulin.cluster.local import LocalCluster

            hdfs_settings = load_settings("hdfs-local")
            cluster = LocalCluster(hdfs_settings, log=lambda msg: None)
            cluster.up()
            print("warehouse files (HDFS) ...", flush=True)
            warehouse_files(hdfs_settings, report, "HDFS", tmp)
        status = report.print()
        if args.writers:
            print(f"\n{args.writers} processes x {args.appends} appends to one table ...", flush=True)
            figures = concurrent_appends(spark, base, args.writers, args.appends)
            print(json.dumps(figures, indent=1))
            if figures["lost"] or figures["duplicates"] or figures["failed_processes"]:
                status = 1
        return status
    finally:
        if cluster is not None:
            cluster.down()
        spark.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
