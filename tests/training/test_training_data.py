"""Snapshot resolution, readers, preprocessing and the model, on real Delta files."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.training


def test_contract_roles(contract):
    assert contract.key and contract.label and contract.split
    assert contract.categorical and contract.numeric
    assert contract.label not in contract.feature_columns and contract.split not in contract.read_columns


def test_snapshot_pins_versions_and_reads_splits(synthetic_table, contract):
    from moulin.training.data import read_split_pandas, resolve_snapshot
    from moulin.training.synthetic import synthetic_features

    latest = resolve_snapshot(synthetic_table["uri"], contract.split)
    first = resolve_snapshot(synthetic_table["uri"], contract.split, version=0)
    assert latest.version == synthetic_table["version"] == 1 and first.version == 0
    assert sum(latest.rows.values()) == synthetic_table["rows"]
    assert set(first.files["train"]) < set(latest.files["train"])
    expected = synthetic_features(contract, 4000, seed=7)
    for split in ("train", "validation", "test"):
        frame = read_split_pandas(first.files[split], contract.read_columns)
        assert len(frame) == first.rows[split] == (expected[contract.split] == split).sum()
        # The partition value comes from the add actions: these are exactly that split's keys.
        assert set(frame[contract.key]) == set(expected.loc[expected[contract.split] == split, contract.key])


def test_missing_version_is_a_clear_error(synthetic_table, contract):
    from moulin.training import TrainingError
    from moulin.training.data import resolve_snapshot

    with pytest.raises(TrainingError, match="version 99"):
        resolve_snapshot(synthetic_table["uri"], contract.split, version=99)


def test_a_missing_split_is_a_data_error_not_retried(tmp_path, contract):
    """A table without validation rows (e.g. months 1, 2 and 11 only) fails the job as a
    data error (exit code 3: the task fails at once), not as a transient failure."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from moulin.errors import DataError
    from moulin.training.data import resolve_snapshot

    uri = str(tmp_path / "features")
    frame = pa.table({"x": [1, 2], contract.split: ["train", "test"]})
    write_deltalake(uri, frame, partition_by=[contract.split])
    with pytest.raises(DataError, match=r"no data for split\(s\) \['validation'\]"):
        resolve_snapshot(uri, contract.split)


def test_sample_mask_is_deterministic():
    from moulin.training.data import sample_mask

    keys = np.array([f"k{i}" for i in range(5000)])
    mask = sample_mask(keys, 0.2)
    assert 0.17 < mask.mean() < 0.23
    np.testing.assert_array_equal(mask, sample_mask(keys[::-1], 0.2)[::-1])
    assert sample_mask(keys, None).all()


def test_preprocessing_is_fitted_on_train_only(contract):
    from moulin.training.preprocessing import Preprocessor
    from moulin.training.synthetic import synthetic_features

    frame = synthetic_features(contract, 600, seed=1)
    train = frame[frame[contract.split] == "train"].reset_index(drop=True)
    test = frame[frame[contract.split] == "test"].reset_index(drop=True)
    cat_col, num_col = contract.categorical[0], next(c for c in contract.numeric if c in contract.nullable)
    test.loc[0, cat_col] = "NEVER-SEEN-IN-TRAIN"
    test[num_col] = test[num_col] + 1000.0  # a shifted test distribution must not move the statistics
    pre = Preprocessor.fit(train, contract)

    assert set(pre.vocab[cat_col]) == set(train[cat_col])
    values = train[num_col].to_numpy(dtype=float)
    assert pre.medians[num_col] == pytest.approx(np.nanmedian(values))
    imputed = np.where(np.isnan(values), np.nanmedian(values), values)
    assert pre.means[num_col] == pytest.approx(imputed.mean())
    assert pre.fitted_rows == len(train)

    cat, num = pre.transform(test)
    assert cat.shape == (len(test), len(contract.categorical)) and cat.dtype == np.int64
    assert cat[0, 0] == 0  # unknown bucket
    assert (cat[1:, 0] > 0).all()
    assert num.shape == (len(test), pre.n_numeric) and num.dtype == np.float32
    assert len(pre.numeric_names) == pre.n_numeric == len(contract.numeric) + len(pre.indicators)
    assert set(pre.indicators) == {c for c in contract.numeric if c in contract.nullable}

    # Train columns are standardised; missing values get the median and a 1 in the indicator.
    tr_cat, tr_num = pre.transform(train)
    j = pre.numeric.index(num_col)
    assert tr_num[:, j].mean() == pytest.approx(0, abs=1e-5) and tr_num[:, j].std() == pytest.approx(
        1, abs=1e-3
    )
    missing = np.isnan(values)
    assert missing.any()
    ind = len(pre.numeric) + pre.indicators.index(num_col)
    np.testing.assert_array_equal(tr_num[:, ind], missing.astype(np.float32))
    assert np.allclose(tr_num[missing, j], (pre.medians[num_col] - pre.means[num_col]) / pre.stds[num_col])

    again = Preprocessor.from_dict(pre.to_dict())
    np.testing.assert_array_equal(again.transform(test)[0], cat)
    np.testing.assert_array_equal(again.transform(test)[1], num)


def test_model_forward_shapes():
    import torch

    from moulin.training.model import MLPConfig, TabularMLP, embedding_dim, predict_proba

    model = TabularMLP([9, 4, 21], n_numeric=5, config=MLPConfig(hidden=(16, 8)))
    assert [e.embedding_dim for e in model.embeddings] == [embedding_dim(c, 16) for c in (9, 4, 21)]
    cat = torch.tensor([[0, 3, 20], [8, 0, 1], [1, 1, 1]])
    num = torch.randn(3, 5)
    assert model(cat, num).shape == (3,)
    p = predict_proba(model, cat.numpy(), num.numpy(), batch_size=2)
    assert p.shape == (3,) and bool(((p > 0) & (p < 1)).all())
    assert not model.training  # predict_proba leaves the model in eval mode
