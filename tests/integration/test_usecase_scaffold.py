"""A use case scaffolded from a framing and a source it has never seen, run through Airflow:
the source ``parcels`` onboarded (spec + contract), ``moulin usecase new express`` from a
hand-written framing, then the DAGs ``source_parcels`` and ``express`` (found by discovery in
``Settings.own_usecases_dir``) run as ``airflow dags test`` runs them, to the report."""

from __future__ import annotations

import json
import os

import pytest
from kit_files import DS, FRAMING, ROWS, SOURCE, onboard_parcels

from moulin.delta import DeltaTableStore
from moulin.settings import load_settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kit_env(settings, tmp_path_factory):
    """Contracts and use cases of the test's own, through the settings' variables."""
    base = tmp_path_factory.mktemp("kit")
    env = {
        "MOULIN_CONTRACTS_DIR": str(base / "contracts"),
        "MOULIN_USER_USECASES_DIR": str(base / "usecases"),
    }
    os.environ.update(env)
    yield base
    for key in env:
        del os.environ[key]


def test_a_scaffolded_use_case_runs_through_airflow_to_the_report(kit_env, tmp_path) -> None:
    from moulin.orchestration import DagTest, ensure_airflow_db, run_dag_tests
    from moulin.storage import WarehouseFS
    from moulin.usecases.kit.scaffold import scaffold

    onboard_parcels(kit_env / "contracts", kit_env / "drops")
    settings = load_settings()
    done = scaffold("express", FRAMING, settings=settings)
    assert done.folder == kit_env / "usecases" / "express" and done.classes == ("standard", "express")

    ensure_airflow_db(settings)
    runs = [DagTest(f"source_{SOURCE}", DS), DagTest("express", DS, conf={"epochs_scale": 0.5})]
    run_dag_tests(settings, runs, tmp_path, print)

    store = DeltaTableStore()
    bronze = store.to_pandas(settings.table_uri("bronze", SOURCE))
    silver = store.to_pandas(settings.table_uri("silver", "express"))
    assert len(bronze) == ROWS and len(silver) == ROWS  # every order accounted for
    assert sorted(silver["order_id"]) == sorted(bronze["order_id"])
    assert (
        silver["label"] == bronze.set_index("order_id").loc[silver["order_id"], "express"].astype(int).values
    ).all()
    assert set(silver["split"]) == {"train", "validation", "test"}

    fs = WarehouseFS(settings)
    (run,) = [i.uri for i in fs.list(settings.table_uri("models", "express")) if i.is_dir]
    results = json.loads(fs.read_bytes(f"{run}/results.json"))
    assert sum(results["split_rows"].values()) == ROWS
    models = {m["model"]: m for m in results["models"]}
    assert set(models) == {"majority", "logreg", "mlp"}
    chosen = results["selection"]["recommended"]
    assert chosen != "majority" and models[chosen]["test"]["accuracy"] >= 0.8
    assert models[chosen]["test"]["accuracy"] > models["majority"]["test"]["accuracy"] + 0.2
    page = fs.read_bytes(f"{run}/report.html").decode()
    assert "Will the customer choose express shipping for this order?" in page
    assert "Against the goal: the recommended model reaches" in page and "0.80 was needed" in page
