"""The typed framing of a use case (frozen dataclasses), the metrics a framing may
name, and the error that lists a framing file's problems (see :mod:`moulin.framing`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from moulin.errors import DataError

TaskType = Literal["binary", "multiclass", "regression", "ranking", "anomaly"]
BaselineKind = Literal["constant_score", "majority_class", "rule", "previous_value"]
StorageLayer = Literal["source", "raw", "bronze", "silver", "gold", "model", "report"]
TASK_TYPES: tuple[str, ...] = get_args(TaskType)
BASELINE_KINDS: tuple[str, ...] = get_args(BaselineKind)
STORAGE_LAYERS: tuple[str, ...] = get_args(StorageLayer)
#: Contract roles of the columns a model reads as inputs (see ``schemas/flight_features.yaml``).
INPUT_ROLES = ("categorical", "numeric")
FRAMING_FILE = "framing.yaml"


@dataclass(frozen=True)
class MetricSpec:
    """What a metric means: the task types it fits, its range and its direction."""

    label: str
    tasks: tuple[TaskType, ...]
    low: float
    high: float
    higher_is_better: bool
    meaning: str

    def better(self, a: float, b: float) -> bool:
        """True when score ``a`` is at least as good as ``b``."""
        return a >= b if self.higher_is_better else a <= b

    def range_text(self) -> str:
        low = "-infinity" if math.isinf(self.low) else f"{self.low:g}"
        high = "infinity" if math.isinf(self.high) else f"{self.high:g}"
        return f"{low} to {high}"


#: The metrics a framing may name, by the name the training results use.
METRICS: dict[str, MetricSpec] = {
    "roc_auc": MetricSpec(
        "ROC AUC", ("binary", "anomaly"), 0.0, 1.0, True,
        "the chance that a positive case gets a higher score than a negative one (0.5 is guessing, 1 perfect)",
    ),
    "pr_auc": MetricSpec(
        "PR AUC", ("binary", "anomaly"), 0.0, 1.0, True,
        "average precision over all thresholds (guessing scores the share of positives)",
    ),
    "f1": MetricSpec(
        "F1", ("binary", "anomaly"), 0.0, 1.0, True,
        "the balance of precision and recall of the positive class at the decision threshold",
    ),
    "precision": MetricSpec(
        "precision", ("binary", "anomaly"), 0.0, 1.0, True, "the share of flagged cases that are positive"
    ),
    "recall": MetricSpec(
        "recall", ("binary", "anomaly"), 0.0, 1.0, True, "the share of positive cases that are flagged"
    ),
    "accuracy": MetricSpec(
        "accuracy", ("binary", "multiclass"), 0.0, 1.0, True, "the share of items put in the right class"
    ),
    "macro_f1": MetricSpec(
        "macro-F1", ("binary", "multiclass"), 0.0, 1.0, True,
        "F1 averaged over the classes, each class counting the same however common it is",
    ),
    "log_loss": MetricSpec(
        "log loss", ("binary", "multiclass"), 0.0, math.inf, False, "the penalty for confident mistakes"
    ),
    "brier": MetricSpec(
        "Brier score", ("binary",), 0.0, 1.0, False, "the mean squared error of the predicted probabilities"
    ),
    "rmse": MetricSpec(
        "RMSE", ("regression",), 0.0, math.inf, False, "the root mean squared error, in the target's unit"
    ),
    "mae": MetricSpec(
        "MAE", ("regression",), 0.0, math.inf, False, "the mean absolute error, in the target's unit"
    ),
    "r2": MetricSpec(
        "R²", ("regression",), -math.inf, 1.0, True, "the share of the target's variance explained"
    ),
    "ndcg": MetricSpec(
        "NDCG", ("ranking",), 0.0, 1.0, True, "how close the ranking is to the ideal one, top ranks weighing most"
    ),
    "map": MetricSpec(
        "MAP", ("ranking",), 0.0, 1.0, True, "the mean average precision of the rankings"
    ),
    "precision_at_k": MetricSpec(
        "precision at k", ("ranking", "anomaly"), 0.0, 1.0, True, "the share of positives among the top k"
    ),
}  # fmt: skip


class FramingError(DataError, ValueError):
    """A framing file is missing, unreadable or incoherent; :attr:`problems` holds one
    ``file:line:field: message — what to do`` line per problem."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        head = self.problems[0].path if self.problems else "framing"
        n = len(self.problems)
        lines = "\n".join(str(p) for p in self.problems)
        super().__init__(f"framing {head}: {n} problem{'s' if n != 1 else ''}:\n{lines}")


@dataclass(frozen=True)
class Problem:
    """One problem of a framing file: where it is, what is wrong and what to do."""

    path: Path
    line: int | None
    field: str
    message: str
    todo: str

    def __str__(self) -> str:
        at = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{at}:{self.field}: {self.message} — {self.todo}"


# -- the framing -------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """The decision the prediction supports, who acts on it and when."""

    supports: str
    acted_on_by: str
    when: str = ""


@dataclass(frozen=True)
class Scope:
    """Where AI can help, and where it cannot."""

    ai_can_help: tuple[str, ...]
    ai_cannot_help: tuple[str, ...]


@dataclass(frozen=True)
class Feature:
    """A piece of information about the unit of prediction, and whether it is known at
    prediction time and used as an input."""

    name: str
    known_at_prediction: bool
    input: bool = True
    note: str = ""


@dataclass(frozen=True)
class Label:
    """Where the target lives: a column of a contract's table."""

    table: str
    column: str


@dataclass(frozen=True)
class Task:
    """The mathematical formulation: task type, target, unit and time of prediction, features."""

    type: TaskType
    target: str
    unit: str
    prediction_time: str
    label: Label
    features: tuple[Feature, ...]
    classes: tuple[str, ...] = ()
    positive_class: str = ""

    @property
    def inputs(self) -> tuple[Feature, ...]:
        """The features the model reads."""
        return tuple(f for f in self.features if f.input)

    @property
    def left_out(self) -> tuple[Feature, ...]:
        """The features the model must not read (not known at prediction time, or not used)."""
        return tuple(f for f in self.features if not f.input)


@dataclass(frozen=True)
class Baseline:
    """The naive baseline the model must beat; ``value`` is its score when known by
    construction (a constant score has ROC AUC 0.5), else the report computes it."""

    kind: BaselineKind
    description: str
    value: float | None = None


@dataclass(frozen=True)
class MetricGoal:
    """The metric that matters to the business, the threshold that makes the model worth
    using, and the naive baseline."""

    name: str
    why: str
    threshold: float
    threshold_why: str
    baseline: Baseline

    @property
    def spec(self) -> MetricSpec:
        return METRICS[self.name]

    @property
    def label(self) -> str:
        return METRICS[self.name].label

    def met_by(self, value: float) -> bool:
        """True when ``value`` reaches the threshold (in the metric's direction)."""
        return self.spec.better(value, self.threshold)


@dataclass(frozen=True)
class DataSource:
    """A source the use case needs (a source spec or a bronze contract's source)."""

    name: str
    what: str


@dataclass(frozen=True)
class DataNeeds:
    """The data needed: sources, tables (contracts), history, volume and growth."""

    sources: tuple[DataSource, ...]
    tables: tuple[str, ...]
    history: str
    volume: str
    growth: str


@dataclass(frozen=True)
class StorageStep:
    """One step of acquisition and storage: sources -> raw -> bronze -> silver -> gold."""

    layer: StorageLayer
    what: str
    where: str = ""
    schedule: str = ""
    tables: tuple[str, ...] = ()


@dataclass(frozen=True)
class Privacy:
    """Personal data (columns of the declared tables), the legal basis, ethical risks."""

    personal_data: tuple[str, ...]
    legal_basis: str
    note: str
    ethical_risks: tuple[str, ...]


@dataclass(frozen=True)
class Hardware:
    """The hardware needed to train and to serve the model."""

    training: str
    serving: str
    accelerator: str = ""


@dataclass(frozen=True)
class Framing:
    """A validated framing of one use case."""

    name: str
    path: Path
    question: str
    decision: Decision
    scope: Scope
    task: Task
    metric: MetricGoal
    data: DataNeeds
    storage: tuple[StorageStep, ...]
    privacy: Privacy
    hardware: Hardware
    limits: tuple[str, ...]
