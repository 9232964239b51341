"""The GPU check of the training input pipeline (driven by ``benchmarks/gpu_check.sh``).

``prepare`` (here, training environment): writes a small synthetic flights
snapshot as Parquet files plus ``job.json`` (the fitted codec) into a folder
that travels with the code; the GPU machine has no Java, Spark or deltalake.

``run`` (on the GPU machine, or here with ``--cpu``): runs the real training
worker (:func:`moulin.training.ddp.train_worker`, one rank started by
``torch.multiprocessing``, NCCL on one GPU or gloo on the CPU) on those files,
samples ``nvidia-smi`` every 200 ms meanwhile, then trains the same model on
batches already on the device (the upper bound), and prints the epoch time,
rows/s, the share of time waiting for data, the mean GPU utilisation and the
upper bound's rows/s; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def prepare(out: Path, rows: int, rows_per_group: int) -> None:
    from moulin.training.batches import TabularCodec
    from moulin.training.contract import FeatureContract
    from moulin.training.data import read_split_pandas, resolve_snapshot
    from moulin.training.model import MLPConfig
    from moulin.training.parquet_files import local_path
    from moulin.training.preprocessing import Preprocessor
    from moulin.training.synthetic import write_synthetic_table

    contract = FeatureContract.load("flight_features")
    scratch = Path(tempfile.mkdtemp(prefix="moulin-gpucheck-"))
    try:
        uri = str(scratch / "flight_features")
        write_synthetic_table(uri, contract, rows, seed=1, rows_per_group=rows_per_group)
        snap = resolve_snapshot(uri, contract.split)
        shutil.rmtree(out, ignore_errors=True)
        files: dict[str, list[str]] = {}
        for split in ("train", "validation"):
            (out / split).mkdir(parents=True)
            files[split] = []
            for i, source in enumerate(snap.files[split]):
                name = f"{split}/part-{i:03d}.parquet"
                shutil.copyfile(local_path(source), out / name)
                files[split].append(name)
        pre = Preprocessor.fit(read_split_pandas(snap.files["train"], contract.read_columns), contract)
        job = {
            "inputs": TabularCodec(pre, contract.key, contract.label).to_dict(),
            "network": "mlp",
            "model_config": MLPConfig().to_dict(),
            "files": files,
            "rows": {s: snap.rows[s] for s in files},
            "snapshot_version": snap.version,
        }
        (out / "job.json").write_text(json.dumps(job))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"prepared {out}: {job['rows']} rows, {size / 1e6:.1f} MB")


class GpuSampler:
    """``nvidia-smi`` utilisation samples every 200 ms, with their times."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self._process = None
        if shutil.which("nvidia-smi") is None:
            return
        self._process = subprocess.Popen(
            ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "200"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._process.stdout:
            try:
                self.samples.append((time.time(), float(line.split(",")[0])))
            except ValueError:
                continue

    def mean(self, start: float, end: float) -> float | None:
        values = [u for t, u in self.samples if start <= t <= end]
        return sum(values) / len(values) if values else None

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait()


def _rank(index: int, job: dict, port: int, result: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1", LOCAL_RANK="0"
    )
    from moulin.training.ddp import train_worker

    out = train_worker(job)
    ended = time.time()
    keep = ("history", "rows_per_rank", "backend", "device", "loader")
    Path(result).write_text(json.dumps({**{k: out[k] for k in keep}, "ended": ended}))


def upper_bound(spec: dict, files: list[str], batch_size: int, device, steps: int) -> float:
    """Rows/s of the same model and optimiser on batches already on the device."""
    import torch

    from moulin.training.batches import codec_from_dict
    from moulin.training.loader import LoaderOptions, SnapshotLoader
    from moulin.training.networks import build_network

    codec = codec_from_dict(spec["inputs"])
    with SnapshotLoader(files, codec, LoaderOptions(batch_size=65536, shuffle=False)) as loader:
        parts = list(loader.epoch(0))
    data = [torch.cat(column).to(device) for column in zip(*parts, strict=True)]  # tabular: no finish step
    n = len(data[-1])
    torch.manual_seed(0)
    pre = codec.preprocessor
    model = build_network(spec["network"], pre.cardinalities, pre.n_numeric, spec["model_config"]).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="sum")
    on_cuda = device.type == "cuda"

    def step(index):
        *inputs, y = (d[index] for d in data)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_cuda):
            logits = model(*inputs)
        (loss_fn(logits.float(), y) / len(y)).backward()
        optimizer.step()

    order = torch.randperm(n, device=device)
    batches = [order[i : i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]
    for index in batches[:5]:  # warm-up
        step(index)
    if on_cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    done = 0
    while done < steps:
        for index in batches:
            step(index)
            done += 1
            if done >= steps:
                break
    if on_cuda:
        torch.cuda.synchronize()
    return done * batch_size / (time.perf_counter() - started)


def run(args: argparse.Namespace) -> None:
    import torch
    import torch.multiprocessing as mp

    data = Path(args.data).resolve()
    spec = json.loads((data / "job.json").read_text())
    use_gpu = not args.cpu
    if use_gpu and not torch.cuda.is_available():
        sys.exit("no CUDA device: run with --cpu for the CPU (gloo) mode")
    device = torch.device("cuda", 0) if use_gpu else torch.device("cpu")
    scratch = Path(tempfile.mkdtemp(prefix="moulin-gpucheck-run-"))
    train = [str(data / f) for f in spec["files"]["train"]] * args.repeat_files
    job = {
        "backend": "nccl" if use_gpu else "gloo",
        "train_files": train,
        "validation_files": [str(data / f) for f in spec["files"]["validation"]],
        "inputs": spec["inputs"],
        "task": "binary",
        "network": spec["network"],
        "model_config": spec["model_config"],
        "train_config": {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "early_stopping": False,
            "eval_batch_size": 65536,
        },
        "sample": None,
        "settings": None,
        "checkpoint_dir": str(scratch / "checkpoints"),
        "loader": {"workers": args.workers, "shuffle_buffer": max(65536, 4 * args.batch_size)},
    }
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sampler = GpuSampler() if use_gpu else None
    result_file = scratch / "result.json"
    try:
        started = time.time()
        mp.spawn(_rank, args=(job, port, str(result_file)), nprocs=1, join=True)
        wall = time.time() - started
        result = json.loads(result_file.read_text())
        history = result["history"]
        last = history[-1]
        trained = sum(h["seconds"] for h in history)
        window = (result["ended"] - trained, result["ended"])
        steady = (result["ended"] - last["seconds"], result["ended"])
        bound = upper_bound(
            spec, train[: len(spec["files"]["train"])], args.batch_size, device, args.bound_steps
        )
    finally:
        if sampler is not None:
            sampler.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    utilisation = sampler.mean(*window) if sampler else None
    utilisation_last = sampler.mean(*steady) if sampler else None
    rows_per_s = last["train_rows"] / last["train_seconds"]
    figures = {
        "device": str(device) + (f" ({torch.cuda.get_device_name(0)})" if use_gpu else ""),
        "backend": result["backend"],
        "batch_size": args.batch_size,
        "loader_workers": args.workers,
        "epochs": len(history),
        "rows_per_epoch": last["train_rows"],
        "epoch_s": [h["seconds"] for h in history],
        "rows_per_s_last_epoch": round(rows_per_s),
        "train_s": [h["train_seconds"] for h in history],
        "data_wait_share_last_epoch": round(last["data_wait_seconds"] / last["train_seconds"], 4),
        "mean_gpu_utilisation_pct": None if utilisation is None else round(utilisation, 1),
        "mean_gpu_utilisation_last_epoch_pct": None
        if utilisation_last is None
        else round(utilisation_last, 1),
        "upper_bound_rows_per_s_on_device_tensors": round(bound),
        "loop_vs_upper_bound": round(rows_per_s / bound, 3),
        "wall_s": round(wall, 1),
    }
    print(f"device: {figures['device']}, backend {figures['backend']}, batch {args.batch_size}")
    for h in history:
        print(
            f"  epoch {h['epoch']}: {h['seconds']:.2f} s ({h['train_seconds']:.2f} s training, the rest validation): "
            f"{h['train_rows'] / h['train_seconds']:,.0f} rows/s, waiting for data {h['data_wait_seconds']:.2f} s "
            f"({100 * h['data_wait_seconds'] / h['train_seconds']:.1f} % of training)"
        )
    util = (
        "n/a (no GPU)"
        if utilisation is None
        else f"{utilisation:.1f} % (last epoch {utilisation_last:.1f} %)"
    )
    print(f"mean GPU utilisation while training: {util}")
    print(
        f"same model on tensors already on the device: {bound:,.0f} rows/s "
        f"(the loop reaches {figures['loop_vs_upper_bound']:.2f} of it)"
    )
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="write the snapshot files and job.json (training environment)")
    p.add_argument("--out", default=".gpucheck")
    p.add_argument("--rows", type=int, default=300_000)
    p.add_argument("--rows-per-group", type=int, default=16384)
    r = sub.add_parser("run", help="train on them and print the figures")
    r.add_argument("--data", default=".gpucheck")
    r.add_argument("--cpu", action="store_true", help="gloo on the CPU (no GPU needed)")
    r.add_argument("--epochs", type=int, default=3)
    r.add_argument("--batch-size", type=int, default=4096)
    r.add_argument("--workers", type=int, default=4, help="loader workers (threads)")
    r.add_argument(
        "--repeat-files", type=int, default=8, help="each train file read this many times an epoch"
    )
    r.add_argument("--bound-steps", type=int, default=300)
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(Path(args.out), args.rows, args.rows_per_group)
    else:
        run(args)


if __name__ == "__main__":
    main()
