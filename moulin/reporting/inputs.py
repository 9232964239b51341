"""The input contract of the report: plain dataclasses built from dicts and pandas.

The pipeline fills these from its run: the ingestion/quality stage gives
``quality`` (one dict per source and stage), the profiling stage gives
``profile`` (a long pandas frame), training gives ``models`` (its results
JSON), the orchestrator gives ``stage_timings`` and ``run``.  Build everything
at once with :meth:`ReportInputs.from_dicts`.

Optional parts (curves, slices, thresholds, timings, profile metrics) may be
missing: the report then says "not available".  Malformed required parts raise
:class:`ReportInputError` naming the field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from moulin.errors import MoulinError

PROFILE_COLUMNS = ("table", "column", "metric", "value", "detail")
PROFILE_METRICS = (
    "count",
    "missing",
    "distinct",
    "min",
    "max",
    "mean",
    "std",
    "p25",
    "p50",
    "p75",
    "histogram",
    "top_values",
    "corr",
)
METRIC_NAMES = ("roc_auc", "pr_auc", "f1", "brier", "ece")
# Metrics where a higher value is better (brier and ece: lower is better).
HIGHER_IS_BETTER = {"roc_auc": True, "pr_auc": True, "f1": True, "brier": False, "ece": False}


class ReportInputError(MoulinError, ValueError):
    """The report inputs are malformed; the message names the field."""


# -- conversion helpers
def _num(value: Any, what: str) -> float | None:
    """``value`` as a finite float, or None when missing/NaN."""
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise ReportInputError(f"{what}: expected a number, got {value!r}") from exc
    return out if math.isfinite(out) else None


def _int(value: Any, what: str) -> int | None:
    out = _num(value, what)
    return None if out is None else int(round(out))


def _floats(values: Any, what: str) -> list[float]:
    if values is None:
        return []
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ReportInputError(f"{what}: expected a list of numbers, got {type(values).__name__}")
    out = []
    for i, v in enumerate(values):
        x = _num(v, f"{what}[{i}]")
        out.append(float("nan") if x is None else x)
    return out


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ReportInputError(f"{what}: expected a mapping, got {type(value).__name__}")
    return value


def _require(obj: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in obj or obj[key] is None:
        raise ReportInputError(f"{what}: missing required field {key!r}")
    return obj[key]


# -- quality
@dataclass(frozen=True)
class QualityRecord:
    """Row accounting and quality gate of one source at one stage (e.g. flights/bronze)."""

    source: str
    stage: str
    rows_read: int | None
    rows_out: int | None
    rows_rejected: int | None
    quarantine_by_reason: dict[str, int] = field(default_factory=dict)
    threshold: float | None = None
    failed_share: float | None = None
    passed: bool | None = None

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any], index: int = 0) -> QualityRecord:
        what = f"quality[{index}]"
        obj = _mapping(obj, what)
        reasons = {
            str(k): _int(v, f"{what}.quarantine_by_reason[{k!r}]") or 0
            for k, v in _mapping(obj.get("quarantine_by_reason"), f"{what}.quarantine_by_reason").items()
        }
        passed = obj.get("passed")
        return cls(
            source=str(_require(obj, "source", what)),
            stage=str(obj.get("stage") or ""),
            rows_read=_int(obj.get("rows_read"), f"{what}.rows_read"),
            rows_out=_int(obj.get("rows_out"), f"{what}.rows_out"),
            rows_rejected=_int(obj.get("rows_rejected"), f"{what}.rows_rejected"),
            quarantine_by_reason=reasons,
            threshold=_num(obj.get("threshold"), f"{what}.threshold"),
            failed_share=_num(obj.get("failed_share"), f"{what}.failed_share"),
            passed=None if passed is None else bool(passed),
        )

    @property
    def accounting_ok(self) -> bool | None:
        """rows_read == rows_out + rows_rejected (None when a count is missing)."""
        if self.rows_read is None or self.rows_out is None or self.rows_rejected is None:
            return None
        return self.rows_read == self.rows_out + self.rows_rejected

    @property
    def rejected_share(self) -> float | None:
        """failed_share as given, else rows_rejected / rows_read."""
        if self.failed_share is not None:
            return self.failed_share
        if self.rows_read and self.rows_rejected is not None:
            return self.rows_rejected / self.rows_read
        return None


# -- training results
@dataclass(frozen=True)
class Metric:
    """A metric with its 95% confidence interval (bounds may be missing)."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None

    @classmethod
    def from_obj(cls, obj: Any, what: str) -> Metric:
        if isinstance(obj, Mapping):
            return cls(
                _num(obj.get("value"), f"{what}.value"),
                _num(obj.get("ci_low"), f"{what}.ci_low"),
                _num(obj.get("ci_high"), f"{what}.ci_high"),
            )
        return cls(_num(obj, what))

    @property
    def ci_width(self) -> float | None:
        if self.ci_low is None or self.ci_high is None:
            return None
        return self.ci_high - self.ci_low


@dataclass(frozen=True)
class SliceMetric:
    """Quality of a model on one slice (e.g. carrier == 'UA')."""

    value: str
    n: int | None
    roc_auc: float | None
    positive_rate: float | None

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any], what: str) -> SliceMetric:
        obj = _mapping(obj, what)
        return cls(
            value=str(_require(obj, "value", what)),
            n=_int(obj.get("n"), f"{what}.n"),
            roc_auc=_num(obj.get("roc_auc"), f"{what}.roc_auc"),
            positive_rate=_num(obj.get("positive_rate"), f"{what}.positive_rate"),
        )


@dataclass(frozen=True)
class Curves:
    """ROC, precision-recall and calibration curves; each may be missing (None)."""

    roc: dict[str, list[float]] | None = None  # fpr, tpr
    pr: dict[str, list[float]] | None = None  # recall, precision
    calibration: dict[str, list[float]] | None = None  # bin_mid, observed, predicted, count

    @classmethod
    def from_dict(cls, obj: Any, what: str) -> Curves:
        obj = _mapping(obj, what)

        def curve(name: str, keys: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict | None:
            raw = obj.get(name)
            if not raw:
                return None
            raw = _mapping(raw, f"{what}.{name}")
            if not all(k in raw and raw[k] is not None for k in keys):
                return None
            out = {k: _floats(raw.get(k), f"{what}.{name}.{k}") for k in keys + optional if k in raw}
            lengths = {len(v) for v in out.values()}
            if len(lengths) != 1:
                raise ReportInputError(f"{what}.{name}: lists of different lengths {sorted(lengths)}")
            return out if lengths != {0} else None

        return cls(
            roc=curve("roc", ("fpr", "tpr")),
            pr=curve("pr", ("recall", "precision")),
            calibration=curve("calibration", ("observed", "predicted"), ("bin_mid", "count")),
        )


@dataclass(frozen=True)
class ModelResult:
    """One trained model: test metrics with CIs, validation threshold, curves, slices."""

    model: str
    family: str
    metrics: dict[str, Metric]
    threshold: float | None = None
    curves: Curves = field(default_factory=Curves)
    slices: dict[str, list[SliceMetric]] = field(default_factory=dict)
    train_seconds: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    # Other metrics (e.g. precision, recall at the threshold) if training reports them.
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any], index: int = 0) -> ModelResult:
        what = f"models.models[{index}]"
        obj = _mapping(obj, what)
        name = str(_require(obj, "model", what))
        metrics = {
            str(k): Metric.from_obj(v, f"{what}.metrics.{k}")
            for k, v in _mapping(obj.get("metrics"), f"{what}.metrics").items()
        }
        slices: dict[str, list[SliceMetric]] = {}
        for dim, rows in _mapping(obj.get("slices"), f"{what}.slices").items():
            if rows is None:
                continue
            if isinstance(rows, str | bytes) or not isinstance(rows, Iterable):
                raise ReportInputError(f"{what}.slices.{dim}: expected a list of slices")
            slices[str(dim)] = [
                SliceMetric.from_dict(r, f"{what}.slices.{dim}[{i}]") for i, r in enumerate(rows)
            ]
        known = {"model", "family", "metrics", "threshold", "curves", "slices", "train_seconds", "params"}
        return cls(
            model=name,
            family=str(obj.get("family") or ""),
            metrics=metrics,
            threshold=_num(obj.get("threshold"), f"{what}.threshold"),
            curves=Curves.from_dict(obj.get("curves"), f"{what}.curves"),
            slices=slices,
            train_seconds=_num(obj.get("train_seconds"), f"{what}.train_seconds"),
            params=dict(_mapping(obj.get("params"), f"{what}.params")),
            extra={k: v for k, v in obj.items() if k not in known},
        )

    def metric(self, name: str) -> Metric:
        return self.metrics.get(name) or Metric(None)


@dataclass(frozen=True)
class TrainingResults:
    """The training results JSON of one run."""

    run_id: str | None
    features_uri: str | None
    features_version: int | str | None
    split_rows: dict[str, int]
    base_rate: float | None
    models: list[ModelResult]
    # Ranking metric of the leaderboard; the best model is the first.
    rank_by: str = "roc_auc"
    best_model: str | None = None
    # Paired comparisons of the models on the same test rows (moulin.training.classification).
    comparisons: tuple[dict, ...] = ()
    # How best_model was chosen: {"split": "validation", "metric": ...}.
    selection: dict | None = None

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any] | None, rank_by: str = "roc_auc") -> TrainingResults:
        obj = _mapping(obj, "models")
        raw_models = obj.get("models") or []
        if isinstance(raw_models, str | bytes) or not isinstance(raw_models, Iterable):
            raise ReportInputError("models.models: expected a list of model results")
        models = [ModelResult.from_dict(m, i) for i, m in enumerate(raw_models)]
        names = [m.model for m in models]
        if len(set(names)) != len(names):
            raise ReportInputError(f"models.models: duplicate model names {names}")
        if rank_by not in HIGHER_IS_BETTER:
            raise ReportInputError(f"rank_by: unknown metric {rank_by!r}, use one of {METRIC_NAMES}")
        version = obj.get("features_version")
        best = obj.get("best_model")
        if best is not None and str(best) not in names:
            raise ReportInputError(f"models.best_model: {best!r} is not one of the models {names}")
        return cls(
            run_id=None if obj.get("run_id") is None else str(obj["run_id"]),
            features_uri=None if obj.get("features_uri") is None else str(obj["features_uri"]),
            features_version=version if isinstance(version, int | str) or version is None else str(version),
            split_rows={
                str(k): _int(v, f"models.split_rows.{k}") or 0
                for k, v in _mapping(obj.get("split_rows"), "models.split_rows").items()
            },
            base_rate=_num(obj.get("base_rate"), "models.base_rate"),
            models=models,
            rank_by=rank_by,
            best_model=None if best is None else str(best),
            comparisons=tuple(dict(c) for c in obj.get("comparisons") or () if isinstance(c, Mapping)),
            selection=dict(obj["selection"]) if isinstance(obj.get("selection"), Mapping) else None,
        )

    def comparison(self, a: str, b: str) -> dict | None:
        """The paired comparison of models ``a`` and ``b`` (oriented so ``a`` is first), if any."""
        for c in self.comparisons:
            if (c.get("a"), c.get("b")) == (a, b):
                return c
            if (c.get("a"), c.get("b")) == (b, a):
                flipped = {"a": a, "b": b, "difference": -(c.get("difference") or 0.0),
                           "ci_low": -(c.get("ci_high") or 0.0), "ci_high": -(c.get("ci_low") or 0.0)}  # fmt: skip
                better = {"a": "b", "b": "a"}.get(c.get("better") or "", None)
                return {**c, **flipped, "better": better}
        return None

    def ranked(self) -> list[ModelResult]:
        """Models best first: by ``rank_by`` (missing values last); ``best_model`` if given goes first."""
        sign = -1.0 if HIGHER_IS_BETTER[self.rank_by] else 1.0

        def key(m: ModelResult) -> tuple[int, int, float]:
            v = m.metric(self.rank_by).value
            return (0 if m.model == self.best_model else 1, v is None, sign * (v or 0.0))

        return sorted(self.models, key=key)

    @property
    def best(self) -> ModelResult | None:
        ranked = self.ranked()
        return ranked[0] if ranked else None


# -- run
@dataclass(frozen=True)
class StageTiming:
    stage: str
    seconds: float | None
    rows: int | None = None

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any], index: int = 0) -> StageTiming:
        what = f"stage_timings[{index}]"
        obj = _mapping(obj, what)
        return cls(
            stage=str(_require(obj, "stage", what)),
            seconds=_num(obj.get("seconds"), f"{what}.seconds"),
            rows=_int(obj.get("rows"), f"{what}.rows"),
        )


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    logical_date: str | None = None
    profile: str | None = None
    warehouse: str | None = None
    generated_at: str | None = None
    code_version: str | None = None

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any] | None, fallback_run_id: str | None = None) -> RunInfo:
        obj = dict(_mapping(obj, "run"))
        run_id = obj.get("run_id") or fallback_run_id
        if not run_id:
            raise ReportInputError("run: missing required field 'run_id' (nor is it in the training results)")

        def text(key: str) -> str | None:
            v = obj.get(key)
            return None if v is None else str(v)

        return cls(
            run_id=str(run_id),
            logical_date=text("logical_date"),
            profile=text("profile"),
            warehouse=text("warehouse"),
            generated_at=text("generated_at"),
            code_version=text("code_version"),
        )


def normalize_profile(profile: pd.DataFrame | None) -> pd.DataFrame:
    """The profile frame with exactly PROFILE_COLUMNS (value float, detail str or None)."""
    if profile is None:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in PROFILE_COLUMNS})
    if not isinstance(profile, pd.DataFrame):
        try:
            profile = pd.DataFrame(list(profile))
        except Exception as exc:
            raise ReportInputError(
                f"profile: expected a pandas DataFrame, got {type(profile).__name__}"
            ) from exc
    missing = [c for c in ("column", "metric") if c not in profile.columns]
    if missing:
        raise ReportInputError(f"profile: missing columns {missing} (expected {list(PROFILE_COLUMNS)})")
    out = pd.DataFrame(
        {
            "table": profile["table"].astype(str) if "table" in profile else "",
            "column": profile["column"].astype(str),
            "metric": profile["metric"].astype(str).str.lower(),
            "value": pd.to_numeric(profile["value"], errors="coerce") if "value" in profile else float("nan"),
            "detail": profile["detail"] if "detail" in profile else None,
        }
    )
    out["detail"] = out["detail"].map(lambda d: None if d is None or (isinstance(d, float) and d != d) else d)
    if "detail_key" in profile:
        out = _from_profile_table(out, profile["detail_key"].fillna("").astype(str))
    return out.reset_index(drop=True)


def _from_profile_table(out: pd.DataFrame, detail_key: pd.Series) -> pd.DataFrame:
    """Map the stored ``quality/table_profiles`` layout (:mod:`moulin.profiling`:
    ``quantile`` rows keyed by the probability, ``corr`` rows keyed by the other
    column, ``distinct_approx``, top values as a list of ``{value, count}``)
    onto the report's metrics."""
    out = out.copy()
    quantile = out["metric"] == "quantile"
    out.loc[quantile, "metric"] = detail_key[quantile].map(lambda q: f"p{round(float(q) * 100)}")
    out.loc[out["metric"] == "distinct_approx", "metric"] = "distinct"
    corr = out["metric"] == "corr"
    out.loc[corr, "detail"] = detail_key[corr].map(lambda other: json.dumps({"with": other}))

    def top(detail: Any) -> Any:
        try:
            items = json.loads(detail) if isinstance(detail, str) else detail
        except ValueError:
            return detail
        if isinstance(items, list):
            return json.dumps(
                {"values": [i.get("value") for i in items], "counts": [i.get("count") for i in items]}
            )
        return detail

    tops = out["metric"] == "top_values"
    out.loc[tops, "detail"] = out.loc[tops, "detail"].map(top)
    return out[out["column"] != "*"]


def parse_detail(detail: Any) -> dict[str, Any]:
    """The JSON detail of a profile row as a dict ({} when missing or unreadable)."""
    if detail is None:
        return {}
    if isinstance(detail, Mapping):
        return dict(detail)
    try:
        out = json.loads(detail)
    except (TypeError, ValueError):
        return {}
    return out if isinstance(out, dict) else {}


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report shows, for one pipeline run."""

    run: RunInfo
    quality: list[QualityRecord]
    profile: pd.DataFrame
    training: TrainingResults
    stage_timings: list[StageTiming] = field(default_factory=list)
    # Slices with fewer rows are flagged as too small to judge.
    min_slice_rows: int = 500

    @classmethod
    def from_dicts(
        cls,
        *,
        run: Mapping[str, Any] | None = None,
        quality: Iterable[Mapping[str, Any]] | None = None,
        profile: pd.DataFrame | None = None,
        models: Mapping[str, Any] | None = None,
        stage_timings: Iterable[Mapping[str, Any]] | None = None,
        rank_by: str = "roc_auc",
        min_slice_rows: int = 500,
    ) -> ReportInputs:
        """Build the inputs from the pipeline's plain data (see the module docstring)."""
        training = TrainingResults.from_dict(models, rank_by=rank_by)
        return cls(
            run=RunInfo.from_dict(run, fallback_run_id=training.run_id),
            quality=[QualityRecord.from_dict(q, i) for i, q in enumerate(quality or [])],
            profile=normalize_profile(profile),
            training=training,
            stage_timings=[StageTiming.from_dict(s, i) for i, s in enumerate(stage_timings or [])],
            min_slice_rows=int(min_slice_rows),
        )
