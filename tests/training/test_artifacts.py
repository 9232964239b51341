"""Baseline model files are skops archives loaded against an allow-list of types: a
pickle or joblib file planted in a model folder (under any name) is refused, never
unpickled; run ids and model names cannot leave the models folder."""

from __future__ import annotations

import functools
import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from moulin.errors import UnsafeNameError
from moulin.storage import WarehouseFS
from moulin.training import TrainingError
from moulin.training.artifacts import (
    BASELINE_FORMAT,
    baseline_uri,
    load_baseline,
    model_dir_uri,
    save_baseline,
)

pytestmark = pytest.mark.training


class _TouchOnUnpickle:
    """Unpickling this object creates ``path``: it stands in for any code a pickle can run."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


class _NotTrusted:
    """A type no allow-list holds."""

    def __init__(self) -> None:
        self.value = 1


@pytest.fixture(scope="module")
def fitted(contract):
    """Both baselines fitted on a small synthetic train split, and its test rows."""
    from moulin.training.baselines import BoostedTreesBaseline, LogisticBaseline
    from moulin.training.preprocessing import Preprocessor
    from moulin.training.synthetic import synthetic_features

    frame = synthetic_features(contract, 1500, seed=3)
    train, test = frame.iloc[:1200], frame.iloc[1200:]
    pre = Preprocessor.fit(train, contract)
    cat, num = pre.transform(train)
    y = train[contract.label].to_numpy(dtype=np.float64)
    models = [
        LogisticBaseline(pre, seed=0).fit(cat, num, y),
        BoostedTreesBaseline(pre, max_iter=20, seed=0).fit(cat, num, y),
    ]
    return pre, models, pre.transform(test)


def test_baselines_round_trip_through_skops(settings, fitted) -> None:
    pre, models, (cat, num) = fitted
    folder = model_dir_uri(settings, "model", "test-artifacts-1")
    fs = WarehouseFS(settings)
    for baseline in models:
        uri = baseline_uri(folder, baseline.name)
        assert uri == f"{folder}/{baseline.name}/model.skops"
        save_baseline(fs, uri, {"model": baseline.model, "preprocessor": pre.to_dict(), "threshold": 0.25})
        assert fs.read_bytes(uri)[:4] == b"PK\x03\x04"  # a skops zip archive, not a pickle
        loaded = load_baseline(uri, settings)
        assert loaded["format"] == BASELINE_FORMAT and loaded["threshold"] == 0.25
        assert loaded["preprocessor"] == pre.to_dict()
        assert type(loaded["model"]) is type(baseline.model)
        expected = baseline.predict_proba(cat, num)
        got = loaded["model"].predict_proba(baseline.features(cat, num))[:, 1]
        np.testing.assert_array_equal(got, expected)


def _planted(marker: Path) -> dict[str, bytes]:
    import joblib

    buffer = io.BytesIO()
    joblib.dump({"model": _TouchOnUnpickle(marker)}, buffer)
    return {"joblib": buffer.getvalue(), "pickle": pickle.dumps({"model": _TouchOnUnpickle(marker)})}


def test_planted_pickles_are_refused_and_never_unpickled(settings, tmp_path) -> None:
    import joblib

    marker = tmp_path / "code-ran"
    payloads = _planted(marker)
    folder = model_dir_uri(settings, "model", "test-planted")
    fs = WarehouseFS(settings)
    cases = [
        (f"{folder}/logreg/model.joblib", payloads["joblib"], "only skops files"),
        (f"{folder}/logreg/model.pkl", payloads["pickle"], "only skops files"),
        (f"{folder}/hist_gbt/model.skops", payloads["joblib"], "not a skops file|pickle"),  # renamed
        (f"{folder}/mlp/model.skops", payloads["pickle"], "pickle/joblib"),
    ]
    for uri, data, why in cases:
        fs.write_bytes(uri, data)
        with pytest.raises(TrainingError, match=why) as info:
            load_baseline(uri, settings)
        assert uri in str(info.value)
        assert not marker.exists(), f"loading {uri} ran the pickle's code"

    # The planted payloads are live: unpickling them (what joblib.load did) runs their code.
    joblib.load(io.BytesIO(payloads["joblib"])).get("model").close()
    assert marker.exists()


def test_skops_files_with_untrusted_types_are_refused(settings, tmp_path) -> None:
    import skops.io as sio

    folder = model_dir_uri(settings, "model", "test-untrusted")
    fs = WarehouseFS(settings)
    marker = tmp_path / "code-ran"
    cases = {
        "custom": ({"format": BASELINE_FORMAT, "model": _NotTrusted()}, "_NotTrusted"),
        # functools.partial is allowed (HistGradientBoosting holds one), its function is checked too.
        "partial": (
            {"format": BASELINE_FORMAT, "model": functools.partial(os.system, f"touch {marker}")},
            "system",
        ),
    }
    for name, (payload, refused_type) in cases.items():
        uri = f"{folder}/{name}/model.skops"
        fs.write_bytes(uri, sio.dumps(payload))
        with pytest.raises(TrainingError, match=refused_type) as info:
            load_baseline(uri, settings)
        assert uri in str(info.value) and "trusted" in str(info.value)
        with pytest.raises(TrainingError, match=refused_type):
            save_baseline(fs, f"{folder}/{name}/again.skops", {"model": payload["model"]})
    assert not marker.exists()


def test_damaged_and_foreign_skops_files_are_refused(settings) -> None:
    import skops.io as sio

    folder = model_dir_uri(settings, "model", "test-damaged")
    fs = WarehouseFS(settings)
    fs.write_bytes(f"{folder}/a/model.skops", b"PK\x03\x04 not really a zip")
    with pytest.raises(TrainingError, match=f"{folder}/a/model.skops"):
        load_baseline(f"{folder}/a/model.skops", settings)
    fs.write_bytes(f"{folder}/b/model.skops", sio.dumps({"model": 1}))
    with pytest.raises(TrainingError, match="not a moulin baseline"):
        load_baseline(f"{folder}/b/model.skops", settings)
    with pytest.raises(TrainingError, match=r"\.skops"):
        save_baseline(fs, f"{folder}/c/model.joblib", {"model": 1})


@pytest.mark.parametrize(
    ("model_name", "run_id", "what"),
    [
        ("..", "r1", "model name"),
        ("model", "../../etc", "run id"),
        ("a/b", "r1", "model name"),
        ("model", "..", "run id"),
        ("model", "/abs", "run id"),
        ("model", "r1\x00", "run id"),
        ("model", "", "run id"),
    ],
)
def test_model_folders_refuse_unsafe_names(settings, model_name, run_id, what) -> None:
    with pytest.raises(UnsafeNameError, match=what):
        model_dir_uri(settings, model_name, run_id)


def test_baseline_names_and_training_runs_refuse_unsafe_names(settings) -> None:
    from moulin.training.run_options import TrainingOptions

    with pytest.raises(UnsafeNameError, match="baseline name"):
        baseline_uri(model_dir_uri(settings, "model", "r1"), "../logreg")
    # Refused when the run's options are made, before any data is read.
    with pytest.raises(UnsafeNameError, match="run id"):
        TrainingOptions(contract="flight_features", run_id="../../outside")
    with pytest.raises(UnsafeNameError, match="model name"):
        TrainingOptions(contract="flight_features", model_name="../x")
