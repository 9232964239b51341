"""The same run with the feature table, the models and the leaderboard on the
real local HDFS (WebHDFS for files, delta-rs for the tables)."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.training, pytest.mark.integration]


@pytest.fixture
def hdfs_features(hdfs_dir, contract) -> str:
    from moulin.training.synthetic import write_synthetic_table

    uri = f"{hdfs_dir}/gold/flight_features"
    write_synthetic_table(uri, contract, 2500, seed=11)
    return uri


def test_training_run_on_hdfs(spark, hdfs_settings, hdfs_features):
    from moulin.storage import WarehouseFS
    from moulin.training import leaderboard
    from moulin.training.artifacts import load_mlp
    from moulin.training.run import train_and_compare
    from moulin.training.run_options import TrainingOptions

    options = TrainingOptions(
        contract="flight_features",
        features_uri=hdfs_features,
        epochs=1,
        run_id="hdfs-run",
        bootstrap_resamples=20,
        learning_rate=5e-3,
        batch_size=256,
    )
    summary = train_and_compare(spark, hdfs_settings, options)
    assert summary["paths"]["model_dir"].startswith("hdfs://")
    assert summary["models"]["mlp"]["roc_auc"] > 0.6
    fs = WarehouseFS(hdfs_settings)
    assert fs.exists(summary["paths"]["checkpoints"][0])
    results = json.loads(fs.read_bytes(summary["paths"]["results_json"]))
    assert results["features_uri"] == hdfs_features
    trained = load_mlp(summary["paths"]["mlp_model"], hdfs_settings)
    assert trained.meta["features_version"] == summary["version"] == 0
    rows = leaderboard.read(summary["paths"]["leaderboard"], hdfs_settings)
    assert {r["model"] for r in rows if r["run_id"] == "hdfs-run"} == {"mlp", "logreg", "hist_gbt"}
