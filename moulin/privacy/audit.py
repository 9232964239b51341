"""The audit trail of personal data: who read or changed which personal-data table,
when, at which version.  One row per event, appended to the Delta table
``ops/audit`` (under the warehouse of the settings in the environment).

Reads through moulin's readers (:class:`moulin.delta.DeltaTableStore` ``read``,
``to_arrow``, ``to_pandas``, ``moulin table show``) of a table whose Delta
metadata lists personal-data columns append a ``read`` row: this module
registers :func:`audit_read` with the store's read observers
(:mod:`moulin.delta.observers`) when imported, and the store imports it before
its first such read (``moulin.STORE_OBSERVERS``).  Erasures append ``erase``
rows.  A read whose audit row cannot be written fails: no read of personal data
goes unrecorded.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json

from moulin.delta.observers import ReadEvent, register_read_observer
from moulin.delta.rows import RowAppendError, append_row, read_rows
from moulin.jobs.context import getenv
from moulin.settings import Settings, load_settings
from moulin.spark import act_as_hdfs_user

AUDIT_TABLE = ("ops", "audit")


class AuditError(RowAppendError):
    """An audit row could not be written: the access it records was refused."""


def audit_uri(settings: Settings) -> str:
    """URI of the audit table."""
    return settings.table_uri(*AUDIT_TABLE)


def actor() -> str:
    """Who acts: the operating-system user, and the Airflow task when run by one.

    The task is the one of the request being served (:func:`moulin.jobs.context.getenv`):
    on a job server, the caller of the running stage, never the task that started the server.
    """

    who = getpass.getuser()
    task = getenv("AIRFLOW_CTX_DAG_ID")
    if task:
        who += f" (airflow {task}.{getenv('AIRFLOW_CTX_TASK_ID') or '?'})"
    return who


def record(
    action: str,
    table_uri: str,
    version: int | None,
    columns: list[str] | None = None,
    detail: dict | None = None,
    settings: Settings | None = None,
) -> None:
    """Append one audit row (raises :class:`AuditError` when it cannot be written)."""
    import pyarrow as pa

    settings = settings or load_settings()
    act_as_hdfs_user(settings)
    hdfs_user = settings.hdfs_user
    row = {
        "at": dt.datetime.now(dt.UTC),
        "actor": actor(),
        "hdfs_user": hdfs_user,
        "action": action,
        "table_uri": table_uri,
        "version": version,
        "columns": ",".join(columns or []),
        "detail": json.dumps(detail or {}, sort_keys=True, default=str),
    }
    schema = pa.schema(
        [
            ("at", pa.timestamp("us", tz="UTC")),
            ("actor", pa.string()),
            ("hdfs_user", pa.string()),
            ("action", pa.string()),
            ("table_uri", pa.string()),
            ("version", pa.int64()),
            ("columns", pa.string()),
            ("detail", pa.string()),
        ]
    )
    append_row(audit_uri(settings), row, f"the {action} of {table_uri}", schema, error=AuditError)


def audit_read(event: ReadEvent) -> None:
    """Append the row of a store's read of personal-data columns (the store's read observer:
    raises :class:`AuditError`, refusing the read, when the row cannot be written)."""
    record(event.action, event.table_uri, event.version, list(event.columns))


def read_audit(settings: Settings) -> list[dict]:
    """The audit rows, oldest first."""
    return read_rows(audit_uri(settings), "at")


register_read_observer(audit_read)
