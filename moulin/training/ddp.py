"""Distributed training of any of moulin's networks (tabular, image): one
DistributedDataParallel process per Spark task, started by
``pyspark.ml.torch.distributor.TorchDistributor``.  What a row becomes is the
job's codec (:mod:`moulin.training.batches`); the loss is the task's (binary or
multi-class).

Each rank reads its own shard of the train files with petastorm (row groups
split by ``cur_shard``/``shard_count``), so ranks may see different numbers of
batches: the loop runs under ``torch.distributed.algorithms.join.Join``, which
keeps the gradient all-reduces matched.  Every rank evaluates the (small)
validation split in full, so all ranks take the same early-stopping decision
(rank 0's decision is broadcast anyway).  Rank 0 writes one checkpoint per
epoch to the warehouse (weights, optimizer, history, early-stopping state) and
returns the best weights to the driver; a run started again with the same
checkpoint folder resumes after its last checkpoint.
"""

from __future__ import annotations

import io
import os
import time
from typing import Any

from moulin.training.config import TrainConfig


def choose_backend(spark=None, use_gpu: bool | None = None) -> tuple[bool, str]:
    """(use_gpu, backend): NCCL on GPUs, gloo on CPUs; ``use_gpu=None`` detects.

    Detection: a CUDA device on the driver, or GPUs requested for executors.
    """
    if use_gpu is None:
        import torch

        use_gpu = torch.cuda.is_available()
        if not use_gpu and spark is not None:
            amount = spark.sparkContext.getConf().get("spark.executor.resource.gpu.amount", "0")
            try:
                use_gpu = float(amount) > 0
            except ValueError:
                use_gpu = False
    return bool(use_gpu), ("nccl" if use_gpu else "gloo")


def checkpoint_uri(checkpoint_dir: str, epoch: int) -> str:
    return f"{checkpoint_dir.rstrip('/')}/epoch-{epoch:03d}.pt"


def _save_bytes(obj: Any) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def latest_checkpoint(fs, checkpoint_dir: str) -> tuple[int, str] | None:
    """``(epoch, uri)`` of the last checkpoint written under ``checkpoint_dir``, if any
    (checkpoint writes are atomic: a file that exists is complete)."""
    epochs = []
    for info in fs.list(checkpoint_dir):
        name = info.uri.rstrip("/").rsplit("/", 1)[-1]
        if name.startswith("epoch-") and name.endswith(".pt") and name[6:-3].isdigit():
            epochs.append((int(name[6:-3]), info.uri))
    return max(epochs) if epochs else None


def _load_bytes(data: bytes) -> Any:
    import torch

    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _objective(task: str, cfg: TrainConfig, device):
    """(training loss, reported validation loss) as sums over rows, for the task."""
    import torch

    if task == "multiclass":
        loss = torch.nn.CrossEntropyLoss(reduction="sum")
        return loss, loss
    if task != "binary":
        raise ValueError(f"unknown task {task!r}: binary or multiclass")
    weighted = torch.nn.BCEWithLogitsLoss(
        pos_weight=torch.tensor(cfg.pos_weight, device=device), reduction="sum"
    )
    return weighted, torch.nn.BCEWithLogitsLoss(reduction="sum")


def _build(job: dict, codec):
    from moulin.training.model import build_network

    if codec.kind == "tabular":
        pre = codec.preprocessor
        return build_network(job.get("network", "mlp"), pre.cardinalities, pre.n_numeric, job["model_config"])
    return build_network(job["network"], (), 0, job["model_config"])


def train_worker(job: dict) -> dict:
    """Body of one rank (runs in a Spark task under torchrun, or under plain torchrun).

    ``job`` keys: backend, train_files, validation_files, inputs (a codec's dict,
    :mod:`moulin.training.batches`), task (binary | multiclass), network,
    model_config, train_config, sample, checkpoint_dir, settings; optional
    ``train_sample`` (a share of the train split only), ``init_state`` (weights to start from, bytes) and ``resume`` (default true:
    continue after the last checkpoint in ``checkpoint_dir``).
    """
    import copy

    import numpy as np
    import torch
    import torch.distributed as dist
    from torch.distributed.algorithms.join import Join
    from torch.nn.parallel import DistributedDataParallel as DDP

    from moulin.storage import WarehouseFS
    from moulin.training.batches import codec_from_dict, minibatches
    from moulin.training.data import iter_petastorm_frames, petastorm_urls, sample_mask

    backend = job["backend"]
    dist.init_process_group(backend)
    try:
        rank, world = dist.get_rank(), dist.get_world_size()
        if backend == "nccl":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        else:
            device = torch.device("cpu")
            # As many threads as OMP_NUM_THREADS says (TorchDistributor sets 1), else the
            # cores shared by the ranks: more threads than cores slow training many times.
            threads = os.environ.get("OMP_NUM_THREADS")
            torch.set_num_threads(int(threads) if threads else max(1, (os.cpu_count() or 1) // world))
        cfg = TrainConfig(**job["train_config"])
        codec = codec_from_dict(job["inputs"])
        task = job.get("task", "binary")
        sample = job.get("sample")
        key = codec.key
        keep = (lambda f: sample_mask(f[key].to_numpy(), sample)) if sample is not None else None
        # train_sample: a share of the train split only (nested in ``sample``: same key hash)
        train_share = min(sample or 1.0, job.get("train_sample") or 1.0)
        keep_train = (lambda f: sample_mask(f[key].to_numpy(), train_share)) if train_share < 1.0 else None
        settings = job.get("settings")
        train_urls = petastorm_urls(job["train_files"], settings)
        val_urls = petastorm_urls(job["validation_files"], settings)
        fs = WarehouseFS(settings)

        # Validation: read once, in full, on every rank, scored in batches.
        val = list(
            minibatches(
                iter_petastorm_frames(val_urls, codec.columns, shuffle=False), codec, cfg.eval_batch_size, device,
                keep=keep,
            )
        )  # fmt: skip
        torch.manual_seed(cfg.seed)
        model = _build(job, codec)
        if job.get("init_state"):
            model.load_state_dict(_load_bytes(job["init_state"]))
        model = model.to(device)
        ddp_model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        scheduler = (
            torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
            if cfg.schedule == "cosine"
            else None
        )
        objective, report_loss = _objective(task, cfg, device)

        history: list[dict] = []
        best = {"val_loss": float("inf"), "epoch": 0, "state": copy.deepcopy(model.state_dict())}
        bad_epochs = 0
        first_epoch = 1
        resumed_from = None
        latest = latest_checkpoint(fs, job["checkpoint_dir"]) if job.get("resume", True) else None
        if latest is not None:
            ckpt = _load_bytes(fs.read_bytes(latest[1]))
            model.load_state_dict(ckpt["state_dict"])
            optimizer.load_state_dict(ckpt["optimizer"])
            if scheduler is not None and ckpt.get("scheduler"):
                scheduler.load_state_dict(ckpt["scheduler"])
            history = list(ckpt.get("history", []))
            bad_epochs = int(ckpt.get("bad_epochs", 0))
            best_epoch = int(ckpt.get("best_epoch", ckpt["epoch"]))
            best_state = (
                ckpt["state_dict"]
                if best_epoch == ckpt["epoch"]
                else _load_bytes(fs.read_bytes(checkpoint_uri(job["checkpoint_dir"], best_epoch)))[
                    "state_dict"
                ]
            )
            best = {
                "val_loss": float(ckpt.get("best_val_loss", float("inf"))),
                "epoch": best_epoch,
                "state": best_state,
            }
            first_epoch = int(ckpt["epoch"]) + 1
            resumed_from = int(ckpt["epoch"])
            if ckpt.get("stopped"):
                first_epoch = cfg.epochs + 1
        rows_per_rank: list[int] = []
        checkpoints: list[str] = []
        read_stats: dict = {}
        for epoch in range(first_epoch, cfg.epochs + 1):
            started = time.time()
            model.train()
            frames = iter_petastorm_frames(
                train_urls,
                codec.columns,
                cur_shard=rank,
                shard_count=world,
                seed=cfg.seed + epoch,
                shard_key=key,
                stats=read_stats,
            )
            rng = np.random.default_rng([cfg.seed, epoch, rank])
            # Losses are summed on the device and read once per epoch (no per-step sync).
            totals = torch.zeros(2, dtype=torch.float64, device=device)
            waited = 0.0
            with Join([ddp_model]):
                batches = minibatches(frames, codec, cfg.batch_size, device, rng=rng, keep=keep_train)
                while True:
                    t_wait = time.time()
                    batch = next(batches, None)
                    waited += time.time() - t_wait
                    if batch is None:
                        break
                    *inputs, y = batch
                    optimizer.zero_grad(set_to_none=True)
                    loss = objective(ddp_model(*inputs), y)
                    (loss / len(y)).backward()
                    optimizer.step()
                    totals += torch.stack(
                        [
                            loss.detach().double(),
                            torch.tensor(float(len(y)), device=device, dtype=torch.float64),
                        ]
                    )
            if scheduler is not None:
                scheduler.step()
            per_rank = torch.zeros(world, dtype=torch.float64, device=device)
            per_rank[rank] = totals[1]
            dist.all_reduce(totals)
            dist.all_reduce(per_rank)
            totals, per_rank = totals.cpu(), per_rank.cpu()
            if not rows_per_rank:
                rows_per_rank = [int(v) for v in per_rank.tolist()]
            if totals[1] == 0:
                raise RuntimeError(f"no train rows were read in epoch {epoch} (files: {len(train_urls)})")

            model.eval()
            with torch.no_grad():
                v_obj = v_rep = v_n = v_right = 0.0
                for *inputs, y in val:
                    logits = model(*inputs)
                    v_obj += objective(logits, y).item()
                    v_rep += report_loss(logits, y).item()
                    v_n += len(y)
                    if task == "multiclass":
                        v_right += float((logits.argmax(1) == y).sum().item())
            val_loss = v_obj / max(v_n, 1)
            record = {
                "epoch": epoch,
                "train_loss": float(totals[0] / max(totals[1], 1)),
                "val_loss": val_loss,
                "val_logloss": v_rep / max(v_n, 1),
                "train_rows": int(totals[1]),
                "seconds": round(time.time() - started, 3),
                "data_wait_seconds": round(waited, 3),
                "learning_rate": optimizer.param_groups[0]["lr"],
            }
            if task == "multiclass":
                record["val_accuracy"] = v_right / max(v_n, 1)
            history.append(record)
            improved = val_loss < best["val_loss"] - cfg.min_delta
            if improved:
                best = {"val_loss": val_loss, "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
                bad_epochs = 0
            else:
                bad_epochs += 1
            stop_now = cfg.early_stopping and bad_epochs >= cfg.patience
            if rank == 0:
                uri = checkpoint_uri(job["checkpoint_dir"], epoch)
                fs.write_bytes(
                    uri,
                    _save_bytes(
                        {
                            "epoch": epoch,
                            "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                            "optimizer": optimizer.state_dict(),
                            "scheduler": scheduler.state_dict() if scheduler is not None else None,
                            "metrics": record,
                            "history": history,
                            "best_epoch": best["epoch"],
                            "best_val_loss": best["val_loss"],
                            "bad_epochs": bad_epochs,
                            "stopped": bool(stop_now),
                        }
                    ),
                )
                checkpoints.append(uri)
            stop = torch.tensor([1 if stop_now else 0], device=device)
            dist.broadcast(stop, src=0)
            if int(stop.item()):
                break
        return {
            "rank": rank,
            "world_size": world,
            "backend": backend,
            "device": str(device),
            "history": history,
            "best_epoch": best["epoch"],
            "best_val_loss": best["val_loss"],
            "rows_per_rank": rows_per_rank,
            "sharding": read_stats.get("sharding"),
            "checkpoints": checkpoints,
            "resumed_from_epoch": resumed_from,
            "state_dict": _save_bytes({k: v.cpu() for k, v in best["state"].items()}),
        }
    finally:
        dist.destroy_process_group()


def run_distributed(job: dict, num_processes: int = 2, use_gpu: bool = False) -> dict:
    """Run :func:`train_worker` on ``num_processes`` Spark tasks; rank 0's result."""
    from pyspark.ml.torch.distributor import TorchDistributor

    distributor = TorchDistributor(num_processes=num_processes, local_mode=False, use_gpu=use_gpu)
    return distributor.run(train_worker, job)
