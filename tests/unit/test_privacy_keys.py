"""One source of the pseudonym key, never replaced silently; the audit
trail names the task of each job-server request; secrets kept out of files and
errors (the job server's token file, a database URL's password)."""

from __future__ import annotations

import os
import stat
import types
from dataclasses import replace
from pathlib import Path

import pytest

from moulin.privacy.keys import KEY_CONNECTION, KEY_ENV, PseudonymKey, PseudonymKeyError, key_file, load_key

TASK_RUNNER = "airflow.sdk.execution_time.task_runner"


@pytest.fixture
def home(settings, tmp_path, monkeypatch):
    """Settings with a home (and a warehouse) of their own, no key in the environment."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(f"AIRFLOW_CONN_{KEY_CONNECTION.upper()}", raising=False)
    return replace(settings, home=tmp_path)


@pytest.fixture
def airflow_task(monkeypatch):
    """This process as an Airflow 3 task's: the task runner talks to its supervisor;
    ``set_connection`` decides what ``BaseHook.get_connection`` answers."""
    from airflow.sdk import BaseHook

    runner = types.ModuleType(TASK_RUNNER)
    runner.SUPERVISOR_COMMS = object()  # type: ignore[attr-defined]
    monkeypatch.setitem(__import__("sys").modules, TASK_RUNNER, runner)
    monkeypatch.setenv("AIRFLOW_HOME", "/nonexistent/airflow")  # a task process has one
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "sources")
    answer: dict = {}

    def get_connection(conn_id: str):
        assert conn_id == KEY_CONNECTION
        if isinstance(answer.get("value"), BaseException):
            raise answer["value"]
        return answer["value"]

    monkeypatch.setattr(BaseHook, "get_connection", staticmethod(get_connection))
    return lambda value: answer.update(value=value)


def test_an_unreadable_connection_fails_naming_it_and_no_random_key_is_made(home, airflow_task) -> None:
    airflow_task(RuntimeError("the API server did not answer"))
    with pytest.raises(PseudonymKeyError, match=KEY_CONNECTION):
        load_key(home)
    assert not key_file(home).exists()  # before the fix: swallowed, a random key file was created and used


def test_a_connection_without_a_password_fails_naming_it(home, airflow_task) -> None:
    airflow_task(types.SimpleNamespace(password=""))
    with pytest.raises(PseudonymKeyError, match=f"{KEY_CONNECTION} has no password"):
        load_key(home)
    assert not key_file(home).exists()


def test_no_such_connection_means_the_key_file(home, airflow_task) -> None:
    from airflow.sdk.exceptions import AirflowNotFoundException

    airflow_task(AirflowNotFoundException(KEY_CONNECTION))
    assert load_key(home).origin.startswith("key file")


def test_the_task_hands_the_connection_key_to_its_stage_never_on_argv(
    home, airflow_task, monkeypatch
) -> None:
    from moulin.jobs.context import applied, caller_context, handovers

    airflow_task(types.SimpleNamespace(password="cd" * 32))
    handed = handovers()  # what the submitter hands: the key, registered by moulin.privacy.keys
    assert handed == {KEY_ENV: "cd" * 32}
    # The stage's process (a job server here) is no task: it cannot read the Connection ...
    monkeypatch.delitem(__import__("sys").modules, TASK_RUNNER)
    with applied(caller_context(**handed)):  # ... it reads what its request handed it
        key = load_key(home)
    assert key.secret == bytes.fromhex("cd" * 32)
    assert not key_file(home).exists()
    assert KEY_ENV not in os.environ  # handed to that request only, not to the process


def test_a_key_never_replaces_the_recorded_one_silently(home) -> None:
    from moulin.privacy.keys import KeyChangedError, check_key_id, write_key_file

    first = load_key(home)
    check_key_id(home, first)  # the first pseudonymising gate records its id
    key_file(home).unlink()
    with pytest.raises(PseudonymKeyError, match="never made in its place"):
        load_key(home)  # before the fix: a new random key, silently
    assert not key_file(home).exists()
    write_key_file(key_file(home), bytes(range(32)))  # another key file, no rotation
    with pytest.raises(KeyChangedError, match=first.key_id):
        load_key(home)
    with pytest.raises(KeyChangedError, match="rotate-key"):
        check_key_id(home, PseudonymKey(bytes(range(32)), "$MOULIN_PSEUDONYM_KEY"))  # the gate stops


def test_audit_names_the_task_of_the_request_not_the_servers(monkeypatch) -> None:
    from moulin.jobs.context import applied, caller_context
    from moulin.privacy.audit import actor

    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "first_dag")  # inherited from the task that started it
    monkeypatch.setenv("AIRFLOW_CTX_TASK_ID", "first_task")
    sent = caller_context({"AIRFLOW_CTX_DAG_ID": "mail", "AIRFLOW_CTX_TASK_ID": "silver"})
    with applied(sent):
        assert actor().endswith("(airflow mail.silver)")
    with applied({}):  # a request from the CLI: no task at all
        assert "airflow" not in actor()
    assert actor().endswith("(airflow first_dag.first_task)")  # outside a request: this process's


def test_the_token_file_is_private_from_its_creation(settings, tmp_path, monkeypatch) -> None:
    from moulin.jobs.server import JobServer, ServerInfo, run_dir

    local = replace(settings, home=tmp_path)
    run_dir(local).mkdir(parents=True)
    monkeypatch.setattr(Path, "chmod", lambda self, mode: None)  # no later chmod to rely on
    old = os.umask(0o022)
    try:
        server = JobServer(local, "t", 60)
        server._publish(ServerInfo("t", os.getpid(), 1, server.token, "log"))
    finally:
        os.umask(old)
    assert stat.S_IMODE((run_dir(local) / "t.json").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "url", ["nodialect+nodriver://bob:s3cr3t-pw@db.example/x", "not a url bob:s3cr3t-pw@db.example"]
)
def test_a_database_url_password_stays_out_of_errors(settings, tmp_path, url) -> None:
    from moulin.ingest.database import ExtractionError, _extract
    from moulin.storage import WarehouseFS

    local = replace(settings, home=tmp_path)
    with pytest.raises(ExtractionError) as failed:
        _extract(
            local, "people", "2026-01-01", url, ["a"], tmp_path, "people", None, None, WarehouseFS(local)
        )
    assert "s3cr3t-pw" not in str(failed.value)
