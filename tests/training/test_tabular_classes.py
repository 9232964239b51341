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
from moulin.training.networks import build_network
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


def test_a_binary_suite_measures_and_may_choose_by_its_positive_class() -> None:
    from moulin.training.classifiers import ModelOutput, compare

    rng = np.random.default_rng(0)
    y = {s: rng.integers(0, 2, 200) for s in ("validation", "test")}

    def output(name: str, skill: float) -> ModelOutput:
        proba = {}
        for split, labels in y.items():
            p1 = np.clip(0.5 + skill * (labels - 0.5) + rng.normal(0, 0.2, len(labels)), 0.01, 0.99)
            proba[split] = np.column_stack([1 - p1, p1])
        return ModelOutput(name, name, proba, 0.0, {})

    out = compare(
        y, [output("weak", 0.1), output("strong", 0.6)], ("no", "yes"), "roc_auc", n_resamples=50, positive=1
    )
    assert out["selection"] == {"split": "validation", "metric": "roc_auc", "recommended": "strong"}
    strong = next(m for m in out["models"] if m["model"] == "strong")
    assert strong["test"]["roc_auc"] > 0.9 and len(strong["test"]["intervals"]["roc_auc"]) == 2
    assert {"pr_auc", "f1", "precision", "recall"} <= set(strong["test"]) and "roc_auc" in strong[
        "validation"
    ]
    assert "roc_auc" not in compare(y, [output("a", 0.3)], ("no", "yes"), n_resamples=10)["models"][0]["test"]
