"""Multi-class classifiers on a pinned snapshot: networks trained by the one
distributed trainer (:mod:`moulin.training.ddp`), in one or more phases (a
pretrained network: head first, then its last blocks), evaluated beside any
other model on the same rows, and compared soundly.

The model to recommend is chosen on the validation split
(:func:`~moulin.training.classification.select_on_validation`); test metrics
carry bootstrap intervals; every pair of models is compared on the same test
rows by McNemar's exact test (accuracy) and a paired bootstrap of the macro-F1
difference, Holm-adjusted over the pairs.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np

from moulin.contracts import load_contract
from moulin.errors import DataError
from moulin.identifiers import check_path_part
from moulin.lineage import code_version
from moulin.storage import WarehouseFS
from moulin.training import TrainingDataError
from moulin.training.classification import (
    bootstrap_interval,
    classification_summary,
    compare_models,
    mcnemar,
    select_on_validation,
)
from moulin.training.classification_results import RESULTS_FORMAT, ClassificationResults
from moulin.training.config import TrainConfig
from moulin.training.ddp import choose_backend, run_distributed
from moulin.training.networks import build_network

SPLITS_EVALUATED = ("validation", "test")


@dataclass(frozen=True)
class Phase:
    """One stage of a network's training: epochs, learning rate and model settings
    (e.g. which layers train); a later phase starts from the best weights of the one before."""

    name: str
    epochs: int
    learning_rate: float
    model_config: dict = field(default_factory=dict)


@dataclass(frozen=True)
class NetworkSpec:
    """A network to train: its registry name, settings and phases."""

    name: str
    network: str
    family: str
    model_config: dict
    phases: tuple[Phase, ...]
    train: TrainConfig = field(default_factory=TrainConfig)
    #: Share of the train split this network trains on (by a hash of the key; None: all),
    #: for networks too slow for the whole split on the machine at hand.
    train_fraction: float | None = None

    def scaled(self, factor: float) -> NetworkSpec:
        """The same network with every phase's epochs multiplied by ``factor`` (at least 1)."""
        return replace(
            self, phases=tuple(replace(p, epochs=max(1, round(p.epochs * factor))) for p in self.phases)
        )


@dataclass
class ModelOutput:
    """What evaluation needs from one trained model: probabilities on validation and
    test, and what the model cost."""

    name: str
    family: str
    proba: dict[str, np.ndarray]
    train_seconds: float
    params: dict
    n_parameters: int | None = None
    predict_rows_per_s: float | None = None
    model_uri: str = ""
    training: dict | None = None


def _state_bytes(state: dict) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def predict_network(module, codec, frame, batch_size: int = 1024) -> tuple[np.ndarray, float]:
    """Class probabilities of ``frame``'s rows (eval mode, no augmentation) and rows/s."""
    import torch

    module.eval()
    out = []
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(frame), batch_size):
            inputs = codec.inputs(frame.iloc[i : i + batch_size])
            logits = module(*[torch.from_numpy(np.ascontiguousarray(a)) for a in inputs])
            out.append(torch.softmax(logits.float(), dim=1).numpy())
    seconds = time.perf_counter() - start
    proba = np.concatenate(out) if out else np.zeros((0, 0))
    return proba, len(frame) / seconds if seconds > 0 else float("nan")


def train_network(
    spark,
    settings,
    spec: NetworkSpec,
    codec,
    snapshot,
    frames: Mapping[str, Any],
    model_dir: str,
    sample: float | None = None,
    num_processes: int = 2,
    use_gpu: bool | None = None,
    say: Callable[[str], None] = print,
) -> tuple[Any, ModelOutput]:
    """Train ``spec`` phase by phase with DDP through TorchDistributor, on the
    snapshot's train files (early stopping on validation), then score the
    validation and test frames.  Checkpoints go under ``<model_dir>/<name>/<phase>``;
    a run with the same folder resumes from them only if they are of the same
    training (:func:`~moulin.training.ddp.job_fingerprint`: the snapshot's table and
    version, its files, the codec and its vocabulary, the network, the phase's
    settings, the weights it starts from and the code version); others are set aside."""
    import torch

    from moulin.training.vision import count_parameters

    use_gpu, backend = choose_backend(spark, use_gpu)
    fs = WarehouseFS(settings)
    code = code_version()
    state: bytes | None = None
    histories: dict[str, Any] = {}
    started = time.time()
    config = dict(spec.model_config)
    for phase in spec.phases:
        config = {**spec.model_config, **phase.model_config}
        train_cfg = replace(spec.train, epochs=phase.epochs, learning_rate=phase.learning_rate)
        job = {
            "backend": backend,
            "train_files": list(snapshot.files["train"]),
            "validation_files": list(snapshot.files["validation"]),
            "inputs": codec.to_dict(),
            "task": "multiclass",
            "network": spec.network,
            "model_config": config,
            "train_config": train_cfg.to_dict(),
            "sample": sample,
            "train_sample": spec.train_fraction,
            "checkpoint_dir": f"{model_dir}/{spec.name}/checkpoints/{phase.name}",
            "settings": settings,
            "init_state": state,
            "identity": {
                "snapshot": {"table_uri": snapshot.table_uri, "version": snapshot.version},
                "model": spec.name,
                "phase": phase.name,
                "num_processes": num_processes,
                "backend": backend,
                "code_version": code,
            },
        }
        t = time.time()
        out = run_distributed(job, num_processes=num_processes, use_gpu=use_gpu)
        state = out["state_dict"]
        histories[phase.name] = {
            k: out[k] for k in ("history", "best_epoch", "best_val_loss", "rows_per_rank", "tail_rows", "world_size",
                                "backend", "device", "checkpoints", "resumed_from_epoch",
                                "fingerprint", "set_aside")
        }  # fmt: skip
        best = out["history"][out["best_epoch"] - 1] if out["best_epoch"] else {}
        say(
            f"{spec.name} [{phase.name}]: {len(out['history'])} epoch(s) in {time.time() - t:.0f} s, best epoch "
            f"{out['best_epoch']} (validation accuracy {best.get('val_accuracy', float('nan')):.4f})"
        )
    seconds = time.time() - started
    module = build_network(spec.network, (), 0, {**config, "pretrained": False})
    module.load_state_dict(torch.load(io.BytesIO(state), map_location="cpu", weights_only=True))
    proba, speed = {}, None
    for split in SPLITS_EVALUATED:
        proba[split], rows_per_s = predict_network(module, codec, frames[split])
        if split == "test":
            speed = rows_per_s
    uri = f"{model_dir}/{spec.name}/model.pt"
    record = {
        "network": spec.network,
        "model_config": config,
        "phases": [asdict(p) for p in spec.phases],
        "train_config": spec.train.to_dict(),
        "inputs": codec.to_dict(),
        "snapshot": {"table_uri": snapshot.table_uri, "version": snapshot.version},
        "code_version": code,
    }
    fs.write_bytes(
        uri, _state_bytes({"state_dict": torch.load(io.BytesIO(state), weights_only=True), **record})
    )
    return module, ModelOutput(
        name=spec.name,
        family=spec.family,
        proba=proba,
        train_seconds=seconds,
        params={**config, "phases": [asdict(p) for p in spec.phases], **spec.train.to_dict(),
                "train_fraction": spec.train_fraction,
                "num_processes": num_processes, "backend": backend},
        n_parameters=count_parameters(module),
        predict_rows_per_s=speed,
        model_uri=uri,
        training=histories,
    )  # fmt: skip


def _accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    return float(np.mean(proba.argmax(1) == y)) if len(y) else float("nan")


def _macro_f1(y: np.ndarray, proba: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, proba.argmax(1), average="macro", zero_division=0)) if len(y) else float("nan")


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {"accuracy": _accuracy, "macro_f1": _macro_f1}
#: Metrics of one class against the others (a binary task's positive class), by name.
POSITIVE_CLASS_METRICS = ("roc_auc", "pr_auc", "f1", "precision", "recall")


def positive_class_metrics(positive: int) -> dict[str, Callable[[np.ndarray, np.ndarray], float]]:
    """The metrics of :data:`POSITIVE_CLASS_METRICS` for class index ``positive`` (a binary
    framing's positive class) from class probabilities; NaN where undefined (one class only)."""
    from sklearn.metrics import (
        average_precision_score,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    def ranked(score: Callable) -> Callable[[np.ndarray, np.ndarray], float]:
        def metric(y: np.ndarray, proba: np.ndarray) -> float:
            truth = (y == positive).astype(int)
            return float(score(truth, proba[:, positive])) if 0 < truth.sum() < len(truth) else float("nan")

        return metric

    def decided(score: Callable) -> Callable[[np.ndarray, np.ndarray], float]:
        def metric(y: np.ndarray, proba: np.ndarray) -> float:
            truth, said = (y == positive).astype(int), (proba.argmax(1) == positive).astype(int)
            return float(score(truth, said, zero_division=0)) if len(y) else float("nan")

        return metric

    return {
        "roc_auc": ranked(roc_auc_score),
        "pr_auc": ranked(average_precision_score),
        "f1": decided(f1_score),
        "precision": decided(precision_score),
        "recall": decided(recall_score),
    }


def compare(
    labels: Mapping[str, np.ndarray],
    outputs: Sequence[ModelOutput],
    class_names: Sequence[str],
    select_by: str = "accuracy",
    groups: np.ndarray | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    positive: int | None = None,
) -> dict:
    """Validation scores, the model chosen on them, test metrics with 95 % bootstrap
    intervals (by ``groups`` where test rows are correlated), and every pair of
    models compared on the same test rows.  With ``positive`` (a binary task's positive
    class index), the metrics of that class (:data:`POSITIVE_CLASS_METRICS`) too, which
    ``select_by`` may then name."""
    metrics = {**METRICS, **(positive_class_metrics(positive) if positive is not None else {})}
    if select_by not in metrics:
        raise ValueError(f"select_by must be one of {', '.join(metrics)}, got {select_by!r}")
    y_val, y_test = labels["validation"], labels["test"]
    models = []
    for out in outputs:
        test = classification_summary(y_test, out.proba["test"], class_names)
        test.update(
            {name: fn(y_test, out.proba["test"]) for name, fn in metrics.items() if name not in METRICS}
        )
        intervals = {
            name: list(bootstrap_interval(y_test, out.proba["test"], fn, groups=groups, n_resamples=n_resamples, seed=seed))
            for name, fn in metrics.items()
        }  # fmt: skip
        models.append(
            {
                "model": out.name,
                "family": out.family,
                "validation": {name: fn(y_val, out.proba["validation"]) for name, fn in metrics.items()},
                "test": {**test, "intervals": intervals},
                "train_seconds": out.train_seconds,
                "n_parameters": out.n_parameters,
                "predict_rows_per_s": out.predict_rows_per_s,
                "params": out.params,
                "model_uri": out.model_uri,
                **({"training": out.training} if out.training else {}),
            }
        )
    chosen = select_on_validation({m["model"]: m["validation"][select_by] for m in models})
    predictions = {o.name: o.proba["test"].argmax(1) for o in outputs}
    pairs = compare_models(
        y_test, {o.name: o.proba["test"] for o in outputs}, _macro_f1, groups=groups,
        n_resamples=n_resamples, seed=seed,
    )  # fmt: skip
    for pair in pairs:
        pair["metric"] = "macro_f1"
        pair["mcnemar"] = mcnemar(y_test, predictions[pair["a"]], predictions[pair["b"]])
    return {
        "selection": {"split": "validation", "metric": select_by, "recommended": chosen},
        "models": models,
        "comparisons": pairs,
        "bootstrap": {"resamples": n_resamples, "grouped": groups is not None, "seed": seed},
    }


def worst_examples(y: np.ndarray, proba: np.ndarray, keys: Sequence[str], limit: int = 12) -> list[dict]:
    """The test rows a model gets wrong with the most confidence: key, true and
    predicted class, the probability it gave its (wrong) answer."""
    predicted = proba.argmax(1)
    wrong = np.flatnonzero(predicted != y)
    order = wrong[np.argsort(-proba[wrong, predicted[wrong]], kind="stable")][:limit]
    return [
        {
            "row": int(i),
            "key": str(keys[i]),
            "true": int(y[i]),
            "predicted": int(predicted[i]),
            "confidence": float(proba[i, predicted[i]]),
        }
        for i in order
    ]


Frames = dict  # split -> pandas DataFrame
Baseline = Callable[[Frames, str, dict], ModelOutput]  # (frames, model_dir, record to save with it) -> output
#: Where a row's split is read from (see :attr:`ClassifierSuite.splits`).
SplitSource = Literal["partitions", "column"]
#: What a table's ``label`` column holds (see :attr:`ClassifierSuite.labels`).
LabelValues = Literal["index", "name"]


@dataclass(frozen=True)
class ClassifierSuite:
    """What one use case trains and compares: its silver table (contract), the key and
    columns read, the classes, the models (baselines fitted on the driver, networks
    trained by the DDP trainer, built once the frames are read), how the recommended
    model is chosen, and its own additions to the results."""

    use_case: str
    contract: str
    key: str
    columns: tuple[str, ...]
    class_names: tuple[str, ...]
    baselines: Mapping[str, Baseline]
    #: frames -> {name: (spec, codec)}: a codec may need the train split (a vocabulary)
    networks: Callable[[Frames], Mapping[str, tuple[NetworkSpec, Any]]]
    network_names: tuple[str, ...]
    select_by: str = "accuracy"
    bootstrap_resamples: int = 1000
    seed: int = 0
    #: A binary task's positive class (index): its ROC AUC, PR AUC, F1, precision and recall are
    #: measured too, and ``select_by`` may name one of them.
    positive_class: int | None = None
    #: (worst examples, test frame) -> None: adds what the report shows of each example
    describe_examples: Callable[[list[dict], Any], None] | None = None
    #: frames -> extra top-level entries of results.json (duplicates, published results)
    extra_results: Callable[[Frames], dict] | None = None
    #: Where a row's split is read from: ``"partitions"``, the table's ``split`` partitions (one
    #: set of files per split, what the networks' trainer reads); ``"column"``, the ``split``
    #: column of every file of the pinned version, for a table partitioned otherwise (by date,
    #: for retention): baselines only.
    splits: SplitSource = "partitions"
    #: What the ``label`` column holds: the class index, or the class name (mapped to its
    #: index in ``class_names``; a name not among them is a data error).
    labels: LabelValues = "index"

    def __post_init__(self) -> None:
        if self.splits == "column" and self.network_names:
            raise ValueError(
                f"suite {self.use_case!r}: networks {list(self.network_names)} read one set of files per "
                "split, which a table with splits='column' lacks: partition the table by split or drop them"
            )

    @property
    def model_names(self) -> tuple[str, ...]:
        return (*self.baselines, *self.network_names)


def _label_indices(frame, class_names: Sequence[str], where: str):
    """``frame`` with its ``label`` of class names replaced by their indices in ``class_names``."""

    index = {name: i for i, name in enumerate(class_names)}
    mapped = frame["label"].map(index)
    unknown = sorted({str(v) for v in frame.loc[mapped.isna(), "label"]})
    if unknown:
        raise DataError(
            f"{where}: label value(s) {unknown[:5]} are none of the classes {list(class_names)}: "
            "fix the table's labels or the suite's class_names"
        )
    return frame.assign(label=mapped.astype(np.int64))


def _check_split_rows(rows, snap, uri: str, sampled: bool) -> None:
    """Every row read belongs to train, validation or test, and (unsampled) the files held
    as many rows as the Delta log records for them: no row is dropped on the way in."""
    from moulin.training.data import ALL_FILES

    outside = rows["split"][~rows["split"].isin(("train", "validation", "test"))]
    if len(outside):
        shown = sorted({str(v) for v in outside.unique()})[:5]
        raise TrainingDataError(
            f"{uri} v{snap.version}: {len(outside)} row(s) with split {shown}, not train, validation "
            "or test: rebuild the table's split column"
        )
    logged = snap.rows.get(ALL_FILES)
    if not sampled and logged is not None and logged != len(rows):
        raise TrainingDataError(
            f"{uri} v{snap.version}: read {len(rows)} rows from its files, the Delta log records {logged}"
        )


def read_frames(
    settings, suite: ClassifierSuite, uri: str, version: int | None = None, sample: float | None = None
) -> tuple[Any, Frames]:
    """The pinned snapshot of ``uri`` (the table of ``suite.contract``) and its train,
    validation and test rows (``sample``: a fraction of them, by a hash of the key), read
    as ``suite.splits`` and ``suite.labels`` say; a read of the contract's personal-data
    columns is told to the store's read observers first (the audit trail)."""
    from moulin.delta.observers import ReadEvent, notify_read
    from moulin.training.data import ALL_FILES, read_split_pandas, resolve_snapshot, resolve_table_files

    columns = list(suite.columns)
    if suite.splits == "partitions":
        snap = resolve_snapshot(uri, "split", version)
    else:
        snap = resolve_table_files(uri, version)
        columns = list(dict.fromkeys([*columns, "split"]))
    personal = tuple(c for c in columns if c in load_contract(suite.contract).personal_data)
    if personal:
        notify_read(ReadEvent(uri, snap.version, personal))
    if suite.splits == "partitions":
        frames = {
            s: read_split_pandas(snap.files[s], columns, settings, sample=sample, key=suite.key)
            for s in ("train", "validation", "test")
        }
    else:
        rows = read_split_pandas(snap.files[ALL_FILES], columns, settings, sample=sample, key=suite.key)
        _check_split_rows(rows, snap, uri, sampled=sample is not None)
        kept = [c for c in rows.columns if c in suite.columns]
        frames = {
            s: rows.loc[rows["split"] == s, kept].reset_index(drop=True)
            for s in ("train", "validation", "test")
        }
    if suite.labels == "name":
        frames = {
            s: _label_indices(f, suite.class_names, f"split {s!r} of {uri} v{snap.version}")
            for s, f in frames.items()
        }
    return snap, frames


def run_suite(
    spark,
    settings,
    suite: ClassifierSuite,
    models: Sequence[str],
    version: int | None = None,
    run_id: str | None = None,
    sample: float | None = None,
    epochs_scale: float = 1.0,
    num_processes: int = 2,
    use_gpu: bool | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train ``models`` of ``suite`` on one pinned version of its silver table, compare
    them (:func:`compare`) and write ``models/<use case>/<run id>/results.json``;
    returns a summary with its URI.  The same ``run_id`` resumes networks from their
    checkpoints when nothing they depend on changed (snapshot version, vocabulary,
    settings, code); otherwise they train again from epoch 1."""
    import uuid
    from datetime import UTC, datetime

    from moulin.training.binary_results import json_safe
    from moulin.training.data import check_fraction

    unknown = [m for m in models if m not in suite.model_names]
    if unknown or not models:
        raise DataError(f"unknown model(s) {unknown}: choose among {', '.join(suite.model_names)}")
    sample = check_fraction(sample)
    started = datetime.now(UTC)
    run_id = run_id or f"{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    check_path_part(run_id, "run id")
    uri = settings.table_uri(load_contract(suite.contract).table)
    snap, frames = read_frames(settings, suite, uri, version, sample)
    model_dir = settings.table_uri("models", suite.use_case, run_id)
    for s, f in frames.items():
        if f.empty or f["label"].nunique() < 2:
            raise DataError(
                f"split {s!r} of {uri} v{snap.version} lacks rows of several classes (sample={sample}): "
                "land more rows or take a larger sample"
            )
    say(f"snapshot {uri} v{snap.version}: " + ", ".join(f"{s} {len(f):,}" for s, f in frames.items()))
    networks = suite.networks(frames) if any(m in suite.network_names for m in models) else {}
    # saved with every model: what it was trained on and by which code
    record = {"snapshot": {"table_uri": uri, "version": snap.version}, "code_version": code_version()}
    outputs: list[ModelOutput] = []
    started_models = time.time()
    for name in models:
        t = time.time()
        if name in suite.baselines:
            outputs.append(suite.baselines[name](frames, model_dir, record))
        else:
            spec, codec = networks[name]
            _, out = train_network(
                spark, settings, spec.scaled(epochs_scale), codec, snap,
                {s: frames[s] for s in SPLITS_EVALUATED}, model_dir,
                sample=sample, num_processes=num_processes, use_gpu=use_gpu, say=say,
            )  # fmt: skip
            outputs.append(out)
        right = {s: float(np.mean(outputs[-1].proba[s].argmax(1) == frames[s]["label"].to_numpy())) for s in SPLITS_EVALUATED}  # fmt: skip
        say(f"{name}: validation accuracy {right['validation']:.4f}, test accuracy {right['test']:.4f} "
            f"({time.time() - t:.0f} s)")  # fmt: skip
    labels = {s: frames[s]["label"].to_numpy(np.int64) for s in SPLITS_EVALUATED}
    comparison = compare(
        labels, outputs, suite.class_names, select_by=suite.select_by,
        n_resamples=suite.bootstrap_resamples, seed=suite.seed, positive=suite.positive_class,
    )  # fmt: skip
    chosen = comparison["selection"]["recommended"]
    chosen_out = next(o for o in outputs if o.name == chosen)
    worst = worst_examples(labels["test"], chosen_out.proba["test"], frames["test"][suite.key].tolist())
    if suite.describe_examples is not None:
        suite.describe_examples(worst, frames["test"])
    written = {
        "format": RESULTS_FORMAT,
        "use_case": suite.use_case,
        "run_id": run_id,
        "created_at": started.isoformat(),
        "code_version": code_version(),
        "snapshot": {"table_uri": uri, "version": snap.version, "rows_in_log": snap.rows},
        "sample": sample,
        "split_rows": {s: int(len(f)) for s, f in frames.items()},
        "class_names": list(suite.class_names),
        **(suite.extra_results(frames) if suite.extra_results else {}),
        **comparison,
        "worst_test_examples": {"model": chosen, "examples": worst},
        "total_seconds": time.time() - started_models,
    }
    results = ClassificationResults.from_dict(json_safe(written))
    results_uri = f"{model_dir}/results.json"
    WarehouseFS(settings).write_bytes(results_uri, results.to_json())
    say(f"recommended on validation {suite.select_by}: {chosen}; results {results_uri}")
    return {
        "run_id": run_id,
        "results_uri": results_uri,
        "version": snap.version,
        "recommended": chosen,
        "models": {
            m.model: {
                "validation": dict(m.validation),
                "test_accuracy": m.test.accuracy,
                "test_accuracy_ci": m.test.interval("accuracy").to_list(),
                "test_macro_f1": m.test.macro_f1,
                "test_macro_f1_ci": m.test.interval("macro_f1").to_list(),
            }
            for m in results.models
        },
    }


def best_c_logistic_regression(
    x: Mapping[str, Any], y: Mapping[str, np.ndarray], c_grid: Sequence[float], score: Callable, max_iter: int
) -> tuple[Any, float, dict[str, float], float]:
    """Multinomial logistic regressions for each C of ``c_grid`` on ``x["train"]``; the one
    scoring best on validation (``score(y, predicted)``): ``(model, C, scores by C, seconds)``."""
    from sklearn.linear_model import LogisticRegression

    start = time.time()
    best, tried = None, {}
    for c in c_grid:
        model = LogisticRegression(C=c, max_iter=max_iter).fit(x["train"], y["train"])
        value = float(score(y["validation"], model.predict(x["validation"])))
        tried[str(c)] = value
        if best is None or value > best[0]:
            best = (value, c, model)
    if best is None:
        raise ValueError("the C grid of the logistic regression is empty")
    return best[2], best[1], tried, time.time() - start


def baseline_output(
    name: str, family: str, model, x: Mapping[str, Any], seconds: float, params: dict, uri: str
) -> ModelOutput:
    """A fitted scikit-learn classifier as a :class:`ModelOutput` (probabilities on
    validation and test, inference rows/s, parameters of a linear model)."""
    t = time.perf_counter()
    test = model.predict_proba(x["test"])
    speed = x["test"].shape[0] / max(time.perf_counter() - t, 1e-9)
    coef = getattr(model, "coef_", None)
    return ModelOutput(
        name=name,
        family=family,
        proba={"validation": model.predict_proba(x["validation"]), "test": test},
        train_seconds=seconds,
        params=params,
        n_parameters=int(coef.size + model.intercept_.size) if coef is not None else None,
        predict_rows_per_s=speed,
        model_uri=uri,
    )


def add_train_arguments(parser, models: Sequence[str], num_processes: int) -> None:
    """The command-line options of a use case's training stage."""
    parser.add_argument("--version", type=int, default=None, help="silver Delta version (default: latest)")
    parser.add_argument("--run-id", default=None, help="run id (the same id resumes from its checkpoints)")
    parser.add_argument("--sample", type=float, default=None, help="fraction of rows kept in every split")
    parser.add_argument("--models", default=",".join(models), help="comma-separated models to train")
    parser.add_argument("--epochs-scale", type=float, default=1.0, help="multiply every network's epochs")
    parser.add_argument("--num-processes", type=int, default=num_processes, help="DDP ranks")


def run_training_stage(ctx, args, suite: ClassifierSuite) -> dict[str, Any]:
    """The body of a use case's training stage (training environment): executors run
    the training Python, progress lines go to the job's output as they come."""
    import logging
    import os

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    python = ctx.settings.training_python_path
    os.environ["PYSPARK_PYTHON"] = python
    ctx.spark_conf["spark.pyspark.python"] = python
    return run_suite(
        ctx.spark,
        ctx.settings,
        suite,
        tuple(m for m in args.models.split(",") if m),
        version=args.version,
        run_id=args.run_id,
        sample=args.sample,
        epochs_scale=args.epochs_scale,
        num_processes=args.num_processes,
        say=lambda line: print(f"MOULIN-PROGRESS {line}", flush=True),
    )
