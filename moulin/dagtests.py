"""Several DAG runs in one process, each run exactly as ``airflow dags test`` runs it.

``airflow dags test`` spends about ten seconds per run before the first task
starts (the interpreter, Airflow's imports, the in-process execution API);
a chain of fourteen runs paid that fourteen times.  This module runs a list of
DAG runs one after another in one process with the same calls as that
command (:func:`airflow.utils.cli.get_bagged_dag`, then ``dag.test``): the DAG
is parsed and synced to the metadata database before every run, and tasks run
in this process as they do under ``dags test``.

    python -m moulin.dagtests < plan.json     # [{"dag_id", "logical_date", "conf"}, ...]

Prints ``MOULIN-DAGRUN-START <json>`` before and ``MOULIN-DAGRUN-END <json>``
(index, state, seconds) after each run, and stops after the first run that
did not succeed (exit code 1).  Airflow's settings come from the environment
(:func:`moulin.orchestration.airflow_env`).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

START_MARK = "MOULIN-DAGRUN-START "
END_MARK = "MOULIN-DAGRUN-END "


def without_deadline_alerts(dag) -> None:
    """Drop ``dag``'s deadline alerts for this run.

    A deadline alert is watched by the triggerer while a queued run lasts;
    here each run is carried out synchronously, with no triggerer to watch it.
    Airflow 3.3's ``dag.test`` also cannot finish a run of a DAG that has one:
    it hands the run a re-serialized copy whose alerts are dicts where
    ``DagRun.update_state`` expects the ids of stored alerts
    (``AttributeError: 'dict' object has no attribute 'hex'``).  The DAG as
    stored in the database (parsed from its file) keeps its alerts.
    """
    if getattr(dag, "deadline", None):
        dag.deadline = None


def run_plan(plan: list[dict]) -> int:
    """Run every step of ``plan`` in order; 0 when all succeeded, 1 at the first that did not."""
    from airflow.utils import timezone
    from airflow.utils.cli import get_bagged_dag

    for index, step in enumerate(plan):
        print(START_MARK + json.dumps({"index": index, "dag_id": step["dag_id"]}), flush=True)
        started = time.monotonic()
        state = "failed"
        try:
            dag = get_bagged_dag(None, step["dag_id"])
            without_deadline_alerts(dag)
            run = dag.test(logical_date=timezone.parse(step["logical_date"]), run_conf=step.get("conf"))
            state = str(getattr(run, "state", None) or "failed")
        except Exception:  # noqa: BLE001 - reported as the run's failure, with its traceback in the log
            traceback.print_exc(file=sys.stdout)
        seconds = round(time.monotonic() - started, 1)
        print(END_MARK + json.dumps({"index": index, "state": state, "seconds": seconds}), flush=True)
        if state != "success":
            return 1
    return 0


def main() -> int:
    """Read the plan (JSON) from stdin and run it."""
    return run_plan(json.loads(sys.stdin.read()))


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # deltalake's native pools can abort at interpreter exit (delta-rs#2184)
