"""The tabular inputs of the multi-class suite (what ``moulin usecase new`` trains): the
codec gives class indices, survives the job's dict, and ``mlp_classes`` gives one logit
per class, built from its config alone as the suite's prediction step builds it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from moulin.training.batches import TabularCodec, codec_from_dict
from moulin.training.contract import FeatureContract
from moulin.training.model import build_network
from moulin.training.preprocessing import Preprocessor

FEATURES = FeatureContract(
    name="silver_t", table="silver/t", key="id", split="split", label="label",
    categorical=("city",), numeric=("weight",), nullable=frozenset({"weight"}),
)  # fmt: skip


def test_multiclass_targets_are_class_indices_through_the_jobs_dict() -> None:
    frame = pd.DataFrame(
        {"id": [1, 2, 3], "label": [0, 2, 1], "city": ["a", "b", "a"], "weight": [1.0, None, 3.0]}
    )
    codec = TabularCodec(Preprocessor.fit(frame, FEATURES), "id", "label", task="multiclass")
    again = codec_from_dict(codec.to_dict())
    assert again.task == "multiclass" and again.targets(frame).dtype == np.int64
    *_, label = again.arrays_from_arrow(pa.Table.from_pandas(frame))
    assert label.tolist() == [0, 2, 1] and label.dtype == np.int64
    binary = codec_from_dict({k: v for k, v in codec.to_dict().items() if k != "task"})
    assert binary.task == "binary" and binary.targets(frame).dtype == np.float32  # older jobs' dicts


def test_mlp_classes_gives_a_logit_per_class_from_its_config() -> None:
    config = {"num_classes": 3, "cardinalities": [4, 2], "n_numeric": 5, "hidden": [8]}
    for network in (
        build_network("mlp_classes", [4, 2], 5, config),
        build_network("mlp_classes", (), 0, config),
    ):
        logits = network(torch.zeros(7, 2, dtype=torch.long), torch.zeros(7, 5))
        assert logits.shape == (7, 3)
    assert build_network("mlp", [4, 2], 5, {})(
        torch.zeros(7, 2, dtype=torch.long), torch.zeros(7, 5)
    ).shape == (7,)
