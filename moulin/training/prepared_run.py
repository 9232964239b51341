"""The first step of a flights training run: its names and places, one pinned
snapshot of the feature table read once on the driver, the fitted encoding, and
the identity (fingerprint) of the training."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from moulin.lineage import code_version
from moulin.settings import Settings
from moulin.training import TrainingError
from moulin.training.artifacts import model_dir_uri
from moulin.training.checkpoints import fingerprint
from moulin.training.config import LEADERBOARD_TABLE, TrainConfig
from moulin.training.contract import SPLITS, FeatureContract
from moulin.training.data import FeatureSnapshot, read_split_pandas, resolve_snapshot
from moulin.training.ddp import choose_backend
from moulin.training.model import MLPConfig
from moulin.training.preprocessing import Preprocessor
from moulin.training.run_options import TrainingOptions

MAX_SLICE_CARDINALITY = 25


def new_run_id(now: datetime | None = None) -> str:
    """A run id from the time and a random suffix: ``20261207T173000Z-1a2b3c``."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Places:
    """Where a run reads and writes: the feature table, the run's folder, its results
    file and the leaderboard."""

    run_id: str
    created_at: datetime
    features_uri: str
    model_dir: str
    leaderboard_uri: str

    @property
    def results_uri(self) -> str:
        return f"{self.model_dir}/results.json"


@dataclass(frozen=True)
class SplitData:
    """One pinned snapshot read on the driver: the frames, labels and encoded inputs of
    each split, the fitted encoding, and the test rows' groups (one per day)."""

    snapshot: FeatureSnapshot
    frames: Mapping[str, Any]
    labels: Mapping[str, np.ndarray]
    encoded: Mapping[str, tuple[np.ndarray, np.ndarray]]
    preprocessor: Preprocessor
    test_groups: np.ndarray | None

    @property
    def rows(self) -> dict[str, int]:
        return {s: int(len(self.frames[s])) for s in SPLITS}

    @property
    def positive_rate(self) -> float:
        return float(self.labels["train"].mean())


@dataclass(frozen=True)
class PreparedRun:
    """Everything the models of one run are fitted and recorded with."""

    spark: Any
    settings: Settings
    options: TrainingOptions
    contract: FeatureContract
    places: Places
    data: SplitData
    train_config: TrainConfig
    model_config: dict
    use_gpu: bool
    backend: str
    slice_columns: tuple[str, ...]
    common: dict
    identity: str

    @property
    def pos_weight(self) -> float:
        """Weight of positives in training: negatives/positives when balancing classes."""
        return self.train_config.pos_weight

    @property
    def correction(self) -> float:
        """The odds factor every model's probabilities are divided by (1: none)."""
        return float(self.pos_weight) if self.options.correct_probabilities else 1.0


def run_places(settings: Settings, options: TrainingOptions, contract: FeatureContract) -> Places:
    """The run id (given or new) and the URIs it reads and writes."""
    created_at = datetime.now(UTC)
    run_id = options.run_id or new_run_id(created_at)
    features_uri = options.features_uri
    if features_uri is None:
        parts = contract.table.split("/") if contract.table else ["gold", contract.name]
        features_uri = settings.table_uri(*parts)
    return Places(
        run_id=run_id,
        created_at=created_at,
        features_uri=features_uri,
        model_dir=model_dir_uri(settings, options.model_name, run_id),
        leaderboard_uri=options.leaderboard_uri or settings.table_uri(LEADERBOARD_TABLE),
    )


def read_pinned_snapshot(
    settings: Settings, contract: FeatureContract, features_uri: str, options: TrainingOptions
) -> SplitData:
    """The splits of one version of the feature table, encoded with a preprocessor fitted
    on train (TrainingError when a split is empty or train has a single class)."""
    snap = resolve_snapshot(features_uri, contract.split, options.version)
    columns = [*contract.read_columns, *([contract.time] if contract.time else [])]
    frames = {
        s: read_split_pandas(snap.files[s], columns, settings, sample=options.sample, key=contract.key)
        for s in SPLITS
    }
    labels = {s: frames[s][contract.label].to_numpy(dtype=np.float64) for s in SPLITS}
    for s in SPLITS:
        if len(frames[s]) == 0:
            raise TrainingError(
                f"split {s!r} of {features_uri} v{snap.version} is empty (sample={options.sample})"
            )
    if not 0 < labels["train"].sum() < len(frames["train"]):
        raise TrainingError(f"the train split of {features_uri} v{snap.version} has a single class")
    pre = Preprocessor.fit(frames["train"], contract)
    return SplitData(
        snapshot=snap,
        frames=frames,
        labels=labels,
        encoded={s: pre.transform(frames[s]) for s in SPLITS},
        preprocessor=pre,
        # Rows of one day share its weather and congestion: intervals resample whole days.
        test_groups=frames["test"][contract.time].astype(str).to_numpy() if contract.time else None,
    )


def run_identity(
    options: TrainingOptions, data: SplitData, prepared: dict, models: Mapping[str, dict]
) -> str:
    """The fingerprint of what this training depends on: a run of the same id resumes or
    reuses only its own work."""
    return fingerprint(
        {
            "features_uri": prepared["features_uri"],
            "features_version": data.snapshot.version,
            "sample": options.sample,
            "contract": prepared["contract"],
            "preprocessor": data.preprocessor.to_dict(),
            "network": options.network,
            "model_config": prepared["model_config"],
            "train_config": prepared["train_config"],
            "num_processes": options.num_processes,
            "backend": prepared["backend"],
            "balance_classes": options.balance_classes,
            "correct_probabilities": options.correct_probabilities,
            "bootstrap_resamples": options.bootstrap_resamples,
            "slice_columns": list(prepared["slice_columns"]),
            "code_version": prepared["code_version"],
            # Another reader makes other batches: its run is another training (the default
            # adds nothing, so the fingerprints of runs before the option stay as they were).
            **({"reader": options.reader} if options.reader != "moulin" else {}),
            "models": dict(models),
        }
    )


def prepare_run(
    spark, settings: Settings, options: TrainingOptions, models: Mapping[str, dict]
) -> PreparedRun:
    """Read the pinned snapshot and settle everything the run's ``models`` (name ->
    options) are fitted with, its fingerprint included."""
    contract = options.feature_contract()
    places = run_places(settings, options, contract)
    data = read_pinned_snapshot(settings, contract, places.features_uri, options)
    rate = data.positive_rate
    train_config = options.train_config((1 - rate) / rate if options.balance_classes else 1.0)
    model_config = (
        dict(options.model_config)
        if options.model_config is not None
        else MLPConfig(hidden=options.hidden).to_dict()
    )
    use_gpu, backend = choose_backend(spark, options.use_gpu)
    pre = data.preprocessor
    slice_columns = options.slice_columns
    if slice_columns is None:
        slice_columns = tuple(c for c in contract.categorical if len(pre.vocab[c]) <= MAX_SLICE_CARDINALITY)
    common = {
        "features_uri": places.features_uri,
        "features_version": data.snapshot.version,
        "contract": contract.name,
        "run_id": places.run_id,
        "sample": options.sample,
        "created_at": places.created_at.isoformat(),
        "code_version": code_version(),
    }
    identity = run_identity(
        options,
        data,
        {
            "features_uri": places.features_uri,
            "contract": contract,
            "model_config": model_config,
            "train_config": train_config.to_dict(),
            "backend": backend,
            "slice_columns": slice_columns,
            "code_version": common["code_version"],
        },
        models,
    )
    return PreparedRun(
        spark=spark,
        settings=settings,
        options=options,
        contract=contract,
        places=places,
        data=data,
        train_config=train_config,
        model_config=model_config,
        use_gpu=use_gpu,
        backend=backend,
        slice_columns=tuple(slice_columns),
        common={**common, "fingerprint": identity},
        identity=identity,
    )
