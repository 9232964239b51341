"""Copies of an item across the splits of a classifier's table, counted for the results'
``duplicates`` entry (:class:`~moulin.training.classification_results.ClassificationResults`)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping


def copies_across_splits(items: Mapping[str, Iterable[Hashable]]) -> dict[str, int]:
    """How many of the test split's items (by what makes two of them copies: a hash of
    the pixels, an id, the text) also stand in train or validation, and how many of
    validation's in train; ``items`` maps each of train, validation and test to its items."""
    found = {split: set(items[split]) for split in ("train", "validation", "test")}
    return {
        "train_and_test": len((found["train"] | found["validation"]) & found["test"]),
        "train_and_validation": len(found["train"] & found["validation"]),
    }
