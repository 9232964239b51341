"""The main command: run the flights chain through real Airflow (`airflow dags test`),
one DAG run per monthly drop, then the reference data, then the use case.

Progress: one line per DAG run and one per stage (tasks print lines starting with
``MOULIN-PROGRESS``, which the runner relays); full Airflow logs go to
``$MOULIN_HOME/logs/flights/``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from moulin.errors import MoulinError
from moulin.orchestration import ensure_airflow_db, stream_airflow_command
from moulin.settings import Settings

PROGRESS_MARK = "MOULIN-PROGRESS "


@dataclass(frozen=True)
class DagStep:
    """One `airflow dags test` invocation of the chain."""

    dag_id: str
    logical_date: str
    label: str


def parse_months(text: str) -> list[int]:
    """``"1,9,11"`` or ``"1-12"`` as a sorted list of distinct months of 2013."""
    months: set[int] = set()
    try:
        for part in text.split(","):
            if "-" in part:
                low, high = (int(x) for x in part.split("-", 1))
                months.update(range(low, high + 1))
            elif part.strip():
                months.add(int(part))
    except ValueError:
        raise MoulinError(f"months {text!r}: give numbers 1-12, e.g. 1-12 or 1,9,11") from None
    if not months or min(months) < 1 or max(months) > 12:
        raise MoulinError(f"months {text!r}: give numbers 1-12, e.g. 1-12 or 1,9,11")
    return sorted(months)


def plan(months: list[int] | None = None) -> list[DagStep]:
    """The DAG runs of the chain: monthly flight drops, reference data, use case."""
    months = months or list(range(1, 13))
    steps = [
        DagStep("flights_ingest", date(2013, m, 1).isoformat(), f"flights drop 2013-{m:02d}") for m in months
    ]
    last = date(2013, max(months), 1).isoformat()
    steps.append(DagStep("dimensions_ingest", last, "reference data (SQL + files)"))
    steps.append(DagStep("flights_delay_model", last, "use case: silver → gold → features → models → report"))
    return steps


def progress_lines(output: str) -> list[str]:
    """The progress lines that tasks printed, without Airflow's log decoration."""
    found = []
    for line in output.splitlines():
        at = line.find(PROGRESS_MARK)
        if at >= 0:
            found.append(line[at + len(PROGRESS_MARK) :].strip())
    return found


def run_chain(
    settings: Settings,
    conf: dict,
    months: list[int] | None = None,
    say: Callable[[str], None] = lambda line: print(line, flush=True),
) -> list[dict]:
    """Run every step of :func:`plan`; raise naming the DAG run and its log on failure."""
    ensure_airflow_db(settings)
    log_dir = settings.home / "logs" / "flights"
    log_dir.mkdir(parents=True, exist_ok=True)
    steps = plan(months)
    try:
        return _run_steps(settings, conf, steps, log_dir, say)
    finally:
        from moulin.jobs.server import stop_servers

        stop_servers(settings)  # the chain's job server: its JVM is not needed any more


def _run_steps(
    settings: Settings, conf: dict, steps: list[DagStep], log_dir, say: Callable[[str], None]
) -> list[dict]:
    results = []
    for number, step in enumerate(steps, 1):
        start = time.monotonic()
        say(f"[{number}/{len(steps)}] {step.label} ({step.dag_id} @ {step.logical_date}) ...")
        log_path = log_dir / f"{step.dag_id}-{step.logical_date}.log"
        errors: list[str] = []

        def relay(line: str, errors: list[str] = errors) -> None:
            found = progress_lines(line)
            if found:
                say(f"      {found[0]}")
            elif "rror" in line:
                errors.append(line)

        code = stream_airflow_command(
            settings,
            ["dags", "test", step.dag_id, step.logical_date, "-c", json.dumps(conf)],
            log_path,
            relay,
        )
        seconds = time.monotonic() - start
        if code != 0:
            raise MoulinError(
                f"DAG run {step.dag_id} @ {step.logical_date} failed after {seconds:.0f}s; "
                f"full log: {log_path}\n" + "\n".join(errors[-8:])
            )
        say(f"      done in {seconds:.0f}s")
        results.append(
            {"dag_id": step.dag_id, "logical_date": step.logical_date, "seconds": round(seconds, 1)}
        )
    return results
