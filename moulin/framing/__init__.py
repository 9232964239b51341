"""A use case's framing as data: the question, the decision, the task, the metric and
its threshold, the data, its storage, personal data and the hardware, in one YAML file.

Each use case holds its framing in ``moulin/usecases/<name>/framing.yaml``
(:attr:`moulin.settings.Settings.usecases_dir`).  :func:`load_framing` reads a
file into a :class:`Framing` (frozen dataclasses, :mod:`moulin.framing.model`) and
validates it: every field's type (:mod:`moulin.framing.reader`), then the coherence
of the whole against moulin's contracts and source specs (:mod:`moulin.framing.checks`):

* the metric fits the task type (no ROC AUC for a regression, no RMSE for a binary task);
* the threshold and the naive baseline's score lie in the metric's range, and the
  threshold beats the baseline;
* no feature declared not known at prediction time is an input, nor is the label;
  every input column of the training table's contract (roles ``categorical`` and
  ``numeric``) is declared known at prediction time;
* the label and every feature are columns of the declared tables' contracts;
* every source is a known source (a spec under ``<contracts>/sources/``);
* personal data is declared with a legal basis, and every personal column of the
  declared tables' contracts is declared;
* a storage step's tables are contracts of that step's layer.

Every problem is reported, not only the first, as ``file:line:field: message — what
to do`` in one :class:`FramingError` (its :attr:`~FramingError.problems`).  The
reports render their question, approach, hardware and limits from the framing
(:mod:`moulin.reporting.framing`); ``moulin usecase check`` validates one.  The
file's fields are documented in ``docs/guides/framing.md``.
"""

from moulin.framing.checks import known_sources
from moulin.framing.load import (
    find_framing,
    framing_file,
    framing_files,
    load_framing,
    load_usecase_framing,
    parse_framing,
)
from moulin.framing.model import (
    METRICS,
    Baseline,
    DataNeeds,
    DataSource,
    Decision,
    Feature,
    Framing,
    FramingError,
    Hardware,
    Label,
    MetricGoal,
    MetricSpec,
    Privacy,
    Problem,
    Scope,
    StorageStep,
    Task,
    TaskType,
)
from moulin.framing.reader import read_framing_file

__all__ = [
    "METRICS",
    "Baseline",
    "DataNeeds",
    "DataSource",
    "Decision",
    "Feature",
    "Framing",
    "FramingError",
    "Hardware",
    "Label",
    "MetricGoal",
    "MetricSpec",
    "Privacy",
    "Problem",
    "Scope",
    "StorageStep",
    "Task",
    "TaskType",
    "find_framing",
    "framing_file",
    "framing_files",
    "known_sources",
    "load_framing",
    "load_usecase_framing",
    "parse_framing",
    "read_framing_file",
]
