"""Model files in the warehouse: the network (its registered name, weights,
preprocessing, config and the Delta version it was trained on) and the pickled
baselines."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from moulin.storage import WarehouseFS
from moulin.training import TrainingError
from moulin.training.model import build_network, predict_proba
from moulin.training.preprocessing import Preprocessor

MLP_FORMAT = "moulin.tabular-net/1"
#: Older files, written before networks were registered by name (always the MLP).
LEGACY_FORMATS = ("moulin.flight-mlp/1",)


@dataclass
class TrainedMLP:
    """A loaded MLP and everything needed to score raw feature rows."""

    model: Any  # torch.nn.Module built by moulin.training.model.build_network
    preprocessor: Preprocessor
    meta: dict

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        from moulin.training.metrics import undo_class_weighting

        cat, num = self.preprocessor.transform(frame)
        p = predict_proba(self.model, cat, num).numpy().astype(np.float64)
        return undo_class_weighting(p, float(self.meta.get("probability_pos_weight", 1.0)))


def save_mlp(fs: WarehouseFS, uri: str, state_dict: dict, preprocessor: Preprocessor, meta: dict) -> None:
    """Write ``model.pt`` (torch, weights-only loadable) and a readable ``model.json`` beside it."""
    import torch

    payload = {
        "format": MLP_FORMAT,
        "state_dict": state_dict,
        "preprocessor": preprocessor.to_dict(),
        **meta,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    fs.write_bytes(uri, buffer.getvalue())
    described = {k: v for k, v in payload.items() if k != "state_dict"}
    fs.write_bytes(
        uri.rsplit("/", 1)[0] + "/model.json", json.dumps(described, indent=2, default=str).encode()
    )


def load_mlp(uri: str, settings) -> TrainedMLP:
    import torch

    data = WarehouseFS(settings).read_bytes(uri)
    payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if payload.get("format") not in (MLP_FORMAT, *LEGACY_FORMATS):
        raise TrainingError(f"{uri} is not a moulin MLP (format {payload.get('format')!r})")
    pre = Preprocessor.from_dict(payload["preprocessor"])
    model = build_network(
        payload.get("network", "mlp"), pre.cardinalities, pre.n_numeric, payload["model_config"]
    )
    model.load_state_dict(payload["state_dict"])
    model.eval()
    meta = {k: v for k, v in payload.items() if k not in ("state_dict", "preprocessor")}
    return TrainedMLP(model=model, preprocessor=pre, meta=meta)


def save_pickle(fs: WarehouseFS, uri: str, obj) -> None:
    import joblib

    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    fs.write_bytes(uri, buffer.getvalue())


def load_pickle(uri: str, settings):
    import joblib

    return joblib.load(io.BytesIO(WarehouseFS(settings).read_bytes(uri)))
