"""The job server: platform stages of many tasks on one long-lived Spark application."""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from moulin.errors import DataError, MoulinError
from moulin.jobs.server import (
    CANCEL_GRACE_S,
    cancel_stage,
    process_alive,
    run_dir,
    run_stage,
    server_name,
    servers,
    stop_servers,
)
from moulin.jobs.submit import JobDataError, JobFailed, submit_job
from moulin.settings import load_settings
from moulin.sources.land import land_source
from moulin.sources.spec import load_spec
from moulin.usecases.flights.sources import flight_drop_path, prepare_flight_drops


@pytest.fixture
def private_home(settings, tmp_path, monkeypatch):
    """A private MOULIN_HOME (and so a server of its own), stopped at the end."""
    monkeypatch.setenv("MOULIN_HOME", str(tmp_path))
    job_settings = load_settings("local")
    yield job_settings
    stop_servers(job_settings)


#: A test-only stage, registered in the job server's process through a ``sitecustomize`` module.
HOLD_STAGE = '''
"""A test-only stage of tests/integration/test_job_server.py."""

import time

from moulin.jobs.registry import stage


def _arguments(parser):
    parser.add_argument("--release", default="", help="the file whose creation ends the hold")
    parser.add_argument("--max-s", type=float, default=0.0, help="the longest hold")


@stage("hold_spark_task", arguments=_arguments)
def hold_spark_task(ctx, args):
    """Run one Spark task that holds until the file --release exists (at most --max-s seconds)."""
    release, max_s = args.release, args.max_s

    def hold(_):
        import os
        import time

        end = time.monotonic() + max_s
        while not (release and os.path.exists(release)) and time.monotonic() < end:
            time.sleep(0.05)
        return [bool(release) and os.path.exists(release)]

    print("MOULIN-TEST holding", flush=True)
    started = time.monotonic()
    released = ctx.spark.sparkContext.parallelize([0], 1).flatMap(hold).collect()
    return {"released": released == [True], "held_s": time.monotonic() - started}
'''


@pytest.fixture
def hold_stage(private_home, tmp_path, monkeypatch):
    """Settings whose job server (a process of its own) also has the stage ``hold_spark_task``."""
    folder = tmp_path / "test-stages"
    folder.mkdir()
    (folder / "moulin_test_stages.py").write_text(HOLD_STAGE)
    (folder / "sitecustomize.py").write_text("import moulin_test_stages  # noqa: F401\n")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    )
    return private_home


class _Caller:
    """``run_stage`` in a thread of its own, its relayed lines in a queue, its outcome kept."""

    def __init__(self, settings, argv: list[str], timeout_s: float) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.outcome: dict | Exception | None = None
        self._thread = threading.Thread(target=self._call, args=(settings, argv, timeout_s), daemon=True)
        self._thread.start()

    def _call(self, settings, argv: list[str], timeout_s: float) -> None:
        try:
            self.outcome = run_stage(settings, "hold_spark_task", argv, timeout_s, self.lines.put)
        except Exception as exc:  # noqa: BLE001 - checked by the test
            self.outcome = exc

    def wait_for_line(self, text: str, timeout_s: float) -> str:
        """The first relayed line containing ``text`` (fails after ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if not self._thread.is_alive() and self.lines.empty():
                    break  # the call ended without that line
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} within {timeout_s}s; got {self.seen}, {self.outcome!r}")

    def result(self, timeout_s: float) -> dict | Exception | None:
        """Its outcome, once the call returned (fails after ``timeout_s``)."""
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), f"run_stage still waits after {timeout_s}s"
        return self.outcome


def _server_pid(settings) -> int:
    found = servers(settings)
    assert len(found) == 1, found
    return found[0].pid


def _landed(settings, month: int, sample: int) -> list[str]:
    """The arguments of the bronze stage of flights for ``month``, its drop of ``sample``
    flights landed first (in this process, as the source DAG's land task does)."""
    ds = f"2013-{month:02d}-01"
    prepare_flight_drops(flight_drop_path(settings, month).parent, [month], sample)
    land_source(settings, load_spec("flights"), ds)
    return ["--source", "flights", "--date", ds, "--no-ge"]


def test_stages_share_one_server_and_fail_as_under_spark_submit(private_home, capsys) -> None:
    settings = private_home
    first = submit_job(settings, "source_bronze", _landed(settings, 2, 20))
    pid = _server_pid(settings)
    assert first["rows_read"] == 20 and first["ds"] == "2013-02-01"
    second = submit_job(settings, "source_bronze", _landed(settings, 3, 30))
    assert second["rows_read"] == 30 and _server_pid(settings) == pid  # the same application served both
    assert second["rows_bronze"] + second["rows_quarantined"] == 30
    assert "MOULIN-PROGRESS" in capsys.readouterr().out  # the stage's progress lines were relayed

    with pytest.raises(JobDataError, match="no source spec 'nowhere'"):
        submit_job(settings, "source_bronze", ["--source", "nowhere", "--ds", "2013-07-01"])
    assert _server_pid(settings) == pid  # a data error leaves the application up

    with pytest.raises(JobFailed, match="nothing landed for source flights") as failed:
        submit_job(settings, "source_bronze", ["--source", "flights", "--date", "2013-07-01"])
    assert not isinstance(failed.value, DataError)
    # Any other failure stops the application, so that a retry runs on a fresh one.
    again = submit_job(settings, "source_bronze", _landed(settings, 4, 5))
    assert again["rows_read"] == 5 and _server_pid(settings) != pid


def test_a_server_stops_when_idle_and_is_named_by_its_configuration(private_home, monkeypatch) -> None:
    monkeypatch.setenv("MOULIN_SPARK_JOB_SERVER_IDLE_S", "2")
    settings = load_settings("local")
    submit_job(settings, "source_bronze", _landed(settings, 5, 3))
    info = servers(settings)[0]
    assert info.name == server_name(settings)
    assert (run_dir(settings) / f"{info.name}.json").stat().st_mode & 0o077 == 0  # token file private
    deadline = time.monotonic() + 30
    while servers(settings) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert servers(settings) == []
    while process_alive(info.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not process_alive(info.pid)
    monkeypatch.setenv("MOULIN_CONTRACTS_DIR", "/elsewhere")
    assert server_name(load_settings("local")) != info.name


def test_cluster_profile_submits_each_job() -> None:
    cluster = load_settings("cluster", env={"MOULIN_WAREHOUSE_URI": "hdfs://nn:8020/moulin"})
    assert cluster.spark.job_server is False
    local = load_settings("local", env={})
    assert local.spark.job_server is True
    assert replace(local, spark=replace(local.spark, job_server=False)).spark.job_server is False


def test_a_queued_stage_waits_without_its_limit_and_leaves_the_running_one_alone(
    hold_stage, tmp_path
) -> None:
    settings = hold_stage
    release = tmp_path / "release-a"
    first = _Caller(settings, ["--release", str(release), "--max-s", "180"], timeout_s=300)
    first.wait_for_line("MOULIN-TEST holding", 240)  # started (the server's start included)
    pid = _server_pid(settings)
    assert cancel_stage(servers(settings)[0], "no-such-request") is False  # a cancel names one request

    limit_s = 10  # shorter than the first stage holds the server, longer than the second stage runs
    second = _Caller(settings, ["--max-s", "0"], timeout_s=limit_s)
    notice = second.wait_for_line("waits for job server", 60)
    assert "runs stage hold_spark_task" in notice
    time.sleep(limit_s + 3)  # the second stage stays queued past its own limit
    assert first.outcome is None and second.outcome is None, (first.outcome, second.outcome)
    assert process_alive(pid)

    release.touch()
    done_first, done_second = first.result(120), second.result(120)
    assert isinstance(done_first, dict) and done_first["done"] == "ok", done_first
    assert done_first["result"]["released"] is True  # held to its end, not cancelled nor stopped
    assert isinstance(done_second, dict) and done_second["done"] == "ok", done_second
    assert done_second["result"]["released"] is False
    assert _server_pid(settings) == pid and process_alive(pid)  # one application served both


def test_a_stage_over_its_limit_is_cancelled_and_reported(hold_stage, tmp_path) -> None:
    settings = hold_stage
    caller = _Caller(settings, ["--release", str(tmp_path / "never"), "--max-s", "300"], timeout_s=5)
    caller.wait_for_line("MOULIN-TEST holding", 240)
    held_from = time.monotonic()
    info = servers(settings)[0]
    outcome = caller.result(5 + CANCEL_GRACE_S + 30)
    assert isinstance(outcome, MoulinError), outcome
    message = str(outcome)
    assert f"stage hold_spark_task ran over its limit of 5s on job server {info.name}" in message
    assert "hold_spark_task: cancelled after" in message  # its Spark job was cancelled, not the server killed
    assert time.monotonic() - held_from < 5 + CANCEL_GRACE_S

    # A failed stage stops its server (the retry gets a fresh application), in an orderly way.
    deadline = time.monotonic() + 60
    while process_alive(info.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not process_alive(info.pid) and servers(settings) == []
    log = Path(info.log).read_text()
    assert "hold_spark_task: cancelled by its caller" in log and "stopping after a failed stage" in log
    assert "did not end within" not in log


#: A test-only stage that says whom the audit trail would name, and which key it was handed.
WHOAMI_STAGE = '''
"""A test-only stage of tests/integration/test_job_server.py."""

from moulin.jobs.registry import stage


@stage("whoami")
def whoami(ctx, args):
    """The actor of an audit row written now, and the id of the key handed to this request."""
    from moulin.jobs.context import getenv
    from moulin.privacy.audit import actor
    from moulin.privacy.keys import KEY_ENV, load_key

    key_id = load_key(ctx.settings, create=False).key_id if getenv(KEY_ENV) else None
    return {"actor": actor(), "key_id": key_id}
'''


def test_each_request_is_audited_as_its_own_task_on_one_server(private_home, tmp_path, monkeypatch) -> None:
    """The server inherits the context of the task that started it; each
    request must be attributed to its own caller (and get only the key it handed)."""
    from moulin.jobs.context import caller_context
    from moulin.privacy.keys import KEY_ENV, PseudonymKey

    folder = tmp_path / "whoami-stage"
    folder.mkdir()
    (folder / "moulin_test_whoami.py").write_text(WHOAMI_STAGE)
    (folder / "sitecustomize.py").write_text("import moulin_test_whoami  # noqa: F401\n")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.delenv(KEY_ENV, raising=False)
    settings = private_home

    def run(dag: str | None, **handed: str) -> dict:
        for name, value in (("AIRFLOW_CTX_DAG_ID", dag), ("AIRFLOW_CTX_TASK_ID", dag and "t")):
            if value:
                monkeypatch.setenv(name, value)
            else:
                monkeypatch.delenv(name, raising=False)
        done = run_stage(settings, "whoami", [], 120, lambda line: None, context=caller_context(**handed))
        assert done["done"] == "ok", done
        return done["result"]

    first = run("first_dag")  # starts the server, with first_dag's variables in its environment
    pid = _server_pid(settings)
    second = run("second_dag", **{KEY_ENV: "ef" * 32})
    third = run(None)  # the CLI: no task
    assert _server_pid(settings) == pid  # one server answered all three
    assert first["actor"].endswith("(airflow first_dag.t)")
    assert second["actor"].endswith("(airflow second_dag.t)")  # before the fix: first_dag.t
    assert "airflow" not in third["actor"]
    assert second["key_id"] == PseudonymKey(bytes.fromhex("ef" * 32), "t").key_id
    assert first["key_id"] is None and third["key_id"] is None  # handed to that request only
    assert "ef" * 32 not in Path(servers(settings)[0].log).read_text()
