"""Submitting a registered stage with ``spark-submit`` (:mod:`moulin.jobs.entry`), as the DAGs do.

A job prints its result as one line ``MOULIN-RESULT <json>`` on stdout; the
caller gets that dict back.  The job's progress lines are relayed while it
runs (the Airflow task log shows them as they come).  Stages of the training
environment (petastorm, torch) run with that environment's ``spark-submit``
and Python on the driver and the executors.

With ``spark.job_server`` on (the ``local`` and ``hdfs-local`` profiles), stages
of the platform environment run on a long-lived job server instead
(:mod:`moulin.jobs.server`): the same stage call and the same errors, without a
new JVM and Spark application per stage.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from moulin.errors import DATA_ERROR_EXIT_CODE, DataError, MoulinError
from moulin.settings import Settings
from moulin.spark import act_as_hdfs_user

RESULT_MARK = "MOULIN-RESULT "
ENTRY_POINT = Path(__file__).resolve().with_name("entry.py")


class JobFailed(MoulinError):
    """A submitted Spark job exited with an error (may be transient: Airflow retries it)."""


class JobDataError(JobFailed, DataError):
    """A submitted Spark job failed on a deterministic data error (exit code 3): no retry helps."""


def emit_result(result: dict) -> None:
    """Print a job's result for :func:`submit_job` (call once, at the end of the job)."""
    print(RESULT_MARK + json.dumps(result, default=str), flush=True)


def parse_result(output: str) -> dict:
    """The last ``MOULIN-RESULT`` line of a job's output, as a dict."""
    for line in reversed(output.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK) :])
    raise JobFailed("the job printed no MOULIN-RESULT line")


def job_python(settings: Settings, environment: str) -> str:
    """The Python interpreter of ``environment`` (``platform`` or ``training``)."""
    if environment == "training":
        return settings.training_python_path
    if environment == "platform":
        return sys.executable
    raise JobFailed(f"unknown environment {environment!r}: platform or training")


def spark_submit_command(
    settings: Settings, stage: str, args: list[str], environment: str | None = None
) -> list[str]:
    """The ``spark-submit`` command line that runs registered stage ``stage``."""
    from moulin.jobs.registry import get_stage

    environment = environment or get_stage(stage).environment
    python = job_python(settings, environment)
    submit = Path(python).with_name("spark-submit")
    return [
        str(submit),
        "--master", settings.spark.master,
        "--driver-memory", settings.spark.driver_memory,
        "--conf", f"spark.pyspark.python={python}",
        "--conf", f"spark.pyspark.driver.python={python}",
        "--conf", "spark.sql.session.timeZone=UTC",
        str(ENTRY_POINT),
        stage,
        "--profile", settings.profile,
        *args,
    ]  # fmt: skip


def submit_job(
    settings: Settings, stage: str, args: list[str], environment: str | None = None, timeout_s: int = 3600
) -> dict:
    """Run a stage as a Spark job to completion and return its result dict.

    Lines the job prints that start with ``MOULIN-`` or ``moulin`` are relayed to
    this process's stdout as they come.  A failure raises :class:`JobDataError`
    (exit code 3: a deterministic data error) or :class:`JobFailed`, with the
    last lines of the job's output.
    """
    from moulin.jobs.registry import get_stage

    environment = environment or get_stage(stage).environment
    if environment == "platform" and settings.spark.job_server:
        return _run_on_server(settings, stage, args, timeout_s)
    command = spark_submit_command(settings, stage, args, environment)
    env = dict(os.environ)
    # spark-submit finds its pyspark through PYSPARK_PYTHON (else `python3` on PATH).
    env["PYSPARK_PYTHON"] = env["PYSPARK_DRIVER_PYTHON"] = job_python(settings, environment)
    env["MOULIN_PROFILE"] = settings.profile
    env["PYTHONUNBUFFERED"] = "1"
    act_as_hdfs_user(settings, env)  # read by the driver JVM (and deltalake) at start
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tail: collections.deque[str] = collections.deque(maxlen=40)
    stdout: list[str] = []

    def drain_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            tail.append(line.rstrip("\n"))

    relay = _relay(tail)
    reader = threading.Thread(target=drain_stderr, daemon=True)
    reader.start()
    timer = threading.Timer(timeout_s, proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            stdout.append(line)
            relay(line)
        code = proc.wait()
        reader.join(timeout=10)
    finally:
        timer.cancel()
    if code != 0:
        text = "\n".join(tail)
        if code == DATA_ERROR_EXIT_CODE:
            raise JobDataError(f"Spark job {stage} ({environment}) failed on its data:\n{text}")
        raise JobFailed(f"Spark job {stage} ({environment}) failed with code {code}:\n{text}")
    return parse_result("\n".join(stdout))


def _relay(tail: collections.deque[str]) -> Callable[[str], None]:
    def relay(line: str) -> None:
        tail.append(line)
        if line.startswith(("MOULIN-", "moulin")) and not line.startswith(RESULT_MARK):
            print(line, flush=True)

    return relay


def _run_on_server(settings: Settings, stage: str, args: list[str], timeout_s: int) -> dict:
    """Run a platform stage on the job server of this environment (see :mod:`moulin.jobs.server`)."""
    from moulin.jobs.server import run_stage
    from moulin.settings import load_settings

    # The stage sees the settings a spark-submitted job would load: the profile plus MOULIN_* variables.
    job_settings = load_settings(settings.profile)
    tail: collections.deque[str] = collections.deque(maxlen=40)
    try:
        done = run_stage(job_settings, stage, args, timeout_s, _relay(tail))
    except MoulinError as exc:
        raise JobFailed(f"Spark job {stage} (platform, job server) failed: {exc}") from None
    if done["done"] == "ok":
        return done["result"]
    text = "\n".join([*tail, done.get("message", "")])
    if done["done"] == "data_error":
        raise JobDataError(f"Spark job {stage} (platform, job server) failed on its data:\n{text}")
    raise JobFailed(f"Spark job {stage} (platform, job server) failed:\n{text}")
