"""The tabular networks: ``mlp`` (one logit, binary) and ``mlp_classes`` (one logit per class)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from moulin.training.model import MLPConfig, TabularMLP
from moulin.training.networks import network


@network("mlp")
def _mlp(cardinalities: Sequence[int], n_numeric: int, config: dict) -> nn.Module:
    return TabularMLP(cardinalities, n_numeric, MLPConfig.from_dict(config))


@network("mlp_classes")
def _mlp_classes(cardinalities: Sequence[int], n_numeric: int, config: dict) -> nn.Module:
    """The tabular MLP with one logit per class (``config["num_classes"]``) for the multi-class
    suite; the inputs' shape comes from the config (``cardinalities``, ``n_numeric``) when the
    caller does not know it (the suite's prediction step)."""
    return TabularMLP(
        list(cardinalities) or list(config["cardinalities"]),
        int(n_numeric or config.get("n_numeric", 0)),
        MLPConfig.from_dict(config),
        outputs=int(config["num_classes"]),
    )
