"""The pieces of a decision-maker report: its typed inputs (:class:`ReportInputs`,
filled from plain dicts and a pandas frame), HTML building blocks
(:mod:`moulin.reporting.html`), charts (:mod:`moulin.reporting.plots`) and the
nouns a use case gives them (:class:`~moulin.reporting.wording.Wording`).  The
question, approach, hardware and limits sections are drawn from the use case's
framing (:mod:`moulin.reporting.framing`); a use case writes the rest of its
report's text (e.g. ``moulin/usecases/flights/report.py``)."""

from moulin.reporting.inputs import (
    Metric,
    ModelResult,
    QualityRecord,
    ReportInputError,
    ReportInputs,
    RunInfo,
    SliceMetric,
    StageTiming,
    TrainingResults,
)

__all__ = [
    "Metric",
    "ModelResult",
    "QualityRecord",
    "ReportInputError",
    "ReportInputs",
    "RunInfo",
    "SliceMetric",
    "StageTiming",
    "TrainingResults",
]
