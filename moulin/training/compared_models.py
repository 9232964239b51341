"""What every training run's results share, binary (:mod:`moulin.training.training_results`)
or multi-class (:mod:`moulin.training.classification_results`): a metric with its 95 %
interval, how the recommended model was chosen, the paired comparisons of the models on
the same test rows, and :class:`ComparedModels`, the protocol both results implement
(the models in order, the chosen one first, and their comparisons) that the report's
model comparison (:mod:`moulin.reporting.model_table`) reads.

Standard library only, so both the training environment and the platform environment
load it.  A malformed field raises :class:`ResultsError` naming it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from moulin.errors import DataError
from moulin.json_fields import FieldReader

Better = Literal["a", "b"]


class ResultsError(DataError, ValueError):
    """A training results file is malformed; the message names the field."""


#: Reads the fields every results document shares.
READ = FieldReader(ResultsError, "not the results of a training run")


def read_better(value: Any, what: str, read: FieldReader = READ) -> Better | None:
    """Which of a pair is better: ``"a"``, ``"b"`` or None (not significant)."""
    if value is None:
        return None
    if value not in ("a", "b"):
        raise read.fail(what, f"expected 'a', 'b' or null, got {value!r}")
    return value


@dataclass(frozen=True)
class Interval:
    """A 95 % bootstrap interval; a bound is None where it could not be computed."""

    low: float | None = None
    high: float | None = None

    @classmethod
    def from_obj(cls, obj: Any, what: str, read: FieldReader = READ) -> Interval:
        """The interval written as ``[low, high]`` (or ``[]``: not computed)."""
        bounds = read.items(obj, what)
        if len(bounds) not in (0, 2):
            raise read.fail(what, f"expected [low, high], got {len(bounds)} value(s)")
        return cls(*(read.num(b, f"{what}[{i}]") for i, b in enumerate(bounds)))

    def to_list(self) -> list[float | None]:
        return [self.low, self.high]

    @property
    def width(self) -> float | None:
        """high − low (None when a bound is missing)."""
        if self.low is None or self.high is None:
            return None
        return self.high - self.low


@dataclass(frozen=True)
class Metric:
    """A metric's value with its 95 % interval (bounds may be missing)."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None

    @classmethod
    def of(cls, value: float | None, interval: Interval) -> Metric:
        """The metric ``value`` with ``interval``."""
        return cls(value, interval.low, interval.high)

    @classmethod
    def from_obj(cls, obj: Any, what: str, read: FieldReader = READ) -> Metric:
        """The metric written as ``{"value", "ci_low", "ci_high"}`` (or as a bare number)."""
        if isinstance(obj, Mapping):
            return cls(
                read.num(obj.get("value"), f"{what}.value"),
                read.num(obj.get("ci_low"), f"{what}.ci_low"),
                read.num(obj.get("ci_high"), f"{what}.ci_high"),
            )
        return cls(read.num(obj, what))

    def to_dict(self) -> dict[str, float | None]:
        return {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high}

    @property
    def interval(self) -> Interval:
        return Interval(self.ci_low, self.ci_high)

    @property
    def ci_width(self) -> float | None:
        return self.interval.width


@dataclass(frozen=True)
class Selection:
    """How the recommended model was chosen: the best ``metric`` on ``split``."""

    recommended: str
    metric: str = "accuracy"
    split: str = "validation"

    @classmethod
    def from_dict(cls, obj: Any, what: str = "selection", read: FieldReader = READ) -> Selection:
        obj = read.mapping(obj, what)
        return cls(
            recommended=str(read.require(obj, "recommended", what)),
            metric=read.str(obj.get("metric"), f"{what}.metric") or "accuracy",
            split=read.str(obj.get("split"), f"{what}.split") or "validation",
        )

    def to_dict(self) -> dict[str, str]:
        return {"split": self.split, "metric": self.metric, "recommended": self.recommended}


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
    def from_dict(cls, obj: Any, what: str, read: FieldReader = READ) -> McNemar:
        obj = read.mapping(obj, what)
        return cls(
            read.int(obj.get("a_right_b_wrong"), f"{what}.a_right_b_wrong"),
            read.int(obj.get("a_wrong_b_right"), f"{what}.a_wrong_b_right"),
            read.num(obj.get("p_value"), f"{what}.p_value"),
            read.num(obj.get("statistic"), f"{what}.statistic"),
            read.str(obj.get("method"), f"{what}.method"),
            read.bool(obj.get("significant"), f"{what}.significant"),
            read_better(obj.get("better"), f"{what}.better", read),
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


#: The fields of a paired comparison, in the order they are written.
_PAIR_FIELDS = (
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


@dataclass(frozen=True)
class PairComparison:
    """Two models compared on the same test rows: the paired bootstrap of ``metric``'s
    difference a − b (Holm-adjusted over the pairs) and, for a multi-class run,
    McNemar's test (:func:`moulin.training.classification.compare_models`)."""

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
    def from_dict(cls, obj: Any, what: str, read: FieldReader = READ) -> PairComparison:
        obj = read.mapping(obj, what)
        nums = ("metric_a", "metric_b", "difference", "ci_low", "ci_high", "p_value", "p_adjusted")
        return cls(
            a=str(read.require(obj, "a", what)),
            b=str(read.require(obj, "b", what)),
            metric=read.str(obj.get("metric"), f"{what}.metric"),
            **{k: read.num(obj.get(k), f"{what}.{k}") for k in nums},
            significant=read.bool(obj.get("significant"), f"{what}.significant"),
            better=read_better(obj.get("better"), f"{what}.better", read),
            n_resamples=read.int(obj.get("n_resamples"), f"{what}.n_resamples"),
            n_defined=read.int(obj.get("n_defined"), f"{what}.n_defined"),
            grouped=read.bool(obj.get("grouped"), f"{what}.grouped"),
            mcnemar=None
            if obj.get("mcnemar") is None
            else McNemar.from_dict(obj["mcnemar"], f"{what}.mcnemar", read),
        )

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in _PAIR_FIELDS}
        return out | ({"mcnemar": self.mcnemar.to_dict()} if self.mcnemar is not None else {})

    def oriented(self, a: str, b: str) -> PairComparison | None:
        """This comparison with ``a`` first (difference, interval and winner turned round
        when it was written the other way); None when it compares another pair."""
        if (self.a, self.b) == (a, b):
            return self
        if (self.a, self.b) != (b, a):
            return None
        flip = {"a": "b", "b": "a"}
        return PairComparison(
            a=a,
            b=b,
            metric=self.metric,
            metric_a=self.metric_b,
            metric_b=self.metric_a,
            difference=-(self.difference or 0.0),
            ci_low=-(self.ci_high or 0.0),
            ci_high=-(self.ci_low or 0.0),
            p_value=self.p_value,
            significant=self.significant,
            better=flip.get(self.better or "", None),  # type: ignore[arg-type]
            n_resamples=self.n_resamples,
            n_defined=self.n_defined,
            grouped=self.grouped,
            p_adjusted=self.p_adjusted,
            mcnemar=self.mcnemar,
        )


class NamedModel(Protocol):
    """A model of a run's results: its name and family."""

    @property
    def model(self) -> str: ...

    @property
    def family(self) -> str | None: ...


ModelT_co = TypeVar("ModelT_co", bound=NamedModel, covariant=True)


class ComparedModels(Protocol[ModelT_co]):
    """A run's models compared: binary (:class:`~moulin.training.training_results.TrainingResults`)
    or multi-class (:class:`~moulin.training.classification_results.ClassificationResults`)."""

    @property
    def comparisons(self) -> Sequence[PairComparison]:
        """The pairs of models compared on the same test rows."""
        ...

    @property
    def chosen(self) -> ModelT_co | None:
        """The model to use (None: a run without models)."""
        ...

    def in_order(self) -> Sequence[ModelT_co]:
        """The models as the report lists them: the chosen one first."""
        ...

    def comparison(self, a: str, b: str) -> PairComparison | None:
        """The comparison of models ``a`` and ``b``, with ``a`` first; None if they were not compared."""
        ...
