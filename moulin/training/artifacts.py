"""Model files in the warehouse: the network (its registered name, weights,
preprocessing, config and the Delta version it was trained on) and the
scikit-learn baselines.

No model file is ever unpickled: whoever can write to the warehouse could
otherwise run code in every process that loads a model.

* networks: ``torch.save`` files read with ``torch.load(weights_only=True)``;
* baselines: ``model.skops`` files (:mod:`skops.io`, a zip of JSON and numpy
  arrays) read by :func:`load_baseline`, which refuses any file that is not
  skops (a pickle, a joblib file, whatever its name) and any type outside
  :data:`TRUSTED_BASELINE_TYPES` and skops' own default list (numpy, scipy and
  scikit-learn estimators without code references).  Older runs'
  ``model.joblib`` files are refused too: train again to get ``model.skops``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from moulin.identifiers import check_path_part
from moulin.storage import WarehouseFS
from moulin.training import TrainingError
from moulin.training.model import predict_proba
from moulin.training.networks import build_network
from moulin.training.preprocessing import Preprocessor

MLP_FORMAT = "moulin.tabular-net/1"
#: Older files, written before networks were registered by name (always the MLP).
LEGACY_FORMATS = ("moulin.flight-mlp/1",)

BASELINE_FORMAT = "moulin.sklearn-baseline/1"
#: The file of a baseline in its folder of the run's model folder.
BASELINE_FILE = "model.skops"
#: Types that skops does not trust by default and moulin's baselines hold, reviewed:
#: HistGradientBoostingClassifier's fitted trees and its input check (``check_array``
#: bound by ``functools.partial``; skops checks the partial's function and arguments
#: as types of their own).  Anything else in a file is refused.
TRUSTED_BASELINE_TYPES = frozenset(
    {
        "functools.partial",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.utils.validation.check_array",
    }
)
_ZIP_MAGIC = b"PK\x03\x04"


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


def model_dir_uri(settings, model_name: str, run_id: str) -> str:
    """``<warehouse>/models/<model_name>/<run_id>``; both must be safe folder names
    (:func:`moulin.identifiers.check_path_part`: no ``/``, ``..``, control characters)."""
    check_path_part(model_name, "model name")
    check_path_part(run_id, "run id")
    return settings.table_uri("models", model_name, run_id)


def baseline_uri(model_dir: str, name: str) -> str:
    """``<model_dir>/<name>/model.skops`` (``name`` a safe folder name)."""
    check_path_part(name, "baseline name")
    return f"{model_dir}/{name}/{BASELINE_FILE}"


def save_baseline(fs: WarehouseFS, uri: str, payload: dict) -> None:
    """Write a baseline (``{"model": estimator, ...}``) as a skops file; it must load
    back under :data:`TRUSTED_BASELINE_TYPES`, so a file written here always loads."""
    import skops.io as sio

    if not uri.endswith(".skops"):
        raise TrainingError(f"baseline files end in .skops, not {uri.rsplit('/', 1)[-1]!r} ({uri})")
    data = sio.dumps({**payload, "format": BASELINE_FORMAT})
    refused = sorted(t for t in _untrusted_types(data, uri) if t not in TRUSTED_BASELINE_TYPES)
    if refused:
        raise TrainingError(
            f"the baseline for {uri} holds types moulin does not load: {refused}; "
            f"review them and add them to moulin.training.artifacts.TRUSTED_BASELINE_TYPES"
        )
    fs.write_bytes(uri, data)


def load_baseline(uri: str, settings) -> dict:
    """A baseline written by :func:`save_baseline`: ``{"model": estimator, "preprocessor":
    dict, "threshold", ...}``.

    Refuses (:class:`TrainingError` naming the file) a file not named ``*.skops``, a
    file that is not a skops archive (a pickle or joblib file is never unpickled) and
    a file holding a type outside skops' defaults and :data:`TRUSTED_BASELINE_TYPES`.
    """
    import skops.io as sio

    name = uri.rsplit("/", 1)[-1]
    if not name.endswith(".skops"):
        raise TrainingError(
            f"refusing to load baseline {uri}: only skops files ({BASELINE_FILE}) are loaded, "
            f"never pickles or joblib files (they can run code); train the model again"
        )
    data = WarehouseFS(settings).read_bytes(uri)
    if not data.startswith(_ZIP_MAGIC):
        kind = "a pickle/joblib file" if data[:1] == b"\x80" else "not a skops file"
        raise TrainingError(f"refusing to load baseline {uri}: it is {kind} (skops files are zip archives)")
    untrusted = _untrusted_types(data, uri)
    refused = sorted(t for t in untrusted if t not in TRUSTED_BASELINE_TYPES)
    if refused:
        raise TrainingError(
            f"refusing to load baseline {uri}: it holds types outside the trusted list: {refused}"
        )
    try:
        # Only reviewed types are passed; skops refuses any other untrusted type itself too.
        payload = sio.loads(data, trusted=[t for t in untrusted if t in TRUSTED_BASELINE_TYPES])
    except Exception as exc:  # skops raises zip, JSON, key and type errors on damaged files
        raise TrainingError(f"cannot load baseline {uri}: {type(exc).__name__}: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != BASELINE_FORMAT:
        fmt = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise TrainingError(f"{uri} is not a moulin baseline (format {fmt!r}, expected {BASELINE_FORMAT})")
    return payload


def _untrusted_types(data: bytes, uri: str) -> list[str]:
    """The types in skops ``data`` that skops does not trust by default."""
    import skops.io as sio

    try:
        return list(sio.get_untrusted_types(data=data))
    except Exception as exc:  # not a zip, no schema: a damaged or foreign file
        raise TrainingError(f"cannot read baseline {uri}: {type(exc).__name__}: {exc}") from None
