"""The input contract of the report: plain dataclasses built from dicts and pandas.

The pipeline fills these from its run: the ingestion/quality stage gives
``quality`` (one dict per source and stage), the profiling stage gives
``profile`` (a long pandas frame), training gives ``models`` (its results,
:class:`~moulin.training.training_results.TrainingResults`, typed or as its JSON
dict), the orchestrator gives ``stage_timings`` and ``run``.  Build everything
at once with :meth:`ReportInputs.from_dicts`.

Optional parts (curves, slices, thresholds, timings, profile metrics) may be
missing: the report then says "not available".  Malformed required parts raise
:class:`ReportInputError` naming the field (the training results:
:class:`~moulin.training.compared_models.ResultsError`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from moulin.errors import MoulinError
from moulin.json_fields import FieldReader
from moulin.training.training_results import HIGHER_IS_BETTER, METRIC_NAMES, ModelResult, TrainingResults

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


class ReportInputError(MoulinError, ValueError):
    """The report inputs are malformed; the message names the field."""


#: Reads the fields of the report's inputs.
_READ = FieldReader(ReportInputError)


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
        obj = _READ.mapping(obj, what)
        reasons = {
            str(k): _READ.int(v, f"{what}.quarantine_by_reason[{k!r}]") or 0
            for k, v in _READ.mapping(obj.get("quarantine_by_reason"), f"{what}.quarantine_by_reason").items()
        }
        passed = obj.get("passed")
        return cls(
            source=str(_READ.require(obj, "source", what)),
            stage=str(obj.get("stage") or ""),
            rows_read=_READ.int(obj.get("rows_read"), f"{what}.rows_read"),
            rows_out=_READ.int(obj.get("rows_out"), f"{what}.rows_out"),
            rows_rejected=_READ.int(obj.get("rows_rejected"), f"{what}.rows_rejected"),
            quarantine_by_reason=reasons,
            threshold=_READ.num(obj.get("threshold"), f"{what}.threshold"),
            failed_share=_READ.num(obj.get("failed_share"), f"{what}.failed_share"),
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


# -- run
@dataclass(frozen=True)
class StageTiming:
    stage: str
    seconds: float | None
    rows: int | None = None

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any], index: int = 0) -> StageTiming:
        what = f"stage_timings[{index}]"
        obj = _READ.mapping(obj, what)
        return cls(
            stage=str(_READ.require(obj, "stage", what)),
            seconds=_READ.num(obj.get("seconds"), f"{what}.seconds"),
            rows=_READ.int(obj.get("rows"), f"{what}.rows"),
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
        obj = dict(_READ.mapping(obj, "run"))
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
    # Ranking metric of the models on test after the recommended one (see TrainingResults.ranked).
    rank_by: str = "roc_auc"

    @classmethod
    def from_dicts(
        cls,
        *,
        run: Mapping[str, Any] | None = None,
        quality: Iterable[Mapping[str, Any]] | None = None,
        profile: pd.DataFrame | None = None,
        models: TrainingResults | Mapping[str, Any] | None = None,
        stage_timings: Iterable[Mapping[str, Any]] | None = None,
        rank_by: str = "roc_auc",
        min_slice_rows: int = 500,
    ) -> ReportInputs:
        """Build the inputs from the pipeline's plain data (see the module docstring)."""
        if rank_by not in HIGHER_IS_BETTER:
            raise ReportInputError(f"rank_by: unknown metric {rank_by!r}, use one of {METRIC_NAMES}")
        training = models if isinstance(models, TrainingResults) else TrainingResults.from_dict(models)
        return cls(
            run=RunInfo.from_dict(run, fallback_run_id=training.run_id),
            quality=[QualityRecord.from_dict(q, i) for i, q in enumerate(quality or [])],
            profile=normalize_profile(profile),
            training=training,
            stage_timings=[StageTiming.from_dict(s, i) for i, s in enumerate(stage_timings or [])],
            min_slice_rows=int(min_slice_rows),
            rank_by=rank_by,
        )

    def ranked(self) -> list[ModelResult]:
        """The models best first: the recommended one, then the others by test ``rank_by``."""
        return self.training.ranked(self.rank_by)
