"""The retry policies of moulin's DAGs, each with its reason, and the rule every one of
them keeps: a data error fails its task at once.

A :class:`~moulin.errors.DataError` (a contract, a spec, a quality gate, a job that
exited with :data:`~moulin.errors.DATA_ERROR_EXIT_CODE`) fails the same way on the
same input, so its task fails on the first try whatever the policy says
(:func:`data_errors_fail_at_once`); any other error is taken as transient and the task
retries as its DAG's :class:`RetryPolicy` says.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from moulin.errors import DataError

if TYPE_CHECKING:
    from airflow.sdk.definitions.retry_policy import ExceptionRetryPolicy

#: ``fixed``: every retry waits ``delay``; ``exponential``: the n-th retry waits about
#: ``delay * 2**(n-1)`` (Airflow adds a jitter of up to as much again), never more than ``max_delay``.
Backoff = Literal["fixed", "exponential"]

#: The factor between two consecutive delays of an ``exponential`` policy.
EXPONENTIAL_FACTOR = 2.0


@dataclass(frozen=True)
class RetryPolicy:
    """How often and after how long the tasks of a DAG retry an error that is not a data
    error, and ``reason``: why that many retries and that delay suit the DAG's work."""

    name: str
    retries: int
    delay: timedelta
    backoff: Backoff
    reason: str
    max_delay: timedelta | None = None

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retry policy {self.name!r}: retries is {self.retries}; give 0 or more")
        if self.delay <= timedelta(0):
            raise ValueError(f"retry policy {self.name!r}: delay is {self.delay}; give a positive delay")
        if self.max_delay is not None and self.max_delay < self.delay:
            raise ValueError(
                f"retry policy {self.name!r}: max_delay {self.max_delay} is shorter than delay {self.delay}; "
                "raise max_delay or leave it out"
            )
        if not self.reason.strip():
            raise ValueError(f"retry policy {self.name!r} gives no reason; say why these retries and delay")


TRANSIENT = RetryPolicy(
    name="transient",
    retries=2,
    delay=timedelta(seconds=30),
    backoff="exponential",
    max_delay=timedelta(minutes=5),
    reason=(
        "Short tasks that touch HDFS, Spark or the network (health checks, landing a drop, the "
        "bronze gate): a NameNode failover, a DataNode or the job server restarting, an API's rate "
        "limit clear within a minute or two.  Two retries, 30 s then about 1 min later, ride that "
        "out and still fail well inside the shortest schedule (HDFS health, every 15 min), so a "
        "real outage is alerted on before the next run starts."
    ),
)

PIPELINE = RetryPolicy(
    name="pipeline",
    retries=1,
    delay=timedelta(seconds=30),
    backoff="fixed",
    reason=(
        "Use-case stages: Spark jobs and trainings of minutes to an hour.  Their writes are "
        "idempotent, so a retry is safe, but it repeats the whole stage: one retry 30 s later "
        "covers a job server restarting or a busy HDFS without tripling a long run; a second "
        "failure is for an operator to look at (the task_failed alert)."
    ),
)

OPERATOR = RetryPolicy(
    name="operator",
    retries=2,
    delay=timedelta(minutes=5),
    backoff="fixed",
    reason=(
        "Privacy operations (retention, erasure): they rewrite every table that holds personal "
        "data, tables the pipelines write too, on a cluster the pipelines keep busy.  What stops "
        "them (a concurrent commit, no executors free) clears when the pipelines' runs finish, "
        "in minutes, not seconds: two retries 5 min apart give them that time.  Nobody waits on "
        "these runs by the minute (retention is daily, an erasure has a month)."
    ),
)


@functools.cache
def data_errors_fail_at_once() -> ExceptionRetryPolicy:
    """Airflow's per-exception retry decision of every moulin task (one object, shared):
    a :class:`DataError` fails the task on this try (the remaining retries are not used);
    any other error keeps the task's retries.  The task's failure shows the data error itself."""
    from airflow.sdk.definitions.retry_policy import ExceptionRetryPolicy, RetryAction, RetryRule

    return ExceptionRetryPolicy(
        rules=[
            RetryRule(
                exception=DataError,
                action=RetryAction.FAIL,
                reason="a data error fails the same way on the same input: fix the data or its "
                "description (the error names it), then clear the task",
            )
        ],
        default=RetryAction.DEFAULT,
    )
