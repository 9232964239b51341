"""Training and comparing the image classifiers on one pinned snapshot of
``silver/fashion_images``: logistic regression on pixels (classic baseline), a
CNN from scratch and EfficientNet-Lite0 fine-tuned from ImageNet weights (both
DDP through the one trainer), evaluated on the official test set.

Files under ``models/fashion/<run id>/``: one folder per model (``model.pt`` or
``model.skops``, checkpoints per phase and epoch) and ``results.json`` (the
report's input).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from moulin.contracts import load_contract
from moulin.errors import DataError
from moulin.identifiers import check_path_part
from moulin.lineage import code_version
from moulin.settings import Settings
from moulin.training.batches import ImageCodec
from moulin.training.classifiers import (
    ModelOutput,
    NetworkSpec,
    Phase,
    compare,
    train_network,
    worst_examples,
)
from moulin.training.config import TrainConfig
from moulin.usecases.fashion.params import CLASS_NAMES, PARAMS, FashionParams

RESULTS_FORMAT = "moulin.classification-results/1"
COLUMNS = ["image_id", "label", "pixels", "image_sha256"]


def network_specs(params: FashionParams = PARAMS) -> dict[str, NetworkSpec]:
    """The networks of the use case, from its parameters."""
    cnn_train = TrainConfig(
        batch_size=params.cnn_batch_size, patience=params.patience, seed=params.seed, schedule="cosine",
        eval_batch_size=1024, weight_decay=1e-4,
    )  # fmt: skip
    effnet_train = TrainConfig(batch_size=64, patience=params.patience, seed=params.seed, eval_batch_size=256)
    return {
        "cnn": NetworkSpec(
            name="cnn",
            network="cnn",
            family="CNN from scratch (3 conv blocks, batch norm; DDP via TorchDistributor)",
            model_config={"num_classes": len(CLASS_NAMES), "channels": list(params.cnn_channels)},
            phases=(Phase("train", params.cnn_epochs, params.cnn_learning_rate),),
            train=cnn_train,
        ),
        "efficientnet_lite0": NetworkSpec(
            name="efficientnet_lite0",
            network="efficientnet_lite0",
            family=f"EfficientNet-Lite0 pretrained on ImageNet, fine-tuned at {params.effnet_resolution} px",
            model_config={"num_classes": len(CLASS_NAMES), "resolution": params.effnet_resolution},
            phases=(
                Phase("head", params.effnet_head_epochs, params.effnet_learning_rate, {"stage": "head"}),
                Phase(
                    "last_blocks",
                    params.effnet_finetune_epochs,
                    params.effnet_learning_rate / 3,
                    {"stage": "last_blocks", "last_blocks": params.effnet_last_blocks},
                ),
            ),
            train=effnet_train,
        ),
    }


def _logistic_regression(
    frames: dict, codec: ImageCodec, params: FashionParams, model_dir: str, settings
) -> ModelOutput:
    """Multinomial logistic regression on the pixels (scaled to [0, 1]); C chosen on validation."""
    from sklearn.linear_model import LogisticRegression

    from moulin.storage import WarehouseFS
    from moulin.training.artifacts import save_baseline

    def pixels(frame) -> np.ndarray:
        return codec.decode(frame["pixels"].tolist()).reshape(len(frame), -1).astype(np.float32) / 255.0

    x = {s: pixels(f) for s, f in frames.items()}
    y = {s: f["label"].to_numpy(np.int64) for s, f in frames.items()}
    start = time.time()
    best = None
    tried = {}
    for c in params.logreg_c_grid:
        model = LogisticRegression(C=c, max_iter=300).fit(x["train"], y["train"])
        score = float(np.mean(model.predict(x["validation"]) == y["validation"]))
        tried[str(c)] = score
        if best is None or score > best[0]:
            best = (score, c, model)
    assert best is not None
    _, c, model = best
    seconds = time.time() - start
    t = time.perf_counter()
    test_proba = model.predict_proba(x["test"])
    speed = len(x["test"]) / max(time.perf_counter() - t, 1e-9)
    uri = f"{model_dir}/logreg/model.skops"
    save_baseline(WarehouseFS(settings), uri, {"model": model, "C": c, "inputs": codec.to_dict()})
    return ModelOutput(
        name="logreg",
        family="logistic regression on pixels (scikit-learn, C chosen on validation)",
        proba={"validation": model.predict_proba(x["validation"]), "test": test_proba},
        train_seconds=seconds,
        params={"C": c, "validation_accuracy_by_C": tried, "max_iter": 300},
        n_parameters=int(model.coef_.size + model.intercept_.size),
        predict_rows_per_s=speed,
        model_uri=uri,
    )


def train_fashion(
    spark,
    settings: Settings,
    version: int | None = None,
    run_id: str | None = None,
    sample: float | None = None,
    models: Sequence[str] = PARAMS.models,
    epochs_scale: float = 1.0,
    num_processes: int = PARAMS.num_processes,
    use_gpu: bool | None = None,
    params: FashionParams = PARAMS,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train ``models`` on one pinned version of the silver table, compare them and
    write ``results.json``; returns a summary with its URI."""
    from moulin.storage import WarehouseFS
    from moulin.training.data import check_fraction, read_split_pandas, resolve_snapshot
    from moulin.usecases.fashion.corpus import published_results

    specs = network_specs(params)
    unknown = [m for m in models if m != "logreg" and m not in specs]
    if unknown or not models:
        raise DataError(f"unknown model(s) {unknown}: choose among logreg, {', '.join(specs)}")
    sample = check_fraction(sample)
    started = datetime.now(UTC)
    run_id = run_id or f"{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    check_path_part(run_id, "run id")
    uri = settings.table_uri(load_contract("silver_fashion").table)
    snap = resolve_snapshot(uri, "split", version)
    model_dir = settings.table_uri("models", "fashion", run_id)
    frames = {
        s: read_split_pandas(snap.files[s], COLUMNS, settings, sample=sample, key="image_id")
        for s in ("train", "validation", "test")
    }
    for s, f in frames.items():
        if f.empty:
            raise DataError(
                f"split {s!r} of {uri} v{snap.version} is empty (sample={sample}): land more images"
            )
    say(f"snapshot {uri} v{snap.version}: " + ", ".join(f"{s} {len(f):,}" for s, f in frames.items()))
    codec = ImageCodec(key="image_id", label="label", augment=True)
    plain = ImageCodec(key="image_id", label="label")
    outputs: list[ModelOutput] = []
    t0 = time.time()
    for name in models:
        t = time.time()
        if name == "logreg":
            outputs.append(_logistic_regression(frames, plain, params, model_dir, settings))
        else:
            spec = specs[name].scaled(epochs_scale)
            _, out = train_network(
                spark, settings, spec, codec, snap, {s: frames[s] for s in ("validation", "test")}, model_dir,
                sample=sample, num_processes=num_processes, use_gpu=use_gpu, say=say,
            )  # fmt: skip
            outputs.append(out)
        acc = float(np.mean(outputs[-1].proba["test"].argmax(1) == frames["test"]["label"].to_numpy()))
        val = float(
            np.mean(outputs[-1].proba["validation"].argmax(1) == frames["validation"]["label"].to_numpy())
        )
        say(f"{name}: validation accuracy {val:.4f}, test accuracy {acc:.4f} ({time.time() - t:.0f} s)")
    labels = {s: frames[s]["label"].to_numpy(np.int64) for s in ("validation", "test")}
    comparison = compare(
        labels, outputs, CLASS_NAMES, select_by=params.select_by, n_resamples=params.bootstrap_resamples,
        seed=params.seed,
    )  # fmt: skip
    chosen = comparison["selection"]["recommended"]
    chosen_out = next(o for o in outputs if o.name == chosen)
    worst = worst_examples(labels["test"], chosen_out.proba["test"], frames["test"]["image_id"].tolist())
    from moulin.reporting.images import png_data_uri

    images = plain.decode(frames["test"]["pixels"].iloc[[w["row"] for w in worst]].tolist()) if worst else []
    for w, image in zip(worst, images, strict=True):
        w["image"] = png_data_uri(image)
    hashes = {s: set(frames[s]["image_sha256"]) for s in frames}
    results = {
        "format": RESULTS_FORMAT,
        "use_case": "fashion",
        "run_id": run_id,
        "created_at": started.isoformat(),
        "code_version": code_version(),
        "snapshot": {"table_uri": uri, "version": snap.version, "rows_in_log": snap.rows},
        "sample": sample,
        "split_rows": {s: int(len(f)) for s, f in frames.items()},
        "class_names": list(CLASS_NAMES),
        "duplicates": {
            "train_and_test": len((hashes["train"] | hashes["validation"]) & hashes["test"]),
            "train_and_validation": len(hashes["train"] & hashes["validation"]),
        },
        **comparison,
        "worst_test_examples": {"model": chosen, "examples": worst},
        "published": published_results(settings),
        "total_seconds": time.time() - t0,
    }
    results_uri = f"{model_dir}/results.json"
    WarehouseFS(settings).write_bytes(results_uri, json.dumps(_json_safe(results), indent=1).encode())
    say(f"recommended on validation {params.select_by}: {chosen}; results {results_uri}")
    return {
        "run_id": run_id,
        "results_uri": results_uri,
        "version": snap.version,
        "recommended": chosen,
        "models": {
            m["model"]: {
                "validation_accuracy": m["validation"]["accuracy"],
                "test_accuracy": m["test"]["accuracy"],
                "test_accuracy_ci": m["test"]["intervals"]["accuracy"],
                "test_macro_f1": m["test"]["macro_f1"],
            }
            for m in comparison["models"]
        },
    }


def _json_safe(value):
    from moulin.training.run import json_safe

    return json_safe(value)
