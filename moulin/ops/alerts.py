"""Alerts an operator acts on: failed tasks, missed deadlines, an unhealthy HDFS.

Every alert is one row of the Delta table ``ops/alerts`` (kind, DAG, task, run,
try, error, log URL, details) and one ``MOULIN-ALERT`` line in the log of the
process that raised it (the Airflow task log for task failures).  Airflow calls
:func:`task_failed` (``on_failure_callback`` of every moulin DAG) and
:func:`deadline_missed` (a deadline alert's callback, run by the triggerer).

Importing this module is cheap (DAG files import it): heavy imports happen when an
alert is written.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from moulin.settings import Settings, load_settings
from moulin.spark import act_as_hdfs_user

ALERTS_TABLE = ("ops", "alerts")
ALERT_MARK = "MOULIN-ALERT "

AlertKind = Literal["task_failed", "deadline_missed", "hdfs_health"]

log = logging.getLogger("moulin.alerts")


@dataclass(frozen=True)
class Alert:
    """One alert row."""

    kind: AlertKind
    dag_id: str
    task_id: str
    run_id: str
    error: str
    log_url: str = ""
    try_number: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def row(self) -> dict:
        data = asdict(self)
        data["details"] = json.dumps(self.details, sort_keys=True, default=str)
        return data


def alerts_uri(settings: Settings) -> str:
    """URI of the alerts table."""
    return settings.table_uri(*ALERTS_TABLE)


def _schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("kind", pa.string()),
            ("dag_id", pa.string()),
            ("task_id", pa.string()),
            ("run_id", pa.string()),
            ("error", pa.string()),
            ("log_url", pa.string()),
            ("try_number", pa.int64()),
            ("details", pa.string()),
            ("at", pa.timestamp("us", tz="UTC")),
        ]
    )


def record_alert(alert: Alert, settings: Settings | None = None) -> None:
    """Log ``alert`` (one ``MOULIN-ALERT`` line) and append it to ``ops/alerts``."""
    from moulin.delta.rows import append_row

    settings = settings or load_settings()
    line = ALERT_MARK + json.dumps({k: v for k, v in alert.row().items() if k != "at"}, default=str)
    log.error(line)
    act_as_hdfs_user(settings)
    append_row(alerts_uri(settings), alert.row(), f"the {alert.kind} alert of {alert.dag_id}", _schema())


def read_alerts(settings: Settings) -> list[dict]:
    """The alert rows, oldest first."""
    from moulin.delta.rows import read_rows

    return read_rows(alerts_uri(settings), "at")


def _error_text(exc: BaseException | None) -> str:
    if exc is None:
        return "the task failed (no exception was handed to the callback)"
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 2000 else text[:2000] + " [...]"


def task_failed(context: dict) -> None:
    """``on_failure_callback``: record a ``task_failed`` alert for the failed task instance.

    Runs once per failure that ends the task (not for a try that will be retried).
    An alert that cannot be written is logged, never raised: the task's own failure
    stays what the operator sees first.
    """
    ti = context.get("ti") or context.get("task_instance")
    try:
        alert = Alert(
            kind="task_failed",
            dag_id=getattr(ti, "dag_id", "?"),
            task_id=getattr(ti, "task_id", "?"),
            run_id=getattr(ti, "run_id", "?"),
            try_number=getattr(ti, "try_number", None),
            error=_error_text(context.get("exception")),
            log_url=getattr(ti, "log_url", "") or "",
            details={"hostname": getattr(ti, "hostname", None)},
        )
        record_alert(alert)
    except Exception:  # noqa: BLE001 - see the docstring
        log.exception("could not record the alert of a failed task")


async def deadline_missed(context: dict | None = None, expected_s: int = 0, **_: Any) -> None:
    """A deadline alert's callback (run by the triggerer): record a ``deadline_missed``
    alert for the DAG run that is still running past its expected duration."""
    import asyncio

    context = context or {}
    dag_run = context.get("dag_run") or {}
    get = dag_run.get if isinstance(dag_run, dict) else lambda k, d=None: getattr(dag_run, k, d)
    dag_id = get("dag_id", "?")
    run_id = get("dag_run_id") or get("run_id") or "?"  # the scheduler hands a DAGRunResponse
    settings = load_settings()
    base = settings.platform.api_url
    alert = Alert(
        kind="deadline_missed",
        dag_id=str(dag_id),
        task_id="",
        run_id=str(run_id),
        error=f"the run of {dag_id} has not finished {expected_s} s after it was queued",
        log_url=f"{base}/dags/{dag_id}/runs/{run_id}",
        details={"expected_s": expected_s, "deadline": str(context.get("deadline", ""))},
    )
    await asyncio.to_thread(record_alert, alert, settings)


def deadline(expected_s: int):
    """The Airflow deadline alert of a DAG expected to finish within ``expected_s`` seconds
    of being queued."""
    from datetime import timedelta

    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(seconds=expected_s),
        callback=AsyncCallback(deadline_missed, kwargs={"expected_s": expected_s}),
    )
