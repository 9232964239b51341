"""The main command: prepare what the five sources deliver, then run the flights chain
through real Airflow (DAG runs as `airflow dags test` runs them, all in one process:
:func:`moulin.orchestration.run_dag_tests`): the source factory's DAG ``source_flights``
once per monthly drop, the reference sources' DAGs, then the use case.

Progress: one line per DAG run and one per stage (tasks print lines starting with
``MOULIN-PROGRESS``, which the runner relays); full Airflow logs go to
``$MOULIN_HOME/logs/flights/``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from moulin.errors import MoulinError
from moulin.jobs.server import stop_servers
from moulin.orchestration import DagTest, ensure_airflow_db, run_dag_tests
from moulin.settings import Settings
from moulin.sources.spec import load_spec
from moulin.usecases.flights.sources import prepare_sources

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


#: The reference sources, landed and gated once per chain at the last month.
REFERENCE_SOURCES = ("weather", "airlines", "planes", "airports")


def plan(months: list[int] | None = None) -> list[DagStep]:
    """The DAG runs of the chain: monthly flight drops, reference data, use case."""

    months = months or list(range(1, 13))
    steps = [
        DagStep(load_spec("flights").dag_id, date(2013, m, 1).isoformat(), f"flights drop 2013-{m:02d}")
        for m in months
    ]
    last = date(2013, max(months), 1).isoformat()
    for source in REFERENCE_SOURCES:
        spec = load_spec(source)
        steps.append(DagStep(spec.dag_id, last, f"reference data: {source} ({spec.kind})"))
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
    """Prepare the sources' deliveries of ``months`` (``conf["sample_per_month"]`` flights
    each, 0: all), then run every step of :func:`plan`; raise naming the DAG run and its
    log on failure."""

    months = months or list(range(1, 13))
    sample = int(conf.get("sample_per_month") or 0) or None
    delivered = prepare_sources(settings, months, sample_per_month=sample)
    say("prepared the sources' deliveries: " + ", ".join(f"{k} {v:,} rows" for k, v in delivered.items()))
    ensure_airflow_db(settings)
    log_dir = settings.logs_dir / "flights"
    log_dir.mkdir(parents=True, exist_ok=True)
    steps = plan(months)
    try:
        return _run_steps(settings, conf, steps, log_dir, say)
    finally:
        stop_servers(settings)  # the chain's job server: its JVM is not needed any more


def _run_steps(
    settings: Settings, conf: dict, steps: list[DagStep], log_dir, say: Callable[[str], None]
) -> list[dict]:
    model_conf = {k: v for k, v in conf.items() if k != "sample_per_month"}  # the sample is the drops'
    runs = [DagTest(s.dag_id, s.logical_date, s.label, model_conf if s.dag_id == "flights_delay_model" else {})
            for s in steps]  # fmt: skip

    def relay(line: str) -> str | None:
        found = progress_lines(line)
        return f"      {found[0]}" if found else None

    return run_dag_tests(settings, runs, log_dir, say, relay)
