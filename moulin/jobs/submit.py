"""Submitting a registered stage with ``spark-submit``, as the DAGs do.

The application file is ``spark_jobs/run_stage.py`` (:data:`ENTRY_POINT`), a thin
script that runs :func:`moulin.jobs.entry.main`.

A job prints its result as one line ``MOULIN-RESULT <json>`` on stdout; the
caller gets that dict back.  ``spark-submit`` runs through the Airflow Spark
provider's ``SparkSubmitHook`` with the connection ``spark_default`` (a
connection stored in Airflow wins; without one, the settings' master: see
:mod:`moulin.jobs.connections`), in client deploy mode.  Every line of the
job's output (Spark's own, stdout and stderr) is relayed while it runs (the
Airflow task log shows them as they come).  Stages of the training environment
(petastorm, torch) run with that environment's ``spark-submit`` (first on the
child's ``PATH``) and Python on the driver and the executors.

With ``spark.ship_code`` on (the ``cluster`` profile), a job ships moulin's code
and its environment (:mod:`moulin.jobs.shipping`): executors run the
environment's archive unpacked as ``./env`` with moulin's zip on their
``PYTHONPATH``, never this host's virtualenv; the driver (client mode, on this
host) keeps the local environment.

With ``spark.job_server`` on (the ``local`` and ``hdfs-local`` profiles), stages
of the platform environment run on a long-lived job server instead
(:mod:`moulin.jobs.server`): the same stage call and the same errors, without a
new JVM and Spark application per stage.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from moulin import kerberos
from moulin.console import relay_line
from moulin.errors import DATA_ERROR_EXIT_CODE, DataError, MoulinError
from moulin.jobs.connections import SPARK_CONN_ID, connection_env, spark_connection_spec
from moulin.jobs.context import caller_context, handovers
from moulin.jobs.registry import get_stage
from moulin.jobs.result_line import RESULT_MARK
from moulin.jobs.server import run_stage
from moulin.jobs.shipping import SHIPPED_ENV_ALIAS, SHIPPED_PYTHON, job_packages
from moulin.ops.faultpoints import fault_point
from moulin.settings import REPO_ROOT, Settings, load_settings
from moulin.spark import act_as_hdfs_user

if TYPE_CHECKING:
    from moulin.jobs.registry import Environment
    from moulin.jobs.shipping import JobPackages
    from moulin.jobs.spark_hook import StreamingSparkSubmitHook

#: The application file ``spark-submit`` is given: ``spark_jobs/`` beside the ``moulin`` package.
ENTRY_POINT = REPO_ROOT / "spark_jobs" / "run_stage.py"


class JobFailed(MoulinError):
    """A submitted Spark job exited with an error (may be transient: Airflow retries it)."""


class JobDataError(JobFailed, DataError):
    """A submitted Spark job failed on a deterministic data error (exit code 3): no retry helps."""


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


@dataclass(frozen=True)
class JobSubmission:
    """What ``spark-submit`` gets for one stage, besides the master (the connection's)."""

    stage: str
    environment: Environment
    #: The driver's Python (this host's environment); its folder holds the environment's spark-submit.
    python: str
    #: The executors' Python: the same, or the shipped environment's.
    executor_python: str
    conf: dict[str, str]
    application_args: list[str]
    packages: JobPackages | None = None
    files: list[str] = field(default_factory=list)
    archives: list[str] = field(default_factory=list)

    @property
    def bin_dir(self) -> Path:
        """The environment's ``bin`` folder (its ``spark-submit``), put first on the child's PATH."""
        return Path(self.python).parent


def job_submission(
    settings: Settings,
    stage: str,
    args: list[str],
    environment: Environment | None = None,
    log: Callable[[str], None] = print,
) -> JobSubmission:
    """The submission of registered stage ``stage``: Pythons, Spark conf, shipped packages."""

    environment = environment or get_stage(stage).environment
    python = job_python(settings, environment)
    packages = None
    executor_python = python
    conf = {"spark.pyspark.driver.python": python, "spark.sql.session.timeZone": "UTC"}
    files: list[str] = []
    archives: list[str] = []
    if settings.spark.ship_code:
        packages = job_packages(settings, environment, log)
        executor_python = SHIPPED_PYTHON
        # The code zip goes to the executors' working folder (--files) and their
        # PYTHONPATH, not through --py-files: spark-submit would put a --py-files zip
        # first on the driver's PYTHONPATH too, and the driver must keep its installed
        # moulin (its contracts, DAGs and schemas live beside the package).
        files.append(str(packages.code_zip))
        conf["spark.executorEnv.PYTHONPATH"] = packages.code_zip.name
        archives.append(f"{packages.env_archive}#{SHIPPED_ENV_ALIAS}")
    conf["spark.pyspark.python"] = executor_python
    if settings.hdfs.kerberos:
        # The driver's JVM starts before the job's session is built: the realm's krb5.conf
        # must be on spark-submit's command line (else /etc/krb5.conf's realm is assumed).
        conf["spark.driver.extraJavaOptions"] = " ".join(
            ["-Duser.timezone=UTC", *kerberos.java_options(settings)]
        )
    return JobSubmission(
        stage=stage,
        environment=environment,
        python=python,
        executor_python=executor_python,
        conf=conf,
        application_args=[stage, "--profile", settings.profile, *args],
        packages=packages,
        files=files,
        archives=archives,
    )


def entry_point() -> Path:
    """:data:`ENTRY_POINT`, checked: a missing file is an error saying where moulin must run from."""
    if not ENTRY_POINT.is_file():
        raise JobFailed(
            f"no spark-submit application file {ENTRY_POINT}: moulin submits stages from its source "
            "tree (an editable install, as bin/setup and the Docker image make, with spark_jobs/ "
            "beside the moulin package)"
        )
    return ENTRY_POINT


def spark_hook(
    settings: Settings, submission: JobSubmission, on_line: Callable[[str], None]
) -> StreamingSparkSubmitHook:
    """The Spark provider's hook for ``submission`` on connection ``spark_default``."""
    from moulin.jobs.spark_hook import StreamingSparkSubmitHook

    return StreamingSparkSubmitHook(
        on_line=on_line,
        fallback=spark_connection_spec(settings),
        conn_id=SPARK_CONN_ID,
        conf=submission.conf,
        files=",".join(submission.files) or None,
        archives=",".join(submission.archives) or None,
        driver_memory=settings.spark.driver_memory,
        # A path, not the connection's extra (which the provider reads as base64 content).
        keytab=str(settings.hdfs.kerberos_keytab) if settings.hdfs.kerberos_keytab else None,
        name=f"moulin-{submission.stage}",
        application_args=submission.application_args,
        # The job's output (its MOULIN-RESULT line) must come back to this process;
        # spark-submit is the environment's, found first on the child's PATH.
        deploy_mode="client",
        spark_binary="spark-submit",
    )


def spark_submit_command(
    settings: Settings, stage: str, args: list[str], environment: Environment | None = None
) -> list[str]:
    """The ``spark-submit`` command line that runs registered stage ``stage`` (the binary as a full path)."""
    submission = job_submission(settings, stage, args, environment)
    hook = spark_hook(settings, submission, on_line=lambda line: None)
    command = hook._build_spark_submit_command(str(entry_point()))
    return [str(submission.bin_dir / command[0]), *command[1:]]


def _child_env(
    settings: Settings,
    submission: JobSubmission,
    hook: StreamingSparkSubmitHook,
    handed: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of ``spark-submit``: this one, plus what selects the job's environment
    and what the caller hands to its stage (``handed``: the pseudonym key, never on argv)."""

    env = {**os.environ, **(handed or {})}
    # The hook runs the bare name `spark-submit` (all it accepts): the environment's comes first.
    env["PATH"] = os.pathsep.join([str(submission.bin_dir), env.get("PATH", "")])
    # spark-submit finds its pyspark through PYSPARK_PYTHON (else `python3` on PATH).
    env["PYSPARK_DRIVER_PYTHON"] = submission.python
    env["PYSPARK_PYTHON"] = submission.executor_python
    env["MOULIN_PROFILE"] = settings.profile
    # The job builds its session from the settings: keep the connection's master there.
    env["MOULIN_SPARK_MASTER"] = hook.master
    env["PYTHONUNBUFFERED"] = "1"
    if submission.packages is not None:
        env["MOULIN_SPARK_SHIP_CODE"] = "true"
        # Inside the job, "the training environment's Python" that training stages
        # give their executors is the shipped one.
        env["MOULIN_TRAINING_PYTHON"] = SHIPPED_PYTHON
    if hook.connection_source == "settings":
        env.update(connection_env(settings))
    act_as_hdfs_user(settings, env)  # read by the driver JVM (and deltalake) at start
    if submission.environment == "training" and kerberos.executors_need_tokens(settings):
        # The training environment has no Kerberos client for Python (requests-kerberos,
        # gssapi): its driver, like the executors, gets moulin's token, written here.
        env[kerberos.TOKEN_FILE_VAR] = str(kerberos.hdfs_token_file(settings))
    return env


def submit_job(
    settings: Settings,
    stage: str,
    args: list[str],
    environment: Environment | None = None,
    timeout_s: int = 3600,
    on_line: Callable[[str], None] | None = None,
) -> dict:
    """Run a stage as a Spark job to completion and return its result dict.

    Every line of the job's output is handed to ``on_line`` as it comes
    (default: printed on this process's stdout, which the Airflow task log
    shows).  A failure raises :class:`JobDataError` (exit code 3: a
    deterministic data error) or :class:`JobFailed`, with the last lines of the
    job's output.  Once the job succeeded, the caller passes the fault point
    ``after-<stage>`` (:mod:`moulin.ops.faultpoints`), where a drill can hold it.
    """
    result = _run_job(settings, stage, args, environment, timeout_s, on_line)
    fault_point(settings, f"after-{stage}")
    return result


def _run_job(
    settings: Settings,
    stage: str,
    args: list[str],
    environment: Environment | None,
    timeout_s: int,
    on_line: Callable[[str], None] | None,
) -> dict:
    from airflow.providers.common.compat.sdk import AirflowException

    environment = environment or get_stage(stage).environment
    # What only this (task) process can read, for the stage: the key of an Airflow Connection.
    handed = handovers()
    if environment == "platform" and settings.spark.job_server:
        return _run_on_server(settings, stage, args, timeout_s, handed)
    relay = on_line or _print_line
    submission = job_submission(settings, stage, args, environment, log=relay)
    if not (submission.bin_dir / "spark-submit").is_file():
        raise JobFailed(
            f"no spark-submit in {submission.bin_dir} ({environment} environment): "
            "install pyspark there (bin/setup)"
        )
    application = entry_point()
    hook = spark_hook(settings, submission, relay)
    env = _child_env(settings, submission, hook, handed)
    relay(
        f"moulin: {stage} ({environment}) on Spark master {hook.master} "
        f"(connection spark_default from {hook.connection_source})"
    )
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        hook.on_kill()

    timer = threading.Timer(timeout_s, kill)
    timer.start()
    try:
        # The child's environment goes to Popen (submit's kwargs), not through the hook's
        # env_vars: on YARN those are also copied into the application master's
        # environment (spark.yarn.appMasterEnv.*, a local PATH there), and in standalone
        # cluster mode refused; the Popen env is what puts this environment's
        # spark-submit first on PATH.
        hook.submit(str(application), env=env)
        code = 0
    except AirflowException:
        process = hook._submit_sp
        code = process.returncode if process is not None and process.returncode is not None else 1
    finally:
        timer.cancel()
    if code != 0:
        text = "\n".join(hook.tail)
        if code == DATA_ERROR_EXIT_CODE:
            raise JobDataError(f"Spark job {stage} ({environment}) failed on its data:\n{text}")
        if timed_out.is_set():
            text = f"killed after {timeout_s} s (timeout_s)\n{text}"
        raise JobFailed(f"Spark job {stage} ({environment}) failed with code {code}:\n{text}")
    if hook.result_line is None:
        raise JobFailed(
            f"Spark job {stage} ({environment}) printed no MOULIN-RESULT line:\n" + "\n".join(hook.tail)
        )
    return parse_result(hook.result_line)


def _print_line(line: str) -> None:
    """Relay a job's line on stdout (the task log), all but the result line; in a
    command's console run, only moulin's lines (the rest goes to the run's log file)."""

    if not line.startswith(RESULT_MARK):
        relay_line(line)


def _relay(tail: collections.deque[str]) -> Callable[[str], None]:
    def relay(line: str) -> None:
        tail.append(line)
        if line.startswith(("MOULIN-", "moulin")) and not line.startswith(RESULT_MARK):
            print(line, flush=True)

    return relay


def _run_on_server(
    settings: Settings, stage: str, args: list[str], timeout_s: int, handed: dict[str, str]
) -> dict:
    """Run a platform stage on the job server of this environment (see :mod:`moulin.jobs.server`),
    with this task's context and ``handed`` sent along with the request."""

    # The stage sees the settings a spark-submitted job would load: the profile plus MOULIN_* variables.
    job_settings = load_settings(settings.profile)
    tail: collections.deque[str] = collections.deque(maxlen=40)
    try:
        done = run_stage(job_settings, stage, args, timeout_s, _relay(tail), context=caller_context(**handed))
    except MoulinError as exc:
        raise JobFailed(f"Spark job {stage} (platform, job server) failed: {exc}") from None
    if done["done"] == "ok":
        return done["result"]
    text = "\n".join([*tail, done.get("message", "")])
    if done["done"] == "data_error":
        raise JobDataError(f"Spark job {stage} (platform, job server) failed on its data:\n{text}")
    raise JobFailed(f"Spark job {stage} (platform, job server) failed:\n{text}")
