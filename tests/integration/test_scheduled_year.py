"""A scheduled year, as an acceptance test: ``moulin platform up`` from an empty home,
then the scheduler alone (no ``dags test``, no trigger) runs four monthly drops of
flights (August to November 2013: train, validation, validation, test), the reference
sources (weather, airlines, planes, airports: source specs like flights) every month (planes incremental: the months after the first bring no plane) and
``flights_delay_model`` on its Asset events under the retrain policy of the README
(train once every split has rows; the runs before skip training, green).

Then an operator's two actions: a backfill of the first month after a code edit
(a Clear of its runs of the five source DAGs, ``source_flights`` ...) leaves the newer
months' data as it was, and its events retrain the model on the new snapshot; a Clear
of the earlier training run retrains on the current snapshot and appends its rows.

Checked from independent places: DagRuns, task states and consumed Asset events
through Airflow's REST API, raw files on HDFS, the Delta tables and their history.
``benchmarks/year.py`` runs twelve months the same way (``scheduled_year``).

The tests of this module run in order on one platform.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import scheduled_year as Y
from platform_helpers import _bronze_commits_of, _states

pytestmark = [pytest.mark.integration, pytest.mark.acceptance]

SAMPLE = 200
MONTHS = Y.months_of(8, 4)  # 2013-08 (train), 09 and 10 (validation), 11 (test)
MODELS = {"mlp", "logreg", "hist_gbt"}
OK = ("success", "skipped")
ARTIFACTS = Path(os.environ.get("MOULIN_TEST_ARTIFACTS", "test-artifacts"))


@pytest.fixture(scope="module")
def year_env():
    home = Y.new_home()
    env = Y.year_env(home, MONTHS, SAMPLE, epochs=1)
    yield env
    Y.platform_down(env, logs_to=ARTIFACTS / "scheduled_year_logs")


@pytest.fixture(scope="module")
def platform(year_env):
    return Y.platform_up(year_env)


@pytest.fixture(scope="module")
def year(platform) -> Y.YearReport:
    report = Y.run_scheduled_year(platform, MONTHS, timeout_s=1800)
    Y.print_figures(report, Y.month_figures(platform, report))
    return report


@pytest.fixture(scope="module")
def state() -> dict:
    """What earlier tests of the module leave for later ones."""
    return {}


def _every_run_green(client) -> None:
    for dag_id in Y.DAGS:
        runs = client.dag_runs(dag_id)
        assert runs, f"no run of {dag_id}"
        for run in runs:
            states = _states(client, dag_id, run["dag_run_id"])
            assert run["state"] == "success", (dag_id, run["dag_run_id"], states)
            assert {s for s, _ in states.values()} <= set(OK), (dag_id, run["dag_run_id"], states)


def _training_checks(settings, run: Y.ModelRun, board: list[dict]) -> set[int]:
    """The rows of ``run`` on the leaderboard: one per model per training, each with the
    features version the run read, whose split counts match the table at that version."""
    rows = [r for r in board if r["run_id"] == run.board_id]
    assert rows, f"{run.run_id} trained but has no leaderboard row"
    versions = {int(r["features_version"]) for r in rows}
    for version in versions:
        at = [r for r in rows if int(r["features_version"]) == version]
        assert sorted(r["model"] for r in at) == sorted(MODELS), at
        splits = Y.split_rows_at(settings, version)  # the table's own history
        for r in at:
            assert (r["n_train"], r["n_validation"], r["n_test"]) == (
                splits.get("train"), splits.get("validation"), splits.get("test"),
            ), (r, splits)  # fmt: skip
    return versions


# ---------------------------------------------------------------------------- tests


def test_the_scheduler_alone_runs_every_month_and_every_run_is_green(platform, year) -> None:
    client = platform.client
    assert sorted(year.flights) == MONTHS
    assert {dag_id: sorted(runs) for dag_id, runs in year.references.items()} == {
        dag_id: MONTHS for dag_id in Y.SOURCE_DAGS[1:]
    }
    for runs in (year.flights, *year.references.values()):
        assert {r["run_type"] for r in runs.values()} == {"scheduled"}
    assert {m.run_type for m in year.models} == {"asset_triggered"}
    _every_run_green(client)
    for dag_id in Y.SOURCE_DAGS:
        for run in client.dag_runs(dag_id):
            assert {s for s, _ in _states(client, dag_id, run["dag_run_id"]).values()} == {"success"}
    # A model run is made when the five assets have an event queued; the DAG runs one at a
    # time, and months landing meanwhile are read by the next run that starts (it reads
    # all bronze holds). Airflow lists on a run the events up to when it was queued; a
    # month's event is consumed by one run at most (later ones wait for the next pair).
    consumed = [ds for m in year.models for ds in m.flights_months]
    assert len(consumed) == len(set(consumed)) and set(consumed) <= set(MONTHS), consumed
    assert MONTHS[0] in consumed
    assert 1 <= len(year.models) <= len(MONTHS)
    print("model runs and the months they were created from:")
    for m in year.models:
        print(
            f"  {m.run_id}: flights {m.flights_months}, reference {m.reference_runs}, train {m.train_state}"
        )


def test_the_retrain_policy_trains_once_every_split_has_rows(platform, year) -> None:
    """A run before bronze holds a month of every split skips at ``silver`` (all its tasks
    skipped); a run after trains on a snapshot with rows in every split."""
    consumed: list[str] = []
    for m in year.models:  # in creation order
        consumed += m.flights_months  # bronze held at least these months when the run ran
        if m.tasks["silver"][0] == "skipped":
            assert {s for s, _ in m.tasks.values()} == {"skipped"}, m.tasks
            assert Y.splits_lacking(consumed), (m.run_id, consumed)  # a split had no month yet
            continue
        assert {s for s, _ in m.tasks.values()} == {"success"}, m.tasks
        assert not Y.splits_lacking(m.silver_months), (m.run_id, m.silver_months)
        splits = Y.split_rows_at(platform.settings, m.features["version"])  # the table's history
        assert splits == {k: v for k, v in m.features["splits"].items() if v}, (m.run_id, splits)
        assert all(splits.get(s) for s in ("train", "validation", "test")), (m.run_id, splits)
    trained = [m for m in year.models if m.train_state == "success"]
    assert trained and trained[-1].silver_months == MONTHS  # November brings the test split


def test_each_months_counts_are_exact(platform, year) -> None:
    settings = platform.settings
    for ds in MONTHS:
        raw = Y.raw_rows(settings, "flights", ds)
        bronze = Y.delta_rows(settings, "bronze/flights", ds)
        quarantined = Y.delta_rows(settings, "quarantine/flights", ds)
        assert raw == SAMPLE == bronze + quarantined, (ds, raw, bronze, quarantined)
        record = Y.quality_record(settings, "flights", ds)
        assert (record["rows_read"], record["rows_bronze"], record["rows_quarantined"]) == (
            raw, bronze, quarantined,
        )  # fmt: skip
        for source in Y.REFERENCE_SOURCES:
            record = Y.quality_record(settings, source, ds)
            assert record["rows_read"] == record["rows_bronze"] + record["rows_quarantined"], (source, record)
            assert record["rows_read"] == Y.raw_rows(settings, source, ds), (source, ds, record)
    planes = [Y.quality_record(settings, "planes", ds) for ds in MONTHS]
    assert planes[0]["rows_read"] > 0
    for ds, record in zip(MONTHS[1:], planes[1:], strict=True):  # incremental: nothing new
        assert (record["rows_read"], record["rows_bronze"], record["rows_quarantined"]) == (0, 0, 0), ds
    assert Y.delta_rows(settings, "bronze/planes") == planes[0]["rows_bronze"]
    assert Y.delta_rows(settings, "bronze/flights") + Y.delta_rows(settings, "quarantine/flights") == (
        SAMPLE * len(MONTHS)
    )
    for source in ("weather", "airlines", "airports"):  # snapshots: the newest month's
        newest = Y.quality_record(settings, source, MONTHS[-1])
        assert Y.delta_rows(settings, f"bronze/{source}") == newest["rows_bronze"], source


def test_one_leaderboard_set_per_training_with_the_snapshot_it_read(platform, year, state) -> None:
    from deltalake import DeltaTable

    settings = platform.settings
    board = Y.leaderboard(settings)
    trained = [m for m in year.models if m.train_state == "success"]
    assert {r["run_id"] for r in board} == {m.board_id for m in trained}
    assert len(board) == len(MODELS) * len(trained)
    history = {h["version"] for h in DeltaTable(settings.table_uri("gold", "flight_features")).history()}
    for m in trained:
        versions = _training_checks(settings, m, board)
        assert versions == {m.features["version"]} == {m.trained["version"]}, (m.run_id, versions)
        assert versions <= history
    state["trained"] = trained
    state["board_rows"] = len(board)


def test_a_backfill_of_an_earlier_month_after_a_code_edit_leaves_newer_data(platform, year, state) -> None:
    settings, client = platform.settings, platform.client
    first, newer = MONTHS[0], MONTHS[1:]
    files = {ds: Y.partition_files(settings, "bronze/flights", ds) for ds in newer}
    rows = {ds: _month_rows(settings, ds) for ds in MONTHS}
    snapshots = {s: Y.table_state(settings, f"bronze/{s}") for s in ("weather", "airlines", "airports")}
    planes = _planes(settings)
    commits = _bronze_commits_of(settings, first)
    models_before = {m["dag_run_id"] for m in client.dag_runs("flights_delay_model")}

    Y.edit_code(settings.home / "code", "scheduled-year test: an edit before the backfill")
    cleared = {}
    for dag_id, runs in (("source_flights", year.flights), *year.references.items()):
        run_id = runs[first]["dag_run_id"]
        assert client.clear_run(dag_id, run_id)
        cleared[dag_id] = run_id

    def rerun_done() -> bool:
        for dag_id, run_id in cleared.items():
            states = _states(client, dag_id, run_id)
            if not all(s == "success" and tries >= 2 for s, tries in states.values()):
                assert not any(s == "failed" for s, _ in states.values()), (dag_id, states)
                return False
        return True

    Y.wait_until(f"the backfill of {first} (cleared runs {cleared}) to succeed again", rerun_done, 900)
    # The code edit made the backfill recompute: the month was written again ...
    assert _bronze_commits_of(settings, first) == commits + 1
    assert _month_rows(settings, first) == rows[first]
    # ... and the newer months are as they were: their files, rows, the snapshots, planes.
    assert {ds: Y.partition_files(settings, "bronze/flights", ds) for ds in newer} == files
    assert {ds: _month_rows(settings, ds) for ds in newer} == {ds: rows[ds] for ds in newer}
    assert {s: Y.table_state(settings, f"bronze/{s}") for s in snapshots} == snapshots
    assert _planes(settings) == planes
    for source in Y.REFERENCE_SOURCES:  # the older month's gate still accounts for every row
        record = Y.quality_record(settings, source, first)
        assert record["rows_read"] == record["rows_bronze"] + record["rows_quarantined"], (source, record)

    # The five bronze assets got an event: the model retrains on the new snapshot.
    def retrained() -> bool:
        runs = client.dag_runs("flights_delay_model")
        new = [r for r in runs if r["dag_run_id"] not in models_before]
        if any(r["state"] == "failed" for r in new):
            raise AssertionError(f"a model run after the backfill failed: {new}")
        return bool(new) and all(r["state"] == "success" for r in runs) and not Y.run_imminent(client)

    Y.wait_until("the model run the backfill's Asset events trigger to finish", retrained, 900)
    after = [m for m in Y.model_runs(client) if m.run_id not in models_before]
    assert after and after[-1].silver_months == MONTHS, [(m.run_id, m.silver_months) for m in after]
    board = Y.leaderboard(settings)
    current = Y.table_state(settings, "gold/flight_features")[0]
    old_versions = {m.features["version"] for m in state["trained"]}
    for m in after:
        assert m.train_state == "success", m.tasks
        assert _training_checks(settings, m, board) == {m.features["version"]}
        assert m.features["version"] not in old_versions
    assert after[-1].features["version"] == current
    assert len(board) == state["board_rows"] + len(MODELS) * len(after)
    state["board_rows"] = len(board)


def _month_rows(settings, ds: str) -> tuple[int, int]:
    """(bronze, quarantined) flights of month ``ds``."""
    return Y.delta_rows(settings, "bronze/flights", ds), Y.delta_rows(settings, "quarantine/flights", ds)


def _planes(settings) -> list[tuple]:
    from moulin.delta import DeltaTableStore

    frame = DeltaTableStore(None).to_pandas(settings.table_uri("bronze", "planes"))
    return sorted(tuple(str(v) for v in row) for row in frame.sort_index(axis=1).itertuples(index=False))


def test_a_clear_of_an_earlier_model_run_retrains_on_the_current_snapshot(platform, state) -> None:
    settings, client = platform.settings, platform.client
    earlier: Y.ModelRun = state["trained"][0]
    old_version = earlier.features["version"]
    before = Y.leaderboard(settings)
    assert client.clear_run("flights_delay_model", earlier.run_id)

    def retrained() -> bool:
        run = client.get(f"/dags/flights_delay_model/dagRuns/{earlier.run_id}")
        states = _states(client, "flights_delay_model", earlier.run_id)
        assert run["state"] != "failed", states
        return run["state"] == "success" and states["train"][0] == "success" and states["train"][1] >= 2

    start = time.monotonic()
    Y.wait_until(f"the cleared model run {earlier.run_id} to train again", retrained, 900)
    print(f"cleared model run retrained in {time.monotonic() - start:.0f} s")
    (again,) = [m for m in Y.model_runs(client) if m.run_id == earlier.run_id]
    current = Y.table_state(settings, "gold/flight_features")[0]
    assert again.features["version"] == again.trained["version"] == current != old_version
    assert again.trained["fingerprint"] != earlier.trained["fingerprint"]
    board = Y.leaderboard(settings)
    assert len(board) == len(before) + len(MODELS)  # appended; the earlier rows stay
    assert _training_checks(settings, again, board) == {old_version, current}
    old_rows = sorted((r["model"], r["features_version"], str(r["created_at"])) for r in before
                      if r["run_id"] == earlier.board_id)  # fmt: skip
    kept = sorted((r["model"], r["features_version"], str(r["created_at"])) for r in board
                  if r["run_id"] == earlier.board_id and r["features_version"] == old_version)  # fmt: skip
    assert kept == old_rows
    _every_run_green(client)
