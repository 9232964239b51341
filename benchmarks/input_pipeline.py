"""How close the training input pipeline (moulin.training.loader) comes to a plain
Parquet read of the same files, and how much of a training epoch waits for data.
Run in the training environment::

    .venv-train/bin/python benchmarks/input_pipeline.py                 # synthetic snapshots
    .venv-train/bin/python benchmarks/input_pipeline.py --rows 1000000 --images 60000 --batch-size 4096
    .venv-train/bin/python benchmarks/input_pipeline.py --table /path/to/gold/flight_features

Prints, on the same snapshot files (the train split):

* the limit: a plain ``pyarrow.parquet.read_table`` of the codec's columns into
  numpy arrays, rows/s and MB/s (files warm in the page cache);
* moulin's loader to ready CPU tensors (read, encode, shuffle, batch), with 1 and
  2 workers, and its ratio to the limit (goal >= 0.9, tabular and images);
* beside it, the same trainer's feed through Petastorm
  (``LoaderOptions(reader="petastorm")``, 2 workers: Petastorm's
  ``make_batch_reader`` over the same files, then the same encoding and batching),
  and its ratio to the limit; the limit and the loaders are timed in turn,
  ``--repeat`` rounds, best of each (on a shared machine the load shifts between
  runs);
* petastorm's plain ``make_batch_reader`` (thread pool, 2 workers) reading the
  same columns, without any encoding or batching, for comparison;
* for images (a synthetic 28x28 table, raw pixels as the fashion use case stores
  them): the same figures, and images/s per core including the decode;
* one training epoch of the flights MLP (one rank, gloo) fed by each reader,
  split into time waiting for data and the rest (compute and validation).

The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
import time
from pathlib import Path


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def plain_read(files: list[str], columns: list[str]) -> int:
    """Read ``columns`` of ``files`` into numpy arrays; bytes of the Arrow data read."""
    import pyarrow.parquet as pq

    from moulin.training.parquet_files import local_path

    size = 0
    for uri in files:
        table = pq.read_table(local_path(uri), columns=columns)
        size += table.nbytes
        for column in table.columns:
            column.to_numpy()
    return size


def petastorm_pass(files: list[str], columns: list[str], workers: int = 2) -> int:
    import warnings

    from moulin.training.parquet_files import local_path

    # petastorm 0.12 uses pyarrow's legacy ParquetDataset API (uber/petastorm#806)
    warnings.filterwarnings("ignore", category=FutureWarning, module="petastorm")
    warnings.filterwarnings("ignore", category=UserWarning, module="petastorm")
    from petastorm import make_batch_reader

    urls = ["file://" + str(Path(local_path(f)).resolve()) for f in files]
    rows = 0
    with make_batch_reader(
        urls, schema_fields=columns, reader_pool_type="thread", workers_count=workers, num_epochs=1
    ) as reader:
        for batch in reader:
            rows += len(getattr(batch, columns[0]))
    return rows


def measure(
    name: str, files: list[str], codec, batch_size: int, repeat: int, workers: tuple[int, ...]
) -> dict:
    """The limit and the loaders' epochs (moulin's with each of ``workers``, Petastorm's
    with 2), interleaved (a shared machine's load shifts between runs: each round
    times all of them), best of ``repeat`` rounds each."""
    from moulin.training.loader import LoaderOptions, open_loader

    rows = sum(_rows(files))
    shuffle_buffer = max(16384, 4 * batch_size)
    readers = {f"moulin_{w}w": ("moulin", w) for w in workers} | {"petastorm_2w": ("petastorm", 2)}
    loaders = {
        key: open_loader(
            files,
            codec,
            LoaderOptions(batch_size=batch_size, workers=w, shuffle_buffer=shuffle_buffer, reader=reader),
        )
        for key, (reader, w) in readers.items()
    }
    # The limit reads what the loader reads (the key column only when sampling).
    columns = list(loaders[f"moulin_{workers[0]}w"].reader.columns)
    size = plain_read(files, columns)  # also warms the page cache
    times: dict = {"limit": [], **{key: [] for key in loaders}}
    try:
        for loader in loaders.values():  # warm-up epoch (first calls, thread start)
            sum(1 for _ in loader.epoch(0))
        for round_ in range(1, repeat + 1):
            times["limit"].append(_best(lambda: plain_read(files, columns), 1))
            for key, loader in loaders.items():
                started = time.perf_counter()
                made = sum(len(batch[-1]) for batch in loader.epoch(round_))
                times[key].append(time.perf_counter() - started)
                assert made == rows, (key, made, rows)
    finally:
        for loader in loaders.values():
            loader.close()
    limit_s = min(times["limit"])
    out = {"rows": rows, "limit_rows_per_s": rows / limit_s, "limit_mb_per_s": size / limit_s / 1e6}
    print(
        f"{name}: {rows:,} rows, {len(columns)} columns, {size / 1e6:.1f} MB of Arrow data in {len(files)} file(s)\n"
        f"  limit (pyarrow.parquet -> numpy): {rows / limit_s:,.0f} rows/s, {size / limit_s / 1e6:,.0f} MB/s"
    )
    for key, (reader, w) in readers.items():
        rate = rows / min(times[key])
        prefix = f"loader_{w}w" if reader == "moulin" else f"petastorm_loader_{w}w"
        out[f"{prefix}_rows_per_s"] = rate
        out[f"{prefix}_ratio"] = rate / out["limit_rows_per_s"]
        what = "moulin loader" if reader == "moulin" else "reader='petastorm' (same encoding, batching)"
        print(
            f"  {what + ',':45s} {w} worker(s), batch {batch_size}: {rate:>12,.0f} rows/s to ready CPU "
            f"tensors = {rate / out['limit_rows_per_s']:.2f} x the limit"
        )
    t = _best(lambda: petastorm_pass(files, columns), 1)
    out["petastorm_2w_rows_per_s"] = rows / t
    print(
        f"  {'petastorm make_batch_reader alone,':45s} 2 worker(s), no encoding:  {rows / t:>12,.0f} rows/s "
        f"(numpy columns per row group)"
    )
    return out


def _rows(files: list[str]) -> list[int]:
    import pyarrow.parquet as pq

    from moulin.training.parquet_files import local_path

    return [pq.ParquetFile(local_path(f)).metadata.num_rows for f in files]


def image_table(folder: Path, n: int, rows_per_group: int) -> list[str]:
    """A synthetic Delta table of 28x28 raw-pixel images (like silver/fashion_images); its files."""
    import numpy as np
    import pyarrow as pa
    from deltalake import DeltaTable, WriterProperties, write_deltalake

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(n, 784), dtype=np.uint8)
    table = pa.table(
        {
            "image_id": [f"i{i:08d}" for i in range(n)],
            "label": pa.array(rng.integers(0, 10, n), type=pa.int32()),
            "pixels": pa.array([row.tobytes() for row in pixels], type=pa.binary()),
        }
    )
    uri = str(folder / "images")
    write_deltalake(uri, table, writer_properties=WriterProperties(max_row_group_size=rows_per_group))
    dt = DeltaTable(uri)
    files = list(dt.file_uris())
    del dt
    return files


def epoch_split(
    files: dict, codec, batch_size: int, epochs: int, folder: Path, reader: str = "moulin"
) -> dict:
    """Train the flights MLP for ``epochs`` (one rank, gloo) fed by ``reader``; the last epoch's time split."""
    from moulin.training.config import TrainConfig
    from moulin.training.ddp import train_worker
    from moulin.training.model import MLPConfig

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1", LOCAL_RANK="0"
    )
    job = {
        "backend": "gloo",
        "train_files": files["train"],
        "validation_files": files["validation"],
        "inputs": codec.to_dict(),
        "task": "binary",
        "network": "mlp",
        "model_config": MLPConfig().to_dict(),
        "train_config": TrainConfig(
            epochs=epochs, batch_size=batch_size, early_stopping=False, eval_batch_size=16384
        ).to_dict(),
        "sample": None,
        "settings": None,
        "checkpoint_dir": str(folder / f"checkpoints-{reader}"),
        "loader": {"reader": reader},
    }
    out = train_worker(job)
    last = out["history"][-1]
    rows = last["train_rows"]
    train_s = last["train_seconds"]
    split = {
        "epoch_s": last["seconds"],
        "train_s": train_s,
        "data_wait_s": last["data_wait_seconds"],
        "compute_s": round(train_s - last["data_wait_seconds"], 3),
        "validation_s": round(last["seconds"] - train_s, 3),
        "rows_per_s": rows / train_s,
        "wait_share": last["data_wait_seconds"] / train_s,
    }
    print(
        f"training epoch {last['epoch']}, reader {reader} (flights MLP, 1 rank, gloo, "
        f"{os.environ.get('OMP_NUM_THREADS', 'all')} "
        f"thread(s), batch {batch_size}): {train_s:.2f} s for {rows:,} rows ({split['rows_per_s']:,.0f} rows/s): "
        f"waiting for data {last['data_wait_seconds']:.2f} s ({100 * split['wait_share']:.1f} %), compute "
        f"{split['compute_s']:.2f} s; then validation {split['validation_s']:.2f} s"
    )
    return split


def _rounded(value):
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return round(value, 3) if isinstance(value, float) else value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=400_000, help="rows of the synthetic feature table")
    parser.add_argument("--rows-per-group", type=int, default=16384)
    parser.add_argument("--images", type=int, default=60_000, help="synthetic images (0: none)")
    parser.add_argument("--table", default=None, help="an existing flight_features Delta table instead")
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2, help="training epochs (the last one is reported)")
    args = parser.parse_args()

    from moulin.training.batches import ImageCodec, TabularCodec
    from moulin.training.contract import FeatureContract
    from moulin.training.data import read_split_pandas, resolve_snapshot
    from moulin.training.preprocessing import Preprocessor
    from moulin.training.synthetic import write_synthetic_table

    folder = Path(tempfile.mkdtemp(prefix="moulin-input-bench-"))
    try:
        contract = FeatureContract.load("flight_features")
        uri = args.table
        if uri is None:
            uri = str(folder / "flight_features")
            write_synthetic_table(uri, contract, args.rows, seed=1, rows_per_group=args.rows_per_group)
        snap = resolve_snapshot(uri, contract.split)
        files = {s: list(f) for s, f in snap.files.items()}
        pre = Preprocessor.fit(read_split_pandas(files["train"], contract.read_columns), contract)
        codec = TabularCodec(pre, contract.key, contract.label)
        print(f"cores: {os.cpu_count()}; snapshot {uri} version {snap.version}")
        figures = {"cores": os.cpu_count(), "batch_size": args.batch_size}
        figures["tabular"] = measure("tabular (flights features, train split)", files["train"], codec,
                                     args.batch_size, args.repeat, (1, 2))  # fmt: skip
        if args.images:
            image_files = image_table(folder, args.images, 8192)
            image_codec = ImageCodec(key="image_id", label="label")
            images = measure("images (28x28 raw pixels)", image_files, image_codec, 1024, args.repeat, (1, 2))
            for w in (1, 2):
                per_core = images[f"loader_{w}w_rows_per_s"] / min(w, os.cpu_count() or 1)
                images[f"images_per_s_per_core_{w}w"] = per_core
            print(
                f"  images/s per core including decode: {images['images_per_s_per_core_1w']:,.0f} (1 worker), "
                f"{images['images_per_s_per_core_2w']:,.0f} (2 workers)"
            )
            figures["images"] = images
        figures["training_epoch"] = {
            reader: epoch_split(files, codec, args.batch_size, args.epochs, folder, reader)
            for reader in ("moulin", "petastorm")
        }
        print(json.dumps(_rounded(figures)))
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
