"""A use case's framing as data: the question, the decision, the task, the metric and
its threshold, the data, its storage, personal data and the hardware, in one YAML file.

Each use case holds its framing in ``moulin/usecases/<name>/framing.yaml``
(:attr:`moulin.settings.Settings.usecases_dir`).  :func:`load_framing` reads a
file into a :class:`Framing` (frozen dataclasses) and validates it: every field's
type, then the coherence of the whole against moulin's contracts and source specs:

* the metric fits the task type (no ROC AUC for a regression, no RMSE for a binary task);
* the threshold and the naive baseline's score lie in the metric's range, and the
  threshold beats the baseline;
* no feature declared not known at prediction time is an input, nor is the label;
  every input column of the training table's contract (roles ``categorical`` and
  ``numeric``) is declared known at prediction time;
* the label and every feature are columns of the declared tables' contracts;
* every source is a known source (a spec under ``<contracts>/sources/``, or a bronze
  contract's ``source.name``);
* personal data is declared with a legal basis, and every personal column of the
  declared tables' contracts is declared;
* a storage step's tables are contracts of that step's layer.

Every problem is reported, not only the first, as ``file:line:field: message — what
to do`` in one :class:`FramingError` (its :attr:`~FramingError.problems`).  The
reports render their question, approach, hardware and limits from the framing
(:mod:`moulin.reporting.framing`); ``moulin usecase check`` validates one.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from moulin.contracts import Contract, ContractError, load_all_contracts, load_contract
from moulin.errors import DataError
from moulin.settings import Settings, load_settings
from moulin.sources.spec import all_spec_files

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


# -- reading with line numbers -----------------------------------------------------------


class _LineLoader(yaml.SafeLoader):
    """A safe YAML loader that also records the line of every field: ``lines["a.b[2].c"]``
    is the 1-based line where that key (or list item) starts."""

    def load_with_lines(self) -> tuple[Any, dict[str, int]]:
        try:
            node = self.get_single_node()
            lines: dict[str, int] = {}
            if node is not None:
                self._walk(node, "", lines)
            return (self.construct_document(node) if node is not None else None), lines
        finally:
            self.dispose()

    def _walk(self, node: yaml.Node, prefix: str, lines: dict[str, int]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                where = f"{prefix}.{key.value}" if prefix else str(key.value)
                lines[where] = key.start_mark.line + 1
                self._walk(value, where, lines)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                where = f"{prefix}[{i}]"
                lines[where] = item.start_mark.line + 1
                self._walk(item, where, lines)


def _parent(where: str) -> str:
    if where.endswith("]"):
        return where[: where.rindex("[")]
    return where.rpartition(".")[0]


class _Reader:
    """Reads the parsed YAML field by field, recording a :class:`Problem` for each
    mistake and going on, so that one run reports them all."""

    def __init__(self, path: Path, lines: Mapping[str, int]) -> None:
        self.path, self.lines = path, lines
        self.problems: list[Problem] = []

    def line(self, where: str) -> int | None:
        while where:
            if where in self.lines:
                return self.lines[where]
            where = _parent(where)
        return None

    def problem(self, where: str, message: str, todo: str) -> None:
        self.problems.append(Problem(self.path, self.line(where), where, message, todo))

    def mapping(self, data: Any, where: str, allowed: tuple[str, ...], required: tuple[str, ...]) -> dict:
        """``data`` as a mapping with only ``allowed`` keys and all ``required`` ones ({} if not one)."""
        if data is None:
            return {}  # a missing section: reported by its parent's required fields
        if not isinstance(data, dict):
            self.problem(
                where or "(top)", f"expected a mapping, got {_shown(data)}", f"give {', '.join(allowed)}"
            )
            return {}
        for key in data:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f"did you mean {close[0]}?" if close else f"allowed: {', '.join(allowed)}"
                self.problem(_join(where, str(key)), "unknown field", f"remove it ({hint})")
        for key in required:
            if key not in data or data[key] is None:
                self.problem(_join(where, key), "missing required field", f"add {key}")
        return data

    def text(self, data: dict, key: str, where: str, required: bool = True) -> str:
        value = data.get(key)
        at = _join(where, key)
        if value is None:
            return ""  # a missing required field is reported by mapping()
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.problem(at, f"expected a text, got {_shown(value)}", "write it as a sentence")
            return ""
        text = " ".join(str(value).split())
        if required and not text:
            self.problem(at, "is empty", f"say what {key.replace('_', ' ')} is")
        return text

    def texts(self, data: dict, key: str, where: str, required: bool = True) -> tuple[str, ...]:
        value = data.get(key)
        at = _join(where, key)
        if value is None:
            if required and key in data:
                self.problem(at, "is empty", "give a list of texts")
            return ()
        if not isinstance(value, list):
            self.problem(
                at, f"expected a list of texts, got {_shown(value)}", "write a list (- item per line)"
            )
            return ()
        if required and not value:
            self.problem(at, "is empty", "give at least one item")
        good = True
        for i, v in enumerate(value):
            if isinstance(v, bool) or not isinstance(v, str | int | float):
                good = False
                hint = (
                    "quote the text: a ': ' or ', ' inside makes YAML read a mapping or a list"
                    if isinstance(v, dict | list)
                    else "write it as a text"
                )
                self.problem(f"{at}[{i}]", f"expected a text, got {_shown(v)}", hint)
        if not good:
            return ()
        return tuple(" ".join(str(v).split()) for v in value)

    def flag(self, data: dict, key: str, where: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            self.problem(
                _join(where, key), f"expected true or false, got {_shown(value)}", "write true or false"
            )
            return default
        return value

    def number(self, data: dict, key: str, where: str) -> float | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            self.problem(
                _join(where, key), f"expected a number, got {_shown(value)}", "write a number, e.g. 0.7"
            )
            return None
        return float(value)

    def choice(self, data: dict, key: str, where: str, options: tuple[str, ...]) -> str | None:
        value = data.get(key)
        if value is None:
            return None
        if value not in options:
            self.problem(
                _join(where, key), f"{_shown(value)} is not one of {', '.join(options)}", "use one of them"
            )
            return None
        return str(value)

    def items(self, data: dict, key: str, where: str) -> list[tuple[str, Any]]:
        """``(where, item)`` of the list under ``key`` (a problem if it is not a non-empty list)."""
        value = data.get(key)
        at = _join(where, key)
        if value is None:
            return []
        if not isinstance(value, list) or not value:
            self.problem(
                at, f"expected a non-empty list, got {_shown(value)}", "write a list (- item per line)"
            )
            return []
        return [(f"{at}[{i}]", item) for i, item in enumerate(value)]


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- parsing ----------------------------------------------------------------------------

_TOP = (
    "name", "question", "decision", "scope", "task", "metric", "data", "storage", "privacy", "hardware", "limits",
)  # fmt: skip


def parse_framing(data: Any, path: Path, lines: Mapping[str, int] | None = None) -> Framing:
    """Validate the parsed YAML ``data`` of ``path`` (``lines``: field -> line) and build a
    :class:`Framing`; raises :class:`FramingError` listing every problem."""
    r = _Reader(Path(path), lines or {})
    if not isinstance(data, dict):
        r.problem(
            "(top)",
            f"expected a mapping of fields, got {_shown(data)}",
            f"write the fields {', '.join(_TOP)} (see docs/guides/framing.md)",
        )
        raise FramingError(r.problems)
    top = r.mapping(data, "", _TOP, _TOP)
    name = r.text(top, "name", "")

    d = r.mapping(
        top.get("decision"), "decision", ("supports", "acted_on_by", "when"), ("supports", "acted_on_by")
    )
    decision = Decision(
        r.text(d, "supports", "decision"),
        r.text(d, "acted_on_by", "decision"),
        r.text(d, "when", "decision", False),
    )
    s = r.mapping(
        top.get("scope"), "scope", ("ai_can_help", "ai_cannot_help"), ("ai_can_help", "ai_cannot_help")
    )
    scope = Scope(r.texts(s, "ai_can_help", "scope"), r.texts(s, "ai_cannot_help", "scope"))
    task = _task(r, top.get("task"))
    metric = _metric(r, top.get("metric"))
    data_needs = _data(r, top.get("data"))
    storage = tuple(_storage(r, where, item) for where, item in r.items(top, "storage", ""))
    p = r.mapping(
        top.get("privacy"), "privacy", ("personal_data", "legal_basis", "note", "ethical_risks"),
        ("personal_data", "ethical_risks"),
    )  # fmt: skip
    privacy = Privacy(
        r.texts(p, "personal_data", "privacy", required=False),
        r.text(p, "legal_basis", "privacy", False),
        r.text(p, "note", "privacy", False),
        r.texts(p, "ethical_risks", "privacy"),
    )
    h = r.mapping(
        top.get("hardware"), "hardware", ("training", "serving", "accelerator"), ("training", "serving")
    )
    hardware = Hardware(
        r.text(h, "training", "hardware"),
        r.text(h, "serving", "hardware"),
        r.text(h, "accelerator", "hardware", False),
    )
    framing = Framing(
        name=name,
        path=Path(path),
        question=r.text(top, "question", ""),
        decision=decision,
        scope=scope,
        task=task,
        metric=metric,
        data=data_needs,
        storage=storage,
        privacy=privacy,
        hardware=hardware,
        limits=r.texts(top, "limits", ""),
    )
    if not r.problems:
        _coherence(r, framing)
    if name and name != Path(path).parent.name and Path(path).name == FRAMING_FILE:
        r.problem(
            "name", f"{name!r} differs from the use case's folder {Path(path).parent.name!r}", "rename one"
        )
    if r.problems:
        raise FramingError(r.problems)
    return framing


_NO_TASK = Task("binary", "", "", "", Label("", ""), ())


def _task(r: _Reader, raw: Any) -> Task:
    allowed = ("type", "target", "unit", "prediction_time", "label", "features", "classes", "positive_class")
    t = r.mapping(raw, "task", allowed, ("type", "target", "unit", "prediction_time", "label", "features"))
    if not t:
        return _NO_TASK
    kind = r.choice(t, "type", "task", TASK_TYPES) or "binary"
    lab = r.mapping(t.get("label"), "task.label", ("table", "column"), ("table", "column"))
    label = Label(r.text(lab, "table", "task.label"), r.text(lab, "column", "task.label"))
    features = []
    for where, item in r.items(t, "features", "task"):
        f = r.mapping(
            item, where, ("name", "known_at_prediction", "input", "note"), ("name", "known_at_prediction")
        )
        if not f:
            continue
        features.append(
            Feature(
                r.text(f, "name", where),
                r.flag(f, "known_at_prediction", where, True),
                r.flag(f, "input", where, True),
                r.text(f, "note", where, False),
            )
        )
    classes = r.texts(t, "classes", "task", required=False)
    positive = r.text(t, "positive_class", "task", False)
    if kind == "binary" and classes and len(classes) != 2:
        r.problem("task.classes", f"a binary task has 2 classes, not {len(classes)}", "name the two classes")
    if kind == "multiclass" and len(classes) < 3:
        r.problem("task.classes", "a multi-class task needs its 3 or more classes", "list the class names")
    if positive and classes and positive not in classes:
        r.problem(
            "task.positive_class", f"{positive!r} is not among classes {list(classes)}", "name one of them"
        )
    return Task(
        kind,  # type: ignore[arg-type]
        r.text(t, "target", "task"),
        r.text(t, "unit", "task"),
        r.text(t, "prediction_time", "task"),
        label,
        tuple(features),
        classes,
        positive,
    )


def _metric(r: _Reader, raw: Any) -> MetricGoal:
    m = r.mapping(
        raw, "metric", ("name", "why", "threshold", "threshold_why", "baseline"),
        ("name", "why", "threshold", "threshold_why", "baseline"),
    )  # fmt: skip
    name = r.choice(m, "name", "metric", tuple(METRICS)) or ""
    b = r.mapping(
        m.get("baseline"), "metric.baseline", ("kind", "description", "value"), ("kind", "description")
    )
    baseline = Baseline(
        r.choice(b, "kind", "metric.baseline", BASELINE_KINDS) or "rule",  # type: ignore[arg-type]
        r.text(b, "description", "metric.baseline"),
        r.number(b, "value", "metric.baseline"),
    )
    threshold = r.number(m, "threshold", "metric")
    return MetricGoal(
        name, r.text(m, "why", "metric"), threshold if threshold is not None else math.nan,
        r.text(m, "threshold_why", "metric"), baseline,
    )  # fmt: skip


def _data(r: _Reader, raw: Any) -> DataNeeds:
    d = r.mapping(
        raw, "data", ("sources", "tables", "history", "volume", "growth"),
        ("sources", "tables", "history", "volume", "growth"),
    )  # fmt: skip
    sources = []
    for where, item in r.items(d, "sources", "data"):
        s = r.mapping(item, where, ("name", "what"), ("name", "what"))
        if s:
            sources.append(DataSource(r.text(s, "name", where), r.text(s, "what", where)))
    return DataNeeds(
        tuple(sources),
        r.texts(d, "tables", "data"),
        r.text(d, "history", "data"),
        r.text(d, "volume", "data"),
        r.text(d, "growth", "data"),
    )


def _storage(r: _Reader, where: str, raw: Any) -> StorageStep:
    s = r.mapping(raw, where, ("layer", "what", "where", "schedule", "tables"), ("layer", "what"))
    return StorageStep(
        (r.choice(s, "layer", where, STORAGE_LAYERS) or "source"),  # type: ignore[arg-type]
        r.text(s, "what", where),
        r.text(s, "where", where, False),
        r.text(s, "schedule", where, False),
        r.texts(s, "tables", where, required=False),
    )


# -- coherence ---------------------------------------------------------------------------


def _coherence(r: _Reader, f: Framing) -> None:
    """The checks that look at several fields together, and at the contracts and specs."""
    _check_metric(r, f)
    contracts = _tables(r, f)
    _check_label_and_features(r, f, contracts)
    _check_sources(r, f)
    _check_privacy(r, f, contracts)
    _check_storage(r, f)


def _check_metric(r: _Reader, f: Framing) -> None:
    goal, spec = f.metric, METRICS[f.metric.name]
    if f.task.type not in spec.tasks:
        fits = [n for n, m in METRICS.items() if f.task.type in m.tasks]
        r.problem(
            "metric.name",
            f"{goal.name} ({spec.label}) does not fit a {f.task.type} task",
            f"use a metric of {f.task.type} tasks: {', '.join(fits)}",
        )
    if not spec.low <= goal.threshold <= spec.high:
        r.problem(
            "metric.threshold",
            f"{goal.threshold:g} is outside the range of {spec.label} ({spec.range_text()})",
            "give a threshold within the metric's range",
        )
        return
    value = goal.baseline.value
    if value is None:
        return
    if not spec.low <= value <= spec.high:
        r.problem(
            "metric.baseline.value",
            f"{value:g} is outside the range of {spec.label} ({spec.range_text()})",
            "give the naive baseline's score within the metric's range",
        )
    elif spec.better(value, goal.threshold):
        r.problem(
            "metric.threshold",
            f"{goal.threshold:g} {spec.label} is no better than the naive baseline's {value:g}",
            f"set a threshold {'above' if spec.higher_is_better else 'below'} the baseline: a model that "
            "only matches it is not worth using",
        )


def _tables(r: _Reader, f: Framing) -> dict[str, Contract]:
    """The declared tables' contracts by name (a problem for each that does not load)."""
    out: dict[str, Contract] = {}
    for i, name in enumerate(f.data.tables):
        try:
            out[name] = load_contract(name)
        except ContractError as exc:
            r.problem(
                f"data.tables[{i}]", f"no valid contract {name!r} ({exc})", "name a contract of schemas/"
            )
    return out


def _check_label_and_features(r: _Reader, f: Framing, contracts: dict[str, Contract]) -> None:
    task = f.task
    label = task.label
    if label.table not in f.data.tables:
        r.problem(
            "task.label.table",
            f"{label.table!r} is not among data.tables ({', '.join(f.data.tables)})",
            "declare the label's table under data.tables",
        )
    elif label.table in contracts and label.column not in contracts[label.table].column_names:
        r.problem(
            "task.label.column",
            f"{label.column!r} is not a column of contract {label.table} ({contracts[label.table].path})",
            f"name one of its columns ({', '.join(contracts[label.table].column_names)})",
        )
    columns = {c for contract in contracts.values() for c in contract.column_names}
    declared = {feature.name: i for i, feature in enumerate(task.features)}
    for i, feature in enumerate(task.features):
        where = f"task.features[{i}]"
        if feature.input and not feature.known_at_prediction:
            r.problem(
                f"{where}.input",
                f"{feature.name} is not known at prediction time but is used as an input",
                "set input: false (the model must not read it), or say why it is known at prediction time",
            )
        if feature.input and feature.name == label.column:
            r.problem(
                f"{where}.input",
                f"{feature.name} is the label: used as an input it gives the answer away",
                "set input: false",
            )
        if contracts and feature.name not in columns:
            r.problem(
                f"{where}.name",
                f"{feature.name!r} is not a column of the declared tables ({', '.join(contracts)})",
                "name a column of one of them, or declare the table that holds it under data.tables",
            )
    training = contracts.get(label.table)
    if training is None:
        return
    inputs = [c for c in training.column_names if training.column(c).role in INPUT_ROLES]
    missing = [c for c in inputs if c not in declared]
    if missing:
        r.problem(
            "task.features",
            f"{', '.join(missing)}: input(s) of the model (columns of role categorical or numeric in contract "
            f"{training.name}) not declared",
            "declare each with {name: <column>, known_at_prediction: true, note: <why it is known then>}",
        )
    for column in inputs:
        feature = task.features[declared[column]] if column in declared else None
        if feature is None or feature.input:
            continue  # undeclared: reported above; an input not known then: reported per feature
        said = "not known at prediction time" if not feature.known_at_prediction else "not an input"
        r.problem(
            f"task.features[{declared[column]}].input",
            f"{column} is declared {said}, yet contract {training.name} gives it role "
            f"{training.column(column).role}: the model reads it",
            f"take its role off in {training.path.name} so that training leaves it out, or declare it an "
            "input known at prediction time",
        )


def known_sources() -> dict[str, Path]:
    """Every source name moulin knows, with the file declaring it: the source specs
    (``<contracts>/sources/<name>.yaml``) and the bronze contracts' ``source.name``."""
    out: dict[str, Path] = {}
    for contract in load_all_contracts().values():
        if contract.layer == "bronze" and contract.source is not None:
            out.setdefault(contract.source.name, contract.path)
    out.update(all_spec_files())
    return dict(sorted(out.items()))


def _check_sources(r: _Reader, f: Framing) -> None:
    try:
        known = known_sources()
    except ContractError as exc:
        r.problem("data.sources", f"the known sources cannot be listed: {exc}", "fix that contract first")
        return
    for i, source in enumerate(f.data.sources):
        if source.name not in known:
            close = difflib.get_close_matches(source.name, list(known), n=1)
            r.problem(
                f"data.sources[{i}].name",
                f"unknown source {source.name!r}" + (f" (did you mean {close[0]}?)" if close else ""),
                f"name a source with a spec under schemas/sources/ or a bronze contract "
                f"(known: {', '.join(known)})",
            )


def _check_privacy(r: _Reader, f: Framing, contracts: dict[str, Contract]) -> None:
    personal = f.privacy.personal_data
    if personal and not f.privacy.legal_basis:
        r.problem(
            "privacy.legal_basis",
            f"personal data is declared ({', '.join(personal)}) without a legal basis",
            "state the legal basis of the processing (e.g. legitimate interest, GDPR art. 6(1)(f))",
        )
    columns = {c for contract in contracts.values() for c in contract.column_names}
    for i, column in enumerate(personal):
        if contracts and column not in columns:
            r.problem(
                f"privacy.personal_data[{i}]",
                f"{column!r} is not a column of the declared tables ({', '.join(contracts)})",
                "name a column of one of them",
            )
    for name, contract in contracts.items():
        for column in contract.personal_columns:
            if column not in personal:
                r.problem(
                    "privacy.personal_data",
                    f"contract {name} marks {column} as personal data, the framing does not",
                    f"add {column} to privacy.personal_data (and state the legal basis)",
                )


def _check_storage(r: _Reader, f: Framing) -> None:
    for i, step in enumerate(f.storage):
        for j, name in enumerate(step.tables):
            where = f"storage[{i}].tables[{j}]"
            try:
                contract = load_contract(name)
            except ContractError as exc:
                r.problem(where, f"no valid contract {name!r} ({exc})", "name a contract of schemas/")
                continue
            if contract.layer != step.layer:
                r.problem(
                    where,
                    f"{name} is a {contract.layer} table, listed under a {step.layer} step",
                    f"move it to the {contract.layer} step",
                )


# -- loading ------------------------------------------------------------------------------


def read_framing_file(path: Path) -> tuple[Any, dict[str, int]]:
    """``(data, lines)`` of the YAML file ``path``: lines maps each field to its line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FramingError(
            [Problem(path, None, "(file)", f"cannot read the file: {exc.strerror}", "check the path")]
        ) from None
    try:
        return _LineLoader(text).load_with_lines()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise FramingError(
            [Problem(path, line, "(yaml)", f"invalid YAML: {reason}", "fix the syntax at that line")]
        ) from None


def load_framing(path: Path | str) -> Framing:
    """Load and validate the framing file ``path`` (:class:`FramingError` lists every problem)."""
    data, lines = read_framing_file(Path(path))
    return parse_framing(data, Path(path), lines)


def framing_file(name: str, settings: Settings | None = None) -> Path:
    """The framing file of use case ``name``: ``<usecases_dir>/<name>/framing.yaml``."""
    return (settings or load_settings()).usecases_dir / name / FRAMING_FILE


def framing_files(settings: Settings | None = None) -> dict[str, Path]:
    """Every use case's framing file, by use-case name."""
    folder = (settings or load_settings()).usecases_dir
    return {p.parent.name: p for p in sorted(folder.glob(f"*/{FRAMING_FILE}"))}


def find_framing(target: str, settings: Settings | None = None) -> Path:
    """The framing file of ``target``: a file path, or a use case's name."""
    if target.endswith((".yaml", ".yml")) or "/" in target:
        return Path(target)
    path = framing_file(target, settings)
    if not path.is_file():
        known = ", ".join(framing_files(settings)) or "none"
        raise FramingError(
            [Problem(path, None, "(file)", f"use case {target!r} has no framing file",
                     f"write {path}, or name a use case that has one ({known})")]
        )  # fmt: skip
    return path


def load_usecase_framing(name: str, settings: Settings | None = None) -> Framing:
    """The validated framing of use case ``name``."""
    return load_framing(find_framing(name, settings))
