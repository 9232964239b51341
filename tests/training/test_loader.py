"""The training input pipeline (moulin.training.loader) on real Delta tables and
Parquet files: sharding, determinism, the loop's results against the previous
trainer's, no temporary files left, checkpoint write errors."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

REFERENCE = Path(__file__).parents[1] / "data" / "training_loop_reference.json"


@pytest.fixture(scope="module")
def uneven_table(tmp_path_factory, contract) -> dict:
    """A feature table whose train split has files of uneven row groups (300-row groups,
    one 37-row file, 128-row groups), with one more tiny file of a single row group."""
    import pyarrow as pa
    from deltalake import WriterProperties, write_deltalake

    from moulin.training.data import resolve_snapshot
    from moulin.training.synthetic import synthetic_features

    uri = (tmp_path_factory.mktemp("uneven") / "features").resolve().as_uri()
    for n, group, seed in ((1000, 300, 1), (37, 1000, 2), (500, 128, 3), (5, 1000, 4)):
        frame = synthetic_features(contract, n, seed=seed, key_prefix=f"u{seed}-")
        write_deltalake(
            uri,
            pa.Table.from_pandas(frame, preserve_index=False),
            mode="append",
            partition_by=[contract.split],
            writer_properties=WriterProperties(max_row_group_size=group),
        )
    snap = resolve_snapshot(uri, contract.split)
    return {"uri": uri, "files": list(snap.files["train"]), "rows": snap.rows["train"], "snapshot": snap}


@pytest.fixture(scope="module")
def codec(synthetic_table, contract):
    from moulin.training.batches import TabularCodec
    from moulin.training.data import read_split_pandas, resolve_snapshot
    from moulin.training.preprocessing import Preprocessor

    snap = resolve_snapshot(synthetic_table["uri"], contract.split)
    train = read_split_pandas(snap.files["train"], contract.read_columns)
    return TabularCodec(Preprocessor.fit(train, contract), contract.key, contract.label)


def _keys(loader, plan) -> list[str]:
    """The keys of the rows a plan reads, read from the files slice by slice."""
    out: list[str] = []
    for part in plan.slices:
        table = loader.reader.opener.open(part.file).read_row_group(part.index, columns=[loader.codec.key])
        out += loader.reader._kept(table).slice(part.start, part.rows).column(0).to_pylist()
    return out


@pytest.mark.parametrize("tail", ["drop", "pad"])
def test_every_row_once_and_the_same_batches_on_every_rank(uneven_table, codec, tail) -> None:
    from moulin.training.loader import LoaderOptions, SnapshotLoader

    total = uneven_table["rows"]
    files = uneven_table["files"]
    assert len(files) == 4
    for world in (1, 2, 3, 4):
        options = LoaderOptions(batch_size=64, workers=2, tail=tail, seed=11, shuffle_buffer=256)
        loaders = [SnapshotLoader(files, codec, options, rank=r, world=world) for r in range(world)]
        try:
            assert loaders[0].rows == total
            sizes = {len(loader.groups) for loader in loaders}
            assert sizes == {sum(1 for _ in loaders[0].groups)}
            for epoch in (1, 2):
                plans = [loader.plan(epoch) for loader in loaders]
                seen = Counter(
                    k for loader, plan in zip(loaders, plans, strict=True) for k in _keys(loader, plan)
                )
                rows = {plan.rows for plan in plans}
                assert len(rows) == 1, (world, rows)  # the same rows, hence batches, on every rank
                if tail == "drop":
                    assert max(seen.values()) == 1
                    assert len(seen) == total - total % world == sum(p.rows for p in plans)
                    assert plans[0].dropped_rows == total % world
                else:
                    assert len(seen) == total and max(seen.values()) <= 2
                    assert sum(seen.values()) == -(-total // world) * world
                # the real batches: as many on every rank as the plan says, every planned row
                made = []
                for loader in loaders:
                    batches = list(loader.epoch(epoch))
                    made.append(len(batches))
                    assert sum(len(b[-1]) for b in batches) == plans[0].rows
                    assert all(len(b[-1]) == 64 for b in batches[:-1])
                assert set(made) == {plans[0].batches}
        finally:
            for loader in loaders:
                loader.close()


def test_a_split_with_fewer_row_groups_than_ranks_is_shared_not_filtered(uneven_table, codec) -> None:
    """The 5-row file alone (one row group) among 4 ranks: each reads one row, one is dropped."""
    import pyarrow.parquet as pq

    from moulin.training.loader import LoaderOptions, SnapshotLoader
    from moulin.training.parquet_files import local_path

    tiny = [f for f in uneven_table["files"] if pq.ParquetFile(local_path(f)).metadata.num_rows < 10]
    assert len(tiny) == 1
    options = LoaderOptions(batch_size=8, workers=1)
    seen = []
    for rank in range(4):
        with SnapshotLoader(tiny, codec, options, rank=rank, world=4) as loader:
            plan = loader.plan(1)
            assert [s.rows for s in plan.slices] == [1]
            seen += _keys(loader, plan)
            assert [len(b[-1]) for b in loader.epoch(1)] == [1]
    assert len(set(seen)) == 4


def test_same_seed_same_batches_and_epochs_differ(synthetic_table, codec, contract) -> None:
    import torch

    from moulin.training.data import resolve_snapshot
    from moulin.training.loader import LoaderOptions, SnapshotLoader

    files = list(resolve_snapshot(synthetic_table["uri"], contract.split).files["train"])

    def run(pool: str, workers: int, seed: int, epoch: int, world: int = 2) -> list[tuple]:
        options = LoaderOptions(batch_size=100, workers=workers, pool=pool, seed=seed, shuffle_buffer=500)
        with SnapshotLoader(files, codec, options, rank=world - 1, world=world) as loader:
            return list(loader.epoch(epoch))

    def same(a: list[tuple], b: list[tuple]) -> bool:
        return len(a) == len(b) and all(
            all(torch.equal(x, y) for x, y in zip(p, q, strict=True)) for p, q in zip(a, b, strict=True)
        )

    first = run("thread", 2, seed=5, epoch=1)
    assert same(first, run("thread", 2, seed=5, epoch=1))
    assert same(first, run("thread", 1, seed=5, epoch=1))  # the pool's size changes nothing
    assert same(first, run("process", 2, seed=5, epoch=1))  # nor does its kind
    assert not same(first, run("thread", 2, seed=5, epoch=2))
    assert not same(first, run("thread", 2, seed=6, epoch=1))
    # one rank's epochs hold the same rows in another order
    labels = [torch.cat([b[-1] for b in run("thread", 2, 5, e, world=1)]) for e in (1, 2)]
    assert not torch.equal(*labels) and torch.equal(labels[0].sort().values, labels[1].sort().values)


def test_a_window_is_laid_out_as_its_batches_of_sorted_rows() -> None:
    """One scatter per chunk puts every row of a shuffle window where the batch made of
    ``order[b * size:(b + 1) * size]`` (rows in increasing position) would hold it."""
    from moulin.training.batching import batch_positions

    rng = np.random.default_rng(4)
    for n, size in ((1, 1), (10, 3), (1000, 64), (4096, 4096), (70_000, 2)):
        order = rng.permutation(n)
        laid_out = np.empty(n, dtype=np.int64)
        laid_out[batch_positions(order, size)] = np.arange(n)
        expected = np.concatenate([np.sort(order[b : b + size]) for b in range(0, n, size)])
        np.testing.assert_array_equal(laid_out, expected)


def test_images_are_viewed_from_their_bytes_as_decode_does(tmp_path) -> None:
    import pyarrow as pa
    import torch

    from moulin.training.batches import ImageCodec, codec_arrays, finish_batch

    rng = np.random.default_rng(0)
    pixels = [rng.integers(0, 256, 784, dtype=np.uint8).tobytes() for _ in range(9)]
    table = pa.table({"image_id": [str(i) for i in range(9)], "label": list(range(9)), "pixels": pixels})
    codec = ImageCodec(key="image_id", label="label")
    raw = codec_arrays(codec, table.slice(2, 5))
    assert raw[0].dtype == np.uint8  # scaled to floats by finish(), on the device
    fast = [t.numpy() for t in finish_batch(codec, tuple(torch.from_numpy(a) for a in raw))]
    slow = (*codec.inputs(table.slice(2, 5).to_pandas()), codec.targets(table.slice(2, 5).to_pandas()))
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(a, b)
    # A column of several chunks is viewed chunk by chunk, with the same values.
    chunked = pa.Table.from_batches(table.slice(2, 5).to_batches(max_chunksize=2))
    assert chunked.column("pixels").num_chunks == 3
    for a, b in zip(codec_arrays(codec, chunked), raw, strict=True):
        np.testing.assert_array_equal(a, b)
    bad = table.set_column(2, "pixels", pa.array([b"\x00" * 10] * 9, type=pa.binary()))
    with pytest.raises(ValueError, match="row 0 holds 10 bytes"):
        codec_arrays(codec, bad)


def test_arrow_preprocessing_matches_pandas(codec, synthetic_table, contract) -> None:
    import pyarrow as pa

    from moulin.training.synthetic import synthetic_features

    frame = synthetic_features(contract, 500, seed=99)
    frame.loc[::7, contract.categorical[0]] = None
    frame.loc[::5, contract.categorical[1]] = "never-seen"
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pre = codec.preprocessor
    for a, b in zip(pre.transform_arrow(table), pre.transform(frame), strict=True):
        np.testing.assert_array_equal(a, b)


# -- the training loop


@pytest.fixture(scope="module")
def small_job(tmp_path_factory, contract) -> dict:
    """The fixed small job the reference metrics were recorded on (see REFERENCE)."""
    from moulin.training.batches import TabularCodec
    from moulin.training.config import TrainConfig
    from moulin.training.data import read_split_pandas, resolve_snapshot
    from moulin.training.model import MLPConfig
    from moulin.training.preprocessing import Preprocessor
    from moulin.training.synthetic import write_synthetic_table

    uri = str(tmp_path_factory.mktemp("reference") / "features")
    write_synthetic_table(uri, contract, 4000, seed=7)
    snap = resolve_snapshot(uri, contract.split)
    train = read_split_pandas(snap.files["train"], contract.read_columns)
    validation = read_split_pandas(snap.files["validation"], contract.read_columns)
    pre = Preprocessor.fit(train, contract)
    job = {
        "backend": "gloo",
        "train_files": list(snap.files["train"]),
        "validation_files": list(snap.files["validation"]),
        "inputs": TabularCodec(pre, contract.key, contract.label).to_dict(),
        "task": "binary",
        "network": "mlp",
        "model_config": MLPConfig().to_dict(),
        "train_config": TrainConfig(
            epochs=8, batch_size=256, learning_rate=5e-3, early_stopping=False, seed=0
        ).to_dict(),
        "sample": None,
        "settings": None,
    }
    return {"job": job, "pre": pre, "validation": validation}


def test_the_loop_learns_what_the_previous_trainer_learned(small_job, rank_env, contract, tmp_path) -> None:
    import io

    import torch

    from moulin.training.config import TrainConfig
    from moulin.training.ddp import train_worker
    from moulin.training.metrics import roc_auc
    from moulin.training.model import predict_proba
    from moulin.training.networks import build_network

    reference = json.loads(REFERENCE.read_text())
    job, pre, validation = small_job["job"], small_job["pre"], small_job["validation"]
    best, aucs = [], []
    for seed in map(int, reference["runs"]):
        config = {**job["train_config"], "seed": seed}
        out = train_worker({**job, "train_config": config, "checkpoint_dir": str(tmp_path / f"ckpt-{seed}")})
        assert [h["epoch"] for h in out["history"]] == list(range(1, TrainConfig(**config).epochs + 1))
        assert out["rows_per_rank"] == [out["history"][0]["train_rows"]] and out["tail_rows"] == 0
        model = build_network("mlp", pre.cardinalities, pre.n_numeric, job["model_config"])
        model.load_state_dict(torch.load(io.BytesIO(out["state_dict"]), weights_only=True))
        p = predict_proba(model, *pre.transform(validation)).numpy()
        best.append(min(h["val_loss"] for h in out["history"]))
        aucs.append(roc_auc(validation[contract.label], p))
    # Seeds move the previous trainer's figures by about +-0.02: the means must agree within that.
    assert np.mean(best) == pytest.approx(reference["mean_best_val_loss"], abs=0.02)
    assert np.mean(aucs) == pytest.approx(reference["mean_val_roc_auc"], abs=0.02)


def _leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_no_temporary_files_or_threads_are_left_after_a_run_or_a_failed_one(
    small_job, rank_env, tmp_path, monkeypatch
) -> None:
    import tempfile

    from moulin.training import TrainingError
    from moulin.training.ddp import train_worker

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)
    threads = threading.active_count()
    job = {**small_job["job"], "train_config": {**small_job["job"]["train_config"], "epochs": 1}}
    ckpt = tmp_path / "ckpt"
    train_worker({**job, "checkpoint_dir": str(ckpt)})
    assert _leftovers(scratch) == []
    assert _leftovers(ckpt) == ["epoch-001.pt"]  # no temporary checkpoint file either
    assert threading.active_count() == threads

    # A train file that is not Parquet: the run fails naming it, and leaves nothing behind.
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet")
    failing = {
        **job,
        "train_files": [*job["train_files"], str(broken)],
        "checkpoint_dir": str(tmp_path / "c2"),
    }
    with pytest.raises(TrainingError, match="broken.parquet"):
        train_worker(failing)
    assert _leftovers(scratch) == []
    assert threading.active_count() == threads


def test_a_checkpoint_write_error_fails_the_run_clearly(small_job, rank_env, tmp_path) -> None:
    from moulin.training.checkpoints import CheckpointWriteError, CheckpointWriter
    from moulin.training.ddp import train_worker

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the checkpoint folder should be")
    job = {**small_job["job"], "train_config": {**small_job["job"]["train_config"], "epochs": 3}}
    with pytest.raises(
        CheckpointWriteError, match=r"writing the checkpoint .*not-a-folder/ckpt/epoch-001\.pt failed"
    ):
        train_worker({**job, "checkpoint_dir": str(blocker / "ckpt")})

    from moulin.settings import load_settings
    from moulin.storage import WarehouseFS

    writer = CheckpointWriter(WarehouseFS(load_settings("local")))
    writer.submit(str(tmp_path / "ok" / "epoch-001.pt"), b"1")
    writer.submit(str(blocker / "x" / "epoch-002.pt"), b"2")
    with pytest.raises(CheckpointWriteError, match="epoch-002.pt"):
        writer.close()
    assert writer.written == [str(tmp_path / "ok" / "epoch-001.pt")]
