"""The line a job prints its result on: ``MOULIN-RESULT <json>``, once, at the end of the job.

The job entry point prints it (:func:`emit_result`); the submitter and the
``spark-submit`` hook look for :data:`RESULT_MARK` in the job's output
(:func:`moulin.jobs.submit.parse_result`).
"""

from __future__ import annotations

import json

RESULT_MARK = "MOULIN-RESULT "


def emit_result(result: dict) -> None:
    """Print a job's result for :func:`moulin.jobs.submit.submit_job` (call once, at the end of the job)."""
    print(RESULT_MARK + json.dumps(result, default=str), flush=True)
