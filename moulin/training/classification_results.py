"""The results of a classifier suite run (``results.json``, format
``moulin.classification-results/1``) as one typed, frozen object.

:func:`moulin.training.classifiers.run_suite` builds and writes it; the
classification report (:mod:`moulin.reporting.classification`) reads it.  The
module imports the standard library only, so both the training environment and
the platform environment load it.

:meth:`ClassificationResults.from_dict` reads the JSON as written (field names
unchanged, so older files read too); :meth:`ClassificationResults.to_dict` gives
it back.  Only ``models``, ``selection`` (with its ``recommended`` model, one of
the models) and ``class_names`` are required; any other missing field reads as
None (or empty) and the report says "not available".  A malformed field raises
:class:`ResultsError` naming it.  Numbers that are not finite (NaN) read as None,
as they are written.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from moulin.errors import DataError

RESULTS_FORMAT = "moulin.classification-results/1"
#: Test metrics every model carries; any other test metric (a binary task's positive-class
#: metrics) is kept in :attr:`TestScores.extra_metrics`.
_TEST_FIELDS = (
    "n",
    "accuracy",
    "macro_f1",
    "per_class",
    "confusion",
    "ece",
    "reliability",
    "log_loss",
    "intervals",
)

Better = Literal["a", "b"]


class ResultsError(DataError, ValueError):
    """A classification results file is malformed; the message names the field."""


# -- reading helpers: each names the field it reads (``what``) in its error
def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ResultsError(f"{what}: expected an object, got {type(value).__name__}")
    return value


def _items(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise ResultsError(f"{what}: expected a list, got {type(value).__name__}")
    return list(value)


def _require(obj: Mapping[str, Any], key: str, what: str) -> Any:
    if obj.get(key) is None:
        raise ResultsError(
            f"{what}: missing required field {key!r}: not the results of a classifier suite run"
        )
    return obj[key]


def _num(value: Any, what: str) -> float | None:
    """A finite number as float; None when missing or not finite (NaN is written as null)."""
    if value is None:
        return None
    if isinstance(value, bool | str | bytes):
        raise ResultsError(f"{what}: expected a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise ResultsError(f"{what}: expected a number, got {value!r}") from exc
    return out if math.isfinite(out) else None


def _int(value: Any, what: str) -> int | None:
    out = _num(value, what)
    if out is None:
        return None
    if out != round(out):
        raise ResultsError(f"{what}: expected a whole number, got {value!r}")
    return int(out)


def _str(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ResultsError(f"{what}: expected a text, got {type(value).__name__}")
    return value


def _bool(value: Any, what: str) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise ResultsError(f"{what}: expected true or false, got {value!r}")
    return value


def _better(value: Any, what: str) -> Better | None:
    if value is None:
        return None
    if value not in ("a", "b"):
        raise ResultsError(f"{what}: expected 'a', 'b' or null, got {value!r}")
    return value


def _json(value: Any, what: str) -> Any:
    """A free-form JSON value (model settings), checked to be JSON-ready."""
    try:
        json.dumps(value, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise ResultsError(f"{what}: not a JSON value ({exc})") from exc
    return value


# -- the parts
@dataclass(frozen=True)
class Snapshot:
    """The pinned version of the table every model was trained and tested on."""

    table_uri: str | None = None
    version: int | None = None
    #: Rows of each split as the table's log counts them (before any sample), by split.
    rows_in_log: Mapping[str, int | None] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, obj: Any, what: str = "snapshot") -> Snapshot:
        obj = _mapping(obj, what)
        return cls(
            _str(obj.get("table_uri"), f"{what}.table_uri"),
            _int(obj.get("version"), f"{what}.version"),
            {
                str(k): _int(v, f"{what}.rows_in_log.{k}")
                for k, v in _mapping(obj.get("rows_in_log"), f"{what}.rows_in_log").items()
            },
        )

    def to_dict(self) -> dict[str, Any]:
        return {"table_uri": self.table_uri, "version": self.version, "rows_in_log": dict(self.rows_in_log)}


@dataclass(frozen=True)
class SplitRows:
    """Rows of each split the models were trained, chosen and measured on."""

    train: int | None = None
    validation: int | None = None
    test: int | None = None

    @classmethod
    def from_dict(cls, obj: Any, what: str = "split_rows") -> SplitRows:
        obj = _mapping(obj, what)
        return cls(*(_int(obj.get(s), f"{what}.{s}") for s in ("train", "validation", "test")))

    def to_dict(self) -> dict[str, int | None]:
        return {"train": self.train, "validation": self.validation, "test": self.test}

    @property
    def total(self) -> int:
        return sum(n for n in (self.train, self.validation, self.test) if n is not None)


@dataclass(frozen=True)
class Duplicates:
    """Items found in more than one split (exact copies), and items with conflicting labels."""

    train_and_test: int | None = None
    train_and_validation: int | None = None
    #: Items that occur more than once with different labels (None: not counted).
    conflicting_labels: int | None = None

    @classmethod
    def from_dict(cls, obj: Any, what: str = "duplicates") -> Duplicates:
        obj = _mapping(obj, what)
        return cls(
            *(
                _int(obj.get(k), f"{what}.{k}")
                for k in ("train_and_test", "train_and_validation", "conflicting_labels")
            )
        )

    def to_dict(self) -> dict[str, int | None]:
        out = {"train_and_test": self.train_and_test, "train_and_validation": self.train_and_validation}
        return out | (
            {"conflicting_labels": self.conflicting_labels} if self.conflicting_labels is not None else {}
        )


@dataclass(frozen=True)
class Published:
    """A test accuracy published by others on the same test set."""

    classifier: str | None
    preprocessing: str | None
    accuracy: float | None

    @classmethod
    def from_dict(cls, obj: Any, what: str) -> Published:
        obj = _mapping(obj, what)
        return cls(
            _str(obj.get("classifier"), f"{what}.classifier"),
            _str(obj.get("preprocessing"), f"{what}.preprocessing"),
            _num(obj.get("accuracy"), f"{what}.accuracy"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"classifier": self.classifier, "preprocessing": self.preprocessing, "accuracy": self.accuracy}


@dataclass(frozen=True)
class Selection:
    """How the recommended model was chosen: the best ``metric`` on ``split``."""

    recommended: str
    metric: str = "accuracy"
    split: str = "validation"

    @classmethod
    def from_dict(cls, obj: Any, what: str = "selection") -> Selection:
        obj = _mapping(obj, what)
        return cls(
            recommended=str(_require(obj, "recommended", what)),
            metric=_str(obj.get("metric"), f"{what}.metric") or "accuracy",
            split=_str(obj.get("split"), f"{what}.split") or "validation",
        )

    def to_dict(self) -> dict[str, str]:
        return {"split": self.split, "metric": self.metric, "recommended": self.recommended}


@dataclass(frozen=True)
class Interval:
    """A 95 % bootstrap interval; a bound is None where it could not be computed."""

    low: float | None = None
    high: float | None = None

    @classmethod
    def from_obj(cls, obj: Any, what: str) -> Interval:
        bounds = _items(obj, what)
        if len(bounds) not in (0, 2):
            raise ResultsError(f"{what}: expected [low, high], got {len(bounds)} value(s)")
        return cls(*(_num(b, f"{what}[{i}]") for i, b in enumerate(bounds)))

    def to_list(self) -> list[float | None]:
        return [self.low, self.high]


@dataclass(frozen=True)
class ClassScore:
    """Precision, recall and F1 of one class on the test rows (``class`` in the JSON is ``name``)."""

    name: str | None
    index: int | None
    support: int | None
    precision: float | None
    recall: float | None
    f1: float | None

    @classmethod
    def from_dict(cls, obj: Any, what: str) -> ClassScore:
        obj = _mapping(obj, what)
        return cls(
            _str(obj.get("class"), f"{what}.class"),
            _int(obj.get("index"), f"{what}.index"),
            _int(obj.get("support"), f"{what}.support"),
            *(_num(obj.get(k), f"{what}.{k}") for k in ("precision", "recall", "f1")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "class": self.name,
            "index": self.index,
            "support": self.support,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }


@dataclass(frozen=True)
class ReliabilityBin:
    """One non-empty confidence bin: its rows' mean stated confidence and their accuracy."""

    lower: float | None
    upper: float | None
    count: int | None
    mean_confidence: float | None
    accuracy: float | None

    @classmethod
    def from_dict(cls, obj: Any, what: str) -> ReliabilityBin:
        obj = _mapping(obj, what)
        return cls(
            _num(obj.get("lower"), f"{what}.lower"),
            _num(obj.get("upper"), f"{what}.upper"),
            _int(obj.get("count"), f"{what}.count"),
            _num(obj.get("mean_confidence"), f"{what}.mean_confidence"),
            _num(obj.get("accuracy"), f"{what}.accuracy"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "lower": self.lower,
            "upper": self.upper,
            "count": self.count,
            "mean_confidence": self.mean_confidence,
            "accuracy": self.accuracy,
        }


@dataclass(frozen=True)
class TestScores:
    """A model's evaluation on the test rows (:func:`~moulin.training.classification.classification_summary`)
    with the 95 % bootstrap interval of each metric."""

    n: int | None = None
    accuracy: float | None = None
    macro_f1: float | None = None
    per_class: tuple[ClassScore, ...] = ()
    #: Rows: the true class; columns: the predicted one (None: not recorded).
    confusion: tuple[tuple[int, ...], ...] | None = None
    ece: float | None = None
    reliability: tuple[ReliabilityBin, ...] = ()
    log_loss: float | None = None
    #: Test metrics beyond the above (a binary task's positive-class metrics), by name.
    extra_metrics: Mapping[str, float | None] = field(default_factory=dict)
    intervals: Mapping[str, Interval] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, obj: Any, what: str) -> TestScores:
        obj = _mapping(obj, what)
        rows = obj.get("confusion")
        confusion = None
        if rows is not None:
            confusion = tuple(
                tuple(
                    _int(v, f"{what}.confusion[{i}][{j}]") or 0
                    for j, v in enumerate(_items(row, f"{what}.confusion[{i}]"))
                )
                for i, row in enumerate(_items(rows, f"{what}.confusion"))
            )
        return cls(
            n=_int(obj.get("n"), f"{what}.n"),
            accuracy=_num(obj.get("accuracy"), f"{what}.accuracy"),
            macro_f1=_num(obj.get("macro_f1"), f"{what}.macro_f1"),
            per_class=tuple(
                ClassScore.from_dict(c, f"{what}.per_class[{i}]")
                for i, c in enumerate(_items(obj.get("per_class"), f"{what}.per_class"))
            ),
            confusion=confusion,
            ece=_num(obj.get("ece"), f"{what}.ece"),
            reliability=tuple(
                ReliabilityBin.from_dict(b, f"{what}.reliability[{i}]")
                for i, b in enumerate(_items(obj.get("reliability"), f"{what}.reliability"))
            ),
            log_loss=_num(obj.get("log_loss"), f"{what}.log_loss"),
            extra_metrics={k: _num(v, f"{what}.{k}") for k, v in obj.items() if k not in _TEST_FIELDS},
            intervals={
                str(k): Interval.from_obj(v, f"{what}.intervals.{k}")
                for k, v in _mapping(obj.get("intervals"), f"{what}.intervals").items()
            },
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "per_class": [c.to_dict() for c in self.per_class],
            "confusion": None if self.confusion is None else [list(row) for row in self.confusion],
            "ece": self.ece,
            "reliability": [b.to_dict() for b in self.reliability],
            "log_loss": self.log_loss,
            **self.extra_metrics,
            "intervals": {k: v.to_list() for k, v in self.intervals.items()},
        }

    def value(self, metric: str) -> float | None:
        """The test value of ``metric`` (None when not measured)."""
        known = {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "ece": self.ece,
            "log_loss": self.log_loss,
        }
        return known[metric] if metric in known else self.extra_metrics.get(metric)

    def interval(self, metric: str) -> Interval:
        """The 95 % interval of ``metric`` (both bounds None when not measured)."""
        return self.intervals.get(metric) or Interval()


@dataclass(frozen=True)
class Epoch:
    """One pass over the training rows of a network (:mod:`moulin.training.ddp`'s history)."""

    epoch: int | None
    train_loss: float | None = None
    val_loss: float | None = None
    val_logloss: float | None = None
    train_rows: int | None = None
    seconds: float | None = None
    #: The batches alone, without validation.
    train_seconds: float | None = None
    data_wait_seconds: float | None = None
    learning_rate: float | None = None
    val_accuracy: float | None = None

    @classmethod
    def from_dict(cls, obj: Any, what: str) -> Epoch:
        obj = _mapping(obj, what)
        ints = ("epoch", "train_rows")
        return cls(
            **{
                k: (_int if k in ints else _num)(obj.get(k), f"{what}.{k}")
                for k in cls.__dataclass_fields__  # the fields are the JSON keys
            }
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class PhaseTraining:
    """One training phase of a network: its epochs, the best one and how it ran."""

    history: tuple[Epoch, ...] = ()
    best_epoch: int | None = None
    best_val_loss: float | None = None
    rows_per_rank: tuple[int, ...] = ()
    tail_rows: int | None = None
    world_size: int | None = None
    backend: str | None = None
    device: str | None = None
    checkpoints: tuple[str, ...] = ()
    resumed_from_epoch: int | None = None
    fingerprint: str | None = None
    #: Checkpoints of another training found in the folder, set aside (their new URIs).
    set_aside: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, obj: Any, what: str) -> PhaseTraining:
        obj = _mapping(obj, what)
        return cls(
            history=tuple(
                Epoch.from_dict(h, f"{what}.history[{i}]")
                for i, h in enumerate(_items(obj.get("history"), f"{what}.history"))
            ),
            best_epoch=_int(obj.get("best_epoch"), f"{what}.best_epoch"),
            best_val_loss=_num(obj.get("best_val_loss"), f"{what}.best_val_loss"),
            rows_per_rank=tuple(
                _int(v, f"{what}.rows_per_rank[{i}]") or 0
                for i, v in enumerate(_items(obj.get("rows_per_rank"), f"{what}.rows_per_rank"))
            ),
            tail_rows=_int(obj.get("tail_rows"), f"{what}.tail_rows"),
            world_size=_int(obj.get("world_size"), f"{what}.world_size"),
            backend=_str(obj.get("backend"), f"{what}.backend"),
            device=_str(obj.get("device"), f"{what}.device"),
            checkpoints=tuple(
                _str(v, f"{what}.checkpoints[{i}]") or ""
                for i, v in enumerate(_items(obj.get("checkpoints"), f"{what}.checkpoints"))
            ),
            resumed_from_epoch=_int(obj.get("resumed_from_epoch"), f"{what}.resumed_from_epoch"),
            fingerprint=_str(obj.get("fingerprint"), f"{what}.fingerprint"),
            set_aside=tuple(
                _str(v, f"{what}.set_aside[{i}]") or ""
                for i, v in enumerate(_items(obj.get("set_aside"), f"{what}.set_aside"))
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "history": [h.to_dict() for h in self.history],
            "best_epoch": self.best_epoch,
            "best_val_loss": self.best_val_loss,
            "rows_per_rank": list(self.rows_per_rank),
            "tail_rows": self.tail_rows,
            "world_size": self.world_size,
            "backend": self.backend,
            "device": self.device,
            "checkpoints": list(self.checkpoints),
            "resumed_from_epoch": self.resumed_from_epoch,
            "fingerprint": self.fingerprint,
            "set_aside": list(self.set_aside),
        }


@dataclass(frozen=True)
class ModelEvaluation:
    """One model of the run: validation scores (for the choice), test scores with intervals, cost."""

    model: str
    family: str | None = None
    validation: Mapping[str, float | None] = field(default_factory=dict)
    test: TestScores = field(default_factory=TestScores)
    train_seconds: float | None = None
    n_parameters: int | None = None
    predict_rows_per_s: float | None = None
    #: The model's settings as trained (free-form: a network's phases, a baseline's C, ...).
    params: Mapping[str, Any] = field(default_factory=dict)
    model_uri: str | None = None
    #: A network's training phases by name, in order (empty: not trained epoch by epoch).
    training: Mapping[str, PhaseTraining] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, obj: Any, what: str) -> ModelEvaluation:
        obj = _mapping(obj, what)
        return cls(
            model=str(_require(obj, "model", what)),
            family=_str(obj.get("family"), f"{what}.family"),
            validation={
                str(k): _num(v, f"{what}.validation.{k}")
                for k, v in _mapping(obj.get("validation"), f"{what}.validation").items()
            },
            test=TestScores.from_dict(obj.get("test"), f"{what}.test"),
            train_seconds=_num(obj.get("train_seconds"), f"{what}.train_seconds"),
            n_parameters=_int(obj.get("n_parameters"), f"{what}.n_parameters"),
            predict_rows_per_s=_num(obj.get("predict_rows_per_s"), f"{what}.predict_rows_per_s"),
            params=dict(_json(_mapping(obj.get("params"), f"{what}.params"), f"{what}.params")),
            model_uri=_str(obj.get("model_uri"), f"{what}.model_uri"),
            training={
                str(k): PhaseTraining.from_dict(v, f"{what}.training.{k}")
                for k, v in _mapping(obj.get("training"), f"{what}.training").items()
            },
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "family": self.family,
            "validation": dict(self.validation),
            "test": self.test.to_dict(),
            "train_seconds": self.train_seconds,
            "n_parameters": self.n_parameters,
            "predict_rows_per_s": self.predict_rows_per_s,
            "params": dict(self.params),
            "model_uri": self.model_uri,
            **({"training": {k: v.to_dict() for k, v in self.training.items()}} if self.training else {}),
        }

    @property
    def phase_learning_rates(self) -> dict[str, float]:
        """The configured learning rate of each training phase, by phase name (from ``params``)."""
        phases = self.params.get("phases")
        if not isinstance(phases, list):
            return {}
        return {
            str(p["name"]): float(p["learning_rate"])
            for p in phases
            if isinstance(p, Mapping)
            and p.get("name") is not None
            and isinstance(p.get("learning_rate"), int | float)
        }


@dataclass(frozen=True)
class McNemar:
    """McNemar's exact test of two models' predictions on the same test rows (accuracy)."""

    a_right_b_wrong: int | None = None
    a_wrong_b_right: int | None = None
    p_value: float | None = None
    statistic: float | None = None
    method: str | None = None
    significant: bool | None = None
    better: Better | None = None

    @classmethod
    def from_dict(cls, obj: Any, what: str) -> McNemar:
        obj = _mapping(obj, what)
        return cls(
            _int(obj.get("a_right_b_wrong"), f"{what}.a_right_b_wrong"),
            _int(obj.get("a_wrong_b_right"), f"{what}.a_wrong_b_right"),
            _num(obj.get("p_value"), f"{what}.p_value"),
            _num(obj.get("statistic"), f"{what}.statistic"),
            _str(obj.get("method"), f"{what}.method"),
            _bool(obj.get("significant"), f"{what}.significant"),
            _better(obj.get("better"), f"{what}.better"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class PairComparison:
    """Two models compared on the same test rows: the paired bootstrap of ``metric``'s
    difference a − b (Holm-adjusted over the pairs) and McNemar's test."""

    a: str
    b: str
    metric: str | None = None
    metric_a: float | None = None
    metric_b: float | None = None
    difference: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    significant: bool | None = None
    better: Better | None = None
    n_resamples: int | None = None
    #: Resamples where both metrics were defined.
    n_defined: int | None = None
    grouped: bool | None = None
    p_adjusted: float | None = None
    mcnemar: McNemar | None = None

    @classmethod
    def from_dict(cls, obj: Any, what: str) -> PairComparison:
        obj = _mapping(obj, what)
        nums = ("metric_a", "metric_b", "difference", "ci_low", "ci_high", "p_value", "p_adjusted")
        return cls(
            a=str(_require(obj, "a", what)),
            b=str(_require(obj, "b", what)),
            metric=_str(obj.get("metric"), f"{what}.metric"),
            **{k: _num(obj.get(k), f"{what}.{k}") for k in nums},
            significant=_bool(obj.get("significant"), f"{what}.significant"),
            better=_better(obj.get("better"), f"{what}.better"),
            n_resamples=_int(obj.get("n_resamples"), f"{what}.n_resamples"),
            n_defined=_int(obj.get("n_defined"), f"{what}.n_defined"),
            grouped=_bool(obj.get("grouped"), f"{what}.grouped"),
            mcnemar=None
            if obj.get("mcnemar") is None
            else McNemar.from_dict(obj["mcnemar"], f"{what}.mcnemar"),
        )

    def to_dict(self) -> dict[str, Any]:
        keys = (
            "a",
            "b",
            "metric_a",
            "metric_b",
            "difference",
            "ci_low",
            "ci_high",
            "p_value",
            "significant",
            "better",
            "n_resamples",
            "n_defined",
            "grouped",
            "p_adjusted",
            "metric",
        )
        out = {k: getattr(self, k) for k in keys}
        return out | ({"mcnemar": self.mcnemar.to_dict()} if self.mcnemar is not None else {})


@dataclass(frozen=True)
class Bootstrap:
    """How the intervals and paired tests were resampled."""

    resamples: int | None = None
    grouped: bool | None = None
    seed: int | None = None

    @classmethod
    def from_dict(cls, obj: Any, what: str = "bootstrap") -> Bootstrap:
        obj = _mapping(obj, what)
        return cls(
            _int(obj.get("resamples"), f"{what}.resamples"),
            _bool(obj.get("grouped"), f"{what}.grouped"),
            _int(obj.get("seed"), f"{what}.seed"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"resamples": self.resamples, "grouped": self.grouped, "seed": self.seed}


_EXAMPLE_FIELDS = ("row", "key", "true", "predicted", "confidence", "image", "text")


@dataclass(frozen=True)
class Example:
    """A test row the recommended model got wrong: true and predicted class indices, the
    probability it gave its answer, and what the report shows of it (an image data URI or a text)."""

    key: str | None = None
    true: int | None = None
    predicted: int | None = None
    confidence: float | None = None
    #: Position among the test rows.
    row: int | None = None
    image: str | None = None
    text: str | None = None
    #: What a use case added beyond the image or text, kept as written.
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, obj: Any, what: str) -> Example:
        obj = _mapping(obj, what)
        key = obj.get("key")
        return cls(
            key=None if key is None else str(key),
            true=_int(obj.get("true"), f"{what}.true"),
            predicted=_int(obj.get("predicted"), f"{what}.predicted"),
            confidence=_num(obj.get("confidence"), f"{what}.confidence"),
            row=_int(obj.get("row"), f"{what}.row"),
            image=_str(obj.get("image"), f"{what}.image"),
            text=_str(obj.get("text"), f"{what}.text"),
            extra={str(k): _json(v, f"{what}.{k}") for k, v in obj.items() if k not in _EXAMPLE_FIELDS},
        )

    def to_dict(self) -> dict[str, Any]:
        out = {
            "row": self.row,
            "key": self.key,
            "true": self.true,
            "predicted": self.predicted,
            "confidence": self.confidence,
        }
        shown = {k: v for k, v in (("image", self.image), ("text", self.text)) if v is not None}
        return out | shown | dict(self.extra)


@dataclass(frozen=True)
class WorstExamples:
    """The test rows ``model`` got wrong with the most confidence, most confident first."""

    model: str | None = None
    examples: tuple[Example, ...] = ()

    @classmethod
    def from_dict(cls, obj: Any, what: str = "worst_test_examples") -> WorstExamples:
        obj = _mapping(obj, what)
        return cls(
            _str(obj.get("model"), f"{what}.model"),
            tuple(
                Example.from_dict(e, f"{what}.examples[{i}]")
                for i, e in enumerate(_items(obj.get("examples"), f"{what}.examples"))
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "examples": [e.to_dict() for e in self.examples]}


#: Top-level fields of the results, in the order they are written.
_FIELDS = (
    "format",
    "use_case",
    "run_id",
    "created_at",
    "code_version",
    "snapshot",
    "sample",
    "split_rows",
    "class_names",
    "duplicates",
    "published",
    "selection",
    "models",
    "comparisons",
    "bootstrap",
    "worst_test_examples",
    "total_seconds",
)


@dataclass(frozen=True)
class ClassificationResults:
    """One classifier suite run: what it trained on, every model's scores, the model chosen
    on validation, the paired comparisons and the recommended model's worst mistakes."""

    models: tuple[ModelEvaluation, ...]
    selection: Selection
    class_names: tuple[str, ...]
    #: None: a file that does not say.
    format: str | None = RESULTS_FORMAT
    use_case: str | None = None
    run_id: str | None = None
    created_at: str | None = None
    code_version: str | None = None
    snapshot: Snapshot = field(default_factory=Snapshot)
    #: Fraction of rows kept in every split (None: all).
    sample: float | None = None
    split_rows: SplitRows = field(default_factory=SplitRows)
    #: None: the use case does not count copies.
    duplicates: Duplicates | None = None
    published: tuple[Published, ...] = ()
    comparisons: tuple[PairComparison, ...] = ()
    bootstrap: Bootstrap = field(default_factory=Bootstrap)
    worst_test_examples: WorstExamples = field(default_factory=WorstExamples)
    total_seconds: float | None = None
    #: Top-level entries a use case added beyond the above, kept as written.
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.models:
            raise ResultsError("models: empty, no model to report on")
        names = [m.model for m in self.models]
        if len(set(names)) != len(names):
            raise ResultsError(f"models: duplicate model names {names}")
        if self.selection.recommended not in names:
            raise ResultsError(
                f"selection.recommended: {self.selection.recommended!r} is not one of the models {names}"
            )

    @classmethod
    def from_dict(cls, obj: Any) -> ClassificationResults:
        """The results as written in ``results.json`` (a dict read from its JSON)."""
        if not isinstance(obj, Mapping):
            raise ResultsError(f"results: expected an object, got {type(obj).__name__}")
        for key in ("models", "selection", "class_names"):
            _require(obj, key, "results")
        sample = obj.get("sample")
        return cls(
            models=tuple(
                ModelEvaluation.from_dict(m, f"models[{i}]")
                for i, m in enumerate(_items(obj["models"], "models"))
            ),
            selection=Selection.from_dict(obj["selection"]),
            class_names=tuple(
                str(_str(c, f"class_names[{i}]"))
                for i, c in enumerate(_items(obj["class_names"], "class_names"))
            ),
            format=_str(obj.get("format"), "format"),
            use_case=_str(obj.get("use_case"), "use_case"),
            run_id=_str(obj.get("run_id"), "run_id"),
            created_at=_str(obj.get("created_at"), "created_at"),
            code_version=_str(obj.get("code_version"), "code_version"),
            snapshot=Snapshot.from_dict(obj.get("snapshot")),
            sample=_num(sample, "sample"),
            split_rows=SplitRows.from_dict(obj.get("split_rows")),
            duplicates=None if obj.get("duplicates") is None else Duplicates.from_dict(obj["duplicates"]),
            published=tuple(
                Published.from_dict(p, f"published[{i}]")
                for i, p in enumerate(_items(obj.get("published"), "published"))
            ),
            comparisons=tuple(
                PairComparison.from_dict(c, f"comparisons[{i}]")
                for i, c in enumerate(_items(obj.get("comparisons"), "comparisons"))
            ),
            bootstrap=Bootstrap.from_dict(obj.get("bootstrap")),
            worst_test_examples=WorstExamples.from_dict(obj.get("worst_test_examples")),
            total_seconds=_num(obj.get("total_seconds"), "total_seconds"),
            extra={k: _json(v, k) for k, v in obj.items() if k not in _FIELDS},
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> ClassificationResults:
        """The results of a ``results.json`` file's content."""
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise ResultsError(f"results: not JSON ({exc}): not a results.json file") from exc
        return cls.from_dict(obj)

    def to_dict(self) -> dict[str, Any]:
        """The results as ``results.json`` holds them (JSON-ready: undefined numbers are None)."""
        out: dict[str, Any] = {
            "format": self.format,
            "use_case": self.use_case,
            "run_id": self.run_id,
            "created_at": self.created_at,
            "code_version": self.code_version,
            "snapshot": self.snapshot.to_dict(),
            "sample": self.sample,
            "split_rows": self.split_rows.to_dict(),
            "class_names": list(self.class_names),
            **({"duplicates": self.duplicates.to_dict()} if self.duplicates is not None else {}),
            "published": [p.to_dict() for p in self.published],
            "selection": self.selection.to_dict(),
            "models": [m.to_dict() for m in self.models],
            "comparisons": [c.to_dict() for c in self.comparisons],
            "bootstrap": self.bootstrap.to_dict(),
            "worst_test_examples": self.worst_test_examples.to_dict(),
            "total_seconds": self.total_seconds,
        }
        return out | dict(self.extra)

    def to_json(self) -> bytes:
        """The content of ``results.json`` (UTF-8, strict JSON)."""
        return json.dumps(self.to_dict(), indent=1, allow_nan=False).encode()

    @property
    def recommended(self) -> ModelEvaluation:
        """The model chosen on validation."""
        return next(m for m in self.models if m.model == self.selection.recommended)

    def model(self, name: str) -> ModelEvaluation:
        """The model called ``name``; KeyError naming the models when there is none."""
        for m in self.models:
            if m.model == name:
                return m
        raise KeyError(f"no model {name!r} in the results: {[m.model for m in self.models]}")


@dataclass(frozen=True)
class GateCounts:
    """The bronze quality gate's row accounting of the data a run trained on (given beside
    the results, not in ``results.json``): rows announced by the files, read, kept and set
    aside, and the rows set aside by reason."""

    rows_manifest: int | None = None
    rows_read: int | None = None
    rows_bronze: int | None = None
    rows_quarantined: int | None = None
    quarantine_reasons: Mapping[str, int | None] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, obj: Any, what: str = "quality") -> GateCounts:
        """The counts as a dict with the field names (``failures``, as a gate's outcome
        calls the reasons, is read too)."""
        obj = _mapping(obj, what)
        reasons = obj.get("quarantine_reasons", obj.get("failures"))
        return cls(
            *(
                _int(obj.get(k), f"{what}.{k}")
                for k in ("rows_manifest", "rows_read", "rows_bronze", "rows_quarantined")
            ),
            quarantine_reasons={
                str(k): _int(v, f"{what}.quarantine_reasons[{k!r}]")
                for k, v in _mapping(reasons, f"{what}.quarantine_reasons").items()
            },
        )
