"""The flights delay models: a network trained with DistributedDataParallel and two
baselines fitted on the driver, all on the same encoded inputs of one snapshot.

A second network or another baseline is one more :meth:`FLIGHTS_MODELS.declare`
below (a network's ``options``: its registered ``network`` name and ``model_config``,
by default the run's; a baseline's: its class's keyword arguments)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

from moulin.storage import WarehouseFS
from moulin.training.artifacts import baseline_uri, save_baseline, save_mlp
from moulin.training.baselines import BoostedTreesBaseline, LogisticBaseline
from moulin.training.batches import TabularCodec
from moulin.training.ddp import run_distributed
from moulin.training.metrics import undo_class_weighting
from moulin.training.model import predict_proba
from moulin.training.model_entries import Fitted, ModelEntry, ModelRegistry
from moulin.training.networks import build_network
from moulin.training.prepared_run import PreparedRun

EVALUATED = ("validation", "test")
#: What the trainer reports of a network's training, kept in its results.
TRAINING_KEYS = (
    "history", "best_epoch", "best_val_loss", "rows_per_rank", "tail_rows", "sharding", "loader",
    "world_size", "backend", "device", "checkpoints", "resumed_from_epoch", "fingerprint", "set_aside",
)  # fmt: skip


def _train_job(entry: ModelEntry, run: PreparedRun, network: str, model_config: dict) -> dict:
    """The distributed trainer's job for network ``entry`` on the run's snapshot."""
    data, model_dir = run.data, run.places.model_dir
    return {
        "backend": run.backend,
        "train_files": list(data.snapshot.files["train"]),
        "validation_files": list(data.snapshot.files["validation"]),
        "inputs": TabularCodec(data.preprocessor, run.contract.key, run.contract.label).to_dict(),
        "task": "binary",
        "network": network,
        "model_config": model_config,
        "train_config": run.train_config.to_dict(),
        "sample": run.options.sample,
        "checkpoint_dir": f"{model_dir}/{entry.name}/checkpoints",
        "settings": run.settings,
        "identity": {"run": run.identity},
        "loader": {"reader": run.options.reader},
    }


def fit_network(entry: ModelEntry, run: PreparedRun) -> Fitted:
    """Train network ``entry`` with DDP through TorchDistributor (early stopping on
    validation, checkpoints per epoch) and score validation and test on the driver."""
    import torch

    network = entry.options.get("network", run.options.network)
    model_config = dict(entry.options.get("model_config", run.model_config))
    started = time.time()
    out = run_distributed(
        _train_job(entry, run, network, model_config),
        num_processes=run.options.num_processes,
        use_gpu=run.use_gpu,
    )
    seconds = time.time() - started
    state = torch.load(io.BytesIO(out["state_dict"]), map_location="cpu", weights_only=True)
    pre = run.data.preprocessor
    module = build_network(network, pre.cardinalities, pre.n_numeric, model_config)
    module.load_state_dict(state)
    uri = f"{run.places.model_dir}/{entry.name}/model.pt"

    def save(fs: WarehouseFS, threshold: float) -> None:
        meta = {
            **run.common,
            "network": network,
            "model_config": model_config,
            "train_config": run.train_config.to_dict(),
            "threshold": float(threshold),
            "probability_pos_weight": run.correction,
            "best_epoch": int(out["best_epoch"]),
            "label": run.contract.label,
        }
        save_mlp(fs, uri, state, pre, meta)

    return Fitted(
        name=entry.name,
        family="pytorch MLP with embeddings (DistributedDataParallel via TorchDistributor)",
        proba={
            s: undo_class_weighting(predict_proba(module, *run.data.encoded[s]).numpy(), run.correction)
            for s in EVALUATED
        },
        hyperparams={
            "network": network,
            **model_config,
            **run.train_config.to_dict(),
            "num_processes": run.options.num_processes,
            "backend": run.backend,
            "use_gpu": run.use_gpu,
            "embedding_dims": [e.embedding_dim for e in getattr(module, "embeddings", [])],
        },
        train_seconds=seconds,
        model_uri=uri,
        save=save,
        training={k: out[k] for k in TRAINING_KEYS},
    )


def baseline_fit(model_class: Callable) -> Callable[[ModelEntry, PreparedRun], Fitted]:
    """The fit of a baseline of ``model_class`` (``model_class(preprocessor, balance=, seed=,
    **entry.options)`` with ``fit(cat, num, y)`` and ``predict_proba(cat, num)``)."""

    def fit(entry: ModelEntry, run: PreparedRun) -> Fitted:
        data = run.data
        baseline = model_class(
            data.preprocessor, balance=run.options.balance_classes, seed=run.options.seed, **entry.options
        )
        started = time.time()
        baseline.fit(*data.encoded["train"], data.labels["train"])
        seconds = time.time() - started
        uri = baseline_uri(run.places.model_dir, entry.name)

        def save(fs: WarehouseFS, threshold: float) -> None:
            payload = {
                "model": baseline.model,
                "preprocessor": data.preprocessor.to_dict(),
                "threshold": threshold,
                "probability_pos_weight": run.correction,
                **run.common,
            }
            save_baseline(fs, uri, payload)

        return Fitted(
            name=entry.name,
            family=type(baseline.model).__name__,
            proba={
                s: undo_class_weighting(baseline.predict_proba(*data.encoded[s]), run.correction)
                for s in EVALUATED
            },
            hyperparams=dict(baseline.params),
            train_seconds=seconds,
            model_uri=uri,
            save=save,
        )

    return fit


FLIGHTS_MODELS = ModelRegistry("flights")
FLIGHTS_MODELS.declare(ModelEntry("mlp", "network", fit_network))
FLIGHTS_MODELS.declare(ModelEntry(LogisticBaseline.name, "baseline", baseline_fit(LogisticBaseline)))
FLIGHTS_MODELS.declare(ModelEntry(BoostedTreesBaseline.name, "baseline", baseline_fit(BoostedTreesBaseline)))
