"""Image classifiers end to end in the training environment: a silver-shaped Delta
table of real Fashion-MNIST images (a sample), the CNN trained by the one DDP
trainer through TorchDistributor beside logistic regression, compared on the same
test rows; and a killed training run resumed from its checkpoints."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from moulin.ingest.idx import read_header, unpack
from moulin.settings import load_settings
from moulin.training.classification_results import ClassificationResults

DATASET = Path("/usr/share/datasets/fashion-mnist")
TRAIN, TEST = 1500, 400

pytestmark = pytest.mark.skipif(
    not (DATASET / "train-images-idx3-ubyte.gz").is_file(), reason="bin/setup installs dataset-fashion-mnist"
)


def _idx(name: str, limit: int) -> np.ndarray:
    data = unpack((DATASET / name).read_bytes())
    header = read_header(data)
    size = int(np.prod(header.dims[1:])) if len(header.dims) > 1 else 1
    values = np.frombuffer(data[header.offset : header.offset + limit * size], dtype=np.uint8)
    return values.reshape(limit, *header.dims[1:]) if size > 1 else values


@pytest.fixture(scope="module")
def images_table(tmp_path_factory) -> dict:
    """The first images of each official set as silver/fashion_images (split by content hash)."""
    import pandas as pd
    import pyarrow as pa
    from deltalake import write_deltalake

    from moulin.usecases.fashion.params import CLASS_NAMES

    home = tmp_path_factory.mktemp("fashion-home")
    settings = replace(load_settings(), home=home, warehouse_uri=(home / "warehouse").as_uri())
    rows = []
    for official, prefix, n in (("train", "train", TRAIN), ("test", "t10k", TEST)):
        images = _idx(f"{prefix}-images-idx3-ubyte.gz", n)
        labels = _idx(f"{prefix}-labels-idx1-ubyte.gz", n)
        for i in range(n):
            pixels = images[i].tobytes()
            sha = hashlib.sha256(pixels).hexdigest()
            split = (
                official if official == "test" else ("validation" if int(sha[:8], 16) % 10 == 0 else "train")
            )
            rows.append(
                (f"{prefix}-{i}", int(labels[i]), CLASS_NAMES[labels[i]], pixels, sha, split, "2017-08-25")
            )
    frame = pd.DataFrame(
        rows, columns=["image_id", "label", "label_name", "pixels", "image_sha256", "split", "ds"]
    )
    frame["label"] = frame["label"].astype("int32")
    uri = settings.table_uri("silver", "fashion_images")
    # several files per split: every DDP rank gets row groups of its own
    for part in np.array_split(frame.sample(frac=1.0, random_state=0), 4):
        write_deltalake(
            uri, pa.Table.from_pandas(part, preserve_index=False), mode="append", partition_by=["split"]
        )
    return {"settings": settings, "uri": uri, "frame": frame}


@pytest.fixture(scope="module")
def trained(images_table, spark) -> dict:
    from moulin.training.classifiers import run_suite
    from moulin.usecases.fashion.training import suite

    settings = images_table["settings"]
    summary = run_suite(
        spark, settings, suite(settings), ("logreg", "cnn"), epochs_scale=0.3, num_processes=2
    )
    results = json.loads(Path(summary["results_uri"].removeprefix("file://")).read_text())
    return {"summary": summary, "results": results}


def test_models_learn_and_are_chosen_on_validation(trained) -> None:
    results = trained["results"]
    models = {m["model"]: m for m in results["models"]}
    assert set(models) == {"logreg", "cnn"}
    assert results["split_rows"]["test"] == TEST
    for m in models.values():
        assert m["test"]["accuracy"] > 0.6, m["model"]  # 10 classes: chance is 0.1
        lo, hi = m["test"]["intervals"]["accuracy"]
        assert lo <= m["test"]["accuracy"] <= hi and hi - lo < 0.2
        assert sum(map(sum, m["test"]["confusion"])) == TEST
    best_on_validation = max(models, key=lambda n: models[n]["validation"]["accuracy"])
    assert results["selection"] == {
        "split": "validation",
        "metric": "accuracy",
        "recommended": best_on_validation,
    }
    history = models["cnn"]["training"]["train"]["history"]
    assert history and all("val_accuracy" in h and h["train_rows"] > 0 for h in history)
    # the file reads as the typed results and writes back the same bytes
    text = Path(trained["summary"]["results_uri"].removeprefix("file://")).read_bytes()
    assert ClassificationResults.from_json(text).to_json() == text


def test_pairs_are_compared_on_the_same_test_rows(trained) -> None:
    results = trained["results"]
    (pair,) = results["comparisons"]
    models = {m["model"]: m for m in results["models"]}
    # McNemar's discordant counts agree with the two models' confusion matrices' accuracies
    right = {n: np.trace(np.array(models[n]["test"]["confusion"])) for n in models}
    mc = pair["mcnemar"]
    assert right[pair["a"]] - right[pair["b"]] == mc["a_right_b_wrong"] - mc["a_wrong_b_right"]
    assert 0 <= pair["p_adjusted"] <= 1 and pair["ci_low"] <= pair["difference"] <= pair["ci_high"]
    worst = results["worst_test_examples"]
    assert worst["model"] == results["selection"]["recommended"]
    assert all(
        e["true"] != e["predicted"] and e["image"].startswith("data:image/png;base64,")
        for e in worst["examples"]
    )


def test_model_files_record_the_snapshot(trained, images_table) -> None:
    import torch

    from moulin.training.artifacts import load_baseline

    results = trained["results"]
    models = {m["model"]: m for m in results["models"]}
    saved = torch.load(models["cnn"]["model_uri"].removeprefix("file://"), weights_only=False)
    assert saved["snapshot"] == {"table_uri": images_table["uri"], "version": results["snapshot"]["version"]}
    assert results["code_version"]
    baseline = load_baseline(models["logreg"]["model_uri"], images_table["settings"])
    assert baseline["model"].coef_.shape == (10, 784)
    assert baseline["snapshot"] == saved["snapshot"] and baseline["code_version"] == saved["code_version"]
    assert saved["code_version"] == results["code_version"]


WORKER = """
import json, sys
from moulin.training.ddp import train_worker
job = json.loads(sys.argv[1])
out = train_worker(job)
print("RESULT " + json.dumps({k: out[k] for k in ("history", "resumed_from_epoch", "best_epoch")}))
"""


def _run_worker(job: dict, port: int) -> subprocess.Popen:
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": "0", "WORLD_SIZE": "1",
           "LOCAL_RANK": "0", "OMP_NUM_THREADS": "1"}  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, json.dumps(job)], env=env, stdout=subprocess.PIPE, text=True
    )


def test_a_killed_run_resumes_from_its_last_checkpoint(images_table, tmp_path) -> None:
    from moulin.training.batches import ImageCodec
    from moulin.training.config import TrainConfig
    from moulin.training.data import resolve_snapshot

    snap = resolve_snapshot(images_table["uri"], "split")
    ckpt_dir = tmp_path / "checkpoints"
    job = {
        "backend": "gloo",
        "train_files": list(snap.files["train"]) * 3,  # long enough epochs to be killed inside one
        "validation_files": list(snap.files["validation"]),
        "inputs": ImageCodec(key="image_id", label="label", augment=True).to_dict(),
        "task": "multiclass",
        "network": "cnn",
        "model_config": {"num_classes": 10, "channels": [8, 16, 32]},
        "train_config": TrainConfig(epochs=3, batch_size=64, early_stopping=False, seed=3).to_dict(),
        "sample": None,
        "checkpoint_dir": ckpt_dir.as_uri(),
        "settings": None,
    }
    first = _run_worker(job, 29611)
    deadline = time.time() + 300
    while not (ckpt_dir / "epoch-001.pt").exists():
        assert first.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)  # inside epoch 2
    first.wait()
    assert not (ckpt_dir / "epoch-002.pt").exists()
    import torch

    epoch1 = torch.load(ckpt_dir / "epoch-001.pt", weights_only=True)
    second = _run_worker(job, 29612)
    out, _ = second.communicate(timeout=600)
    assert second.returncode == 0
    result = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
    assert result["resumed_from_epoch"] == 1
    assert [h["epoch"] for h in result["history"]] == [1, 2, 3]
    assert result["history"][0] == epoch1["metrics"]  # epoch 1 is not trained again
    assert (ckpt_dir / "epoch-003.pt").exists()
