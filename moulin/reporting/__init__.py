"""The decision-maker report of a pipeline run (issue 4, stage C9).

One self-contained HTML file per run: the question, the data and its quality,
the profile, the model comparison, what the best model is good and bad at, the
limits, and a technical appendix.  The pipeline fills :class:`ReportInputs`
from plain dicts and a pandas frame; :func:`render_report` turns them into HTML
and :func:`build_report` also writes the file to the warehouse::

    inputs = ReportInputs.from_dicts(run=..., quality=..., profile=..., models=..., stage_timings=...)
    uri = build_report(settings, inputs)
"""

from moulin.reporting.build import build_report, render_report, report_uri
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
    "build_report",
    "render_report",
    "report_uri",
]
