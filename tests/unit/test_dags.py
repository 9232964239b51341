"""Every DAG file imports in a real Airflow DagBag, and DAG files only wire tasks."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from moulin.orchestration import DAGS_FOLDER, airflow_env


@pytest.fixture(scope="module")
def dagbag(settings, tmp_path_factory):
    """A real DagBag of the DAG folder, with one source spec of a team's own contracts folder."""
    from source_files import write_contracts

    contracts = tmp_path_factory.mktemp("contracts")
    write_contracts(contracts, tmp_path_factory.mktemp("drops"))
    os.environ.update(airflow_env(settings))
    os.environ["MOULIN_CONTRACTS_DIR"] = str(contracts)
    from airflow.dag_processing.dagbag import DagBag

    try:
        yield DagBag(dag_folder=str(DAGS_FOLDER))
    finally:
        del os.environ["MOULIN_CONTRACTS_DIR"]


def test_a_source_spec_gets_an_ingest_dag_emitting_the_bronze_asset(dagbag) -> None:
    dag = dagbag.dags["source_orders"]
    assert [t.task_id for t in dag.tasks] == ["land", "bronze"]
    assert dag.schedule == "@daily"
    assert [o.uri for o in dag.get_task("bronze").outlets] == ["moulin://bronze/orders"]


def test_every_dag_file_imports_without_error(dagbag) -> None:
    assert dagbag.import_errors == {}
    files = {Path(p).name for p in DAGS_FOLDER.glob("*.py")}
    loaded = {Path(d.fileloc).name for d in dagbag.dags.values()}
    assert files and files <= loaded, f"DAG files without a DAG: {files - loaded}"


def test_every_task_retries_under_a_kit_policy_and_fails_at_once_on_data_errors(dagbag) -> None:
    """Every DAG takes its retries from one policy of the kit, and no DAG file writes them."""
    from moulin.airflow_kit import OPERATOR, PIPELINE, TRANSIENT, data_errors_fail_at_once

    policies = {(p.retries, p.delay, p.max_delay): p for p in (TRANSIENT, PIPELINE, OPERATOR)}
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            where = f"{dag.dag_id}.{task.task_id}"
            assert task.retries >= 1, f"{where} has no retries"
            assert task.retry_policy is data_errors_fail_at_once(), f"{where} would retry a data error"
            assert (task.retries, task.retry_delay, task.max_retry_delay) in policies, where
    for path in DAGS_FOLDER.glob("*.py"):
        text = path.read_text()
        for key in ("retries", "retry_delay", "on_failure_callback", "retry_exponential_backoff"):
            assert key not in text, f"{path.name} writes {key} by hand: use moulin.airflow_kit.default_args"


def test_every_asset_names_a_table_of_a_contract(dagbag) -> None:
    """Producers' outlets and consumers' schedules name tables by their contracts (or the
    leaderboard's path): an Asset naming no table would schedule nothing."""
    from moulin.contracts import load_all_contracts
    from moulin.training.config import LEADERBOARD_TABLE

    tables = {f"moulin://{c.table}" for c in load_all_contracts().values()} | {
        f"moulin://{LEADERBOARD_TABLE}"
    }
    outlets = {o.uri for dag in dagbag.dags.values() for t in dag.tasks for o in t.outlets}

    def uris(condition) -> set[str]:
        if condition is None:
            return set()
        if hasattr(condition, "uri"):
            return {condition.uri}
        return set().union(*(uris(c) for c in condition.objects))

    scheduled = set().union(
        *(uris(getattr(d.timetable, "asset_condition", None)) for d in dagbag.dags.values())
    )
    assert "moulin://bronze/flights" in scheduled
    assert outlets and outlets <= tables, sorted(outlets - tables)
    assert {"moulin://gold/route_delay_stats", "moulin://gold/flight_features"} <= outlets
    assert scheduled <= outlets, sorted(scheduled - outlets)


def test_dag_files_stay_thin() -> None:
    """Task bodies call into moulin: no loops or classes in DAG files."""
    for path in DAGS_FOLDER.glob("*.py"):
        tree = ast.parse(path.read_text())
        kinds = {type(node).__name__ for node in ast.walk(tree)}
        assert not kinds & {"For", "While", "ClassDef"}, f"{path.name} holds logic"


#: Packages the parse of a DAG file must not import: Airflow parses every DAG file every few
#: seconds, and these serve the tasks (Spark jobs, training, checks, charts), not the wiring.
NOT_IMPORTED_BY_PARSING = (
    "pyspark",
    "torch",
    "great_expectations",
    "sklearn",
    "matplotlib",
    "deltalake",
    "scipy",
)


def test_dag_files_parse_without_spark_torch_or_other_heavy_packages(settings) -> None:
    """The DAG files, parsed in a fresh interpreter, import none of :data:`NOT_IMPORTED_BY_PARSING`
    (moulin's modules that do are imported inside the tasks)."""
    code = (
        "import json, os, runpy, sys\n"
        "out = {}\n"
        "for path in sys.argv[2:]:\n"
        "    before = set(sys.modules)\n"
        "    runpy.run_path(path)\n"
        "    out[path] = sorted({m.split('.')[0] for m in set(sys.modules) - before} & set(sys.argv[1].split(',')))\n"
        "print(json.dumps(out), flush=True)\n"
        "os._exit(0)\n"  # deltalake's thread pools may abort the interpreter's exit (delta-rs#2184)
    )
    paths = [str(p) for p in sorted(DAGS_FOLDER.glob("*.py"))]
    done = subprocess.run(
        [sys.executable, "-c", code, ",".join(NOT_IMPORTED_BY_PARSING), *paths],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **airflow_env(settings)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    imported = {
        Path(p).name: found for p, found in json.loads(done.stdout.strip().splitlines()[-1]).items() if found
    }
    assert len(paths) > 1 and not imported, (
        f"parsing DAG files imports {imported}: import them inside the tasks"
    )


def test_every_task_alerts_on_failure_and_the_model_has_a_deadline(dagbag) -> None:
    from moulin.ops.alerts import task_failed

    for dag in dagbag.dags.values():
        for task in dag.tasks:
            callbacks = task.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            assert task_failed in callbacks, f"{dag.dag_id}.{task.task_id} raises no alert when it fails"
    assert dagbag.dags["flights_delay_model"].deadline is not None
    assert dagbag.dags["ops_hdfs_health"].deadline is not None


def test_flights_sources_are_spec_dags_on_one_window_and_the_model_waits_for_all(dagbag) -> None:
    """Each flights drop has its reference runs: the five source DAGs come from the specs, on
    the same schedule and window, caught up; the model DAG is scheduled on their five Assets."""
    from moulin.usecases.flights.params import SOURCES

    dags = [dagbag.dags[f"source_{name}"] for name in SOURCES]
    for dag in dags[1:]:
        for attr in ("schedule", "start_date", "end_date", "catchup"):
            assert getattr(dag, attr) == getattr(dags[0], attr), (dag.dag_id, attr)
    assert dags[0].catchup and dags[0].end_date.date().isoformat() == "2013-12-01"
    assert "flights_ingest" not in dagbag.dags and "dimensions_ingest" not in dagbag.dags
    model = dagbag.dags["flights_delay_model"]
    uris = {asset.uri for asset in model.timetable.asset_condition.objects}
    assert uris == {f"moulin://bronze/{name}" for name in SOURCES}
    emitted = {o.uri for d in dags for t in d.tasks for o in t.outlets}
    assert emitted == uris


def test_the_mail_dag_is_the_kits_with_its_task_ids_and_the_views_after_silver(dagbag) -> None:
    """The mail use case's DAG, generated from its declaration: on bronze mail's Asset, the
    same task ids as the hand-written DAG it replaces, the analysts' views after silver."""
    dag = dagbag.dags["mail_spam_filter"]
    assert dag.fileloc.endswith("usecases.py")
    assert {a.uri for a in dag.timetable.asset_condition.objects} == {"moulin://bronze/mail"}
    upstream = {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks}
    assert upstream == {"silver": [], "train": ["silver"], "report": ["train"], "views": ["silver"]}
    assert [o.uri for o in dag.get_task("silver").outlets] == ["moulin://silver/mail_messages"]
    assert {"mail", "personal-data"} <= set(dag.tags)
    assert dag.start_date.date().isoformat() == "2002-10-10"


def test_the_model_skips_training_until_every_split_has_rows() -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    from moulin.usecases.flights import tasks

    assert tasks.splits_without_months(["2013-01-01", "2013-08-01"]) == ["validation", "test"]
    assert tasks.splits_without_months(["2013-08-01", "2013-09-01", "2013-10-01"]) == ["test"]
    assert tasks.splits_without_months(["2013-08-01", "2013-10-01", "2013-11-01"]) == []
    before = {"version": 3, "splits": {"train": 190, "validation": 380}}
    assert tasks.missing_splits(before) == ["test"]
    with pytest.raises(AirflowSkipException, match="no test rows"):
        tasks.train(None, {}, "asset_triggered__x", before)
    assert tasks.missing_splits({"splits": {"train": 1, "validation": 1, "test": 1}}) == []
