"""The options of a flights training run are checked when they are made."""

from __future__ import annotations

import pytest

from moulin.identifiers import UnsafeNameError
from moulin.training import TrainingError
from moulin.training.run_options import TrainingOptions


def test_defaults_and_normalised_sequences() -> None:
    options = TrainingOptions(
        contract="flight_features", hidden=[8, "4"], slice_columns=["carrier"], models=["mlp"]
    )
    assert options.hidden == (8, 4) and options.slice_columns == ("carrier",) and options.models == ("mlp",)
    assert options.reader == "moulin" and options.sample is None and options.model_name == "model"
    config = options.train_config(pos_weight=3.0)
    assert (config.epochs, config.pos_weight, config.batch_size) == (options.epochs, 3.0, options.batch_size)


@pytest.mark.parametrize(
    ("changes", "error", "names"),
    [
        ({"reader": "arrow"}, TrainingError, "reader"),
        ({"epochs": 0}, TrainingError, "epochs"),
        ({"sample": 1.5}, TrainingError, "sample"),
        ({"run_id": "../outside"}, UnsafeNameError, "run id"),
        ({"model_name": "a/b"}, UnsafeNameError, "model name"),
    ],
)
def test_wrong_options_are_refused_naming_the_option(changes: dict, error: type, names: str) -> None:
    with pytest.raises(error, match=names):
        TrainingOptions(contract="flight_features", **changes)


def test_options_are_frozen() -> None:
    options = TrainingOptions(contract="flight_features")
    with pytest.raises(AttributeError):
        options.epochs = 3  # type: ignore[misc]
