"""Retention deletes by the contract's ``retention_column``, views and staging
copies included, and records what it deleted; the daily DAG deletes by default.
Personal values stay out of the Delta log's statistics of merges."""

from __future__ import annotations

import ast
import datetime as dt
import json
from pathlib import Path

import pytest

from moulin.delta import DeltaTableStore, TableProperties
from moulin.orchestration import DAGS_FOLDER
from moulin.settings import load_settings

CONTRACT = """\
name: bronze_people_rt
layer: bronze
table: bronze/people_rt
description: people, for the retention test
owner: data-engineering
partition_by: [region, ds]
quarantine_threshold: 0.1
privacy:
  purpose: support
  legal_basis: contract
  retention_days: 30
  retention_column: ds
  subject_columns: [email]
columns:
  - {name: email, type: string, nullable: true,
     personal: {category: direct_identifier, treatment: pseudonymise, purpose: support}}
  - {name: region, type: string, nullable: false}
  - {name: ds, type: string, nullable: false}
"""


@pytest.fixture
def people(spark, tmp_path, monkeypatch):
    """A private home whose only table is ``bronze/people_rt`` (partitioned by region, then ds),
    with its analysts' view and two staging copies: one expired day, one kept."""
    from moulin.privacy.views import build_views

    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "bronze_people_rt.yaml").write_text(CONTRACT)
    (contracts / "sources").mkdir()
    (contracts / "sources" / "people_rt.yaml").write_text(
        'name: people_rt\nkind: file\ncontract: bronze_people_rt\nfile: {path: "{home}/drops/people_rt/{ds}/*.jsonl", format: jsonl}\n'
    )
    monkeypatch.setenv("MOULIN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MOULIN_CONTRACTS_DIR", str(contracts))
    settings = load_settings("local")
    rows = [("ps_a", "eu", "2026-01-01"), ("ps_b", "us", "2026-01-01"), ("ps_c", "eu", "2026-03-01")]
    df = spark.createDataFrame(rows, "email string, region string, ds string")
    DeltaTableStore(spark).write(
        df,
        settings.table_uri("bronze", "people_rt"),
        partition_by=["region", "ds"],
        properties=TableProperties(personal_data=("email",)),
    )
    build_views(spark, settings)
    staging = settings.home / "staging" / "people_rt"
    staging.mkdir(parents=True)
    for ds in ("2026-01-01", "2026-03-01"):
        (staging / f"people_rt_{ds}.jsonl").write_text('{"email": "x@example.org"}\n')
    return settings


def test_retention_deletes_by_its_column_in_tables_views_and_staging_and_records_it(people, spark) -> None:
    from moulin.privacy.retention import apply_retention
    from moulin.privacy.views import view_contracts, view_uri

    settings = people
    store = DeltaTableStore(spark)
    table = settings.table_uri("bronze", "people_rt")
    (contract,) = [c for c in view_contracts() if c.name == "bronze_people_rt"]
    view = view_uri(settings, contract)
    today = dt.date(2026, 3, 10)  # 30 days: 2026-01-01 is expired, 2026-03-01 is not

    apply_retention(spark, settings, today, dry_run=True)
    assert store.count(table) == 3  # a dry run deletes nothing

    actions = {a["target"]: a for a in apply_retention(spark, settings, today)}
    for uri in (table, view):
        days = {r["ds"] for r in store.read(uri).select("ds").collect()}
        assert days == {"2026-03-01"}, uri  # before the fix: deleted by region, so nothing at all
        assert actions[uri]["column"] == "ds" and actions[uri]["expired"] == ["2026-01-01"]
    staging = settings.home / "staging" / "people_rt"
    assert sorted(p.name for p in staging.iterdir()) == ["people_rt_2026-03-01.jsonl"]
    from moulin.privacy.retention import read_retention

    recorded = {r["target"]: r for r in read_retention(settings)}
    assert json.loads(recorded[table]["deleted"]) == ["2026-01-01"] and recorded[table]["rows"] == 2
    assert json.loads(recorded[view]["deleted"]) == ["2026-01-01"]
    assert json.loads(recorded[str(staging)]["deleted"]) == ["people_rt_2026-01-01.jsonl"]


def test_the_daily_retention_dag_deletes_by_default() -> None:
    tree = ast.parse((DAGS_FOLDER / "privacy.py").read_text())
    defaults = [
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Param"
    ]
    assert defaults == [False]  # dry_run is a parameter, off unless a run asks for it


def test_merges_keep_personal_values_out_of_the_log_statistics(spark, tmp_path) -> None:
    store = DeltaTableStore(spark)
    uri = (tmp_path / "people").resolve().as_uri()
    first = spark.createDataFrame([(1, "alice@example.org", "x")], "id int, email string, note string")
    store.write(first, uri, properties=TableProperties(personal_data=("email",)))
    second = spark.createDataFrame([(2, "zed@example.org", "y")], "id int, email string, note string")
    store.merge(second, uri, keys=["id"])
    log = "".join(p.read_text() for p in sorted(Path(tmp_path / "people" / "_delta_log").glob("*.json")))
    assert "zed@example.org" not in log and "alice@example.org" not in log
    assert '"y"' in log or "maxValues" in log  # statistics are still kept for the other columns
