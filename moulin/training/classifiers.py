"""Multi-class classifiers on a pinned snapshot: networks trained by the one
distributed trainer (:mod:`moulin.training.ddp`), in one or more phases (a
pretrained network: head first, then its last blocks), evaluated beside any
other model on the same rows, and compared soundly.

The model to recommend is chosen on the validation split
(:func:`~moulin.training.classification.select_on_validation`); test metrics
carry bootstrap intervals; every pair of models is compared on the same test
rows by McNemar's exact test (accuracy) and a paired bootstrap of the macro-F1
difference, Holm-adjusted over the pairs.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from moulin.training.classification import (
    bootstrap_interval,
    classification_summary,
    compare_models,
    mcnemar,
    select_on_validation,
)
from moulin.training.config import TrainConfig

SPLITS_EVALUATED = ("validation", "test")


@dataclass(frozen=True)
class Phase:
    """One stage of a network's training: epochs, learning rate and model settings
    (e.g. which layers train); a later phase starts from the best weights of the one before."""

    name: str
    epochs: int
    learning_rate: float
    model_config: dict = field(default_factory=dict)


@dataclass(frozen=True)
class NetworkSpec:
    """A network to train: its registry name, settings and phases."""

    name: str
    network: str
    family: str
    model_config: dict
    phases: tuple[Phase, ...]
    train: TrainConfig = field(default_factory=TrainConfig)

    def scaled(self, factor: float) -> NetworkSpec:
        """The same network with every phase's epochs multiplied by ``factor`` (at least 1)."""
        return replace(
            self, phases=tuple(replace(p, epochs=max(1, round(p.epochs * factor))) for p in self.phases)
        )


@dataclass
class ModelOutput:
    """What evaluation needs from one trained model: probabilities on validation and
    test, and what the model cost."""

    name: str
    family: str
    proba: dict[str, np.ndarray]
    train_seconds: float
    params: dict
    n_parameters: int | None = None
    predict_rows_per_s: float | None = None
    model_uri: str = ""
    training: dict | None = None


def _state_bytes(state: dict) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def predict_network(module, codec, frame, batch_size: int = 1024) -> tuple[np.ndarray, float]:
    """Class probabilities of ``frame``'s rows (eval mode, no augmentation) and rows/s."""
    import torch

    module.eval()
    out = []
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(frame), batch_size):
            inputs = codec.inputs(frame.iloc[i : i + batch_size])
            logits = module(*[torch.from_numpy(np.ascontiguousarray(a)) for a in inputs])
            out.append(torch.softmax(logits.float(), dim=1).numpy())
    seconds = time.perf_counter() - start
    proba = np.concatenate(out) if out else np.zeros((0, 0))
    return proba, len(frame) / seconds if seconds > 0 else float("nan")


def train_network(
    spark,
    settings,
    spec: NetworkSpec,
    codec,
    snapshot,
    frames: Mapping[str, Any],
    model_dir: str,
    sample: float | None = None,
    num_processes: int = 2,
    use_gpu: bool | None = None,
    say: Callable[[str], None] = print,
) -> tuple[Any, ModelOutput]:
    """Train ``spec`` phase by phase with DDP through TorchDistributor, on the
    snapshot's train files (early stopping on validation), then score the
    validation and test frames.  Checkpoints go under ``<model_dir>/<name>/<phase>``;
    a run with the same folder resumes from them."""
    import torch

    from moulin.storage import WarehouseFS
    from moulin.training.ddp import choose_backend, run_distributed
    from moulin.training.model import build_network
    from moulin.training.vision import count_parameters

    use_gpu, backend = choose_backend(spark, use_gpu)
    fs = WarehouseFS(settings)
    state: bytes | None = None
    histories: dict[str, Any] = {}
    started = time.time()
    config = dict(spec.model_config)
    for phase in spec.phases:
        config = {**spec.model_config, **phase.model_config}
        train_cfg = replace(spec.train, epochs=phase.epochs, learning_rate=phase.learning_rate)
        job = {
            "backend": backend,
            "train_files": list(snapshot.files["train"]),
            "validation_files": list(snapshot.files["validation"]),
            "inputs": codec.to_dict(),
            "task": "multiclass",
            "network": spec.network,
            "model_config": config,
            "train_config": train_cfg.to_dict(),
            "sample": sample,
            "checkpoint_dir": f"{model_dir}/{spec.name}/checkpoints/{phase.name}",
            "settings": settings,
            "init_state": state,
        }
        t = time.time()
        out = run_distributed(job, num_processes=num_processes, use_gpu=use_gpu)
        state = out["state_dict"]
        histories[phase.name] = {
            k: out[k] for k in ("history", "best_epoch", "best_val_loss", "rows_per_rank", "world_size",
                                "backend", "device", "checkpoints", "resumed_from_epoch")
        }  # fmt: skip
        best = out["history"][out["best_epoch"] - 1] if out["best_epoch"] else {}
        say(
            f"{spec.name} [{phase.name}]: {len(out['history'])} epoch(s) in {time.time() - t:.0f} s, best epoch "
            f"{out['best_epoch']} (validation accuracy {best.get('val_accuracy', float('nan')):.4f})"
        )
    seconds = time.time() - started
    module = build_network(spec.network, (), 0, {**config, "pretrained": False})
    module.load_state_dict(torch.load(io.BytesIO(state), map_location="cpu", weights_only=True))
    proba, speed = {}, None
    for split in SPLITS_EVALUATED:
        proba[split], rows_per_s = predict_network(module, codec, frames[split])
        if split == "test":
            speed = rows_per_s
    uri = f"{model_dir}/{spec.name}/model.pt"
    record = {
        "network": spec.network,
        "model_config": config,
        "phases": [asdict(p) for p in spec.phases],
        "train_config": spec.train.to_dict(),
        "inputs": codec.to_dict(),
        "snapshot": {"table_uri": snapshot.table_uri, "version": snapshot.version},
    }
    fs.write_bytes(
        uri, _state_bytes({"state_dict": torch.load(io.BytesIO(state), weights_only=True), **record})
    )
    return module, ModelOutput(
        name=spec.name,
        family=spec.family,
        proba=proba,
        train_seconds=seconds,
        params={**config, "phases": [asdict(p) for p in spec.phases], **spec.train.to_dict(),
                "num_processes": num_processes, "backend": backend},
        n_parameters=count_parameters(module),
        predict_rows_per_s=speed,
        model_uri=uri,
        training=histories,
    )  # fmt: skip


def _accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    return float(np.mean(proba.argmax(1) == y)) if len(y) else float("nan")


def _macro_f1(y: np.ndarray, proba: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, proba.argmax(1), average="macro", zero_division=0)) if len(y) else float("nan")


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {"accuracy": _accuracy, "macro_f1": _macro_f1}


def compare(
    labels: Mapping[str, np.ndarray],
    outputs: Sequence[ModelOutput],
    class_names: Sequence[str],
    select_by: str = "accuracy",
    groups: np.ndarray | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict:
    """Validation scores, the model chosen on them, test metrics with 95 % bootstrap
    intervals (by ``groups`` where test rows are correlated), and every pair of
    models compared on the same test rows."""
    if select_by not in METRICS:
        raise ValueError(f"select_by must be one of {', '.join(METRICS)}, got {select_by!r}")
    y_val, y_test = labels["validation"], labels["test"]
    models = []
    for out in outputs:
        test = classification_summary(y_test, out.proba["test"], class_names)
        intervals = {
            name: list(bootstrap_interval(y_test, out.proba["test"], fn, groups=groups, n_resamples=n_resamples, seed=seed))
            for name, fn in METRICS.items()
        }  # fmt: skip
        models.append(
            {
                "model": out.name,
                "family": out.family,
                "validation": {name: fn(y_val, out.proba["validation"]) for name, fn in METRICS.items()},
                "test": {**test, "intervals": intervals},
                "train_seconds": out.train_seconds,
                "n_parameters": out.n_parameters,
                "predict_rows_per_s": out.predict_rows_per_s,
                "params": out.params,
                "model_uri": out.model_uri,
                **({"training": out.training} if out.training else {}),
            }
        )
    chosen = select_on_validation({m["model"]: m["validation"][select_by] for m in models})
    predictions = {o.name: o.proba["test"].argmax(1) for o in outputs}
    pairs = compare_models(
        y_test, {o.name: o.proba["test"] for o in outputs}, _macro_f1, groups=groups,
        n_resamples=n_resamples, seed=seed,
    )  # fmt: skip
    for pair in pairs:
        pair["metric"] = "macro_f1"
        pair["mcnemar"] = mcnemar(y_test, predictions[pair["a"]], predictions[pair["b"]])
    return {
        "selection": {"split": "validation", "metric": select_by, "recommended": chosen},
        "models": models,
        "comparisons": pairs,
        "bootstrap": {"resamples": n_resamples, "grouped": groups is not None, "seed": seed},
    }


def worst_examples(y: np.ndarray, proba: np.ndarray, keys: Sequence[str], limit: int = 12) -> list[dict]:
    """The test rows a model gets wrong with the most confidence: key, true and
    predicted class, the probability it gave its (wrong) answer."""
    predicted = proba.argmax(1)
    wrong = np.flatnonzero(predicted != y)
    order = wrong[np.argsort(-proba[wrong, predicted[wrong]], kind="stable")][:limit]
    return [
        {
            "row": int(i),
            "key": str(keys[i]),
            "true": int(y[i]),
            "predicted": int(predicted[i]),
            "confidence": float(proba[i, predicted[i]]),
        }
        for i in order
    ]
