"""A run started again with the same run id (an Airflow Clear): checkpoints are
resumed only by the same training (run id and fingerprint of what it depends on),
and ``results.json`` and the leaderboard always describe the same training."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

import pytest


def _path(uri: str) -> Path:
    return Path(urlparse(uri).path)


# ------------------------------------------------------------ the trainer alone (one rank)
@pytest.fixture(scope="module")
def jobs(synthetic_table, contract) -> dict:
    """The same small job on the synthetic table's version 0 ("a") and version 1 ("b")."""
    from moulin.training.batches import TabularCodec
    from moulin.training.config import TrainConfig
    from moulin.training.data import read_split_pandas, resolve_snapshot
    from moulin.training.model import MLPConfig
    from moulin.training.preprocessing import Preprocessor

    out = {}
    for name, version in (("a", 0), ("b", synthetic_table["version"])):
        snap = resolve_snapshot(synthetic_table["uri"], contract.split, version)
        pre = Preprocessor.fit(read_split_pandas(snap.files["train"], contract.read_columns), contract)
        out[name] = {
            "backend": "gloo",
            "train_files": list(snap.files["train"]),
            "validation_files": list(snap.files["validation"]),
            "inputs": TabularCodec(pre, contract.key, contract.label).to_dict(),
            "task": "binary",
            "network": "mlp",
            "model_config": MLPConfig(hidden=(16,)).to_dict(),
            "train_config": TrainConfig(
                epochs=2, batch_size=512, learning_rate=5e-3, early_stopping=False, seed=0
            ).to_dict(),
            "sample": None,
            "settings": None,
            "identity": {"version": version},
        }
    return out


def _epochs(out: dict) -> list[int]:
    return [h["epoch"] for h in out["history"]]


def test_a_finished_run_is_resumed_only_by_the_same_training(jobs, rank_env, tmp_path) -> None:
    from moulin.training.ddp import train_worker

    ckpt = tmp_path / "ckpt"
    a = {**jobs["a"], "checkpoint_dir": str(ckpt)}
    first = train_worker(a)
    assert _epochs(first) == [1, 2] and first["resumed_from_epoch"] is None

    # The same training again: its last checkpoint is resumed, nothing is trained.
    again = train_worker(a)
    assert again["resumed_from_epoch"] == 2 and again["checkpoints"] == []
    assert again["history"] == first["history"] and again["state_dict"] == first["state_dict"]

    # Another snapshot in the same folder (the same run id): trained from epoch 1, the
    # other training's checkpoints set aside (kept, never resumed).
    b = {**jobs["b"], "checkpoint_dir": str(ckpt)}
    second = train_worker(b)
    assert second["resumed_from_epoch"] is None and _epochs(second) == [1, 2]
    assert second["history"][0]["train_rows"] > first["history"][0]["train_rows"]  # b has more rows
    from moulin.training.ddp import job_fingerprint

    assert first["fingerprint"] == job_fingerprint(a) != job_fingerprint(b) == second["fingerprint"]
    aside = ckpt / "superseded" / first["fingerprint"]
    assert sorted(p.name for p in aside.iterdir()) == ["epoch-001.pt", "epoch-002.pt"]
    assert [_path(u) for u in second["set_aside"]] == [aside / "epoch-001.pt", aside / "epoch-002.pt"]
    assert sorted(p.name for p in ckpt.glob("epoch-*.pt")) == ["epoch-001.pt", "epoch-002.pt"]

    # Other hyper-parameters, the same snapshot: trained from epoch 1 as well.
    faster = {**b, "train_config": {**b["train_config"], "learning_rate": 1e-2}}
    third = train_worker(faster)
    assert third["resumed_from_epoch"] is None and _epochs(third) == [1, 2]
    assert (ckpt / "superseded" / second["fingerprint"] / "epoch-002.pt").is_file()


def test_a_killed_run_resumes_its_own_checkpoints_only(jobs, rank_env, tmp_path) -> None:
    import torch

    from moulin.training.ddp import train_worker

    ckpt = tmp_path / "ckpt"
    a = {**jobs["a"], "checkpoint_dir": str(ckpt)}
    first = train_worker(a)
    # As if killed after epoch 1: the run resumes after it.
    (ckpt / "epoch-002.pt").unlink()
    resumed = train_worker(a)
    assert resumed["resumed_from_epoch"] == 1 and _epochs(resumed) == [1, 2]
    assert resumed["history"][0] == first["history"][0]

    # A checkpoint written before checkpoints had a fingerprint is not resumed either.
    legacy = torch.load(ckpt / "epoch-002.pt", weights_only=True)
    legacy.pop("fingerprint", None)
    torch.save(legacy, ckpt / "epoch-002.pt")
    fresh = train_worker(a)
    assert fresh["resumed_from_epoch"] is None and _epochs(fresh) == [1, 2]
    assert (ckpt / "superseded" / "unfingerprinted" / "epoch-002.pt").is_file()


def test_a_later_phase_resumes_only_from_the_same_starting_weights(jobs, rank_env, tmp_path) -> None:
    from moulin.training.ddp import train_worker

    start = train_worker({**jobs["a"], "checkpoint_dir": str(tmp_path / "phase-1")})
    other = train_worker(
        {
            **jobs["a"],
            "checkpoint_dir": str(tmp_path / "phase-1b"),
            "train_config": {**jobs["a"]["train_config"], "seed": 1},
        }
    )
    phase2 = {**jobs["a"], "checkpoint_dir": str(tmp_path / "phase-2"), "init_state": start["state_dict"]}
    train_worker(phase2)
    assert train_worker(phase2)["resumed_from_epoch"] == 2
    assert train_worker({**phase2, "init_state": other["state_dict"]})["resumed_from_epoch"] is None

    # The starting weights count by their values, not by the bytes of the file holding them.
    from moulin.training.checkpoints import deserialise, serialise
    from moulin.training.ddp import job_fingerprint

    copy = serialise(dict(reversed(list(deserialise(start["state_dict"]).items()))))
    assert copy != start["state_dict"]
    assert job_fingerprint({**phase2, "init_state": copy}) == job_fingerprint(phase2)


# ------------------------------------------------------------ the multi-class networks' phases
@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict:
    """A small table of random 28x28 images of 3 classes: version 0, then version 1 with more rows."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    from deltalake import write_deltalake

    uri = (tmp_path_factory.mktemp("images") / "images").resolve().as_uri()
    rng = np.random.default_rng(0)
    for start, n in ((0, 300), (300, 90)):
        labels = rng.integers(0, 3, n)
        frame = pd.DataFrame(
            {
                "image_id": [f"img-{i}" for i in range(start, start + n)],
                "label": labels.astype("int32"),
                "pixels": [(rng.integers(0, 80, 784) + 80 * y).astype(np.uint8).tobytes() for y in labels],
                "split": [("train", "train", "train", "validation", "test")[i % 5] for i in range(n)],
            }
        )
        table = pa.Table.from_pandas(frame, preserve_index=False)
        write_deltalake(uri, table, mode="append", partition_by=["split"])
    return {"uri": uri}


def test_a_network_of_the_suite_is_resumed_only_on_the_same_snapshot(
    images, settings, rank_env, tmp_path, monkeypatch
) -> None:
    """The multi-class suite's networks (phases, each from the previous one's weights)
    keep their checkpoints under the run's folder: a Clear on a new snapshot trains them again."""
    from moulin.training import ddp
    from moulin.training.batches import ImageCodec
    from moulin.training.classifiers import NetworkSpec, Phase, train_network
    from moulin.training.config import TrainConfig
    from moulin.training.data import read_split_pandas, resolve_snapshot

    monkeypatch.setattr(ddp, "run_distributed", lambda job, **_: ddp.train_worker(job))  # one rank, here
    spec = NetworkSpec(
        name="cnn",
        network="cnn",
        family="small CNN",
        model_config={"num_classes": 3, "channels": [4, 8]},
        phases=(Phase("first", 1, 1e-3), Phase("second", 1, 5e-4)),
        train=TrainConfig(batch_size=64, early_stopping=False, seed=0),
    )
    codec = ImageCodec(key="image_id", label="label")
    model_dir = (tmp_path / "models" / "images" / "run-1").as_uri()

    def train(version: int) -> dict:
        snap = resolve_snapshot(images["uri"], "split", version)
        frames = {
            s: read_split_pandas(snap.files[s], ["image_id", "label", "pixels"])
            for s in ("validation", "test")
        }
        _, out = train_network(
            None, settings, spec, codec, snap, frames, model_dir, use_gpu=False, say=lambda line: None
        )
        return out.training

    first = train(0)
    assert [first[p]["resumed_from_epoch"] for p in ("first", "second")] == [None, None]
    again = train(0)  # nothing changed: both phases are finished, nothing is trained
    assert [again[p]["resumed_from_epoch"] for p in ("first", "second")] == [1, 1]
    assert [again[p]["checkpoints"] for p in ("first", "second")] == [[], []]
    cleared = train(1)  # another snapshot, the same folder: both phases trained again
    assert [cleared[p]["resumed_from_epoch"] for p in ("first", "second")] == [None, None]
    assert cleared["first"]["history"][0]["train_rows"] > first["first"]["history"][0]["train_rows"]
    assert all(len(cleared[p]["set_aside"]) == 1 for p in ("first", "second"))


# ------------------------------------------------------------ train_and_compare, cleared
RUN_ID = "cleared-run"


@pytest.fixture(scope="module")
def train(spark, settings, synthetic_table):
    """Train run RUN_ID on a version of the synthetic table: (summary, results.json's bytes).
    The code version is pinned: other edits of the tree must not make runs differ."""
    from moulin.training import prepared_run
    from moulin.training import run as run_module
    from moulin.training.run_options import TrainingOptions

    leaderboard_uri = settings.table_uri("gold", "model_leaderboard_rerun")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(prepared_run, "code_version", lambda: "test+pinned")

        def train(version: int) -> tuple[dict, bytes]:
            options = TrainingOptions(
                contract="flight_features",
                features_uri=synthetic_table["uri"],
                version=version,
                epochs=2,
                num_processes=2,
                run_id=RUN_ID,
                model_name="rerun",
                batch_size=512,
                learning_rate=5e-3,
                bootstrap_resamples=20,
                leaderboard_uri=leaderboard_uri,
            )
            summary = run_module.train_and_compare(spark, settings, options)
            return summary, _path(summary["paths"]["results_json"]).read_bytes()

        yield train


@pytest.fixture(scope="module")
def run_a(train) -> tuple[dict, bytes]:
    """The run, trained on version 0 (snapshot A)."""
    return train(0)


@pytest.fixture(scope="module")
def run_b(run_a, train, synthetic_table) -> tuple[dict, bytes]:
    """The same run id on version 1 (snapshot B): an Airflow Clear after the features changed."""
    return train(synthetic_table["version"])


@pytest.fixture(scope="module")
def run_again(run_b, train, synthetic_table) -> tuple[dict, bytes]:
    """The same run id on snapshot B once more: a Clear with nothing changed."""
    return train(synthetic_table["version"])


def _board(summary: dict) -> list[dict]:
    from moulin.training import leaderboard

    return [r for r in leaderboard.read(summary["paths"]["leaderboard"]) if r["run_id"] == RUN_ID]


def _agree(results: dict, board: list[dict]) -> None:
    """The newest leaderboard rows of the run are the training results.json describes."""
    import pandas as pd

    latest = max(pd.Timestamp(r["created_at"]) for r in board)
    rows = {r["model"]: r for r in board if pd.Timestamp(r["created_at"]) == latest}
    assert latest == pd.Timestamp(results["created_at"])
    assert set(rows) == {m["model"] for m in results["models"]}
    for m in results["models"]:
        row = rows[m["model"]]
        assert row["features_version"] == results["features_version"]
        assert row["features_uri"] == results["features_uri"]
        assert row["n_train"] == results["split_rows"]["train"]
        assert row["results_uri"] == f"{results['model_dir']}/results.json"
        for metric in ("roc_auc", "pr_auc", "brier"):
            assert row[metric] == pytest.approx(m["metrics"][metric]["value"], abs=1e-12)


def _mlp_training(results: bytes) -> dict:
    return next(m for m in json.loads(results)["models"] if m["model"] == "mlp")["training"]


def test_the_first_training_is_recorded(run_a) -> None:
    a, results = run_a
    assert a["version"] == 0
    assert sorted((r["features_version"], r["model"]) for r in _board(a)) == [
        (0, "hist_gbt"),
        (0, "logreg"),
        (0, "mlp"),
    ]
    _agree(json.loads(results), _board(a))
    assert json.loads(results)["fingerprint"] == a["fingerprint"] and not a["already_recorded"]


def test_a_cleared_run_on_another_snapshot_trains_again_and_appends_its_rows(run_a, run_b) -> None:
    (a, a_results), (b, b_results) = run_a, run_b
    first, training = _mlp_training(a_results), _mlp_training(b_results)
    assert [h["epoch"] for h in training["history"]] == [1, 2]  # not the old run's last epoch
    assert training["resumed_from_epoch"] is None
    assert [Path(u).name for u in training["checkpoints"]] == ["epoch-001.pt", "epoch-002.pt"]
    assert b["version"] == 1 and sum(b["rows"].values()) > sum(a["rows"].values())

    versions = sorted((r["features_version"], r["model"]) for r in _board(b))
    assert versions == [(v, m) for v in (0, 1) for m in ("hist_gbt", "logreg", "mlp")]
    assert b["leaderboard_version"] == a["leaderboard_version"] + 1

    # snapshot A's checkpoints are set aside, kept under their own fingerprint
    assert [Path(u).parent.name for u in training["set_aside"]] == [first["fingerprint"]] * 2
    assert a["fingerprint"] != b["fingerprint"] and not b["already_recorded"]


def test_results_json_and_the_leaderboard_agree_after_both(run_a, run_b) -> None:
    import pandas as pd

    (_, a_results), (b, b_results) = run_a, run_b
    results = json.loads(b_results)
    board = _board(b)
    _agree(results, board)
    assert results["features_version"] == b["version"] and results["fingerprint"] == b["fingerprint"]
    # The first training's rows are still there, as they were: the first snapshot's.
    first = json.loads(a_results)
    older = [r for r in board if pd.Timestamp(r["created_at"]) == pd.Timestamp(first["created_at"])]
    assert sorted(r["model"] for r in older) == ["hist_gbt", "logreg", "mlp"]
    assert {r["features_version"] for r in older} == {first["features_version"]} == {0}


def test_a_cleared_run_with_nothing_changed_records_nothing_new(run_b, run_again) -> None:
    (b, b_results), (again, again_results) = run_b, run_again
    assert again["leaderboard_version"] == b["leaderboard_version"]  # nothing appended
    _agree(json.loads(again_results), _board(again))
    assert again_results == b_results  # results.json untouched
    assert len(_board(b)) == 6
    assert again["already_recorded"] and again["fingerprint"] == b["fingerprint"]
    assert again["version"] == b["version"] and again["recommended"] == b["recommended"]
    assert sorted(r["model"] for r in again["leaderboard_rows"]) == ["hist_gbt", "logreg", "mlp"]
    assert {r["features_version"] for r in again["leaderboard_rows"]} == {b["version"]}
    for name, metrics in b["models"].items():
        assert again["models"][name]["roc_auc"] == pytest.approx(metrics["roc_auc"], abs=1e-12)
        assert again["models"][name]["model_uri"] == metrics["model_uri"]
    assert again["paths"] == b["paths"]
