"""The Airflow Spark provider's ``SparkSubmitHook``, relaying every line as it comes.

:func:`moulin.jobs.submit.submit_job` runs ``spark-submit`` through
:class:`StreamingSparkSubmitHook`: the master and deploy mode come from the
Airflow connection ``spark_default`` (see :mod:`moulin.jobs.connections` for
the precedence), the rest from moulin's job submission.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Callable, Iterator
from typing import Any

from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook
from airflow.providers.common.compat.sdk import AirflowNotFoundException

from moulin.jobs.connections import ConnectionSpec
from moulin.jobs.result_line import RESULT_MARK

#: Lines of the job's output kept for error messages.
TAIL_LINES = 40


class StreamingSparkSubmitHook(SparkSubmitHook):
    """``SparkSubmitHook`` that hands every output line to ``on_line`` while the job runs.

    ``fallback`` is the connection used when Airflow has none stored under the
    hook's conn_id (the stored one wins).  ``connection_source`` tells which one
    was used (``airflow`` or ``settings``).
    """

    def __init__(
        self, *, on_line: Callable[[str], None], fallback: ConnectionSpec | None = None, **kwargs: Any
    ) -> None:
        # Set before the provider's __init__, which resolves the connection.
        self._on_line = on_line
        self._fallback = fallback
        self.connection_source = "airflow"
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.result_line: str | None = None
        self.command: list[str] = []
        super().__init__(**kwargs)

    def get_connection(self, conn_id: str) -> Any:  # type: ignore[override]
        """The stored connection ``conn_id``, else the fallback built from moulin's settings."""
        try:
            return super().get_connection(conn_id)
        except AirflowNotFoundException:
            if self._fallback is None or self._fallback.conn_id != conn_id:
                raise
        from airflow.sdk import Connection

        self.connection_source = "settings"
        spec = self._fallback
        return Connection(
            conn_id=spec.conn_id,
            conn_type=spec.conn_type,
            host=spec.host,
            port=spec.port,
            login=spec.login,
            extra=json.dumps(spec.extra),
        )

    @property
    def master(self) -> str:
        """The Spark master this hook submits to."""
        return self._connection["master"]

    def _build_spark_submit_command(self, application: str) -> list[str]:
        self.command = super()._build_spark_submit_command(application)
        self._on_line(f"moulin: {self._mask_cmd(self.command)}")
        return self.command

    def _process_spark_submit_log(self, itr: Iterator[Any]) -> None:
        # Overridden, not extended: the provider only sends each line to its own
        # logger (and keeps the last 20), while moulin relays every line to the
        # caller as it comes (the Airflow task log, the CLI, a test's callback) and
        # needs the MOULIN-RESULT line.  What the provider parses here (YARN
        # application id, Kubernetes pod, standalone driver id) exists only in
        # cluster deploy mode, which submit_job never uses: the job's output must
        # come back to this process.
        for raw in itr:
            line = raw.rstrip("\n")
            if line.startswith(RESULT_MARK):
                self.result_line = line
            else:
                self.tail.append(line)
            self._last_submit_log_lines.append(line)
            self._on_line(line)
