"""Jobs on a cluster whose hosts do not have moulin: a Spark standalone master and
one worker, started with no trace of moulin or of its virtualenvs in the
worker's environment; jobs ship moulin's code zip and their environment's
archive (``moulin package``, :mod:`moulin.jobs.shipping`).

The flights gold stage (RDD functions importing moulin on the executors) and a
small training run (training environment: petastorm, torch) complete there.

The archives are built once and cached under the test home (``MOULIN_TEST_HOME``
keeps them between sessions): 0.61 GB (platform) and 0.69 GB (training) of
.tar.gz, 35-40 s each to build here.  With them cached, each job test takes
about 2 minutes on 2 cores (the gold test half of it preparing silver in-process).
"""

from __future__ import annotations

import os
import subprocess
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from moulin.cluster.local import LocalCluster
from moulin.cluster.ports import port_free
from moulin.jobs.shipping import SHIPPED_ENV_ALIAS, build_code_zip, build_env_archive
from moulin.jobs.submit import submit_job
from moulin.settings import Settings
from moulin.sources.cli import run_source
from moulin.usecases.flights import stages as S
from moulin.usecases.flights.mapreduce import STAT_KEYS
from moulin.usecases.flights.sources import prepare_sources

pytestmark = pytest.mark.integration

DS = "2013-01-01"
SAMPLE = 200
REPO = Path(__file__).resolve().parents[2]
TRAINING_PYTHON = REPO / ".venv-train" / "bin" / "python"


def _free_ports(count: int) -> list[int]:
    for base in range(48000, 52000, 50):
        ports = list(range(base, base + count))
        if all(port_free(p) for p in ports):
            return ports
    raise RuntimeError("no free ports for the Spark standalone cluster")


def _bare_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a cluster host has: no virtualenv on PATH, no PYTHONPATH, no PySpark Pythons."""
    for name in ("PYTHONPATH", "VIRTUAL_ENV", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "PYTHONHOME"):
        monkeypatch.delenv(name, raising=False)
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if not p.startswith(str(REPO))]
    monkeypatch.setenv("PATH", os.pathsep.join(path))


@pytest.fixture(scope="module")
def cluster_settings(moulin_env, tmp_path_factory) -> Settings:
    """Local-profile settings of a private home, jobs shipped to a standalone master."""
    home = tmp_path_factory.mktemp("cluster-jobs")
    master, webui, worker_ui = _free_ports(3)
    base = Settings(profile="local", home=home)
    return replace(
        base,
        spark=replace(
            base.spark,
            master=f"spark://127.0.0.1:{master}",
            driver_memory="1g",
            shuffle_partitions=2,
            job_server=False,
            ship_code=True,
            packages_dir=Path(moulin_env["MOULIN_HOME"]) / "dist" / "jobs",  # cached for the session
            standalone_port=master,
            standalone_webui_port=webui,
            worker_webui_base_port=worker_ui,
            standalone_workers=1,
            worker_cores=2,
            worker_memory="2g",
        ),
    )


@pytest.fixture(scope="module")
def standalone(cluster_settings):
    """A Spark standalone master and one worker whose environment knows nothing of moulin."""
    cluster = LocalCluster(cluster_settings, log=lambda m: None)
    with pytest.MonkeyPatch.context() as mp:
        _bare_environment(mp)
        workers = _up_spark_only(cluster)
    assert len(workers) == 1
    yield cluster
    cluster.down(spark_only=True)


def _up_spark_only(cluster: LocalCluster) -> list[dict]:
    """Start the standalone daemons only (no HDFS: this warehouse is on the local disk)."""
    from moulin.cluster.daemons import port_open

    sp = cluster.settings.spark
    cluster._start(cluster.spark_master())
    cluster._wait(lambda: port_open(sp.standalone_host, sp.standalone_port), "Spark master", "spark-master")
    cluster._start(cluster.spark_worker(0))
    cluster._wait(lambda: len(cluster._spark_workers()) >= 1, "1 Spark worker", "spark-worker-0")
    return cluster._spark_workers()


@pytest.fixture
def job_env(cluster_settings, monkeypatch):
    """The child job loads its settings from MOULIN_* variables: point them at this home."""
    monkeypatch.setenv("MOULIN_HOME", str(cluster_settings.home))
    monkeypatch.delenv("AIRFLOW_CONN_SPARK_DEFAULT", raising=False)  # the settings' master
    return cluster_settings


def _executor_dirs(cluster_settings: Settings) -> list[Path]:
    return sorted(
        p.parent.parent.parent
        for p in cluster_settings.cluster_dir.glob("spark-worker-0/app-*/*/env/bin/python")
    )


def _shipped(lines: list[str]) -> tuple[str, str]:
    """The spark-submit command a job relayed, and the name of the code zip it shipped."""
    command = next(line for line in lines if line.startswith("moulin: spark-submit "))
    assert "spark.pyspark.python=./env/bin/python" in command and "#env" in command
    assert str(REPO) not in command.split("spark.pyspark.python=")[1].split()[0]
    return command, command.split("spark.executorEnv.PYTHONPATH=")[1].split()[0]


def _assert_moulin_only_from_the_zip(settings: Settings, zip_name: str) -> None:
    """In the executor's folder, the unpacked environment's Python imports moulin only from the shipped zip."""
    found = sorted(settings.cluster_dir.glob(f"spark-worker-0/app-*/*/{SHIPPED_ENV_ALIAS}/bin/python"))
    assert found, f"no unpacked environment under {settings.cluster_dir}"
    python = found[-1]
    executor_dir = python.parents[2]
    bare = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    alone = subprocess.run(
        [str(python), "-c", "import moulin"], cwd=executor_dir, env=bare, capture_output=True, text=True
    )
    assert alone.returncode != 0 and "No module named 'moulin'" in alone.stderr
    assert (executor_dir / zip_name).is_file()
    with_zip = subprocess.run(
        [str(python), "-c", "import moulin, sys; print(moulin.__file__, sys.prefix)"],
        cwd=executor_dir, env={**bare, "PYTHONPATH": zip_name}, capture_output=True, text=True,
    )  # fmt: skip
    assert with_zip.returncode == 0, with_zip.stderr
    module_file, prefix = with_zip.stdout.split()
    assert module_file == str(executor_dir / zip_name / "moulin" / "__init__.py")
    assert Path(prefix) == executor_dir / SHIPPED_ENV_ALIAS


def test_packages_are_reused_and_hold_no_moulin(cluster_settings) -> None:
    logs: list[str] = []
    code = build_code_zip(cluster_settings, logs.append)
    assert build_code_zip(cluster_settings, logs.append) == code and "up to date" in logs[-1]
    names = zipfile.ZipFile(code).namelist()
    assert "moulin/jobs/entry.py" in names and not any("__pycache__" in n for n in names)
    archive = build_env_archive(cluster_settings, "platform", logs.append)
    assert (
        build_env_archive(cluster_settings, "platform", logs.append) == archive and "up to date" in logs[-1]
    )


def test_gold_stage_runs_on_a_worker_without_moulin(spark, standalone, job_env) -> None:
    settings = job_env
    prepare_sources(settings, [1], sample_per_month=SAMPLE)
    for source in ("weather", "planes", "flights"):  # what silver reads
        run_source(settings, source, DS, run_ge=False, spark=spark)
    S.silver_flights(spark, settings, [1])
    lines: list[str] = []
    result = submit_job(settings, "gold_stats", ["--ds", DS], on_line=lines.append, timeout_s=600)
    assert set(result["tables"]) == set(STAT_KEYS), lines[-20:]
    assert all(t["rows"] > 0 and t["committed"] for t in result["tables"].values()), result
    command, zip_name = _shipped(lines)
    assert f"--master {settings.spark.master} " in command
    _assert_moulin_only_from_the_zip(settings, zip_name)


@pytest.mark.skipif(not TRAINING_PYTHON.exists(), reason="no training environment (.venv-train)")
def test_training_runs_on_a_worker_without_moulin(standalone, job_env) -> None:
    from moulin.training.contract import FeatureContract
    from moulin.training.synthetic import write_synthetic_table

    settings = replace(job_env, training_python=str(TRAINING_PYTHON))
    uri = settings.table_uri("tests", "synthetic_features")
    write_synthetic_table(uri, FeatureContract.load("flight_features"), 2000, seed=7)
    lines: list[str] = []
    args = ["--features-uri", uri, "--epochs", "1", "--num-processes", "1", "--cpu", "--bootstrap", "20",
            "--batch-size", "256", "--run-id", "cluster-1", "--model-name", "cluster_check"]  # fmt: skip
    result = submit_job(settings, "train_flights", args, on_line=lines.append, timeout_s=900)
    assert result["models"]["mlp"]["roc_auc"] > 0.5, lines[-30:]
    command, zip_name = _shipped(lines)
    assert command.split()[2] == str(TRAINING_PYTHON.parent / "spark-submit") or "training-env-" in command
    assert f"spark.pyspark.driver.python={TRAINING_PYTHON}" in command
    _assert_moulin_only_from_the_zip(settings, zip_name)
