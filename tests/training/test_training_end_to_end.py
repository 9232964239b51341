"""One real training run on the synthetic table: Delta snapshot -> petastorm ->
TorchDistributor (2 ranks, gloo) -> baselines -> metrics -> files + leaderboard."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

pytestmark = pytest.mark.training


def _path(uri: str) -> Path:
    return Path(urlparse(uri).path)


@pytest.fixture(scope="module")
def run(spark, settings, synthetic_table):
    from moulin.training.run import train_and_compare
    from moulin.training.run_options import TrainingOptions

    options = TrainingOptions(
        contract="flight_features",
        features_uri=synthetic_table["uri"],
        epochs=2,
        num_processes=2,
        run_id="test-run-1",
        batch_size=256,
        learning_rate=5e-3,
    )
    return train_and_compare(spark, settings, options)


def test_models_learn_the_signal(run):
    assert set(run["models"]) == {"mlp", "logreg", "hist_gbt"}
    for name, metrics in run["models"].items():
        assert metrics["roc_auc"] > 0.6, (name, metrics)
        lo, hi = metrics["roc_auc_ci"]
        assert lo <= metrics["roc_auc"] <= hi
        assert 0 < metrics["base_rate"] < 1


def test_version_rows_and_leaderboard(run, settings, synthetic_table):
    from moulin.training import leaderboard

    assert run["version"] == synthetic_table["version"]
    assert sum(run["rows"].values()) == synthetic_table["rows"]
    rows = [r for r in leaderboard.read(run["paths"]["leaderboard"]) if r["run_id"] == "test-run-1"]
    assert sorted(r["model"] for r in rows) == ["hist_gbt", "logreg", "mlp"]
    for row in rows:
        assert row["features_uri"] == synthetic_table["uri"]
        assert row["features_version"] == synthetic_table["version"]
        assert row["n_train"] == run["rows"]["train"] and row["n_test"] == run["rows"]["test"]
        assert row["roc_auc_lo"] <= row["roc_auc"] <= row["roc_auc_hi"]
        assert json.loads(row["hyperparams"])
        assert row["train_seconds"] > 0
    assert run["leaderboard_rows"][0]["run_id"] == "test-run-1"
    assert run["paths"]["leaderboard"] == settings.table_uri("gold", "model_leaderboard")


def test_files_checkpoints_and_results_json(run, settings):
    model_dir = settings.table_uri("models", "model", "test-run-1")
    assert run["paths"]["model_dir"] == model_dir
    checkpoints = run["paths"]["checkpoints"]
    assert [Path(c).name for c in checkpoints] == ["epoch-001.pt", "epoch-002.pt"]
    for uri in [
        *checkpoints,
        run["paths"]["mlp_model"],
        f"{model_dir}/logreg/model.skops",
        f"{model_dir}/hist_gbt/model.skops",
    ]:
        assert _path(uri).is_file(), uri
    assert not list(_path(model_dir).rglob("*.joblib"))

    def no_nan(token):
        raise AssertionError(f"non-standard JSON constant {token}")

    results = json.loads(_path(run["paths"]["results_json"]).read_text(), parse_constant=no_nan)
    assert results["features_version"] == run["version"] and results["split_rows"] == run["rows"]
    models = {m["model"]: m for m in results["models"]}
    assert set(models) == {"mlp", "logreg", "hist_gbt"}
    mlp = models["mlp"]
    assert mlp["metrics"]["roc_auc"]["value"] == pytest.approx(run["models"]["mlp"]["roc_auc"])
    assert len(mlp["training"]["history"]) == 2
    # equal shares of rows; the rows that do not divide among the ranks are dropped that epoch
    training = mlp["training"]
    assert len(set(training["rows_per_rank"])) == 1
    assert sum(training["rows_per_rank"]) + training["tail_rows"] == run["rows"]["train"]
    assert training["tail_rows"] == run["rows"]["train"] % 2
    assert training["sharding"] == "row_ranges"
    assert mlp["curves"]["roc"]["fpr"] and mlp["curves"]["pr"]["recall"] and mlp["curves"]["calibration"]
    assert sum(b["count"] for b in mlp["test"]["reliability"]) == run["rows"]["test"]
    assert {"carrier", "origin"} <= set(mlp["slices"])
    assert sum(s["n"] for s in mlp["slices"]["origin"]) == run["rows"]["test"]

    # The decision report reads this file as its training input, with the class training wrote it with.
    from moulin.training.training_results import TrainingResults

    written = _path(run["paths"]["results_json"]).read_bytes()
    parsed = TrainingResults.from_json(written)
    assert parsed.to_json() == written  # read and written back byte for byte
    assert parsed.features_version == run["version"] and len(parsed.models) == 3
    assert parsed.chosen is not None and parsed.chosen.model == run["recommended"]
    assert parsed.chosen.curves.roc and parsed.chosen.slices["origin"]


def test_the_recommended_model_is_chosen_on_validation_and_pairs_are_tested(run, settings):
    results = json.loads(_path(run["paths"]["results_json"]).read_text())
    validation = {m["model"]: m["validation"]["roc_auc"] for m in results["models"]}
    assert results["selection"] == {
        "split": "validation",
        "metric": "roc_auc",
        "recommended": max(validation, key=validation.get),
    }
    assert run["recommended"] == results["best_model"] == results["selection"]["recommended"]
    pairs = {(c["a"], c["b"]) for c in results["comparisons"]}
    assert pairs == {("mlp", "logreg"), ("mlp", "hist_gbt"), ("logreg", "hist_gbt")}
    test_auc = {m["model"]: m["metrics"]["roc_auc"]["value"] for m in results["models"]}
    for c in results["comparisons"]:
        assert c["grouped"] and c["metric"] == "roc_auc"  # resampled by departure day
        assert c["difference"] == pytest.approx(test_auc[c["a"]] - test_auc[c["b"]])
        assert c["ci_low"] <= c["difference"] <= c["ci_high"] and c["p_value"] <= c["p_adjusted"] <= 1
    assert all(m["test"]["bootstrap_grouped"] for m in results["models"])


def test_reloaded_baselines_give_the_same_predictions(run, settings, synthetic_table, contract):
    from moulin.training.artifacts import load_baseline
    from moulin.training.baselines import BoostedTreesBaseline, LogisticBaseline
    from moulin.training.data import read_split_pandas, resolve_snapshot
    from moulin.training.metrics import roc_auc, undo_class_weighting
    from moulin.training.preprocessing import Preprocessor

    snap = resolve_snapshot(synthetic_table["uri"], contract.split, run["version"])
    test = read_split_pandas(snap.files["test"], contract.read_columns)
    for name in ("logreg", "hist_gbt"):
        uri = run["models"][name]["model_uri"]
        assert uri.endswith(f"/{name}/model.skops")
        saved = load_baseline(uri, settings)
        assert saved["features_version"] == synthetic_table["version"] and saved["run_id"] == "test-run-1"
        pre = Preprocessor.from_dict(saved["preprocessor"])
        cat, num = pre.transform(test)
        if name == "logreg":
            x = LogisticBaseline(pre).features(cat, num)
        else:
            x = BoostedTreesBaseline.features(cat, num)
        p = undo_class_weighting(saved["model"].predict_proba(x)[:, 1], saved["probability_pos_weight"])
        assert roc_auc(test[contract.label], p) == pytest.approx(run["models"][name]["roc_auc"], abs=1e-12)


def test_reloaded_model_gives_the_same_predictions(run, settings, synthetic_table, contract):
    import io

    import torch

    from moulin.training.artifacts import load_mlp
    from moulin.training.data import read_split_pandas, resolve_snapshot
    from moulin.training.metrics import roc_auc
    from moulin.training.model import MLPConfig, TabularMLP

    trained = load_mlp(run["paths"]["mlp_model"], settings)
    assert trained.meta["features_version"] == synthetic_table["version"]
    assert trained.meta["features_uri"] == synthetic_table["uri"]
    snap = resolve_snapshot(synthetic_table["uri"], contract.split, run["version"])
    test = read_split_pandas(snap.files["test"], contract.read_columns)
    p = trained.predict_proba(test)
    assert p.shape == (len(test),) and np.all((p >= 0) & (p <= 1))
    # The same predictions as the ones the run evaluated ...
    assert roc_auc(test[contract.label], p) == pytest.approx(run["models"]["mlp"]["roc_auc"], abs=1e-12)
    # ... and as the best epoch's checkpoint.
    best = trained.meta["best_epoch"]
    ckpt = torch.load(
        io.BytesIO(_path(run["paths"]["checkpoints"][best - 1]).read_bytes()), weights_only=True
    )
    model = TabularMLP(
        trained.preprocessor.cardinalities,
        trained.preprocessor.n_numeric,
        MLPConfig.from_dict(trained.meta["model_config"]),
    )
    model.load_state_dict(ckpt["state_dict"])
    from moulin.training.metrics import undo_class_weighting
    from moulin.training.model import predict_proba

    raw = predict_proba(model, *trained.preprocessor.transform(test)).numpy()
    p2 = undo_class_weighting(raw, trained.meta["probability_pos_weight"])
    np.testing.assert_allclose(p, p2, rtol=0, atol=1e-7)
