"""The flights and mail chains as moulin, with its keytab, on the driver's host of a secure
cluster on hosts (run by ``ip netns exec`` from ``tests/integration/test_cluster_kerberos.py``).

    python tests/kerberos_chain.py flights SAMPLE   the flights chain's task bodies, in DAG order
    python tests/kerberos_chain.py mail LIMIT       the mail chain (``moulin mail run``'s, from its USECASE)
    python tests/kerberos_chain.py zones            the zones' owner, group and mode (as the privacy
                                                     command sets them), personal tables included

``flights`` runs the task functions the DAGs ``flights_ingest``, ``dimensions_ingest``
and ``flights_delay_model`` call (:mod:`moulin.usecases.flights.tasks`): landings in
this process, every Spark stage through ``spark-submit spark_jobs/run_stage.py`` on the
standalone master (moulin's job entry point), training in the training environment and
the report; Airflow's scheduler itself is not run.  Each command prints one JSON line:
what the stages reported, and the rows counted again from other places (the landed
files through WebHDFS, the Delta tables through deltalake).
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time

MONTHS = (1, 9, 11)  # one month of each split (train, validation, test): training runs
LAST_DS = "2013-11-01"


def _delta_rows(uri: str, ds: str | None = None) -> int:
    """Rows of the Delta table at ``uri`` (of partition ``ds``), read by deltalake."""
    from deltalake import DeltaTable

    filters = [("ds", "=", ds)] if ds else None
    table = DeltaTable(uri).to_pyarrow_table(filters=filters)
    rows = table.num_rows
    del table
    gc.collect()
    return rows


def _landed_lines(settings, folder: str) -> int:
    """Data lines (header left out) of the CSV files landed under ``folder``, read through WebHDFS."""
    from moulin.storage import WarehouseFS

    fs = WarehouseFS(settings)
    lines = 0
    for entry in fs.list(settings.table_uri(folder)):
        if entry.uri.endswith(".csv"):
            text = fs.read_bytes(entry.uri).decode()
            lines += sum(1 for line in text.splitlines()[1:] if line.strip())
    return lines


def flights(sample: int) -> dict:
    """Ingest three months and the reference data, then silver → gold → features →
    profile → train → report, each as its DAG task does."""
    from moulin.settings import load_settings
    from moulin.sources import tasks as source_tasks
    from moulin.sources.bronze import quarantine_uri
    from moulin.usecases.flights import tasks
    from moulin.usecases.flights.runner import REFERENCE_SOURCES
    from moulin.usecases.flights.sources import prepare_sources
    from moulin.usecases.flights.stages import table_uri

    settings = load_settings()
    params = {"epochs": 1}
    started = time.monotonic()
    # What the five sources deliver (drops, files, SQL database), then each source's DAG
    # tasks: land, then the bronze gate (a Spark job).
    prepare_sources(settings, MONTHS, sample_per_month=sample)
    gates = {}
    for month in MONTHS:
        ds = f"2013-{month:02d}-01"
        source_tasks.land("flights", ds, settings)
        gate = source_tasks.bronze("flights", ds, settings)
        gates[ds] = {
            "stage": {k: gate[k] for k in ("rows_read", "rows_bronze", "rows_quarantined")},
            "landed_lines": _landed_lines(settings, f"raw/flights/ds={ds}"),
            "bronze_rows": _delta_rows(table_uri(settings, "bronze_flights"), ds),
            "quarantine_rows": _delta_rows(quarantine_uri(settings, "flights"), ds),
        }
    dimensions = {}
    for source in REFERENCE_SOURCES:
        source_tasks.land(source, LAST_DS, settings)
        dimensions[source] = source_tasks.bronze(source, LAST_DS, settings)["rows_bronze"]
    silver = tasks.silver(LAST_DS, params, settings)
    gold = tasks.gold_stats(LAST_DS, silver, settings)
    feats = tasks.features(LAST_DS, gold, settings)
    profiled = tasks.profile(LAST_DS, feats, settings)
    run_id = "kerberos_chain"
    trained = tasks.train(LAST_DS, params, run_id, feats, settings)
    reported = tasks.report(LAST_DS, run_id, profiled, trained, feats, settings)
    tables = {
        name: _delta_rows(table_uri(settings, name))
        for name in ("silver_flights", "gold_carrier_delay_stats", "flight_features")
    }
    return {
        "gates": gates,
        "dimensions": dimensions,
        "silver_rows": silver["rows"],
        "cancelled": silver["cancelled"],
        "features_rows": feats["rows"],
        "splits": feats["splits"],
        "models": sorted(trained["models"]),
        "report": sorted(k for k in reported if k.endswith("uri") or k == "paths"),
        "report_result": {k: v for k, v in reported.items() if isinstance(v, str)},
        "tables": tables,
        "seconds": round(time.monotonic() - started, 1),
    }


def mail(limit: int) -> dict:
    """``moulin mail run --limit LIMIT``'s chain (drops → raw → bronze → silver → spam filter,
    the analysts' views), the messages dropped counted from the corpus as the drops take them."""
    from moulin.contracts import load_contract
    from moulin.settings import load_settings
    from moulin.sources.bronze import quarantine_uri
    from moulin.spark import build_spark_session
    from moulin.usecases.mail.corpus import DROPS, group_messages
    from moulin.usecases.mail.usecase import USECASE

    settings = load_settings()
    started = time.monotonic()
    spark = build_spark_session(settings, "moulin-mail")
    out = USECASE.run(spark, settings, limit=limit, say=lambda line: print(line, file=sys.stderr, flush=True))
    spark.stop()
    gates = {}
    for record in out["gates"]:
        ds = record["ds"]
        dropped = sum(
            len(group_messages(settings, g, limit)) for groups in DROPS[ds].values() for g in groups
        )
        gates[ds] = {
            "stage": {k: record[k] for k in ("rows_read", "rows_bronze", "rows_quarantined")},
            "messages_dropped": dropped,
            "bronze_rows": _delta_rows(settings.table_uri(load_contract(record["table"]).table), ds),
            "quarantine_rows": _delta_rows(quarantine_uri(settings, "mail"), ds),
        }
    return {
        "gates": gates,
        "silver_rows": out["silver"]["rows"],
        "silver_table": out["silver"]["table"],
        "recommended": out["training"]["recommended"],
        "seconds": round(time.monotonic() - started, 1),
    }


def zones() -> dict:
    """Owner, group and mode of every zone and personal table (``moulin privacy permissions``)."""
    from moulin.privacy.access import apply_permissions
    from moulin.privacy.erasure import personal_tables
    from moulin.settings import load_settings

    settings = load_settings()
    personal = [t.uri for t in personal_tables(settings) if t.contract is not None]
    applied = apply_permissions(settings, personal, say=lambda line: None)
    return {"zones": {a.zone: f"{a.group} {a.mode}" for a in applied}, "personal": personal}


def main(argv: list[str]) -> None:
    if argv[:1] == ["flights"] and len(argv) == 2:
        result = flights(int(argv[1]))
    elif argv[:1] == ["mail"] and len(argv) == 2:
        result = mail(int(argv[1]))
    elif argv == ["zones"]:
        result = zones()
    else:
        sys.exit(__doc__)
    print(json.dumps(result, default=str), flush=True)
    # deltalake's thread pools can abort the interpreter's exit (delta-rs#2184).
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
