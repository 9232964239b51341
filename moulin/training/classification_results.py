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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from moulin.json_fields import FieldReader
from moulin.training.compared_models import (
    Interval,
    PairComparison,
    ResultsError,
    Selection,
)

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

#: Reads the fields of a classifier suite's results.
_READ = FieldReader(ResultsError, "not the results of a classifier suite run")


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
        obj = _READ.mapping(obj, what)
        return cls(
            _READ.str(obj.get("table_uri"), f"{what}.table_uri"),
            _READ.int(obj.get("version"), f"{what}.version"),
            {
                str(k): _READ.int(v, f"{what}.rows_in_log.{k}")
                for k, v in _READ.mapping(obj.get("rows_in_log"), f"{what}.rows_in_log").items()
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
        obj = _READ.mapping(obj, what)
        return cls(*(_READ.int(obj.get(s), f"{what}.{s}") for s in ("train", "validation", "test")))

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
        obj = _READ.mapping(obj, what)
        return cls(
            *(
                _READ.int(obj.get(k), f"{what}.{k}")
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
        obj = _READ.mapping(obj, what)
        return cls(
            _READ.str(obj.get("classifier"), f"{what}.classifier"),
            _READ.str(obj.get("preprocessing"), f"{what}.preprocessing"),
            _READ.num(obj.get("accuracy"), f"{what}.accuracy"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"classifier": self.classifier, "preprocessing": self.preprocessing, "accuracy": self.accuracy}


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
        obj = _READ.mapping(obj, what)
        return cls(
            _READ.str(obj.get("class"), f"{what}.class"),
            _READ.int(obj.get("index"), f"{what}.index"),
            _READ.int(obj.get("support"), f"{what}.support"),
            *(_READ.num(obj.get(k), f"{what}.{k}") for k in ("precision", "recall", "f1")),
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
        obj = _READ.mapping(obj, what)
        return cls(
            _READ.num(obj.get("lower"), f"{what}.lower"),
            _READ.num(obj.get("upper"), f"{what}.upper"),
            _READ.int(obj.get("count"), f"{what}.count"),
            _READ.num(obj.get("mean_confidence"), f"{what}.mean_confidence"),
            _READ.num(obj.get("accuracy"), f"{what}.accuracy"),
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
        obj = _READ.mapping(obj, what)
        rows = obj.get("confusion")
        confusion = None
        if rows is not None:
            confusion = tuple(
                tuple(
                    _READ.int(v, f"{what}.confusion[{i}][{j}]") or 0
                    for j, v in enumerate(_READ.items(row, f"{what}.confusion[{i}]"))
                )
                for i, row in enumerate(_READ.items(rows, f"{what}.confusion"))
            )
        return cls(
            n=_READ.int(obj.get("n"), f"{what}.n"),
            accuracy=_READ.num(obj.get("accuracy"), f"{what}.accuracy"),
            macro_f1=_READ.num(obj.get("macro_f1"), f"{what}.macro_f1"),
            per_class=tuple(
                ClassScore.from_dict(c, f"{what}.per_class[{i}]")
                for i, c in enumerate(_READ.items(obj.get("per_class"), f"{what}.per_class"))
            ),
            confusion=confusion,
            ece=_READ.num(obj.get("ece"), f"{what}.ece"),
            reliability=tuple(
                ReliabilityBin.from_dict(b, f"{what}.reliability[{i}]")
                for i, b in enumerate(_READ.items(obj.get("reliability"), f"{what}.reliability"))
            ),
            log_loss=_READ.num(obj.get("log_loss"), f"{what}.log_loss"),
            extra_metrics={k: _READ.num(v, f"{what}.{k}") for k, v in obj.items() if k not in _TEST_FIELDS},
            intervals={
                str(k): Interval.from_obj(v, f"{what}.intervals.{k}", _READ)
                for k, v in _READ.mapping(obj.get("intervals"), f"{what}.intervals").items()
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
        obj = _READ.mapping(obj, what)
        ints = ("epoch", "train_rows")
        return cls(
            **{
                k: (_READ.int if k in ints else _READ.num)(obj.get(k), f"{what}.{k}")
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
        obj = _READ.mapping(obj, what)
        return cls(
            history=tuple(
                Epoch.from_dict(h, f"{what}.history[{i}]")
                for i, h in enumerate(_READ.items(obj.get("history"), f"{what}.history"))
            ),
            best_epoch=_READ.int(obj.get("best_epoch"), f"{what}.best_epoch"),
            best_val_loss=_READ.num(obj.get("best_val_loss"), f"{what}.best_val_loss"),
            rows_per_rank=tuple(
                _READ.int(v, f"{what}.rows_per_rank[{i}]") or 0
                for i, v in enumerate(_READ.items(obj.get("rows_per_rank"), f"{what}.rows_per_rank"))
            ),
            tail_rows=_READ.int(obj.get("tail_rows"), f"{what}.tail_rows"),
            world_size=_READ.int(obj.get("world_size"), f"{what}.world_size"),
            backend=_READ.str(obj.get("backend"), f"{what}.backend"),
            device=_READ.str(obj.get("device"), f"{what}.device"),
            checkpoints=tuple(
                _READ.str(v, f"{what}.checkpoints[{i}]") or ""
                for i, v in enumerate(_READ.items(obj.get("checkpoints"), f"{what}.checkpoints"))
            ),
            resumed_from_epoch=_READ.int(obj.get("resumed_from_epoch"), f"{what}.resumed_from_epoch"),
            fingerprint=_READ.str(obj.get("fingerprint"), f"{what}.fingerprint"),
            set_aside=tuple(
                _READ.str(v, f"{what}.set_aside[{i}]") or ""
                for i, v in enumerate(_READ.items(obj.get("set_aside"), f"{what}.set_aside"))
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
        obj = _READ.mapping(obj, what)
        return cls(
            model=str(_READ.require(obj, "model", what)),
            family=_READ.str(obj.get("family"), f"{what}.family"),
            validation={
                str(k): _READ.num(v, f"{what}.validation.{k}")
                for k, v in _READ.mapping(obj.get("validation"), f"{what}.validation").items()
            },
            test=TestScores.from_dict(obj.get("test"), f"{what}.test"),
            train_seconds=_READ.num(obj.get("train_seconds"), f"{what}.train_seconds"),
            n_parameters=_READ.int(obj.get("n_parameters"), f"{what}.n_parameters"),
            predict_rows_per_s=_READ.num(obj.get("predict_rows_per_s"), f"{what}.predict_rows_per_s"),
            params=dict(_READ.json(_READ.mapping(obj.get("params"), f"{what}.params"), f"{what}.params")),
            model_uri=_READ.str(obj.get("model_uri"), f"{what}.model_uri"),
            training={
                str(k): PhaseTraining.from_dict(v, f"{what}.training.{k}")
                for k, v in _READ.mapping(obj.get("training"), f"{what}.training").items()
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
class Bootstrap:
    """How the intervals and paired tests were resampled."""

    resamples: int | None = None
    grouped: bool | None = None
    seed: int | None = None

    @classmethod
    def from_dict(cls, obj: Any, what: str = "bootstrap") -> Bootstrap:
        obj = _READ.mapping(obj, what)
        return cls(
            _READ.int(obj.get("resamples"), f"{what}.resamples"),
            _READ.bool(obj.get("grouped"), f"{what}.grouped"),
            _READ.int(obj.get("seed"), f"{what}.seed"),
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
        obj = _READ.mapping(obj, what)
        key = obj.get("key")
        return cls(
            key=None if key is None else str(key),
            true=_READ.int(obj.get("true"), f"{what}.true"),
            predicted=_READ.int(obj.get("predicted"), f"{what}.predicted"),
            confidence=_READ.num(obj.get("confidence"), f"{what}.confidence"),
            row=_READ.int(obj.get("row"), f"{what}.row"),
            image=_READ.str(obj.get("image"), f"{what}.image"),
            text=_READ.str(obj.get("text"), f"{what}.text"),
            extra={str(k): _READ.json(v, f"{what}.{k}") for k, v in obj.items() if k not in _EXAMPLE_FIELDS},
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
        obj = _READ.mapping(obj, what)
        return cls(
            _READ.str(obj.get("model"), f"{what}.model"),
            tuple(
                Example.from_dict(e, f"{what}.examples[{i}]")
                for i, e in enumerate(_READ.items(obj.get("examples"), f"{what}.examples"))
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
            _READ.require(obj, key, "results")
        sample = obj.get("sample")
        return cls(
            models=tuple(
                ModelEvaluation.from_dict(m, f"models[{i}]")
                for i, m in enumerate(_READ.items(obj["models"], "models"))
            ),
            selection=Selection.from_dict(obj["selection"], read=_READ),
            class_names=tuple(
                str(_READ.str(c, f"class_names[{i}]"))
                for i, c in enumerate(_READ.items(obj["class_names"], "class_names"))
            ),
            format=_READ.str(obj.get("format"), "format"),
            use_case=_READ.str(obj.get("use_case"), "use_case"),
            run_id=_READ.str(obj.get("run_id"), "run_id"),
            created_at=_READ.str(obj.get("created_at"), "created_at"),
            code_version=_READ.str(obj.get("code_version"), "code_version"),
            snapshot=Snapshot.from_dict(obj.get("snapshot")),
            sample=_READ.num(sample, "sample"),
            split_rows=SplitRows.from_dict(obj.get("split_rows")),
            duplicates=None if obj.get("duplicates") is None else Duplicates.from_dict(obj["duplicates"]),
            published=tuple(
                Published.from_dict(p, f"published[{i}]")
                for i, p in enumerate(_READ.items(obj.get("published"), "published"))
            ),
            comparisons=tuple(
                PairComparison.from_dict(c, f"comparisons[{i}]", _READ)
                for i, c in enumerate(_READ.items(obj.get("comparisons"), "comparisons"))
            ),
            bootstrap=Bootstrap.from_dict(obj.get("bootstrap")),
            worst_test_examples=WorstExamples.from_dict(obj.get("worst_test_examples")),
            total_seconds=_READ.num(obj.get("total_seconds"), "total_seconds"),
            extra={k: _READ.json(v, k) for k, v in obj.items() if k not in _FIELDS},
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

    @property
    def chosen(self) -> ModelEvaluation:
        """The model to use: the one chosen on validation (:class:`~moulin.training.compared_models.ComparedModels`)."""
        return self.recommended

    def in_order(self) -> list[ModelEvaluation]:
        """The recommended model first, then the others by their validation score, best first."""
        metric, chosen = self.selection.metric, self.recommended
        others = [m for m in self.models if m is not chosen]
        others.sort(key=lambda m: (m.validation.get(metric) is None, -(m.validation.get(metric) or 0.0)))
        return [chosen, *others]

    def comparison(self, a: str, b: str) -> PairComparison | None:
        """The comparison of models ``a`` and ``b``, with ``a`` first; None if they were not compared."""
        return next((o for c in self.comparisons if (o := c.oriented(a, b)) is not None), None)

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
        obj = _READ.mapping(obj, what)
        reasons = obj.get("quarantine_reasons", obj.get("failures"))
        return cls(
            *(
                _READ.int(obj.get(k), f"{what}.{k}")
                for k in ("rows_manifest", "rows_read", "rows_bronze", "rows_quarantined")
            ),
            quarantine_reasons={
                str(k): _READ.int(v, f"{what}.quarantine_reasons[{k!r}]")
                for k, v in _READ.mapping(reasons, f"{what}.quarantine_reasons").items()
            },
        )
