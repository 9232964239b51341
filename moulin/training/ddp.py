"""Distributed training of the MLP: one DistributedDataParallel process per
Spark task, started by ``pyspark.ml.torch.distributor.TorchDistributor``.

Each rank reads its own shard of the train files with petastorm (row groups
split by ``cur_shard``/``shard_count``), so ranks may see different numbers of
batches: the loop runs under ``torch.distributed.algorithms.join.Join``, which
keeps the gradient all-reduces matched.  Every rank evaluates the (small)
validation split in full, so all ranks take the same early-stopping decision
(rank 0's decision is broadcast anyway).  Rank 0 writes one checkpoint per
epoch to the warehouse and returns the best weights to the driver.
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


def _minibatches(frames, pre, label: str, key: str, sample, batch_size: int, device):
    """Fixed-size (cat, num, y) tensor batches from a stream of row-group frames."""
    import numpy as np
    import torch

    from moulin.training.data import sample_mask

    buf_c, buf_n, buf_y = None, None, None
    for frame in frames:
        if sample is not None:
            frame = frame[sample_mask(frame[key].to_numpy(), sample)]
        if len(frame) == 0:
            continue
        c, n = pre.transform(frame)
        y = frame[label].to_numpy(dtype=np.float32)
        if buf_c is None:
            buf_c, buf_n, buf_y = c, n, y
        else:
            buf_c, buf_n, buf_y = (
                np.concatenate([buf_c, c]),
                np.concatenate([buf_n, n]),
                np.concatenate([buf_y, y]),
            )
        while len(buf_y) >= batch_size:
            yield (
                torch.from_numpy(buf_c[:batch_size]).to(device),
                torch.from_numpy(buf_n[:batch_size]).to(device),
                torch.from_numpy(buf_y[:batch_size]).to(device),
            )
            buf_c, buf_n, buf_y = buf_c[batch_size:], buf_n[batch_size:], buf_y[batch_size:]
    if buf_y is not None and len(buf_y):
        yield (
            torch.from_numpy(buf_c).to(device),
            torch.from_numpy(buf_n).to(device),
            torch.from_numpy(buf_y).to(device),
        )


def train_worker(job: dict) -> dict:
    """Body of one rank (runs in a Spark task under torchrun).

    ``job`` keys: backend, train_files, validation_files, columns (key, label),
    preprocessor (dict), model_config (dict), train_config (dict), sample,
    checkpoint_dir, settings.
    """
    import copy

    import torch
    import torch.distributed as dist
    from torch.distributed.algorithms.join import Join
    from torch.nn.parallel import DistributedDataParallel as DDP

    from moulin.storage import WarehouseFS
    from moulin.training.data import iter_petastorm_frames, petastorm_urls
    from moulin.training.model import build_network
    from moulin.training.preprocessing import Preprocessor

    backend = job["backend"]
    dist.init_process_group(backend)
    try:
        rank, world = dist.get_rank(), dist.get_world_size()
        if backend == "nccl":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        else:
            device = torch.device("cpu")
        cfg = TrainConfig(**job["train_config"])
        pre = Preprocessor.from_dict(job["preprocessor"])
        key, label = job["columns"]["key"], job["columns"]["label"]
        sample = job.get("sample")
        read_cols = [key, label, *pre.categorical, *pre.numeric]
        settings = job.get("settings")
        train_urls = petastorm_urls(job["train_files"], settings)
        val_urls = petastorm_urls(job["validation_files"], settings)

        # Validation: read once, in full, on every rank.
        val = list(
            _minibatches(
                iter_petastorm_frames(val_urls, read_cols, shuffle=False),
                pre,
                label,
                key,
                sample,
                1 << 30,
                device,
            )
        )
        torch.manual_seed(cfg.seed)
        network = job.get("network", "mlp")
        model = build_network(network, pre.cardinalities, pre.n_numeric, job["model_config"]).to(device)
        ddp_model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        pos_weight = torch.tensor(cfg.pos_weight, device=device)
        objective = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight, reduction="sum")
        logloss = torch.nn.BCEWithLogitsLoss(reduction="sum")
        fs = WarehouseFS(settings) if rank == 0 else None

        history: list[dict] = []
        best = {"val_loss": float("inf"), "epoch": 0, "state": copy.deepcopy(model.state_dict())}
        bad_epochs = 0
        rows_per_rank: list[int] = []
        checkpoints: list[str] = []
        read_stats: dict = {}
        for epoch in range(1, cfg.epochs + 1):
            started = time.time()
            model.train()
            frames = iter_petastorm_frames(
                train_urls,
                read_cols,
                cur_shard=rank,
                shard_count=world,
                seed=cfg.seed + epoch,
                shard_key=key,
                stats=read_stats,
            )
            totals = torch.zeros(2, dtype=torch.float64)
            with Join([ddp_model]):
                for cat, num, y in _minibatches(frames, pre, label, key, sample, cfg.batch_size, device):
                    optimizer.zero_grad(set_to_none=True)
                    loss = objective(ddp_model(cat, num), y)
                    (loss / len(y)).backward()
                    optimizer.step()
                    totals += torch.tensor([loss.item(), len(y)], dtype=torch.float64)
            per_rank = torch.zeros(world, dtype=torch.float64)
            per_rank[rank] = totals[1]
            totals_dev, per_rank_dev = totals.to(device), per_rank.to(device)
            dist.all_reduce(totals_dev)
            dist.all_reduce(per_rank_dev)
            totals, per_rank = totals_dev.cpu(), per_rank_dev.cpu()
            if epoch == 1:
                rows_per_rank = [int(v) for v in per_rank.tolist()]
            if totals[1] == 0:
                raise RuntimeError(f"no train rows were read in epoch {epoch} (files: {len(train_urls)})")

            model.eval()
            with torch.no_grad():
                v_obj = v_log = v_n = 0.0
                for cat, num, y in val:
                    logits = model(cat, num)
                    v_obj += objective(logits, y).item()
                    v_log += logloss(logits, y).item()
                    v_n += len(y)
            val_loss = v_obj / max(v_n, 1)
            record = {
                "epoch": epoch,
                "train_loss": float(totals[0] / max(totals[1], 1)),
                "val_loss": val_loss,
                "val_logloss": v_log / max(v_n, 1),
                "train_rows": int(totals[1]),
                "seconds": round(time.time() - started, 3),
            }
            history.append(record)
            improved = val_loss < best["val_loss"] - cfg.min_delta
            if improved:
                best = {"val_loss": val_loss, "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
                bad_epochs = 0
            else:
                bad_epochs += 1
            if rank == 0:
                uri = checkpoint_uri(job["checkpoint_dir"], epoch)
                fs.write_bytes(
                    uri,
                    _save_bytes(
                        {
                            "epoch": epoch,
                            "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                            "optimizer": optimizer.state_dict(),
                            "metrics": record,
                        }
                    ),
                )
                checkpoints.append(uri)
            stop = torch.tensor(
                [1 if (cfg.early_stopping and bad_epochs >= cfg.patience) else 0], device=device
            )
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
            "state_dict": _save_bytes({k: v.cpu() for k, v in best["state"].items()}),
        }
    finally:
        dist.destroy_process_group()


def run_distributed(job: dict, num_processes: int = 2, use_gpu: bool = False) -> dict:
    """Run :func:`train_worker` on ``num_processes`` Spark tasks; rank 0's result."""
    from pyspark.ml.torch.distributor import TorchDistributor

    distributor = TorchDistributor(num_processes=num_processes, local_mode=False, use_gpu=use_gpu)
    return distributor.run(train_worker, job)
