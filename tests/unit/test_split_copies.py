"""Copies of an item across a classifier table's splits (moulin.training.split_copies)."""

from __future__ import annotations

import pandas as pd

from moulin.training.split_copies import copies_across_splits


def test_test_items_seen_in_train_or_validation_and_validation_items_seen_in_train() -> None:
    items = {
        "train": pd.Series(["a", "b", "c", "c"]),  # a copy inside a split counts once
        "validation": ["c", "d", "e"],
        "test": ("a", "d", "f", "f"),
    }
    assert copies_across_splits(items) == {"train_and_test": 2, "train_and_validation": 1}


def test_no_copies() -> None:
    assert copies_across_splits({"train": [1], "validation": [2], "test": [3]}) == {
        "train_and_test": 0,
        "train_and_validation": 0,
    }
