"""Task bodies of the flights use-case DAG (``dags/flights_delay_model.py``); the five
sources are landed and gated by the source factory's DAGs (``dags/sources.py``).

Each function takes what Airflow hands a task (the logical date ``ds``, the
run's ``params``, upstream XComs), does its work through :mod:`moulin.usecases.flights`
— Spark stages submitted with ``spark-submit``
(:mod:`moulin.jobs.submit`), training in the training environment — and
returns a small JSON-able dict with the stage's counts and seconds.  Every
stage is idempotent (Delta app transactions), so Airflow
retries and reruns of a logical date change nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

from moulin import __version__
from moulin.airflow_kit import table_asset_uri
from moulin.contracts import load_contract
from moulin.errors import MoulinError
from moulin.jobs.submit import submit_job
from moulin.orchestration import safe_run_id
from moulin.settings import REPO_ROOT, Settings, load_settings
from moulin.storage import WarehouseFS
from moulin.training.config import LEADERBOARD_TABLE
from moulin.training.training_results import TrainingResults
from moulin.usecases.flights.params import PARAMS, SOURCES
from moulin.usecases.flights.summary import write_run_summary

PROGRESS = "MOULIN-PROGRESS"


def _progress(stage: str, seconds: float, detail: str) -> None:
    print(f"{PROGRESS} {stage:<18} {seconds:6.1f}s  {detail}", flush=True)


def _written(results: list[dict]) -> str:
    """Whether the writes of a stage committed or were skipped as already done."""
    done = [r.get("committed") for r in results if "committed" in r]
    if not done:
        return ""
    if all(done):
        return "; committed"
    if not any(done):
        return "; skipped, already done"
    return f"; {sum(1 for d in done if d)} committed, {sum(1 for d in done if not d)} skipped (already done)"


def _timed(stage: str, result: dict, start: float, detail: str) -> dict:
    seconds = round(time.monotonic() - start, 1)
    _progress(stage, seconds, detail)
    return {**result, "stage": stage, "seconds": seconds}


# ------------------------------------------------------------------ use case


def triggering_months(events: Mapping | None) -> list[str]:
    """The months named by the bronze flights events that triggered a run (sorted, distinct);
    the events of the other sources name their own logical dates, not months of flights."""
    months = set()
    for asset, asset_events in (events or {}).items():
        if str(getattr(asset, "uri", asset)) != table_asset_uri("bronze_flights"):
            continue
        for event in asset_events:
            extra = getattr(event, "extra", None) or {}
            if extra.get("ds"):
                months.add(str(extra["ds"]))
    return sorted(months)


#: The splits a training needs: train to fit, validation to choose, test to report.
SPLITS = ("train", "validation", "test")


def missing_splits(features_result: dict) -> list[str]:
    """The splits of :data:`SPLITS` that the feature snapshot has no row in."""
    splits = features_result.get("splits") or {}
    return [s for s in SPLITS if not splits.get(s)]


def splits_without_months(months: list[str]) -> list[str]:
    """The splits of :data:`SPLITS` that no month of ``months`` (``YYYY-MM-01``) falls in,
    by the date bounds of the feature table's contract (``split.train_until``, ``..._until``)."""

    split = load_contract(PARAMS.features_contract).split
    train_until, validation_until = str(split["train_until"]), str(split["validation_until"])
    have = {
        "train" if m <= train_until else "validation" if m <= validation_until else "test" for m in months
    }
    return [s for s in SPLITS if s not in have]


def _skip(stage: str, reason: str) -> None:
    """Skip this task (and, by their trigger rule, the tasks after it): the run stays green."""
    from airflow.sdk.exceptions import AirflowSkipException

    _progress(stage, 0.0, f"skipped: {reason}")
    raise AirflowSkipException(reason)


def landed_months(settings: Settings, until_ds: str | None) -> list[str]:
    """Logical dates of the bronze flights partitions up to ``until_ds`` (sorted); all of
    them when ``until_ds`` is None (an Asset-triggered run has no logical date: it
    processes what the bronze table holds now)."""
    from deltalake import DeltaTable

    from moulin.usecases.flights.stages import table_uri

    uri = table_uri(settings, "bronze_flights")
    try:
        partitions = DeltaTable(uri).partitions()
    except Exception as exc:  # deltalake raises TableNotFoundError and friends
        raise MoulinError(
            f"bronze flights ({uri}) cannot be read: run source_flights first ({exc})"
        ) from None
    months = sorted(
        {p["ds"] for p in partitions if p.get("ds") and (until_ds is None or p["ds"] <= until_ds)}
    )
    if not months:
        until = f" up to {until_ds}" if until_ds else ""
        raise MoulinError(f"bronze flights ({uri}) holds no month{until}: run source_flights first")
    return months


def silver(
    ds: str | None,
    params: dict | None,
    settings: Settings | None = None,
    triggered_by: list[str] | None = None,
) -> dict:
    """Silver flights for every landed month up to ``ds`` (one Spark job); with no logical
    date (an Asset-triggered run), every month bronze holds.  ``triggered_by``: the months
    of the triggering asset events (recorded; bronze's content decides what is processed).

    Retrain policy (README): until bronze holds a month of every split, there is nothing
    to train, and the run skips here (every task after it skipped, the run green)."""
    settings = settings or load_settings()
    start = time.monotonic()
    months = landed_months(settings, ds)
    missing = sorted(set(triggered_by or ()) - set(months))
    if missing:
        raise MoulinError(
            f"the asset events that triggered this run name months {missing} that bronze flights does not "
            "hold (yet): retry once the bronze write is visible"
        )
    lacking = splits_without_months(months)
    if lacking:
        _skip(
            "silver",
            f"bronze flights holds {', '.join(months)}: no month of the {' / '.join(lacking)} split yet, "
            "nothing to train (the run waits for a month of every split)",
        )
    result = submit_job(settings, "silver_flights", ["--date", ",".join(months)])
    per_month = result.get("months", [result])
    rows = sum(m["rows"] for m in per_month)
    cancelled = sum(m["cancelled"] for m in per_month)
    out = {
        "months": months,
        "as_of": months[-1],
        "triggered_by": triggered_by or [],
        "rows": rows,
        "cancelled": cancelled,
        "per_month": per_month,
    }
    detail = f"{len(months)} months, {rows} flights, {cancelled} cancelled{_written(per_month)}"
    return _timed("silver", out, start, detail)


def gold_stats(ds: str, upstream: dict, settings: Settings | None = None) -> dict:
    """Route, carrier and hour delay statistics (MapReduce on Arrow batches) of every month up to ``ds``."""
    settings = settings or load_settings()
    start = time.monotonic()
    result = submit_job(settings, "gold_stats", ["--date", ",".join(upstream["months"])])
    per_month = result.get("months", [result])
    rows = {dim: sum(m["tables"][dim]["rows"] for m in per_month) for dim in per_month[0]["tables"]}
    out = {"months": upstream["months"], "rows": rows, "silver": upstream}
    writes = [t for m in per_month for t in m["tables"].values()]
    return _timed(
        "gold stats", out, start, ", ".join(f"{k} {v} keys" for k, v in rows.items()) + _written(writes)
    )


def features(ds: str, upstream: dict, settings: Settings | None = None) -> dict:
    """The feature table (split by date) from all silver months up to ``ds``."""
    settings = settings or load_settings()
    start = time.monotonic()
    result = submit_job(settings, "features", ["--date", upstream["months"][-1]])
    result["as_of"] = upstream["months"][-1]
    result["silver"] = upstream["silver"]
    result["gold"] = {
        "stage": upstream["stage"],
        "seconds": upstream["seconds"],
        "rows": sum(upstream["rows"].values()),
    }
    detail = f"{result['rows']} rows, v{result['version']}, " + ", ".join(
        f"{k} {v}" for k, v in result["splits"].items()
    )
    return _timed("features", result, start, detail + _written([result]))


def profile(ds: str | None, upstream: dict, settings: Settings | None = None) -> dict:
    """Descriptive statistics of bronze, silver and features into the profile table, under
    ``ds`` (else the last month processed)."""
    settings = settings or load_settings()
    start = time.monotonic()
    result = submit_job(settings, "profile_tables", ["--date", ds or upstream["as_of"]])
    detail = ", ".join(f"{k} {v['rows']} stats" for k, v in result["tables"].items())
    return _timed("profile", result, start, detail + _written(list(result["tables"].values())))


def train(
    ds: str, params: dict | None, run_id: str, upstream: dict, settings: Settings | None = None
) -> dict:
    """Train the MLP (DDP through TorchDistributor) and the baselines on the pinned
    feature snapshot, in the training environment (spark-submit).

    Retrain policy (README): a run trains once the snapshot has rows in every split;
    else the task is skipped (and the report after it) and the run stays green."""
    missing = missing_splits(upstream)
    if missing:
        _skip(
            "train",
            f"features v{upstream['version']} have no {' / '.join(missing)} rows "
            f"(splits {upstream.get('splits')}): training waits until every split has rows",
        )
    settings = settings or load_settings()
    start = time.monotonic()

    epochs = int((params or {}).get("epochs") or PARAMS.train.epochs)
    args = ["--run-id", safe_run_id(run_id), "--epochs", str(epochs), "--version", str(upstream["version"])]
    result = submit_job(settings, "train_flights", args)
    chosen = result["recommended"]  # chosen on the validation period, never on test
    detail = (
        f"{len(result['models'])} models on v{result['version']}, recommended (validation) {chosen}: "
        f"test ROC-AUC {result['models'][chosen]['roc_auc']:.3f}"
    )
    return _timed("train", result, start, detail)


# ------------------------------------------------------------------ report
def quality_records(settings: Settings, features_result: dict) -> list[dict]:
    """Accounting per source for the report: bronze gates (summed over landings) and
    the features stage (silver rows = feature rows + cancelled flights left out)."""

    fs = WarehouseFS(settings)
    records = []
    for source in SOURCES:
        runs = [
            json.loads(fs.read_bytes(f.uri))
            for f in fs.list(settings.table_uri("quality", "runs", source))
            if f.uri.endswith(".json")
        ]
        if not runs:
            continue
        if source != "flights":
            runs = runs[-1:]  # full snapshots: the latest landing is what bronze holds
        reasons: dict[str, int] = {}
        for run in runs:
            for name, count in (run.get("failures") or {}).items():
                reasons[name] = reasons.get(name, 0) + int(count)
        read = sum(r["rows_read"] for r in runs)
        rejected = sum(r["rows_quarantined"] for r in runs)
        records.append(
            {
                "source": source,
                "stage": "bronze",
                "rows_read": read,
                "rows_out": sum(r["rows_bronze"] for r in runs),
                "rows_rejected": rejected,
                "quarantine_by_reason": reasons,
                "threshold": max(r["threshold"] for r in runs),
                "failed_share": rejected / read if read else 0.0,
                "passed": all(r["passed"] for r in runs),
            }
        )
    silver_rows = features_result["silver"]["rows"]
    cancelled = features_result["silver"]["cancelled"]
    records.append(
        {
            "source": "flights",
            "stage": "features",
            "rows_read": silver_rows,
            "rows_out": features_result["rows"],
            "rows_rejected": silver_rows - features_result["rows"],
            "quarantine_by_reason": {"cancelled (no departure), left out of the features": cancelled},
            "threshold": 1.0,
            "failed_share": (silver_rows - features_result["rows"]) / silver_rows if silver_rows else 0.0,
            "passed": silver_rows - features_result["rows"] == cancelled,
        }
    )
    return records


def report(
    ds: str | None,
    run_id: str,
    profiled: dict,
    trained: dict,
    features_result: dict,
    settings: Settings | None = None,
) -> dict:
    """Build the decision report of this run and the run summary the main command prints."""
    from moulin.delta import DeltaTableStore
    from moulin.quality.ge import latest_data_docs
    from moulin.reporting import ReportInputs
    from moulin.usecases.flights.report import build_report

    settings = settings or load_settings()
    start = time.monotonic()
    ds = ds or features_result["as_of"]
    store = DeltaTableStore(None)
    fs = WarehouseFS(settings)
    results_uri = trained["paths"]["results_json"]
    results = TrainingResults.from_json(fs.read_bytes(results_uri), results_uri)
    profile_df = store.to_pandas(settings.table_uri("quality", "table_profiles"))
    timings = [
        {"stage": r["stage"], "seconds": r["seconds"], "rows": _total(r.get("rows"))}
        for r in (features_result["silver"], features_result["gold"], features_result, profiled, trained)
        if "stage" in r
    ]
    inputs = ReportInputs.from_dicts(
        run={
            "run_id": run_id,
            "logical_date": ds,
            "profile": settings.profile,
            "warehouse": settings.warehouse,
            "code_version": _code_version(),
        },
        quality=quality_records(settings, features_result),
        profile=profile_df,
        models=results,
        stage_timings=timings,
    )
    report_uri = build_report(settings, inputs)
    tables = {}
    for name in (
        "bronze/flights", "bronze/weather", "bronze/planes", "bronze/airports", "bronze/airlines",
        "quarantine/flights", "silver/flights", "gold/route_delay_stats", "gold/carrier_delay_stats",
        "gold/hour_delay_stats", "gold/flight_features", "quality/table_profiles", LEADERBOARD_TABLE,
    ):  # fmt: skip
        uri = settings.table_uri(name)
        if store.exists(uri):
            tables[name] = {"uri": uri, "version": store.version(uri), "rows": store.count(uri)}
    summary = {
        "run_id": run_id,
        "logical_date": ds,
        "profile": settings.profile,
        "report_uri": report_uri,
        "leaderboard_uri": trained["paths"].get("leaderboard"),
        "model_dir": trained["paths"].get("model_dir"),
        "features_version": trained["version"],
        "tables": tables,
        "models": [
            {
                "model": name,
                "path": m.get("model_uri", ""),
                **{
                    k: {
                        "value": m.get(k),
                        "ci_low": (m.get(f"{k}_ci") or [None, None])[0],
                        "ci_high": (m.get(f"{k}_ci") or [None, None])[1],
                    }
                    for k in ("roc_auc", "pr_auc", "f1", "brier", "ece")
                },
            }
            for name, m in trained["models"].items()
        ],  # fmt: skip
        "stages": timings,
        "data_docs": latest_data_docs(settings),
    }
    write_run_summary(settings, summary)
    return _timed("report", {"report_uri": report_uri}, start, report_uri)


def _total(rows) -> int | None:
    """A row count, summing per-split or per-table counts."""
    if isinstance(rows, dict):
        return sum(int(v) for v in rows.values())
    return None if rows is None else int(rows)


def _code_version() -> str:
    import subprocess

    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except OSError:
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__
