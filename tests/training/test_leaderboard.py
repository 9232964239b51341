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
