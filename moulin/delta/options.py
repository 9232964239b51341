"""Typed options of a Delta write or merge: its modes, its transaction, the table's properties."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from moulin.delta.errors import DeltaStoreError

WriteMode = Literal["append", "overwrite"]
SchemaMode = Literal["merge", "overwrite"]


@dataclass(frozen=True)
class AppTransaction:
    """What makes a write idempotent: the application's id and the version of its run.

    A write carrying ``AppTransaction("flights.bronze", 20130101)`` commits nothing
    when the table already holds a transaction of that id at that version or later
    (for an Airflow task: ``f"{dag_id}.{task_id}"`` and the logical date as an int).
    """

    app_id: str
    version: int

    def __post_init__(self) -> None:
        if not isinstance(self.app_id, str) or not self.app_id:
            raise DeltaStoreError(f"AppTransaction app_id {self.app_id!r} must be a non-empty string")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 0:
            raise DeltaStoreError(
                f"AppTransaction version {self.version!r} of {self.app_id!r} must be a non-negative int"
            )


@dataclass(frozen=True)
class TableProperties:
    """What a table says about itself, stored in its Delta metadata.

    ``None`` leaves a property as the table has it; ``personal_data`` names the
    columns holding personal data (they get no min/max statistics in the log).
    """

    description: str | None = None
    owner: str | None = None
    personal_data: tuple[str, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.personal_data is not None and not isinstance(self.personal_data, tuple):
            object.__setattr__(self, "personal_data", tuple(self.personal_data))

    @property
    def empty(self) -> bool:
        """Whether no property is set."""
        return self.description is None and self.owner is None and self.personal_data is None
