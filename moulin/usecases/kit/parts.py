"""The parts of a use case's declaration: :class:`TableStep`, :class:`FollowOnTask`,
:class:`ReportText` and :class:`Declaration` (all a use case declares, and the names
derived from it).

The kit's generators (:mod:`moulin.usecases.kit.generate`, :mod:`moulin.usecases.kit.dags`,
:mod:`moulin.usecases.kit.chain`) take a :class:`Declaration`;
:class:`~moulin.usecases.kit.declaration.UseCase`, the class a use case's ``usecase.py``
instantiates, adds the methods that call them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from moulin.errors import MoulinError
from moulin.framing import load_usecase_framing
from moulin.identifiers import check_path_part

if TYPE_CHECKING:
    from moulin.framing import Framing
    from moulin.reporting.classification import ClassificationWording, PublishedWording
    from moulin.settings import Settings
    from moulin.training.classification_results import ClassificationResults
    from moulin.training.classifiers import ClassifierSuite


class UseCaseError(MoulinError):
    """A use case's declaration is wrong (named in the message, with what to do)."""


@dataclass(frozen=True)
class TableStep:
    """One table of the use case rebuilt from another, checked: the pinned latest version
    of contract ``source`` -> ``transform`` (a pure DataFrame -> DataFrame function, one
    row out per row in) -> validated against contract ``target`` and written in one
    idempotent commit, rows counted on both sides (:func:`moulin.quality.rebuild.rebuild`).
    Its stage is ``<use case>_<name>``."""

    name: str
    source: str
    target: str
    transform: Callable[[Any], Any]
    #: What its rows are called in messages ("orders", "images").
    rows_called: str = "rows"
    #: Columns the written rows are counted by (in the step's result).
    count_by: tuple[str, ...] = ("split",)
    #: Values that change the result (part of the idempotency key: seeds, shares).
    parameters: tuple[Any, ...] = ()
    #: Looks at the pinned source before anything is written; raises a DataError naming what is wrong.
    check: Callable[[Any, str], None] | None = None
    #: ``rows -> (name, value)`` summaries added to the step's result (duplicates...).
    summaries: tuple[Callable[[Any], tuple[str, Any]], ...] = ()


@dataclass(frozen=True)
class FollowOnTask:
    """A registered stage of the job entry point run once the table steps are written,
    beside the training (the analysts' views rebuilt from a new silver table, say): the
    DAG's task ``name`` after the last table step, and a step of the shell chain after
    the table steps (in the chain's Spark session).  ``stage`` names a stage that
    ``moulin.STAGE_MODULES`` registers; ``arguments`` are its command-line options."""

    name: str
    stage: str
    arguments: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReportText:
    """What a use case's report says that is neither framing nor results (see
    :class:`moulin.reporting.classification.ClassificationWording`, whose fields these are;
    the title and the question, approach, hardware and limits sections come from the framing)."""

    intro: str = "Several models were trained on the same data to answer it, and one is recommended."
    item: str = "row"
    items: str = "rows"
    data_description: str = (
        "One row per unit of prediction, with the label and the features known at prediction time."
    )
    split: str = (
        "Rows are divided into training, validation and test by a seeded hash of their key, "
        "so a row always falls in the same split."
    )
    worst_title: str = "The model's most confident mistakes"
    worst_intro: str = "Test rows that {model} got wrong while being most sure of its answer."
    subtitle: str = ""
    items_prose: str = ""
    copy_means: str = "identical content"
    test_split_use: str = "held back, used only to measure the models"
    quality_rules: str = "type, range and required values of the contract"
    published: PublishedWording | None = None

    def wording(self, framing: Framing) -> ClassificationWording:
        """The report's wording for ``framing`` (its question is the title)."""
        from moulin.reporting.classification import ClassificationWording

        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return ClassificationWording(title=framing.question, framing=framing, **values)


@dataclass(frozen=True)
class Declaration:
    """What a classifier use case declares (see :class:`~moulin.usecases.kit.declaration.UseCase`).

    ``suite`` builds the training suite from the settings (models, classes, the table
    it reads: :class:`moulin.training.classifiers.ClassifierSuite`); ``models`` are the
    ones trained by default.  ``prepare`` (optional) writes the sources' drop for the
    shell chain (``moulin <name> prepare|run --limit N``) and describes it (one line)."""

    name: str
    sources: tuple[str, ...]
    steps: tuple[TableStep, ...]
    suite: Callable[[Settings], ClassifierSuite]
    models: tuple[str, ...]
    report: ReportText = field(default_factory=ReportText)
    #: One line on what the use case does (the DAG's and the command's help).
    description: str = ""
    #: The DAG's id (default: the use case's name) and first date.
    dag_id: str = ""
    start_date: datetime = datetime(2024, 1, 1)
    #: The drop dates the shell chain lands from each source, in order, when no ``ds`` is
    #: given (empty: it lands nothing and reads the bronze tables as they are).
    drop_dates: tuple[str, ...] = ()
    #: DDP ranks of the networks.
    num_processes: int = 1
    prepare: Callable[[Settings, int | None], str] | None = None
    #: The noun of the prepared drop's unit, for ``--limit`` ("images per official set").
    limit_unit: str = "rows"
    tags: tuple[str, ...] = ()
    #: Registered stages run once the table steps are written, beside the training
    #: (DAG tasks after the last table step; shell-chain steps after the table steps).
    follow_on: tuple[FollowOnTask, ...] = ()
    #: Lines said of a training run's typed results: by the shell chain after training, and
    #: in the report task's log (each model's scores, the result against the framing's goal).
    results_lines: Callable[[ClassificationResults], list[str]] | None = None

    def __post_init__(self) -> None:
        check_path_part(self.name, "use case name")
        if not self.models:
            raise UseCaseError(f"use case {self.name!r}: models is empty; name the models trained by default")
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise UseCaseError(f"use case {self.name!r}: two table steps share a name ({names}); rename one")
        tasks = [*names, *(t.name for t in self.follow_on), "train", "report"]
        if len(set(tasks)) != len(tasks):
            raise UseCaseError(
                f"use case {self.name!r}: two of its tasks share a name ({tasks}: table steps, follow-on "
                "tasks, train, report); rename the table step or follow-on task"
            )
        if isinstance(self.drop_dates, str):
            raise UseCaseError(
                f"use case {self.name!r}: drop_dates is the string {self.drop_dates!r}; give a tuple of "
                f"dates, ({self.drop_dates!r},)"
            )

    # ---- names derived from the declaration
    @property
    def dag_name(self) -> str:
        """The Airflow DAG id."""
        return self.dag_id or self.name

    def stage_name(self, step: str) -> str:
        """The registered stage of table step ``step`` or of ``"train"``."""
        return f"{self.name}_{step}"

    @property
    def train_stage(self) -> str:
        return self.stage_name("train")

    @property
    def pipeline(self) -> str:
        """The name its table commits carry (``moulin.<name>``)."""
        return f"moulin.{self.name}"

    @property
    def framing(self) -> Framing:
        """The use case's validated framing (``<folder>/framing.yaml``)."""

        return load_usecase_framing(self.name)

    def wording(self) -> ClassificationWording:
        """The report's wording, with the framing."""
        return self.report.wording(self.framing)
