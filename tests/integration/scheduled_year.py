"""A scheduled year on the platform, driven by the scheduler alone: shared by
``test_scheduled_year.py`` (four months) and ``benchmarks/year.py`` (twelve).

``moulin platform up`` from an empty home, with the source DAGs of the five flights
sources (``source_flights`` and the reference sources' ``source_weather``, ...)
windowed on the months under test (their specs' dates, :func:`window_flights_sources`,
one drop a month, ``sample`` flights each) and one epoch of training.  The six DAGs
are unpaused at once and nothing is triggered by hand: the scheduler catches the
months up, and ``flights_delay_model`` runs on the Asset events the bronze writes send.

Everything is read back from places independent of the tasks' own results: DagRuns
and task states and the Asset events each model run consumed through Airflow's REST
API, the raw files' lines on HDFS, the Delta tables (and their history) through
deltalake.

The platform runs moulin from a copy of the package under the test's home (the rest of
the repository linked), put first on ``PYTHONPATH``, so :func:`edit_code` changes the
code the platform runs (and so every idempotency key) without touching the checkout
that other processes use.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from platform_helpers import (
    FLIGHTS_SOURCES,
    MOULIN,
    PlatformUnderTest,
    _states,
    platform_service_env,
    window_flights_sources,
)

from moulin.platform import postgres
from moulin.platform.rest import AirflowClient
from moulin.settings import REPO_ROOT, Settings, load_settings

SOURCE_DAGS = tuple(f"source_{name}" for name in FLIGHTS_SOURCES)  # source_flights first
DAGS = (*SOURCE_DAGS, "flights_delay_model")
BRONZE_FLIGHTS = "moulin://bronze/flights"
REFERENCE_SOURCES = FLIGHTS_SOURCES[1:]  # weather, airlines, planes, airports
FIRST_TEST_MONTH = 11  # schemas/flight_features.yaml: test after validation_until (2013-10-31)

Say = Callable[[str], None]


def splits_lacking(months: list[str]) -> list[str]:
    """The splits no month of ``months`` falls in (the feature contract's date bounds)."""
    from moulin.usecases.flights.tasks import splits_without_months

    return splits_without_months(months)


def months_of(first: int, count: int) -> list[str]:
    """The logical dates of ``count`` monthly drops of 2013 from month ``first``."""
    return [date(2013, m, 1).isoformat() for m in range(first, first + count)]


# ---------------------------------------------------------------------------- platform
def shadow_code(root: Path) -> Path:
    """A copy of the ``moulin`` package under ``root`` (every other entry of the repository
    linked): on ``PYTHONPATH`` first, it is the code the platform runs."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        REPO_ROOT / "moulin", root / "moulin", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    for entry in REPO_ROOT.iterdir():
        if entry.name not in ("moulin", ".git") and not entry.name.endswith(".egg-info"):
            (root / entry.name).symlink_to(entry)
    return root


def edit_code(code: Path, note: str) -> None:
    """A code edit of the platform's moulin (a comment in the flights stages): it changes
    :func:`moulin.lineage.code_version`, so every stage rerun after it recomputes."""
    path = code / "moulin" / "usecases" / "flights" / "stages.py"
    path.write_text(path.read_text() + f"\n# {note}\n")


def year_env(home: Path, months: list[str], sample: int, epochs: int = 1) -> dict[str, str]:
    """The environment of ``moulin platform up`` for a scheduled run of ``months``."""
    code = shadow_code(home / "code")
    env = platform_service_env(home)
    env.update(
        {
            "PYTHONPATH": str(code),
            "MOULIN_FLIGHTS_SAMPLE_PER_MONTH": str(sample),
            "MOULIN_FLIGHTS_EPOCHS": str(epochs),
        }
    )
    window_flights_sources(env, months[0], months[-1])  # the five specs' window, a drop a month
    return env


def platform_up(env: dict[str, str]) -> PlatformUnderTest:
    """``moulin platform up`` from the code copy's folder: the services' processes (and the
    ``python -m`` children of their tasks, which import from their working folder first)
    run the copy."""
    result = subprocess.run(
        [MOULIN, "platform", "up"],
        env=env,
        cwd=env["PYTHONPATH"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    settings = load_settings("hdfs-local", env=env)
    return PlatformUnderTest(settings, env, result.stdout, AirflowClient(settings))


def platform_down(env: dict[str, str], logs_to: Path | None = None) -> None:
    """Stop the platform and remove its home (the Airflow task logs copied to ``logs_to`` first)."""
    settings = load_settings("hdfs-local", env=env)
    subprocess.run([MOULIN, "platform", "down"], env=env, capture_output=True, text=True, timeout=300)
    if logs_to is not None and (settings.home / "airflow" / "logs").is_dir():
        shutil.rmtree(logs_to, ignore_errors=True)
        shutil.copytree(settings.home / "airflow" / "logs", logs_to)
    shutil.rmtree(postgres.data_dir(settings), ignore_errors=True)
    shutil.rmtree(settings.home, ignore_errors=True)


def new_home() -> Path:
    return Path(tempfile.mkdtemp(prefix="moulin-year-"))


# ---------------------------------------------------------------------------- REST reads
def _seconds(run: dict) -> float | None:
    if not run.get("start_date") or not run.get("end_date"):
        return None
    start = datetime.fromisoformat(run["start_date"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(run["end_date"].replace("Z", "+00:00"))
    return round((end - start).total_seconds(), 1)


def consumed_events(client: AirflowClient, run_id: str) -> list[dict]:
    """The Asset events model run ``run_id`` was created from (Airflow's record)."""
    answer = client.get(f"/dags/flights_delay_model/dagRuns/{run_id}/upstreamAssetEvents")
    return answer["asset_events"]


def xcom(client: AirflowClient, dag_id: str, run_id: str, task_id: str) -> dict | None:
    try:
        value = client.get(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        )["value"]
    except Exception:  # no XCom: the task was skipped or has not run
        return None
    return value if isinstance(value, dict) else json.loads(value)


@dataclass
class ModelRun:
    """A run of ``flights_delay_model`` as Airflow and its tasks' XComs record it."""

    run_id: str
    state: str
    run_type: str
    seconds: float | None
    tasks: dict[str, tuple[str, int]]
    flights_months: list[str]  # months of the bronze flights events it consumed
    reference_runs: list[str]  # runs of the reference sources' DAGs whose events it consumed
    silver_months: list[str] = field(default_factory=list)
    features: dict | None = None
    trained: dict | None = None

    @property
    def board_id(self) -> str:
        """The run id the leaderboard records (a safe folder name: moulin.orchestration.safe_run_id)."""
        from moulin.orchestration import safe_run_id

        return safe_run_id(self.run_id)

    @property
    def train_state(self) -> str:
        return self.tasks.get("train", ("none", 0))[0]


def model_runs(client: AirflowClient) -> list[ModelRun]:
    out = []
    for run in client.dag_runs("flights_delay_model"):
        run_id = run["dag_run_id"]
        events = consumed_events(client, run_id)
        flights = sorted(str((e.get("extra") or {}).get("ds")) for e in events if e["uri"] == BRONZE_FLIGHTS)
        refs = sorted(
            f"{e.get('source_dag_id')}/{e.get('source_run_id')}" for e in events if e["uri"] != BRONZE_FLIGHTS
        )
        silver = xcom(client, "flights_delay_model", run_id, "silver") or {}
        out.append(
            ModelRun(
                run_id=run_id,
                state=run["state"],
                run_type=run["run_type"],
                seconds=_seconds(run),
                tasks=_states(client, "flights_delay_model", run_id),
                flights_months=flights,
                reference_runs=refs,
                silver_months=silver.get("months", []),
                features=xcom(client, "flights_delay_model", run_id, "features"),
                trained=xcom(client, "flights_delay_model", run_id, "train"),
            )
        )
    return out


def run_imminent(client: AirflowClient) -> bool:
    """Whether the five bronze assets have an event queued for the model DAG (a run is about to be made)."""
    queued = client.get("/dags/flights_delay_model/assets/queuedEvents")["queued_events"]
    return len({q["asset_id"] for q in queued}) >= len(FLIGHTS_SOURCES)


def runs_by_month(client: AirflowClient, dag_id: str) -> dict[str, dict]:
    return {r["logical_date"][:10]: r for r in client.dag_runs(dag_id) if r.get("logical_date")}


# ---------------------------------------------------------------------------- the year
@dataclass
class YearReport:
    months: list[str]
    wall_s: float
    flights: dict[str, dict]  # month -> DagRun of source_flights
    references: dict[str, dict[str, dict]]  # DAG id of a reference source -> month -> DagRun
    models: list[ModelRun]


def _done(runs: dict[str, dict], months: list[str]) -> list[str]:
    return [m for m in months if runs.get(m, {}).get("state") in ("success", "failed")]


def run_scheduled_year(
    platform: PlatformUnderTest, months: list[str], timeout_s: float, say: Say = print
) -> YearReport:
    """Unpause the six DAGs and wait (at most ``timeout_s``) until the scheduler ran
    every month of the five source DAGs, no model run is unfinished or about to be made, and
    the last model run that trained read every month.  Prints a line on each DagRun that ends."""
    client = platform.client

    def parsed() -> bool:
        errors = client.get("/importErrors")["import_errors"]
        assert not errors, f"DAG files fail to import: {errors}"
        return set(DAGS) <= set(client.dag_ids())

    wait_until(f"the dag-processor to register {', '.join(DAGS)}", parsed, 300, poll_s=2)
    start = time.monotonic()
    for dag_id in reversed(DAGS):
        client.set_paused(dag_id, False)
    deadline = start + timeout_s
    seen: set[tuple[str, str]] = set()
    while True:
        sources = {dag_id: runs_by_month(client, dag_id) for dag_id in SOURCE_DAGS}
        models = client.dag_runs("flights_delay_model")
        for dag_id, runs in (*((d, r.values()) for d, r in sources.items()), ("flights_delay_model", models)):
            for r in runs:
                if r["state"] in ("success", "failed") and (dag_id, r["dag_run_id"]) not in seen:
                    seen.add((dag_id, r["dag_run_id"]))
                    say(
                        f"  {time.monotonic() - start:6.0f}s  {dag_id:<20} {r['dag_run_id']:<48} "
                        f"{r['state']} ({_seconds(r)} s)"
                    )
        waiting = []
        for dag_id, runs in sources.items():
            if len(_done(runs, months)) < len(months):
                waiting.append(f"{dag_id}: {len(_done(runs, months))} of {len(months)} months finished")
        unfinished = [r["dag_run_id"] for r in models if r["state"] not in ("success", "failed")]
        if unfinished:
            waiting.append(f"flights_delay_model runs {unfinished} unfinished")
        if not waiting and run_imminent(client):
            waiting.append("the flights_delay_model run the five queued Asset events make")
        if not waiting:
            covered = [m.silver_months for m in model_runs(client) if m.train_state == "success"]
            if not covered or covered[-1] != months:
                waiting.append(
                    f"a flights_delay_model run that trained on every month (last trained on "
                    f"{covered[-1] if covered else 'none'})"
                )
        if not waiting:
            break
        if any(r["state"] == "failed" for r in [*(r for d in sources.values() for r in d.values()), *models]):
            raise AssertionError(f"a DagRun failed; still waiting for: {'; '.join(waiting)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout_s:.0f} s, still waiting for: {'; '.join(waiting)}")
        time.sleep(5)
    wall = time.monotonic() - start
    return YearReport(
        months=months,
        wall_s=round(wall, 1),
        flights=runs_by_month(client, SOURCE_DAGS[0]),
        references={dag_id: runs_by_month(client, dag_id) for dag_id in SOURCE_DAGS[1:]},
        models=model_runs(client),
    )


def wait_until(what: str, check: Callable[[], bool], timeout_s: float, poll_s: float = 5.0) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"after {timeout_s:.0f} s still waiting for {what}"
        time.sleep(poll_s)


# ---------------------------------------------------------------------------- tables
def raw_rows(settings: Settings, source: str, ds: str) -> int:
    """Data rows of the raw files landed for ``source`` and ``ds``, counted from the files
    on the warehouse (CSV: records after the header; JSON lines: lines), not from the manifest."""
    from moulin.storage import WarehouseFS

    fs = WarehouseFS(settings)
    folder = settings.table_uri("raw", source, f"ds={ds}")
    rows = 0
    files = [f for f in fs.list(folder) if not f.uri.rsplit("/", 1)[-1].startswith(("_", "."))]
    assert files, f"no raw file of {source} under {folder}"
    for entry in files:
        text = fs.read_bytes(entry.uri).decode()
        if entry.uri.endswith(".jsonl"):  # the SQL sources' extracts
            rows += sum(1 for line in text.splitlines() if line.strip())
            continue
        records = [r for r in csv.reader(io.StringIO(text)) if r]
        rows += max(len(records) - 1, 0)
    return rows


def delta_rows(settings: Settings, name: str, ds: str | None = None, version: int | None = None) -> int:
    """Rows of Delta table ``name`` (with ``ds`` == ``ds`` if given), read with deltalake."""
    from deltalake import DeltaTable

    uri = settings.table_uri(name)
    if not DeltaTable.is_deltatable(uri):
        return 0
    table = DeltaTable(uri, version=version).to_pyarrow_table()
    if ds is None:
        return table.num_rows
    if "ds" not in table.column_names:
        return 0
    return sum(1 for v in table.column("ds").to_pylist() if str(v)[:10] == ds)


def quality_record(settings: Settings, source: str, ds: str) -> dict:
    from moulin.storage import WarehouseFS

    uri = settings.table_uri("quality", "runs", source, f"ds={ds}.json")
    return json.loads(WarehouseFS(settings).read_bytes(uri))


def table_state(settings: Settings, name: str) -> tuple[int, int]:
    """(Delta version, rows) of table ``name``."""
    from deltalake import DeltaTable

    table = DeltaTable(settings.table_uri(name))
    return table.version(), table.to_pyarrow_table().num_rows


def partition_files(settings: Settings, name: str, ds: str) -> list[str]:
    """The data files of partition ``ds`` of table ``name`` (what a rewrite would change)."""
    from deltalake import DeltaTable

    return sorted(DeltaTable(settings.table_uri(name)).file_uris([("ds", "=", ds)]))


def split_rows_at(settings: Settings, version: int) -> dict[str, int]:
    """Rows per split of the feature table at ``version`` (its Delta history)."""
    from deltalake import DeltaTable

    table = DeltaTable(settings.table_uri("gold", "flight_features"), version=version)
    counts: dict[str, int] = {}
    for split in table.to_pyarrow_table(columns=["split"]).column("split").to_pylist():
        counts[split] = counts.get(split, 0) + 1
    return counts


def leaderboard(settings: Settings) -> list[dict]:
    from moulin.delta import DeltaTableStore

    board = DeltaTableStore(None).to_pandas(settings.table_uri("gold", "model_leaderboard"))
    return board.to_dict("records")


# ---------------------------------------------------------------------------- figures
def month_figures(platform: PlatformUnderTest, year: YearReport) -> list[dict]:
    """One line of figures per month: its runs' seconds, raw = bronze + quarantined, the
    planes it brought, the model run that consumed its flights event and the first that
    trained on it (``dimensions_s``: the seconds of the four reference sources' runs)."""
    settings = platform.settings
    out = []
    for ds in year.months:
        # The first model run that trained on the month (read it from bronze).
        model = next((m for m in year.models if m.train_state == "success" and ds in m.silver_months), None)
        consumer = next((m.run_id for m in year.models if ds in m.flights_months), "(none yet)")
        planes = quality_record(settings, "planes", ds)
        out.append(
            {
                "month": ds,
                "flights_s": _seconds(year.flights[ds]),
                "dimensions_s": sum(_seconds(runs[ds]) or 0 for runs in year.references.values()),
                "raw": raw_rows(settings, "flights", ds),
                "bronze": delta_rows(settings, "bronze/flights", ds),
                "quarantined": delta_rows(settings, "quarantine/flights", ds),
                "planes": f"{planes['rows_read']} = {planes['rows_bronze']} + {planes['rows_quarantined']}",
                "event_consumed_by": consumer,
                "model_run": model.run_id if model else None,
                "model_s": model.seconds if model else None,
                "train": model.train_state if model else None,
                "features_version": (model.features or {}).get("version") if model else None,
            }
        )
    return out


def print_figures(year: YearReport, figures: list[dict], say: Say = print) -> None:
    say(
        f"scheduled year: {len(year.months)} months, {year.wall_s:.0f} s from unpausing to the last model run"
    )
    say(
        f"{'month':<11} {'flights s':>9} {'dims s':>7} {'raw':>5} {'bronze':>6} {'quar.':>5}  "
        f"{'planes r = b + q':<17} {'event consumed by':<50} {'first trained by':<50} {'model s':>7}  features v"
    )
    for f in figures:
        say(
            f"{f['month']:<11} {f['flights_s'] or 0:>9.0f} {f['dimensions_s'] or 0:>7.0f} {f['raw']:>5} "
            f"{f['bronze']:>6} {f['quarantined']:>5}  {f['planes']:<17} {f['event_consumed_by']:<50} "
            f"{str(f['model_run']):<50} {f['model_s'] or 0:>7.0f}  v{f['features_version']}"
        )
    trained = [m for m in year.models if m.train_state == "success"]
    say(
        f"model runs: {len(year.models)} ({len(trained)} trained, "
        f"{sum(1 for m in year.models if m.train_state == 'skipped')} skipped before every split had rows)"
    )
