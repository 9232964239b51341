"""`moulin platform up`: PostgreSQL, HDFS, Spark standalone and Airflow's scheduler,
dag-processor, triggerer and api-server, started by the test on free ports under a
home of its own; the DAGs run under the scheduler (not `dags test`), read back
through Airflow's REST API, and the operator's view is checked in headless Chromium.

The tests of this module run in order on one platform: the unattended flights
chain first, then faults (bad input, a killed task, a killed scheduler), health
and alerts, the browser, and `platform down` last.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from platform_helpers import (
    FLIGHTS_SOURCES,
    MOULIN,
    PlatformUnderTest,
    _bronze_commits_of,
    _states,
    _wait_run,
    platform_service_env,
    window_flights_sources,
)

from moulin.cluster.daemons import port_open
from moulin.ops import faultpoints
from moulin.platform import postgres, secrets
from moulin.platform.rest import AirflowClient
from moulin.settings import Settings, load_settings

pytestmark = pytest.mark.integration

SAMPLE = 150
SOURCE_DAGS = tuple(f"source_{name}" for name in FLIGHTS_SOURCES)  # source_flights first
ARTIFACTS = Path(os.environ.get("MOULIN_TEST_ARTIFACTS", "test-artifacts"))


@pytest.fixture(scope="module")
def platform_env() -> dict[str, str]:
    home = Path(tempfile.mkdtemp(prefix="moulin-platform-"))
    env = platform_service_env(home)
    env.update(
        {
            "MOULIN_FLIGHTS_SAMPLE_PER_MONTH": str(SAMPLE),
            "MOULIN_FLIGHTS_EPOCHS": "1",
            # Limits that this small cluster crosses, so the health DAG alerts.
            "MOULIN_PLATFORM_HEALTH_MIN_LIVE_DATANODES": "4",
            "MOULIN_PLATFORM_HEALTH_DEADLINE_S": "1",
        }
    )
    # The scheduler catches up three drops: January (train), September (validation),
    # November (test); other months are triggered by tests.
    window_flights_sources(env, "2013-01-01", "2013-12-01", "0 0 1 1,9,11 *")
    yield env
    settings = load_settings("hdfs-local", env=env)
    subprocess.run([MOULIN, "platform", "down"], env=env, capture_output=True, text=True, timeout=300)
    shutil.rmtree(postgres.data_dir(settings), ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def platform(platform_env) -> PlatformUnderTest:
    result = subprocess.run(
        [MOULIN, "platform", "up"], env=platform_env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    settings = load_settings("hdfs-local", env=platform_env)
    return PlatformUnderTest(settings, platform_env, result.stdout, AirflowClient(settings))


def _bronze_month_rows(settings: Settings, ds: str) -> tuple[int, int]:
    """(rows of bronze flights for ``ds``, rows that month's landing counted)."""
    from deltalake import DeltaTable

    from moulin.storage import WarehouseFS

    table = DeltaTable(settings.table_uri("bronze", "flights"))
    rows = table.to_pyarrow_dataset().to_table(filter=None).to_pandas()
    bronze = int((rows["ds"].astype(str) == ds).sum())
    quarantine_uri = settings.table_uri("quarantine", "flights")
    quarantined = 0
    if DeltaTable.is_deltatable(quarantine_uri):
        q = DeltaTable(quarantine_uri).to_pyarrow_table().to_pandas()
        quarantined = int((q["ds"].astype(str) == ds).sum()) if "ds" in q else 0
    fs = WarehouseFS(settings)
    manifest = json.loads(fs.read_bytes(settings.table_uri("raw", "flights", f"ds={ds}", "_manifest.json")))
    landed = sum(f["rows"] for f in manifest["files"])
    return bronze + quarantined, landed


def _task_log(settings: Settings, dag_id: str, run_id: str, task_id: str) -> str:
    folder = (
        settings.home / "airflow" / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    )
    return "\n".join(p.read_text(errors="replace") for p in sorted(folder.glob("attempt=*.log")))


def _check_chain_outputs(platform: PlatformUnderTest, model_run_id: str) -> None:
    """What the chain wrote: progress per stage in the task logs, rows accounted for from
    independent places, the features version behind the leaderboard, the report."""
    from moulin.delta import DeltaTableStore
    from moulin.storage import WarehouseFS
    from moulin.usecases.flights.summary import read_run_summary

    settings, client = platform.settings, platform.client
    logs = ""
    for dag_id in (*SOURCE_DAGS, "flights_delay_model"):
        for r in client.dag_runs(dag_id):
            for task in _states(client, dag_id, r["dag_run_id"]):
                logs += _task_log(settings, dag_id, r["dag_run_id"], task)
    sources = [f"{step} {name}" for name in FLIGHTS_SOURCES for step in ("land", "bronze")]
    for stage in (*sources, "silver", "gold stats", "features", "profile", "train", "report"):
        assert f"MOULIN-PROGRESS {stage} " in logs, f"no progress line for {stage} in the task logs"
    fs = WarehouseFS(settings)
    store = DeltaTableStore(None)
    for ds in ("2013-01-01", "2013-09-01", "2013-11-01"):
        record = json.loads(fs.read_bytes(settings.table_uri("quality", "runs", "flights", f"ds={ds}.json")))
        assert record["rows_read"] == SAMPLE == record["rows_bronze"] + record["rows_quarantined"]
    assert store.count(settings.table_uri("bronze", "flights")) == 3 * SAMPLE
    weather_q = store.to_pandas(settings.table_uri("quarantine", "weather"))
    assert "wind_speed" in " ".join(str(v) for v in weather_q.astype(str).to_numpy().ravel())
    summary = read_run_summary(settings)
    assert summary["run_id"] == model_run_id
    features = summary["tables"]["gold/flight_features"]
    assert summary["features_version"] == features["version"] and 0 < features["rows"] <= 3 * SAMPLE
    board = store.to_pandas(settings.table_uri("gold", "model_leaderboard"))
    rows = board[board["run_id"].astype(str).str.contains("asset_triggered")]
    assert set(rows["model"]) >= {"mlp", "logreg", "hist_gbt"}
    assert (rows["features_version"] == features["version"]).all()
    html = fs.read_bytes(summary["report_uri"]).decode()
    assert "Will a flight leave New York 15 minutes late" in html
    assert "http://" not in html and "https://" not in html
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "flights_report.html").write_text(html)


# ---------------------------------------------------------------------------- tests


def test_up_prints_the_admin_password_once_and_keeps_secrets_private(platform) -> None:
    password = secrets.read_secret(platform.settings, secrets.ADMIN_PASSWORD)
    assert platform.up_output.count(password) == 1
    for secret in secrets.ALL:
        assert secret.path(platform.settings).stat().st_mode & 0o777 == 0o600
    again = platform.moulin("platform", "up")
    assert again.returncode == 0, again.stderr[-2000:]
    assert password not in again.stdout and "already running" in again.stdout
    assert "sql endpoint: jdbc:hive2://127.0.0.1:" in platform.up_output  # up waited for it
    assert "sql-endpoint: already running" in again.stdout
    logs = [p for p in platform.settings.home.rglob("*") if p.is_file() and p.suffix in (".log", ".out")]
    assert logs
    leaked = [str(p) for p in logs if password in p.read_text(errors="replace")]
    assert not leaked, f"the admin password is in {leaked}"
    health = platform.client.health()
    assert {health[c]["status"] for c in ("metadatabase", "scheduler", "triggerer", "dag_processor")} == {
        "healthy"
    }
    conns = {c["connection_id"]: c for c in platform.client.get("/connections")["connections"]}
    assert conns["spark_default"]["host"] == platform.settings.spark.master
    assert conns["webhdfs_default"]["port"] == platform.settings.hdfs.namenode_http_port


def test_scheduler_runs_the_flights_chain_unattended(platform) -> None:
    client = platform.client
    start = time.monotonic()
    client.set_paused("flights_delay_model", False)
    client.set_paused("source_flights", False)  # the scheduler catches up the three drops
    runs = client.wait_for_runs("source_flights", 3, timeout_s=900)
    assert {r["logical_date"][:10]: r["state"] for r in runs} == {
        "2013-01-01": "success", "2013-09-01": "success", "2013-11-01": "success",
    }  # fmt: skip
    assert {r["run_type"] for r in runs} == {"scheduled"}
    for dag_id in SOURCE_DAGS[1:]:  # the reference sources follow the flights window: three runs
        client.set_paused(dag_id, False)
    model_runs = client.wait_for_runs("flights_delay_model", 1, timeout_s=1500)
    elapsed = time.monotonic() - start
    # Later tests land more flights months; no model run of theirs should compete for the CPU.
    client.set_paused("flights_delay_model", True)
    for dag_id in SOURCE_DAGS[1:]:
        dims = client.wait_for_runs(dag_id, 3, timeout_s=900)
        assert {r["logical_date"][:10]: r["state"] for r in dims} == {
            "2013-01-01": "success", "2013-09-01": "success", "2013-11-01": "success",
        }, dag_id  # fmt: skip
    (run,) = model_runs
    assert run["run_type"] == "asset_triggered" and run["logical_date"] is None
    states = _states(client, "flights_delay_model", run["dag_run_id"])
    assert run["state"] == "success", states
    assert set(states) == {"silver", "gold_stats", "features", "profile", "train", "report"}
    assert {s for s, _ in states.values()} == {"success"}
    for dag_id in SOURCE_DAGS:
        for r in client.dag_runs(dag_id):
            assert {s for s, _ in _states(client, dag_id, r["dag_run_id"]).values()} == {"success"}
    silver = client.get(
        f"/dags/flights_delay_model/dagRuns/{run['dag_run_id']}/taskInstances/silver/xcomEntries/return_value"
    )["value"]
    silver = silver if isinstance(silver, dict) else json.loads(silver)
    assert silver["months"] == silver["triggered_by"] == ["2013-01-01", "2013-09-01", "2013-11-01"]
    _check_chain_outputs(platform, run["dag_run_id"])
    print(f"unattended flights chain: {elapsed:.0f} s from unpausing to the report")


def test_a_rerun_of_a_logical_date_changes_no_table(platform) -> None:
    """An operator clears a finished run (the logical date stays unique): its tasks run
    again and no table changes."""
    from moulin.delta import DeltaTableStore

    store = DeltaTableStore(None)
    client = platform.client
    uris = [
        platform.settings.table_uri(n) for n in ("bronze/flights", "quarantine/flights", "bronze/weather")
    ]
    uris = [u for u in uris if store.exists(u)]
    before = {u: (store.version(u), store.count(u)) for u in uris}
    (run,) = [r for r in client.dag_runs("source_flights") if r["logical_date"].startswith("2013-09-01")]
    assert client.clear_run("source_flights", run["dag_run_id"])
    deadline = time.monotonic() + 600
    while True:
        states = _states(client, "source_flights", run["dag_run_id"])
        if all(state == "success" and tries == 2 for state, tries in states.values()):
            break
        assert time.monotonic() < deadline, states
        time.sleep(3)
    assert {u: (store.version(u), store.count(u)) for u in uris} == before
    assert len(uris) >= 2


def test_bad_input_fails_once_without_retry_and_raises_an_alert(platform) -> None:
    from moulin.ops.alerts import read_alerts

    ds = "2026-01-05"
    drop = platform.settings.home / "drops" / "sentiment" / ds
    drop.mkdir(parents=True)
    (drop / "posts.csv").write_text("mood,score,words\nhappy,0.9,a post with the wrong header\n")
    platform.client.set_paused("source_sentiment", False)
    run = platform.client.trigger("source_sentiment", logical_date=f"{ds}T00:00:00Z")
    done = _wait_run(platform.client, "source_sentiment", run["dag_run_id"], 600)
    states = _states(platform.client, "source_sentiment", run["dag_run_id"])
    assert done["state"] == "failed"
    failed = [task for task, (state, _) in states.items() if state == "failed"]
    assert len(failed) == 1 and states[failed[0]][1] == 1, states  # one try: no retry of a data error
    alerts = [a for a in read_alerts(platform.settings) if a["run_id"] == run["dag_run_id"]]
    assert len(alerts) == 1, alerts
    (alert,) = alerts
    assert alert["kind"] == "task_failed" and alert["dag_id"] == "source_sentiment"
    assert alert["task_id"] == failed[0] and alert["error"]
    assert alert["log_url"].startswith(platform.settings.platform.api_url + "/dags/source_sentiment/runs/")


def _flights_caught_up(client: AirflowClient, timeout_s: float = 900) -> None:
    """Unpause ``source_flights`` (a triggered run of a paused DAG never starts) and wait
    until its scheduled catch-up of the three drops has finished and no run is active, so
    that an armed fault point is reached by the test's own run, not by a catch-up run."""
    client.set_paused("source_flights", False)
    client.wait_for_runs("source_flights", 3, timeout_s=timeout_s)
    deadline = time.monotonic() + timeout_s
    while active := [r["dag_run_id"] for r in client.dag_runs("source_flights")
                     if r["state"] not in ("success", "failed")]:  # fmt: skip
        assert time.monotonic() < deadline, (
            f"source_flights runs {active} still active after {timeout_s:.0f} s"
        )
        time.sleep(3)


def _process_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def test_a_killed_task_is_retried_and_the_tables_end_as_after_a_clean_run(platform) -> None:
    """The task is killed at a known point, after its Spark stage committed and before it
    reported success: the retry writes nothing twice."""
    client = platform.client
    ds = "2013-10-01"
    point = "after-bronze_flights"
    _flights_caught_up(client)
    faultpoints.arm(platform.settings, point)
    try:
        run = client.trigger("source_flights", logical_date=f"{ds}T00:00:00Z")
        held = faultpoints.wait_reached(platform.settings, point, timeout_s=600)
        assert _process_alive(held.pid), f"the task holding at {point} (pid {held.pid}) is gone"
        (ti,) = [
            t for t in client.task_instances("source_flights", run["dag_run_id"]) if t["task_id"] == "bronze"
        ]
        assert (ti["state"], ti["try_number"]) == ("running", 1), ti
        os.kill(held.pid, signal.SIGKILL)
        done = _wait_run(client, "source_flights", run["dag_run_id"], 900)
    finally:
        faultpoints.disarm(platform.settings, point)
    states = _states(client, "source_flights", run["dag_run_id"])
    assert done["state"] == "success", states
    assert states["bronze"] == ("success", 2)
    bronze_and_quarantined, landed = _bronze_month_rows(platform.settings, ds)
    assert bronze_and_quarantined == landed == SAMPLE
    assert _bronze_commits_of(platform.settings, ds) == 1


def test_a_killed_scheduler_restarted_finishes_the_run_writing_nothing_twice(platform) -> None:
    """The scheduler is killed (with its executor's workers) while a task holds after its
    landing; the restarted scheduler retries the orphaned task and finishes the run."""
    client = platform.client
    ds = "2013-05-01"
    point = "after-land_flights"
    _flights_caught_up(client)
    faultpoints.arm(platform.settings, point)
    try:
        run = client.trigger("source_flights", logical_date=f"{ds}T00:00:00Z")
        held = faultpoints.wait_reached(platform.settings, point, timeout_s=600)
        scheduler = platform.pid("airflow-scheduler")
        assert scheduler is not None
        os.killpg(scheduler, signal.SIGKILL)  # the scheduler and its executor's workers
        with contextlib.suppress(ProcessLookupError):
            os.kill(held.pid, signal.SIGKILL)  # the task too, wherever its process group is
        deadline = time.monotonic() + 30
        while (_process_alive(scheduler) or _process_alive(held.pid)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _process_alive(held.pid), f"the held task {held.pid} outlived its scheduler's kill"
        restarted = platform.moulin("platform", "up")
        assert restarted.returncode == 0, restarted.stdout[-2000:] + restarted.stderr[-2000:]
        assert platform.pid("airflow-scheduler") != scheduler
        done = _wait_run(client, "source_flights", run["dag_run_id"], 900)
    finally:
        faultpoints.disarm(platform.settings, point)
    assert done["state"] == "success", _states(client, "source_flights", run["dag_run_id"])
    bronze_and_quarantined, landed = _bronze_month_rows(platform.settings, ds)
    assert bronze_and_quarantined == landed == SAMPLE
    assert _bronze_commits_of(platform.settings, ds) == 1


def test_hdfs_health_dag_records_readings_and_alerts(platform) -> None:
    from moulin.delta.rows import read_rows
    from moulin.ops.alerts import read_alerts

    client = platform.client
    client.set_paused("ops_hdfs_health", False)
    run = client.trigger("ops_hdfs_health")
    assert _wait_run(client, "ops_hdfs_health", run["dag_run_id"], 300)["state"] == "success"
    readings = read_rows(platform.settings.table_uri("ops", "hdfs_health"), "at")
    assert readings and readings[-1]["live_datanodes"] == 3
    assert "3 live DataNodes (< 4)" in readings[-1]["problems"]
    deadline = time.monotonic() + 120
    while True:
        alerts = [a for a in read_alerts(platform.settings) if a["run_id"] == run["dag_run_id"]]
        kinds = {a["kind"] for a in alerts}
        if kinds >= {"hdfs_health", "deadline_missed"} or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert kinds >= {"hdfs_health", "deadline_missed"}, alerts


def _not_blank(path: Path) -> None:
    from PIL import Image

    image = Image.open(path).convert("L")
    low, high = image.getextrema()
    assert high - low > 40, f"{path} looks blank"
    assert len(image.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 20, f"{path} has almost no content"


def test_the_operators_view_in_headless_chromium(platform) -> None:
    from playwright.sync_api import sync_playwright

    from moulin.platform.browser import chromium_path

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    base = platform.settings.platform.api_url
    password = secrets.read_secret(platform.settings, secrets.ADMIN_PASSWORD)
    run_id = platform.client.dag_runs("flights_delay_model")[0]["dag_run_id"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(base + "/")
        page.get_by_label("Username").fill(platform.settings.platform.admin_user)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "login" not in url, timeout=60_000)

        page.goto(base + "/dags")
        page.get_by_text("flights_delay_model").first.wait_for(timeout=60_000)
        for dag_id in (*SOURCE_DAGS, "ops_hdfs_health"):
            page.get_by_text(dag_id).first.wait_for(timeout=30_000)
        page.screenshot(path=ARTIFACTS / "dag_list.png", full_page=True)

        page.goto(f"{base}/dags/flights_delay_model/runs/{run_id}")
        page.get_by_text("success").first.wait_for(timeout=60_000)
        page.screenshot(path=ARTIFACTS / "flights_delay_model_run.png", full_page=True)

        page.goto(f"{base}/dags/flights_delay_model/runs/{run_id}/tasks/train")
        # The log view renders only the lines in sight: each line is found through its search,
        # which scrolls to the match (the summary line is the log's last, far below the fold).
        search = page.get_by_placeholder("Search logs...")
        for line in ("MOULIN-PROGRESS train", "Running Spark version"):  # ours, then Spark's own
            search.fill(line)
            page.get_by_text(line).first.wait_for(timeout=120_000)
        page.screenshot(path=ARTIFACTS / "train_task_log.png", full_page=True)

        page.goto(base + "/assets")
        page.get_by_text("moulin://bronze/flights").first.wait_for(timeout=60_000)
        page.get_by_text("moulin://gold/flight_features").first.wait_for(timeout=30_000)
        page.screenshot(path=ARTIFACTS / "assets.png", full_page=True)

        errors: list[str] = []
        report = browser.new_page()
        report.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        report.on("pageerror", lambda e: errors.append(str(e)))
        report.goto((ARTIFACTS / "flights_report.html").resolve().as_uri())
        report.wait_for_load_state("load")
        report.screenshot(path=ARTIFACTS / "flights_report.png", full_page=True)
        browser.close()
    assert not errors, errors
    for name in ("dag_list", "flights_delay_model_run", "train_task_log", "assets", "flights_report"):
        _not_blank(ARTIFACTS / f"{name}.png")


def test_platform_down_leaves_no_process_and_no_open_port(platform) -> None:
    status = platform.moulin("platform", "status")
    pids = [
        int(p.read_text())
        for d in ("platform", "cluster")
        for p in (platform.settings.home / d / "pids").glob("*.pid")
    ]
    assert pids and status.returncode == 0, status.stdout
    print(status.stdout)
    down = platform.moulin("platform", "down")
    assert down.returncode == 0, down.stderr[-2000:]
    deadline = time.monotonic() + 30  # a process exits a moment after its signal
    while (alive := [pid for pid in pids if _process_alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive, f"still running 30 s after platform down: {alive}"
    s = platform.settings
    ports = [
        s.platform.postgres_port,
        s.platform.api_port,
        s.hdfs.namenode_rpc_port,
        s.hdfs.namenode_http_port,
    ]
    ports += [s.spark.standalone_port, s.spark.standalone_webui_port]
    ports += [p for i in range(s.hdfs.datanodes) for p in s.hdfs.datanode_ports(i)]
    listening = [p for p in ports if port_open("127.0.0.1", p)]
    assert not listening, f"something still listens on {listening}"
    leftovers = subprocess.run(["pgrep", "-f", str(s.home)], capture_output=True, text=True).stdout.split()
    assert not leftovers, leftovers
