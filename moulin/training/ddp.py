"""Distributed training of any of moulin's networks (tabular, image, text): one
DistributedDataParallel process per Spark task, started by
``pyspark.ml.torch.distributor.TorchDistributor`` (or by ``torchrun``).  What a
row becomes is the job's codec (:mod:`moulin.training.batches`); the loss is the
task's (binary or multi-class).

Input (:mod:`moulin.training.loader`): each rank reads its own equal share of the
train split's rows (row groups shuffled per epoch by a shared seed, then cut into
equal ranges), read and decoded by a pool of workers ahead of the loop, so every
rank makes the same number of batches and no rank waits on another's tail.  On
CUDA batches come from page-locked memory, are copied ``non_blocking`` one batch
ahead, and the forward pass runs under bf16 autocast.  Nothing in the loop reads
a value back from the device: losses are summed on it and read once per epoch.

Every rank evaluates the (small) validation split in full, so all ranks take the
same early-stopping decision (rank 0's decision is broadcast anyway).  Rank 0
serialises one checkpoint per epoch (weights, optimizer, history, early-stopping
state) and a background thread writes it (:mod:`moulin.training.checkpoints`);
the run waits for the writes at the end, and a failed write stops every rank
with its error.  A run started again with the same checkpoint folder resumes
after its last checkpoint if that checkpoint is of the same training
(:func:`job_fingerprint`: the files read, the inputs' encoding, the network, its
hyper-parameters, the starting weights and the caller's ``identity``); checkpoints
of any other training are set aside and the run trains from epoch 1.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from moulin.storage import WarehouseFS
from moulin.training import TrainingDataError, TrainingError
from moulin.training.checkpoints import (
    CheckpointWriteError,
    CheckpointWriter,
    checkpoint_uri,
    deserialise,
    fingerprint,
    latest_checkpoint,
    serialise,
    set_aside,
    state_digest,
)
from moulin.training.config import TrainConfig
from moulin.training.networks import build_network

__all__ = [
    "checkpoint_uri",
    "choose_backend",
    "job_fingerprint",
    "latest_checkpoint",
    "run_distributed",
    "train_worker",
]

log = logging.getLogger("moulin.training")

#: The entries of a job that decide what it trains, so whose checkpoints it may resume
#: (``identity``: what the caller adds, e.g. the snapshot's version and the code version).
#: Not in it: how it runs (backend, loader options, settings, the checkpoint folder).
IDENTITY_KEYS = (
    "train_files",
    "validation_files",
    "inputs",
    "task",
    "network",
    "model_config",
    "train_config",
    "sample",
    "train_sample",
    "identity",
)


def job_fingerprint(job: dict) -> str:
    """Fingerprint of the training ``job`` describes (:data:`IDENTITY_KEYS` and the
    weights it starts from): a checkpoint is resumed only by a job of the same one."""
    parts = {k: job.get(k) for k in IDENTITY_KEYS}
    parts["init_state"] = state_digest(job["init_state"]) if job.get("init_state") else None
    return fingerprint(parts)


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


def _save_bytes(obj: Any) -> bytes:
    return serialise(obj)


def _load_bytes(data: bytes) -> Any:
    return deserialise(data)


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
    if codec.kind == "tabular":
        pre = codec.preprocessor
        return build_network(job.get("network", "mlp"), pre.cardinalities, pre.n_numeric, job["model_config"])
    return build_network(job["network"], (), 0, job["model_config"])


def _validation_batches(job: dict, codec, cfg: TrainConfig, device, loader_options: dict) -> list[tuple]:
    """The validation split, in full, as device batches (read once per rank)."""
    from moulin.training.loader import LoaderOptions, device_batches, open_loader

    options = LoaderOptions.from_dict(
        {**loader_options, "shuffle": False, "pin_memory": False, "batch_size": cfg.eval_batch_size}
    )
    with open_loader(
        job["validation_files"], codec, options, settings=job.get("settings"), sample=job.get("sample")
    ) as loader:
        return list(device_batches(loader.epoch(0), device, codec))


def _score(model, batches: list[tuple], objective, report_loss, task: str, autocast) -> dict:
    """Validation sums, accumulated on the device and read once."""
    import torch

    sums = None
    rows = 0
    with torch.no_grad():
        for *inputs, y in batches:
            with autocast():
                logits = model(*inputs)
            logits = logits.float()
            parts = [objective(logits, y), report_loss(logits, y)]
            if task == "multiclass":
                parts.append((logits.argmax(1) == y).sum())
            step = torch.stack([p.double() for p in parts])
            sums = step if sums is None else sums + step
            rows += len(y)
    values = sums.tolist() if sums is not None else [0.0, 0.0, 0.0]
    n = max(rows, 1)
    out = {"val_loss": values[0] / n, "val_logloss": values[1] / n}
    if task == "multiclass":
        out["val_accuracy"] = values[2] / n
    return out


def _resumable(
    fs, checkpoint_dir: str, latest: tuple[int, str], identity: str, resume: bool
) -> tuple[dict | None, dict | None, str | None]:
    """``(last checkpoint, best epoch's weights, its fingerprint)``; the first two are
    None unless ``resume`` and the last checkpoint and the best epoch's are this
    training's (fingerprint ``identity``): checkpoints of another training are never resumed."""
    ckpt = _load_bytes(fs.read_bytes(latest[1]))
    found = ckpt.get("fingerprint") if isinstance(ckpt, dict) else None
    if not resume or found != identity:
        return None, None, found
    best_epoch = int(ckpt.get("best_epoch", ckpt["epoch"]))
    if best_epoch == int(ckpt["epoch"]):
        return ckpt, ckpt["state_dict"], found
    best_uri = checkpoint_uri(checkpoint_dir, best_epoch)
    best = _load_bytes(fs.read_bytes(best_uri)) if fs.exists(best_uri) else None
    if not isinstance(best, dict) or best.get("fingerprint") != identity:
        return None, None, found
    return ckpt, best["state_dict"], found


def train_worker(job: dict) -> dict:
    """Body of one rank (runs in a Spark task under torchrun, or under plain torchrun).

    ``job`` keys: backend, train_files, validation_files, inputs (a codec's dict,
    :mod:`moulin.training.batches`), task (binary | multiclass), network,
    model_config, train_config, sample, checkpoint_dir, settings; optional
    ``train_sample`` (a share of the train split only), ``init_state`` (weights to
    start from, bytes), ``identity`` (JSON-able: what else the training depends on,
    e.g. the snapshot's version and the code version; part of the fingerprint),
    ``resume`` (default true: continue after the last checkpoint in
    ``checkpoint_dir`` if it has this job's fingerprint, :func:`job_fingerprint`;
    checkpoints not resumed are set aside), ``loader`` (:class:`LoaderOptions` fields as a
    dict: reader (``"moulin"`` or ``"petastorm"``), workers, pool, shuffle_buffer, tail, ...) and ``mixed_precision``
    (default true: bf16 autocast on CUDA; no effect on the CPU).
    """
    import contextlib
    import copy
    import functools

    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    from moulin.training.batches import codec_from_dict
    from moulin.training.loader import LoaderOptions, device_batches, open_loader

    backend = job["backend"]
    dist.init_process_group(backend)
    loader = None
    writer = None
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
        on_cuda = device.type == "cuda"
        autocast = (
            functools.partial(torch.autocast, "cuda", dtype=torch.bfloat16)
            if on_cuda and job.get("mixed_precision", True)
            else contextlib.nullcontext
        )
        cfg = TrainConfig(**job["train_config"])
        codec = codec_from_dict(job["inputs"])
        task = job.get("task", "binary")
        sample = job.get("sample")
        # train_sample: a share of the train split only (nested in ``sample``: same key hash)
        train_share = min(sample or 1.0, job.get("train_sample") or 1.0)
        settings = job.get("settings")
        fs = WarehouseFS(settings)
        loader_options = dict(job.get("loader") or {})

        val = _validation_batches(job, codec, cfg, device, loader_options)
        torch.manual_seed(cfg.seed)
        model = _build(job, codec)
        if job.get("init_state"):
            model.load_state_dict(_load_bytes(job["init_state"]))
        model = model.to(device)
        ddp_model = DDP(model, device_ids=[device.index] if on_cuda else None)
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
        identity = job_fingerprint(job)
        ckpt_dir = job["checkpoint_dir"]
        latest = latest_checkpoint(fs, ckpt_dir)
        ckpt, best_state, found = (
            _resumable(fs, ckpt_dir, latest, identity, job.get("resume", True))
            if latest is not None
            else (None, None, None)
        )
        if ckpt is not None:
            model.load_state_dict(ckpt["state_dict"])
            optimizer.load_state_dict(ckpt["optimizer"])
            if scheduler is not None and ckpt.get("scheduler"):
                scheduler.load_state_dict(ckpt["scheduler"])
            history = list(ckpt.get("history", []))
            bad_epochs = int(ckpt.get("bad_epochs", 0))
            best = {
                "val_loss": float(ckpt.get("best_val_loss", float("inf"))),
                "epoch": int(ckpt.get("best_epoch", ckpt["epoch"])),
                "state": best_state,
            }
            first_epoch = int(ckpt["epoch"]) + 1
            resumed_from = int(ckpt["epoch"])
            if ckpt.get("stopped"):
                first_epoch = cfg.epochs + 1
        # Every rank read the same checkpoints and took the same decision (checked); then
        # rank 0 moves the checkpoints it does not resume out of the way of this run's.
        agreed = torch.tensor([resumed_from or 0, -(resumed_from or 0)], dtype=torch.int64, device=device)
        dist.all_reduce(agreed, op=dist.ReduceOp.MAX)
        if int(agreed[0]) != -int(agreed[1]):
            raise TrainingError(
                f"the ranks resumed different epochs (from {-int(agreed[1])} to {int(agreed[0])}) of "
                f"{ckpt_dir}: was another run writing checkpoints there? Run again"
            )
        set_aside_to: list[str] = []
        if latest is not None and ckpt is None and rank == 0:
            set_aside_to = set_aside(fs, ckpt_dir, found or "unfingerprinted")
            log.warning(
                "%s: %d checkpoint(s) of another training (fingerprint %s, this one %s) set aside "
                "under %s/superseded; training from epoch 1",
                ckpt_dir, len(set_aside_to), found, identity, ckpt_dir.rstrip("/"),
            )  # fmt: skip

        options = LoaderOptions.from_dict(
            loader_options, batch_size=cfg.batch_size, seed=cfg.seed, pin_memory=on_cuda
        )
        loader = open_loader(
            job["train_files"], codec, options, rank=rank, world=world, settings=settings,
            sample=train_share if train_share < 1.0 else None,
        )  # fmt: skip
        writer = CheckpointWriter(fs) if rank == 0 else None
        rows_per_rank: list[int] = []
        checkpoints: list[str] = []
        tail_rows = 0
        for epoch in range(first_epoch, cfg.epochs + 1):
            started = time.time()
            model.train()
            batches = loader.epoch(epoch)
            if batches.plan.rows == 0:
                raise TrainingDataError(
                    f"no train rows to read in epoch {epoch} on rank {rank} of {world} "
                    f"({loader.rows} rows in {len(job['train_files'])} file(s)): use fewer processes"
                )
            tail_rows = batches.plan.tail_rows
            # Losses are summed on the device and read once per epoch (no per-step sync).
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            waited = 0.0
            feed = device_batches(batches, device, codec)
            while True:
                t_wait = time.perf_counter()
                batch = next(feed, None)
                waited += time.perf_counter() - t_wait
                if batch is None:
                    break
                *inputs, y = batch
                optimizer.zero_grad(set_to_none=True)
                with autocast():
                    logits = ddp_model(*inputs)
                loss = objective(logits.float(), y)
                (loss / len(y)).backward()
                optimizer.step()
                loss_sum += loss.detach().double()
            if scheduler is not None:
                scheduler.step()
            trained_s = time.time() - started
            totals = torch.zeros(2 + world, dtype=torch.float64, device=device)
            totals[0] = loss_sum
            totals[1] = batches.plan.rows
            totals[2 + rank] = batches.plan.rows
            dist.all_reduce(totals)
            totals = totals.cpu()
            if not rows_per_rank:
                rows_per_rank = [int(v) for v in totals[2:].tolist()]

            model.eval()
            scores = _score(model, val, objective, report_loss, task, autocast)
            val_loss = scores["val_loss"]
            record = {
                "epoch": epoch,
                "train_loss": float(totals[0] / max(totals[1], 1)),
                "val_loss": val_loss,
                "val_logloss": scores["val_logloss"],
                "train_rows": int(totals[1]),
                "seconds": round(time.time() - started, 3),
                "train_seconds": round(trained_s, 3),  # the batches alone, without validation
                "data_wait_seconds": round(waited, 3),
                "learning_rate": optimizer.param_groups[0]["lr"],
            }
            if task == "multiclass":
                record["val_accuracy"] = scores["val_accuracy"]
            history.append(record)
            improved = val_loss < best["val_loss"] - cfg.min_delta
            if improved:
                best = {"val_loss": val_loss, "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
                bad_epochs = 0
            else:
                bad_epochs += 1
            stop_now = cfg.early_stopping and bad_epochs >= cfg.patience
            if writer is not None:
                uri = checkpoint_uri(job["checkpoint_dir"], epoch)
                # Serialised here (the values of this epoch), written in the background.
                writer.submit(
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
                            "fingerprint": identity,
                        }
                    ),
                )
                checkpoints.append(uri)
            # 1: early stop; 2: a checkpoint write failed (every rank stops).
            failed = writer is not None and writer.failure() is not None
            stop = torch.tensor([2 if failed else 1 if stop_now else 0], device=device)
            dist.broadcast(stop, src=0)
            code = int(stop.item())
            if code == 2:
                if writer is not None:
                    writer.raise_failure()
                raise CheckpointWriteError("rank 0 could not write a checkpoint: see rank 0's error")
            if code:
                break
        if writer is not None:
            writer.close()
        return {
            "rank": rank,
            "world_size": world,
            "backend": backend,
            "device": str(device),
            "history": history,
            "best_epoch": best["epoch"],
            "best_val_loss": best["val_loss"],
            "rows_per_rank": rows_per_rank,
            "tail_rows": tail_rows,
            "tail": options.tail,
            "sharding": "row_ranges" if options.reader == "moulin" else "petastorm_row_groups",
            "loader": {k: v for k, v in options.__dict__.items() if k != "pin_memory"},
            "checkpoints": checkpoints,
            "resumed_from_epoch": resumed_from,
            "fingerprint": identity,
            "set_aside": set_aside_to,
            "state_dict": _save_bytes({k: v.cpu() for k, v in best["state"].items()}),
        }
    finally:
        if loader is not None:
            loader.close()
        if writer is not None:
            with contextlib.suppress(CheckpointWriteError):
                writer.close()  # waits for the writes in flight when the loop failed
        dist.destroy_process_group()


def run_distributed(job: dict, num_processes: int = 2, use_gpu: bool = False) -> dict:
    """Run :func:`train_worker` on ``num_processes`` Spark tasks; rank 0's result."""
    from pyspark.ml.torch.distributor import TorchDistributor

    distributor = TorchDistributor(num_processes=num_processes, local_mode=False, use_gpu=use_gpu)
    return distributor.run(train_worker, job)
