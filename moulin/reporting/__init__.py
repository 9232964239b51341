"""The pieces of a decision-maker report: its typed inputs (:class:`ReportInputs`,
filled from plain dicts and a pandas frame, with the training results typed by
:mod:`moulin.training.training_results`), HTML building blocks
(:mod:`moulin.reporting.html`), the model comparison section
(:mod:`moulin.reporting.model_table`), charts (:mod:`moulin.reporting.plots`) and the
nouns a use case gives them (:class:`~moulin.reporting.wording.Wording`).  The
question, approach, hardware and limits sections are drawn from the use case's
framing (:mod:`moulin.reporting.framing`); a use case writes the rest of its
report's text (e.g. ``moulin/usecases/flights/report.py``)."""

from moulin.reporting.inputs import (
    QualityRecord,
    ReportInputError,
    ReportInputs,
    RunInfo,
    StageTiming,
)

__all__ = [
    "QualityRecord",
    "ReportInputError",
    "ReportInputs",
    "RunInfo",
    "StageTiming",
]
