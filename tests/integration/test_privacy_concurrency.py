"""Writes that depend on a read commit only on top of the version
read.  Erasure, retention and the analysts' views' rebuilds each get a commit injected
between their read and their write (a test hook wrapping ``DeltaTableStore.write``;
real Delta tables on local disk): none of them may undo it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from moulin.delta import DeltaTableStore, TableProperties
from moulin.delta.log import normalize_uri
from moulin.privacy.keys import load_key
from moulin.privacy.pseudonyms import pseudonym
from moulin.settings import load_settings

pytestmark = pytest.mark.integration

CONTRACT = """\
name: bronze_people_cc
layer: bronze
table: bronze/people_cc
description: people, for the concurrency test
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
SCHEMA = "email string, region string, ds string"


@pytest.fixture
def people(spark, tmp_path, monkeypatch):
    """A private home whose only table is ``bronze/people_cc`` (pseudonyms of a, b and c,
    partitioned by region, then ds), with its analysts' view built from version 0."""
    from moulin.privacy.views import build_views

    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "bronze_people_cc.yaml").write_text(CONTRACT)
    (contracts / "sources").mkdir()
    (contracts / "sources" / "people_cc.yaml").write_text(
        'name: people_cc\nkind: file\ncontract: bronze_people_cc\nfile: {path: "{home}/drops/people_cc/{ds}/*.jsonl", format: jsonl}\n'
    )
    monkeypatch.setenv("MOULIN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MOULIN_CONTRACTS_DIR", str(contracts))
    settings = load_settings("local")
    rows = [(_ps(settings, "a"), "eu", "2026-01-01"), (_ps(settings, "b"), "us", "2026-01-01"),
            (_ps(settings, "c"), "eu", "2026-03-01")]  # fmt: skip
    DeltaTableStore(spark).write(
        spark.createDataFrame(rows, SCHEMA),
        settings.table_uri("bronze", "people_cc"),
        partition_by=["region", "ds"],
        properties=TableProperties(personal_data=("email",)),
    )
    build_views(spark, settings)
    return settings


def _ps(settings, name: str) -> str:
    return pseudonym(f"{name}@example.org", "support", load_key(settings))


def _emails(spark, uri: str) -> list[str]:
    return sorted(r.email for r in DeltaTableStore(spark).read(uri).select("email").collect())


def _before_first_write(monkeypatch, uri: str, commit: Callable[[Callable], None]) -> list[int]:
    """Run ``commit(original_write)`` once, just before the first write to ``uri`` starts (after
    the writer read the table); returns a list that holds 1 once it ran."""
    original = DeltaTableStore.write
    fired: list[int] = []

    def write(self, df, table_uri, *args, **kwargs):
        if not fired and normalize_uri(table_uri) == normalize_uri(uri):
            fired.append(1)
            commit(original)
        return original(self, df, table_uri, *args, **kwargs)

    monkeypatch.setattr(DeltaTableStore, "write", write)
    return fired


def test_a_write_pinned_to_a_version_commits_nothing_on_top_of_another(spark, local_dir) -> None:
    from moulin.delta import StaleReadError

    store = DeltaTableStore(spark)
    uri = f"{local_dir}/pinned"
    df = spark.createDataFrame([("x", "eu", "d")], SCHEMA)
    store.write(df, uri, partition_by=["region"], expected_version=-1)
    store.write(df, uri)  # v1, committed after the pinned writer below read v0
    for mode in ("append", "overwrite"):
        with pytest.raises(StaleReadError, match="pinned|version 1.*version 0") as err:
            store.write(df, uri, mode=mode, expected_version=0)
        assert err.value.found_version == 1 and err.value.expected_version == 0
    assert store.version(uri) == 1 and store.count(uri) == 2
    assert store.write(df, uri, expected_version=1).version == 2


def test_erasure_keeps_a_commit_landed_between_its_read_and_its_write(people, spark, monkeypatch) -> None:
    from moulin.contracts import load_all_contracts
    from moulin.privacy.erasure import PersonalTable, _erase_table

    settings = people
    uri = settings.table_uri("bronze", "people_cc")
    newcomer = _ps(settings, "d")
    appended: list[int] = []

    def append_same_partition(write) -> None:  # another landing of region eu
        df = spark.createDataFrame([(newcomer, "eu", "2026-01-01")], SCHEMA)
        appended.append(write(DeltaTableStore(spark), df, uri).version)

    fired = _before_first_write(monkeypatch, uri, append_same_partition)
    table = PersonalTable("bronze_people_cc", uri, load_all_contracts()["bronze_people_cc"])
    done = _erase_table(spark, table, "a@example.org", load_key(settings), print)
    assert fired and done is not None and done.rows_erased == 1
    # before the fix: the erasure replaced region eu as it read it at v0, and d was gone
    assert _emails(spark, uri) == sorted([_ps(settings, "b"), _ps(settings, "c"), newcomer])
    assert done.version_before == appended[0] and done.rows_before == 4  # it read again, after the append


def test_retention_records_what_it_deleted_when_a_commit_lands_after_its_plan(
    people, spark, monkeypatch
) -> None:
    from moulin.privacy.retention import apply_retention, read_retention

    settings = people
    uri = settings.table_uri("bronze", "people_cc")
    late = _ps(settings, "late")
    appended: list[int] = []

    def append_expired_day(write) -> None:  # a late row of the expired day lands after the plan
        df = spark.createDataFrame([(late, "us", "2026-01-01")], SCHEMA)
        appended.append(write(DeltaTableStore(spark), df, uri).version)

    fired = _before_first_write(monkeypatch, uri, append_expired_day)
    actions = {a["target"]: a for a in apply_retention(spark, settings, dt.date(2026, 3, 10))}
    assert fired
    assert _emails(spark, uri) == [_ps(settings, "c")]
    # before the fix: 3 rows deleted (a, b and the late one) but 2 recorded, from the plan's version
    assert actions[uri]["rows"] == 3 and actions[uri]["read_version"] == appended[0]
    assert {r["target"]: r["rows"] for r in read_retention(settings)}[uri] == 3


def test_a_view_rebuild_that_lost_a_race_puts_no_erased_row_back(people, spark, monkeypatch) -> None:
    from moulin.privacy.views import build_views, view_contracts, view_uri

    settings = people
    store = DeltaTableStore(spark)
    uri = settings.table_uri("bronze", "people_cc")
    (contract,) = [c for c in view_contracts() if c.name == "bronze_people_cc"]
    view = view_uri(settings, contract)
    store.write(spark.createDataFrame([(_ps(settings, "e"), "us", "2026-03-01")], SCHEMA), uri)
    subject = _ps(settings, "a")

    def erase_and_rebuild(write) -> None:  # the rebuild below has read the table: a is erased, views rebuilt
        kept = store.read(uri).filter(f"email != '{subject}'")
        write(store, kept, uri, mode="overwrite")
        build_views(spark, settings)

    fired = _before_first_write(monkeypatch, view, erase_and_rebuild)
    build_views(spark, settings)
    assert fired
    # before the fix: the losing rebuild wrote the view from the older version over the erasure's
    assert subject not in _emails(spark, view)
    assert _emails(spark, view) == _emails(spark, uri)
