"""Petastorm's reader as the trainer's feed (LoaderOptions(reader="petastorm")): the
same rows and columns as moulin's loader from a pinned Delta snapshot whose folder
also holds removed files, equal batches on every rank, clear refusals, and a short
training run through it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def _versions(uri: str, write) -> list[int]:
    """Version 0 written by ``write(0, "error")``, version 1 by ``write(1, "overwrite")``
    (every file of version 0 removed from the table, left in its folder)."""
    return [write(0, "error"), write(1, "overwrite")]


@pytest.fixture(scope="module")
def overwritten_features(tmp_path_factory, contract) -> dict:
    """A feature table of two versions: 900 rows, then 700 others (overwrite)."""
    from moulin.training.synthetic import write_synthetic_table

    uri = (tmp_path_factory.mktemp("overwritten") / "features").resolve().as_uri()
    versions = _versions(
        uri,
        lambda i, mode: write_synthetic_table(
            uri, contract, (900, 700)[i], seed=20 + i, rows_per_group=128, mode=mode, key_prefix=f"v{i}-"
        ),
    )
    return {"uri": uri, "versions": versions}


@pytest.fixture(scope="module")
def overwritten_images(tmp_path_factory) -> dict:
    """A table of 28x28 images (unique pixels per row) of two versions: 500 rows, then 300 others."""
    import pyarrow as pa
    from deltalake import DeltaTable, WriterProperties, write_deltalake

    uri = str(tmp_path_factory.mktemp("images") / "images")

    def write(i: int, mode: str) -> int:
        n = (500, 300)[i]
        rng = np.random.default_rng(30 + i)
        pixels = rng.integers(0, 256, size=(n, 784), dtype=np.uint8)
        pixels[:, :4] = np.arange(i * 1000, i * 1000 + n, dtype=">u4").view(np.uint8).reshape(n, 4)
        table = pa.table(
            {
                "image_id": [f"v{i}-{k}" for k in range(n)],
                "label": pa.array(rng.integers(0, 10, n), type=pa.int32()),
                "pixels": pa.array([row.tobytes() for row in pixels], type=pa.binary()),
            }
        )
        write_deltalake(uri, table, mode=mode, writer_properties=WriterProperties(max_row_group_size=64))
        table = DeltaTable(uri)
        version = table.version()
        del table
        return int(version)

    return {"uri": uri, "versions": _versions(uri, write)}


def _files(uri: str, version: int, split_column: str | None = None) -> list[str]:
    from deltalake import DeltaTable

    if split_column is not None:
        from moulin.training.data import resolve_snapshot

        return list(resolve_snapshot(uri, split_column, version).files["train"])
    table = DeltaTable(uri, version=version)
    files = list(table.file_uris())
    del table
    return files


def _rows(loader, epoch: int = 1) -> tuple[np.ndarray, list]:
    """Every row an epoch's batches hold, as one float row per table row (sorted), and
    each column's dtype and row shape."""
    import torch

    batches = list(loader.epoch(epoch))
    columns = [torch.cat([b[i] for b in batches]).numpy() for i in range(len(batches[0]))]
    flat = np.concatenate([c.reshape(len(c), -1).astype(np.float64) for c in columns], axis=1)
    return flat[np.lexsort(flat.T[::-1])], [(str(c.dtype), c.shape[1:]) for c in columns]


def _folder_files(files: list[str]) -> list[Path]:
    from moulin.training.parquet_files import local_path

    return sorted(Path(local_path(files[0])).parent.glob("*.parquet"))


def test_same_rows_and_columns_as_moulins_loader_from_a_pinned_snapshot(
    overwritten_features, overwritten_images, contract
) -> None:
    from moulin.training.batches import ImageCodec, TabularCodec
    from moulin.training.data import read_split_pandas
    from moulin.training.loader import LoaderOptions, SnapshotLoader, open_loader
    from moulin.training.petastorm_loader import PetastormLoader
    from moulin.training.preprocessing import Preprocessor

    tables = [
        (overwritten_features, contract.split, lambda files: TabularCodec(
            Preprocessor.fit(read_split_pandas(files, contract.read_columns), contract), contract.key, contract.label
        )),
        (overwritten_images, None, lambda files: ImageCodec(key="image_id", label="label")),
    ]  # fmt: skip
    for table, split, make_codec in tables:
        for version in table["versions"]:
            files = _files(table["uri"], version, split)
            if version == table["versions"][-1]:  # the folder still holds version 0's files
                assert len(_folder_files(files)) > len(files)
            codec = make_codec(files)
            moulin_options = LoaderOptions(batch_size=50, shuffle=False)
            petastorm_options = LoaderOptions(batch_size=50, reader="petastorm", seed=3)
            with (
                SnapshotLoader(files, codec, moulin_options) as ours,
                open_loader(files, codec, petastorm_options) as theirs,
            ):
                assert isinstance(theirs, PetastormLoader)
                assert theirs.rows == ours.rows and theirs.plan(1).tail_rows == 0
                expected, columns = _rows(ours)
                for epoch in (1, 2):
                    rows, petastorm_columns = _rows(theirs, epoch)
                    assert petastorm_columns == columns
                    np.testing.assert_array_equal(rows, expected)


def test_every_rank_gets_the_same_batches_from_its_petastorm_shard(overwritten_images) -> None:
    """Petastorm's shards are whole row groups, round-robin: each rank reads as many rows
    as the smallest shard, other rows on each rank, none twice."""
    from moulin.training.batches import ImageCodec
    from moulin.training.loader import LoaderOptions, open_loader

    files = _files(overwritten_images["uri"], overwritten_images["versions"][0])
    codec = ImageCodec(key="image_id", label="label")
    for world in (2, 3):
        seen: list[np.ndarray] = []
        batches = set()
        for rank in range(world):
            options = LoaderOptions(batch_size=32, reader="petastorm", seed=5)
            with open_loader(files, codec, options, rank=rank, world=world) as loader:
                plan = loader.plan(1)
                assert plan.rows == loader.rank_rows <= loader.shard_rows
                assert plan.tail_rows == loader.rows - world * plan.rows
                batches.add(len(loader.epoch(1)))
                rows, _ = _rows(loader)
                assert len(rows) == plan.rows
                seen.append(rows)
        assert len(batches) == 1
        everything = np.concatenate(seen)
        assert len(np.unique(everything, axis=0)) == len(everything)  # no row on two ranks


def test_what_petastorm_cannot_do_is_refused_naming_the_way_out(overwritten_images) -> None:
    import pyarrow.parquet as pq

    from moulin.training import TrainingError
    from moulin.training.batches import ImageCodec
    from moulin.training.loader import LoaderOptions, open_loader
    from moulin.training.parquet_files import local_path

    files = _files(overwritten_images["uri"], overwritten_images["versions"][1])
    codec = ImageCodec(key="image_id", label="label")
    with pytest.raises(TrainingError, match=r"tail='pad' needs reader='moulin'"):
        open_loader(files, codec, LoaderOptions(reader="petastorm", tail="pad"))
    groups = sum(pq.ParquetFile(local_path(f)).metadata.num_row_groups for f in files)
    with pytest.raises(
        TrainingError,
        match=rf"hold {groups} row group\(s\), fewer than the {groups + 1} ranks; use reader='moulin'",
    ):
        open_loader(files, codec, LoaderOptions(reader="petastorm"), rank=0, world=groups + 1)
    # Petastorm opens hdfs:// through libhdfs (a JVM, the Hadoop client): this environment has neither.
    with pytest.raises(
        TrainingError, match=r"through libhdfs .* use the default reader \(LoaderOptions\(reader='moulin'\)"
    ):
        open_loader(["hdfs://127.0.0.1:1/moulin/x/part-0.parquet"], codec, LoaderOptions(reader="petastorm"))
    with pytest.raises(ValueError, match="reader must be 'moulin' or 'petastorm', not 'arrow'"):
        LoaderOptions(reader="arrow")  # type: ignore[arg-type]


def test_a_short_training_run_through_petastorm(overwritten_features, contract, tmp_path, rank_env) -> None:
    """The same trainer, fed by Petastorm from the pinned snapshot: every train row each
    epoch, and a model that learned (validation loss below the constant predictor's)."""
    from moulin.training.batches import TabularCodec
    from moulin.training.config import TrainConfig
    from moulin.training.data import read_split_pandas, resolve_snapshot
    from moulin.training.ddp import train_worker
    from moulin.training.model import MLPConfig
    from moulin.training.preprocessing import Preprocessor

    snap = resolve_snapshot(overwritten_features["uri"], contract.split, overwritten_features["versions"][0])
    train = read_split_pandas(snap.files["train"], contract.read_columns)
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
            epochs=3, batch_size=64, learning_rate=5e-3, early_stopping=False
        ).to_dict(),
        "sample": None,
        "settings": None,
        "checkpoint_dir": str(tmp_path / "checkpoints"),
        "loader": {"reader": "petastorm", "workers": 2},
    }
    out = train_worker(job)
    assert out["loader"]["reader"] == "petastorm" and out["sharding"] == "petastorm_row_groups"
    assert [h["train_rows"] for h in out["history"]] == [snap.rows["train"]] * 3
    validation = read_split_pandas(snap.files["validation"], [contract.label])[contract.label].to_numpy()
    rate = validation.mean()
    constant = -(rate * np.log(rate) + (1 - rate) * np.log(1 - rate))
    assert out["best_val_loss"] < constant
