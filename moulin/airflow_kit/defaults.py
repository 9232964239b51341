"""The ``default_args`` of a moulin DAG, from its retry policy."""

from __future__ import annotations

from typing import Any

from moulin.airflow_kit.retries import EXPONENTIAL_FACTOR, RetryPolicy, data_errors_fail_at_once
from moulin.ops.alerts import task_failed


def default_args(policy: RetryPolicy) -> dict[str, Any]:
    """The ``default_args`` every task of a DAG gets: ``policy``'s retries, delay and
    backoff; :func:`~moulin.airflow_kit.retries.data_errors_fail_at_once` (a data error
    fails at once, without retries); and :func:`~moulin.ops.alerts.task_failed` as the
    failure callback (a ``task_failed`` alert when a task fails for good)."""
    return {
        "retries": policy.retries,
        "retry_delay": policy.delay,
        "retry_exponential_backoff": EXPONENTIAL_FACTOR if policy.backoff == "exponential" else 0,
        "max_retry_delay": policy.max_delay,
        "retry_policy": data_errors_fail_at_once(),
        "on_failure_callback": task_failed,
    }
