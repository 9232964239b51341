from datetime import UTC, datetime

from deltalake import DeltaTable

from moulin.training import leaderboard as lb


def test_retried_run_appends_its_rows_once(local_dir: str) -> None:
    uri = f"{local_dir}/leaderboard"
    now = datetime.now(UTC)
    rows = [{"run_id": "run-1", "model": m, "created_at": now} for m in ("mlp", "logreg", "hist_gbt")]
    first = lb.append(uri, rows, run_id="run-1")
    again = lb.append(uri, rows, run_id="run-1")  # an Airflow retry of the same run
    assert again == first
    other = lb.append(uri, [{"run_id": "run-2", "model": "mlp", "created_at": now}], run_id="run-2")
    assert other == first + 1
    assert DeltaTable(uri).to_pyarrow_table().num_rows == 4


def test_a_run_trained_again_on_other_data_appends_its_own_rows(local_dir: str) -> None:
    uri = f"{local_dir}/leaderboard"
    now = datetime.now(UTC)

    def rows(version: int) -> list[dict]:
        return [{"run_id": "run-1", "model": "mlp", "created_at": now, "features_version": version}]

    a, b = lb.app_id("run-1", "aaaa"), lb.app_id("run-1", "bbbb")
    assert a != b and lb.recorded_version(uri, a) == 0  # no table yet
    first = lb.append(uri, rows(0), run_id="run-1", fingerprint="aaaa")
    # the run's id cleared on another snapshot: another fingerprint, rows of its own
    second = lb.append(uri, rows(1), run_id="run-1", fingerprint="bbbb")
    assert second == first + 1
    assert lb.append(uri, rows(1), run_id="run-1", fingerprint="bbbb") == second  # a retry
    # snapshot A's training recorded once more (results.json held B's since): a later version
    assert lb.recorded_version(uri, a) == 1
    assert lb.append(uri, rows(0), run_id="run-1", fingerprint="aaaa", app_version=2) == second + 1
    assert lb.append(uri, rows(0), run_id="run-1", fingerprint="aaaa", app_version=2) == second + 1
    assert lb.recorded_version(uri, a) == 2 and lb.recorded_version(uri, b) == 1
    versions = DeltaTable(uri).to_pyarrow_table().column("features_version").to_pylist()
    assert sorted(versions) == [0, 0, 1]
