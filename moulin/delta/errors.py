"""Errors of the lakehouse storage layer: all are :class:`moulin.errors.MoulinError`s."""

from __future__ import annotations

from moulin.errors import MoulinError


class DeltaStoreError(MoulinError):
    """A Delta table operation failed; the message names the table and what to do."""


class SchemaMismatchError(DeltaStoreError):
    """A write's columns do not match the table's (nothing was written or committed)."""

    def __init__(
        self,
        message: str,
        missing: list[str] | None = None,
        extra: list[str] | None = None,
        mistyped: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.missing = missing or []
        self.extra = extra or []
        self.mistyped = mistyped or []


class ConcurrentWriteError(DeltaStoreError):
    """Another transaction committed a conflicting change first; the table is unchanged
    by this write (its files were removed) and the write can be rerun."""


class StaleReadError(ConcurrentWriteError):
    """A write pinned to the version its rows were read from (``expected_version``) found
    the table at another version: nothing was committed; read again and rerun."""

    def __init__(self, table_uri: str, expected_version: int, found_version: int) -> None:
        read = f"version {expected_version}" if expected_version >= 0 else "no table"
        found = f"version {found_version}" if found_version >= 0 else "no table"
        super().__init__(
            f"table {table_uri} is at {found}, but this write's rows were computed from {read}: "
            "another commit landed in between, and committing would undo it; nothing was committed: "
            "read the table again and rerun the write"
        )
        self.table_uri = table_uri
        self.expected_version = expected_version
        self.found_version = found_version


class UnsupportedTableError(DeltaStoreError):
    """The table uses a Delta feature this layer cannot read or write correctly."""


class CommitOutcomeUnknownError(DeltaStoreError):
    """A write failed and the log could not be read to tell whether its commit landed.

    Its data files were kept (VACUUM removes them if the commit did not land);
    rerun the write with the same ``app_id``/``app_version``."""


class NullConstraintError(DeltaStoreError):
    """The DataFrame holds nulls in columns the table declares NOT NULL (nothing committed)."""

    def __init__(self, message: str, columns: list[str] | None = None) -> None:
        super().__init__(message)
        self.columns = columns or []


class VacuumedVersionError(DeltaStoreError):
    """The requested version needs data files that VACUUM removed; it cannot be read."""
