"""The results of a binary training run (``results.json``, format
``moulin.training-results/1``) as one typed, frozen object.

:mod:`moulin.training.binary_results` builds it and :func:`moulin.training.run.train_and_compare`
writes it with :meth:`TrainingResults.to_dict`; the flights report reads it with
:meth:`TrainingResults.from_dict`.  Standard library only, so both the training
environment and the platform environment load it.

Every model carries its test metrics with 95 % intervals (:class:`~moulin.training.compared_models.Metric`),
its threshold chosen on validation, its curves and its metrics by slice; the run
carries the model recommended on validation (``selection``, ``best_model``) and the
paired comparisons of the models on the same test rows.  Fields the report does not
read (the preprocessing, the class weighting, a network's training record) are kept
as written.  Files written before this module (same format, same field names) read
as they are; only ``models`` (a list, possibly empty) is looked at closely: any
other missing field reads as None (or empty) and the report says "not available".
A malformed field raises :class:`~moulin.training.compared_models.ResultsError`
naming it; :meth:`TrainingResults.from_json` names the file too.  Numbers that are
not finite (NaN) read as None, as they are written; whole numbers stay whole, so a
document written by training reads and writes back byte for byte.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from moulin.json_fields import FieldReader
from moulin.training.compared_models import Metric, PairComparison, ResultsError, Selection

RESULTS_FORMAT = "moulin.training-results/1"
#: The test metrics every model carries, each with its interval.
METRIC_NAMES = ("roc_auc", "pr_auc", "f1", "brier", "ece")
#: Metrics where a higher value is better (brier and ece: lower is better).
HIGHER_IS_BETTER = {"roc_auc": True, "pr_auc": True, "f1": True, "brier": False, "ece": False}

#: Reads the fields of a binary run's results.
READ = FieldReader(ResultsError, "not the results of a binary training run")

Number = int | float


def _numbers(values: Any, what: str) -> tuple[Number | None, ...]:
    return tuple(READ.number(v, f"{what}[{i}]") for i, v in enumerate(READ.items(values, what)))


def _json_map(value: Any, what: str) -> dict[str, Any]:
    return dict(READ.json(READ.mapping(value, what), what))


def _counts(value: Any, what: str) -> dict[str, int | None]:
    return {str(k): READ.int(v, f"{what}.{k}") for k, v in READ.mapping(value, what).items()}


@dataclass(frozen=True)
class SliceMetric:
    """Quality of a model on the test rows of one slice (e.g. carrier == 'UA')."""

    value: str
    n: int | None = None
    positives: int | None = None
    positive_rate: Number | None = None
    mean_predicted: Number | None = None
    roc_auc: Number | None = None
    pr_auc: Number | None = None
    f1: Number | None = None
    brier: Number | None = None

    @classmethod
    def from_dict(cls, obj: Any, what: str) -> SliceMetric:
        obj = READ.mapping(obj, what)
        nums = ("positive_rate", "mean_predicted", "roc_auc", "pr_auc", "f1", "brier")
        return cls(
            value=str(READ.require(obj, "value", what)),
            n=READ.int(obj.get("n"), f"{what}.n"),
            positives=READ.int(obj.get("positives"), f"{what}.positives"),
            **{k: READ.number(obj.get(k), f"{what}.{k}") for k in nums},
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


#: The columns a curve needs to be drawn, and those it may carry besides.
_CURVE_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "roc": (("fpr", "tpr"), ()),
    "pr": (("recall", "precision"), ()),
    "calibration": (("observed", "predicted"), ("bin_mid", "count")),
}


@dataclass(frozen=True)
class Curves:
    """ROC, precision-recall and calibration curves of a model on the test rows, as
    written (:func:`moulin.training.metrics.curves`: column lists by curve name, a curve
    None where it could not be drawn).  :attr:`roc`, :attr:`pr` and :attr:`calibration`
    give them ready to plot."""

    written: Mapping[str, Mapping[str, tuple[Number | None, ...]] | None] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, obj: Any, what: str) -> Curves:
        out: dict[str, dict[str, tuple[Number | None, ...]] | None] = {}
        for name, raw in READ.mapping(obj, what).items():
            if raw is None:
                out[str(name)] = None
                continue
            columns = {
                str(k): _numbers(v, f"{what}.{name}.{k}")
                for k, v in READ.mapping(raw, f"{what}.{name}").items()
            }
            lengths = {len(v) for v in columns.values()}
            if len(lengths) > 1:
                raise READ.fail(f"{what}.{name}", f"lists of different lengths {sorted(lengths)}")
            out[str(name)] = columns
        return cls(out)

    def to_dict(self) -> dict[str, Any]:
        return {k: None if v is None else {c: list(x) for c, x in v.items()} for k, v in self.written.items()}

    def _plotted(self, name: str) -> dict[str, list[float]] | None:
        """Curve ``name``'s columns as floats (NaN where not defined); None when it lacks
        a column it needs or has no point."""
        raw = self.written.get(name)
        required, optional = _CURVE_COLUMNS[name]
        if not raw or not all(k in raw for k in required):
            return None
        out = {
            k: [math.nan if x is None else float(x) for x in raw[k]] for k in required + optional if k in raw
        }
        return out if any(out.values()) else None

    @property
    def roc(self) -> dict[str, list[float]] | None:
        """``fpr``, ``tpr``."""
        return self._plotted("roc")

    @property
    def pr(self) -> dict[str, list[float]] | None:
        """``recall``, ``precision``."""
        return self._plotted("pr")

    @property
    def calibration(self) -> dict[str, list[float]] | None:
        """``observed``, ``predicted`` (and ``bin_mid``, ``count`` when written)."""
        return self._plotted("calibration")


#: Fields of a model, in the order they are written.
_MODEL_FIELDS = (
    "model",
    "family",
    "metrics",
    "threshold",
    "curves",
    "slices",
    "train_seconds",
    "params",
    "model_uri",
    "validation",
    "test",
    "training",
)


@dataclass(frozen=True)
class ModelResult:
    """One trained model: test metrics with intervals, the threshold chosen on validation,
    its validation scores, curves and slices, its cost and where it is stored."""

    model: str
    family: str | None = None
    metrics: Mapping[str, Metric] = field(default_factory=dict)
    threshold: Number | None = None
    curves: Curves = field(default_factory=Curves)
    #: Metrics by slice, by slice column (largest slice first).
    slices: Mapping[str, tuple[SliceMetric, ...]] = field(default_factory=dict)
    train_seconds: Number | None = None
    #: The model's settings as trained (free-form).
    params: Mapping[str, Any] = field(default_factory=dict)
    model_uri: str | None = None
    #: Scores on the validation rows (what the choice was made on), by metric.
    validation: Mapping[str, Number | None] = field(default_factory=dict)
    #: The rest of the test evaluation (counts, base rate, reliability table), as written.
    test: Mapping[str, Any] = field(default_factory=dict)
    #: A network's training record (epochs, checkpoints), as written; None: not trained so.
    training: Mapping[str, Any] | None = None
    #: Entries beyond the above (e.g. precision and recall at the threshold), kept as written.
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, obj: Any, what: str) -> ModelResult:
        obj = READ.mapping(obj, what)
        return cls(
            model=str(READ.require(obj, "model", what)),
            family=READ.str(obj.get("family"), f"{what}.family"),
            metrics={
                str(k): Metric.from_obj(v, f"{what}.metrics.{k}", READ)
                for k, v in READ.mapping(obj.get("metrics"), f"{what}.metrics").items()
            },
            threshold=READ.number(obj.get("threshold"), f"{what}.threshold"),
            curves=Curves.from_dict(obj.get("curves"), f"{what}.curves"),
            slices={
                str(dim): tuple(
                    SliceMetric.from_dict(r, f"{what}.slices.{dim}[{i}]")
                    for i, r in enumerate(READ.items(rows, f"{what}.slices.{dim}"))
                )
                for dim, rows in READ.mapping(obj.get("slices"), f"{what}.slices").items()
                if rows is not None
            },
            train_seconds=READ.number(obj.get("train_seconds"), f"{what}.train_seconds"),
            params=_json_map(obj.get("params"), f"{what}.params"),
            model_uri=READ.str(obj.get("model_uri"), f"{what}.model_uri"),
            validation={
                str(k): READ.number(v, f"{what}.validation.{k}")
                for k, v in READ.mapping(obj.get("validation"), f"{what}.validation").items()
            },
            test=_json_map(obj.get("test"), f"{what}.test"),
            training=None if obj.get("training") is None else _json_map(obj["training"], f"{what}.training"),
            extra={k: READ.json(v, f"{what}.{k}") for k, v in obj.items() if k not in _MODEL_FIELDS},
        )

    def to_dict(self) -> dict[str, Any]:
        out = {
            "model": self.model,
            "family": self.family,
            "metrics": {k: m.to_dict() for k, m in self.metrics.items()},
            "threshold": self.threshold,
            "curves": self.curves.to_dict(),
            "slices": {k: [s.to_dict() for s in rows] for k, rows in self.slices.items()},
            "train_seconds": self.train_seconds,
            "params": dict(self.params),
            "model_uri": self.model_uri,
            "validation": dict(self.validation),
            "test": dict(self.test),
            **({"training": dict(self.training)} if self.training is not None else {}),
        }
        return out | dict(self.extra)

    def metric(self, name: str) -> Metric:
        """The test metric ``name`` with its interval (value None when not measured)."""
        return self.metrics.get(name) or Metric(None)


#: Top-level fields of the results, in the order they are written.
_FIELDS = (
    "format",
    "selection",
    "best_model",
    "comparisons",
    "bootstrap",
    "features_uri",
    "features_version",
    "contract",
    "run_id",
    "sample",
    "created_at",
    "code_version",
    "fingerprint",
    "model_dir",
    "split_rows",
    "base_rate",
    "rows_in_snapshot",
    "files_per_split",
    "train_positive_rate",
    "class_weighting",
    "preprocessing",
    "slice_columns",
    "models",
    "leaderboard",
    "total_seconds",
)


@dataclass(frozen=True)
class TrainingResults:
    """One binary training run: the snapshot it trained on, every model's results, the
    model chosen on validation and the paired comparisons of the models."""

    models: tuple[ModelResult, ...] = ()
    #: None: a file that does not say.
    format: str | None = RESULTS_FORMAT
    #: How the recommended model was chosen (None: not said; the report then ranks by test).
    selection: Selection | None = None
    best_model: str | None = None
    comparisons: tuple[PairComparison, ...] = ()
    #: How the intervals were resampled (``resamples``, ``grouped_by``), as written.
    bootstrap: Mapping[str, Any] = field(default_factory=dict)
    features_uri: str | None = None
    features_version: int | str | None = None
    contract: str | None = None
    run_id: str | None = None
    #: Fraction of rows kept (None: all).
    sample: Number | None = None
    created_at: str | None = None
    code_version: str | None = None
    #: The training's identity (:func:`moulin.training.checkpoints.fingerprint`).
    fingerprint: str | None = None
    model_dir: str | None = None
    split_rows: Mapping[str, int | None] = field(default_factory=dict)
    #: Share of positive rows in the test split.
    base_rate: Number | None = None
    rows_in_snapshot: Mapping[str, int | None] = field(default_factory=dict)
    files_per_split: Mapping[str, int | None] = field(default_factory=dict)
    train_positive_rate: Number | None = None
    #: Class balancing of the training (``balanced``, ``pos_weight``, ...), as written.
    class_weighting: Mapping[str, Any] = field(default_factory=dict)
    #: The fitted encoding of the features, as written.
    preprocessing: Mapping[str, Any] = field(default_factory=dict)
    slice_columns: tuple[str, ...] = ()
    #: The leaderboard record of the run (``uri``, ``app_id``, ``app_version``); None: not recorded yet.
    leaderboard: Mapping[str, Any] | None = None
    total_seconds: Number | None = None
    #: Top-level entries beyond the above, kept as written.
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [m.model for m in self.models]
        if len(set(names)) != len(names):
            raise ResultsError(f"models: duplicate model names {names}")
        if self.best_model is not None and self.best_model not in names:
            raise ResultsError(f"best_model: {self.best_model!r} is not one of the models {names}")

    @classmethod
    def from_dict(cls, obj: Any) -> TrainingResults:
        """The results as written in ``results.json`` (a dict read from its JSON)."""
        obj = READ.mapping(obj, "results")
        version = obj.get("features_version")
        if not (version is None or isinstance(version, int | str)) or isinstance(version, bool):
            raise READ.fail("features_version", f"expected a version number or text, got {version!r}")
        return cls(
            models=tuple(
                ModelResult.from_dict(m, f"models[{i}]")
                for i, m in enumerate(READ.items(obj.get("models"), "models"))
            ),
            format=READ.str(obj.get("format"), "format"),
            selection=None
            if obj.get("selection") is None
            else Selection.from_dict(obj["selection"], read=READ),
            best_model=READ.str(obj.get("best_model"), "best_model"),
            comparisons=tuple(
                PairComparison.from_dict(c, f"comparisons[{i}]", READ)
                for i, c in enumerate(READ.items(obj.get("comparisons"), "comparisons"))
            ),
            bootstrap=_json_map(obj.get("bootstrap"), "bootstrap"),
            features_uri=READ.str(obj.get("features_uri"), "features_uri"),
            features_version=version,
            contract=READ.str(obj.get("contract"), "contract"),
            run_id=READ.str(obj.get("run_id"), "run_id"),
            sample=READ.number(obj.get("sample"), "sample"),
            created_at=READ.str(obj.get("created_at"), "created_at"),
            code_version=READ.str(obj.get("code_version"), "code_version"),
            fingerprint=READ.str(obj.get("fingerprint"), "fingerprint"),
            model_dir=READ.str(obj.get("model_dir"), "model_dir"),
            split_rows=_counts(obj.get("split_rows"), "split_rows"),
            base_rate=READ.number(obj.get("base_rate"), "base_rate"),
            rows_in_snapshot=_counts(obj.get("rows_in_snapshot"), "rows_in_snapshot"),
            files_per_split=_counts(obj.get("files_per_split"), "files_per_split"),
            train_positive_rate=READ.number(obj.get("train_positive_rate"), "train_positive_rate"),
            class_weighting=_json_map(obj.get("class_weighting"), "class_weighting"),
            preprocessing=_json_map(obj.get("preprocessing"), "preprocessing"),
            slice_columns=tuple(
                READ.str(c, f"slice_columns[{i}]") or ""
                for i, c in enumerate(READ.items(obj.get("slice_columns"), "slice_columns"))
            ),
            leaderboard=None
            if obj.get("leaderboard") is None
            else _json_map(obj["leaderboard"], "leaderboard"),
            total_seconds=READ.number(obj.get("total_seconds"), "total_seconds"),
            extra={k: READ.json(v, k) for k, v in obj.items() if k not in _FIELDS},
        )

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "results.json") -> TrainingResults:
        """The results of a ``results.json`` file's content; errors name ``source`` (the file)."""
        try:
            return cls.from_dict(json.loads(text))
        except ValueError as exc:  # not JSON (JSONDecodeError), or a ResultsError
            problem = str(exc) if isinstance(exc, ResultsError) else f"not JSON ({exc})"
            raise ResultsError(
                f"{source}: {problem}; not the results of a binary training run "
                f"({RESULTS_FORMAT}): give the results.json the training task wrote, or train again"
            ) from exc

    def to_dict(self) -> dict[str, Any]:
        """The results as ``results.json`` holds them (JSON-ready: undefined numbers are None)."""
        out: dict[str, Any] = {
            "format": self.format,
            "selection": None if self.selection is None else self.selection.to_dict(),
            "best_model": self.best_model,
            "comparisons": [c.to_dict() for c in self.comparisons],
            "bootstrap": dict(self.bootstrap),
            "features_uri": self.features_uri,
            "features_version": self.features_version,
            "contract": self.contract,
            "run_id": self.run_id,
            "sample": self.sample,
            "created_at": self.created_at,
            "code_version": self.code_version,
            "fingerprint": self.fingerprint,
            "model_dir": self.model_dir,
            "split_rows": dict(self.split_rows),
            "base_rate": self.base_rate,
            "rows_in_snapshot": dict(self.rows_in_snapshot),
            "files_per_split": dict(self.files_per_split),
            "train_positive_rate": self.train_positive_rate,
            "class_weighting": dict(self.class_weighting),
            "preprocessing": dict(self.preprocessing),
            "slice_columns": list(self.slice_columns),
            "models": [m.to_dict() for m in self.models],
            **({"leaderboard": dict(self.leaderboard)} if self.leaderboard is not None else {}),
            **({"total_seconds": self.total_seconds} if self.total_seconds is not None else {}),
        }
        return out | dict(self.extra)

    def to_json(self) -> bytes:
        """The content of ``results.json`` (UTF-8, strict JSON)."""
        return json.dumps(self.to_dict(), indent=1, allow_nan=False).encode()

    # -- the models compared (:class:`~moulin.training.compared_models.ComparedModels`)
    def ranked(self, rank_by: str = "roc_auc") -> list[ModelResult]:
        """Models best first: ``best_model`` (the one chosen on validation) if given, then by
        test ``rank_by`` (missing values last)."""
        if rank_by not in HIGHER_IS_BETTER:
            raise ResultsError(f"rank_by: unknown metric {rank_by!r}, use one of {METRIC_NAMES}")
        sign = -1.0 if HIGHER_IS_BETTER[rank_by] else 1.0

        def key(m: ModelResult) -> tuple[int, bool, float]:
            v = m.metric(rank_by).value
            return (0 if m.model == self.best_model else 1, v is None, sign * (v or 0.0))

        return sorted(self.models, key=key)

    def in_order(self) -> list[ModelResult]:
        """The chosen model first, the others by test ROC AUC."""
        return self.ranked()

    @property
    def chosen(self) -> ModelResult | None:
        """The model chosen on validation; without a choice, the best by test ROC AUC."""
        ranked = self.ranked()
        return ranked[0] if ranked else None

    def comparison(self, a: str, b: str) -> PairComparison | None:
        """The comparison of models ``a`` and ``b``, with ``a`` first; None if they were not compared."""
        return next((o for c in self.comparisons if (o := c.oriented(a, b)) is not None), None)

    def model(self, name: str) -> ModelResult:
        """The model called ``name``; KeyError naming the models when there is none."""
        for m in self.models:
            if m.model == name:
                return m
        raise KeyError(f"no model {name!r} in the results: {[m.model for m in self.models]}")
