"""Submitting Spark jobs (``spark_jobs/*.py``) with ``spark-submit``, as the DAGs do.

A job prints its result as one line ``MOULIN-RESULT <json>`` on stdout; the
caller gets that dict back.  Jobs of the training environment (petastorm,
torch) run with that environment's ``spark-submit`` and Python on the driver
and the executors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from moulin.errors import MoulinError
from moulin.settings import REPO_ROOT, Settings

RESULT_MARK = "MOULIN-RESULT "
JOBS_DIR = REPO_ROOT / "spark_jobs"


class JobFailed(MoulinError):
    """A submitted Spark job exited with an error."""


def emit_result(result: dict) -> None:
    """Print a job's result for :func:`submit_job` (call once, at the end of ``main``)."""
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
    settings: Settings, job: str, args: list[str], environment: str = "platform"
) -> list[str]:
    """The ``spark-submit`` command line of ``spark_jobs/<job>.py`` in ``environment``."""
    script = JOBS_DIR / f"{job}.py"
    if not script.exists():
        raise JobFailed(f"no Spark job {script}: check the job name")
    python = job_python(settings, environment)
    submit = Path(python).with_name("spark-submit")
    return [
        str(submit),
        "--master", settings.spark.master,
        "--driver-memory", settings.spark.driver_memory,
        "--conf", f"spark.pyspark.python={python}",
        "--conf", f"spark.pyspark.driver.python={python}",
        "--conf", "spark.sql.session.timeZone=UTC",
        str(script),
        "--profile", settings.profile,
        *args,
    ]  # fmt: skip


def submit_job(
    settings: Settings, job: str, args: list[str], environment: str = "platform", timeout_s: int = 3600
) -> dict:
    """Run a Spark job to completion and return its result dict.

    Its output is relayed to this process's stdout (the Airflow task log);
    a failure raises :class:`JobFailed` with the last lines of its output.
    """
    command = spark_submit_command(settings, job, args, environment)
    env = dict(os.environ)
    # spark-submit finds its pyspark through PYSPARK_PYTHON (else `python3` on PATH).
    env["PYSPARK_PYTHON"] = env["PYSPARK_DRIVER_PYTHON"] = job_python(settings, environment)
    env["MOULIN_PROFILE"] = settings.profile
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout_s)
    output = proc.stdout + proc.stderr
    for line in proc.stdout.splitlines():
        if line.startswith(("MOULIN-", "moulin")):
            print(line, flush=True)
    if proc.returncode != 0:
        tail = "\n".join(output.splitlines()[-25:])
        raise JobFailed(f"Spark job {job} ({environment}) failed with code {proc.returncode}:\n{tail}")
    return parse_result(proc.stdout)
