"""The flights chain's runner, job submission and task helpers."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from moulin.errors import DataError, MoulinError
from moulin.jobs.entry import build_parser
from moulin.jobs.registry import UnknownStageError, stages
from moulin.jobs.submit import (
    ENTRY_POINT,
    JobDataError,
    JobFailed,
    parse_result,
    spark_submit_command,
    submit_job,
)
from moulin.orchestration import safe_run_id
from moulin.settings import REPO_ROOT, load_settings
from moulin.sources.land import land_source
from moulin.sources.spec import load_spec
from moulin.storage import WarehouseFS
from moulin.usecases.flights import tasks as flights_tasks
from moulin.usecases.flights.runner import parse_months, plan, progress_lines
from moulin.usecases.flights.sources import prepare_sources


def test_parse_months_and_plan() -> None:
    assert parse_months("1-3,9") == [1, 2, 3, 9]
    assert parse_months("11,1,9,1") == [1, 9, 11]
    for bad in ("0", "13", "x", ""):
        with pytest.raises(MoulinError, match="months"):
            parse_months(bad)
    steps = plan([1, 9, 11])
    references = ["source_weather", "source_airlines", "source_planes", "source_airports"]
    assert [s.dag_id for s in steps] == ["source_flights"] * 3 + references + ["flights_delay_model"]
    assert {s.logical_date for s in steps[3:]} == {"2013-11-01"}
    assert len(plan()) == 17


def test_progress_lines_strip_airflow_decoration() -> None:
    out = "2026-01-01 [info] x\n[task] MOULIN-PROGRESS silver  3.0s  12 months\nother"
    assert progress_lines(out) == ["silver  3.0s  12 months"]


def test_job_result_line_and_submit_command(settings) -> None:
    assert parse_result('noise\nMOULIN-RESULT {"rows": 3}\n') == {"rows": 3}
    with pytest.raises(JobFailed):
        parse_result("no result here")
    cmd = spark_submit_command(settings, "features", ["--date", "2013-12-01"])
    assert cmd[0].endswith("spark-submit") and cmd[-2:] == ["--date", "2013-12-01"]
    # The application file is the top-level spark_jobs/ entry point, not a module inside moulin/.
    assert ENTRY_POINT == REPO_ROOT / "spark_jobs" / "run_stage.py" and ENTRY_POINT.is_file()
    assert cmd[cmd.index(str(ENTRY_POINT)) + 1] == "features"
    assert "--profile" in cmd and settings.spark.master in cmd
    train = spark_submit_command(settings, "train_flights", [])
    assert train[0] == str(Path(settings.training_python_path).with_name("spark-submit"))
    with pytest.raises(
        UnknownStageError, match="unknown stage 'no_such_job': registered stages are .*source_bronze"
    ):
        spark_submit_command(settings, "no_such_job", [])


def test_every_registered_stage_parses_its_arguments() -> None:
    parser = build_parser()
    required = {
        "source_bronze": ["--source", "x"],
        "privacy_erase": ["--request", "erase-20260101T000000-0123abcd"],
    }
    for name in stages():
        args = parser.parse_args([name, "--ds", "2013-01-01", *required.get(name, [])])
        assert args.stage == name and args.ds == "2013-01-01"
    # The application file spark-submit runs parses with the same parser: run as a script, it
    # lists every stage, and refuses an unknown one (exit code 2, argparse's).
    listed = subprocess.run([sys.executable, str(ENTRY_POINT), "--help"], capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert "run one registered moulin stage" in listed.stdout
    assert all(name in listed.stdout for name in stages())
    refused = subprocess.run(
        [sys.executable, str(ENTRY_POINT), "no_such_stage"], capture_output=True, text=True
    )
    assert refused.returncode == 2 and "invalid choice: 'no_such_stage'" in refused.stderr


def test_submit_job_runs_a_real_job_and_reports_failures(settings, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MOULIN_HOME", str(tmp_path))  # a private warehouse for the job
    settings = replace(settings, spark=replace(settings.spark, job_server=False))  # spark-submit per job
    prepare_sources(load_settings("local"), [2], sample_per_month=20)
    land_source(load_settings("local"), load_spec("flights"), "2013-02-01")
    result = submit_job(settings, "source_bronze", ["--source", "flights", "--date", "2013-02-01", "--no-ge"])
    assert result["rows_bronze"] + result["rows_quarantined"] == 20 and result["ds"] == "2013-02-01"
    with pytest.raises(JobFailed, match="code 1") as failed:
        submit_job(
            settings, "source_bronze", ["--source", "flights", "--date", "2013-07-01"]
        )  # nothing landed for July: may come later
    assert not isinstance(failed.value, DataError)
    with pytest.raises(JobDataError, match="no source spec 'nowhere'"):
        submit_job(settings, "source_bronze", ["--source", "nowhere", "--ds", "2013-07-01"])


def test_safe_run_id_and_totals() -> None:
    assert safe_run_id("manual__2026-11-25T21:36:34+00:00") == "manual__2026-11-25T21_36_34_00_00"
    assert flights_tasks._total({"train": 2, "test": 3}) == 5
    assert flights_tasks._total(None) is None


def test_quality_records_sum_monthly_landings_and_check_the_feature_accounting(settings, tmp_path) -> None:
    settings = replace(settings, home=tmp_path)
    fs = WarehouseFS(settings)
    for ds, read, bad in (("2013-01-01", 100, 2), ("2013-02-01", 50, 0)):
        record = {"rows_read": read, "rows_bronze": read - bad, "rows_quarantined": bad, "threshold": 0.01,
                  "passed": True, "failures": {"parses:dep_delay": bad} if bad else {}}  # fmt: skip
        fs.write_bytes(
            settings.table_uri("quality", "runs", "flights", f"ds={ds}.json"), json.dumps(record).encode()
        )
    features = {"rows": 140, "silver": {"rows": 148, "cancelled": 8}}
    records = flights_tasks.quality_records(settings, features)
    bronze = next(r for r in records if r["source"] == "flights" and r["stage"] == "bronze")
    assert (bronze["rows_read"], bronze["rows_out"], bronze["rows_rejected"]) == (150, 148, 2)
    assert bronze["quarantine_by_reason"] == {"parses:dep_delay": 2}
    feats = next(r for r in records if r["stage"] == "features")
    assert feats["rows_read"] == feats["rows_out"] + feats["rows_rejected"] and feats["passed"]


def test_dag_runs_in_one_process_stop_at_the_first_failure(settings, tmp_path) -> None:
    from moulin.orchestration import DagTest, ensure_airflow_db, run_dag_tests

    ensure_airflow_db(settings)
    said: list[str] = []
    runs = [DagTest("platform_health", "2013-01-01", "health"), DagTest("no_such_dag", "2013-01-01")]
    with pytest.raises(
        MoulinError, match=r"DAG run no_such_dag @ 2013-01-01 failed .*no_such_dag-2013-01-01.log"
    ):
        run_dag_tests(settings, runs, tmp_path, said.append)
    assert said[0].startswith("[1/2] health (platform_health @ 2013-01-01)") and "done in" in said[1]
    assert (tmp_path / "platform_health-2013-01-01.log").read_text()
    assert "could not be found" in (tmp_path / "no_such_dag-2013-01-01.log").read_text()
