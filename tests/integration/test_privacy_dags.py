"""The mail source, its use case and the retention DAG run through Airflow (the calls
``airflow dags test`` makes, one process; stages on the job server) on a sample."""

from __future__ import annotations

import datetime as dt

from moulin.delta import DeltaTableStore
from moulin.orchestration import DagTest, ensure_airflow_db, run_dag_tests


def test_mail_dags_run_to_the_filters_and_retention_deletes_the_old_drop(settings, tmp_path) -> None:
    from moulin.privacy.audit import read_audit
    from moulin.storage import WarehouseFS
    from moulin.usecases.mail.corpus import prepare_drops

    prepare_drops(settings, limit=20)  # 60 + 40 messages
    ensure_airflow_db(settings)
    retention_day = (dt.date(2002, 12, 1) + dt.timedelta(days=9125)).isoformat()
    runs = [
        DagTest("source_mail", "2002-10-10"),
        DagTest("source_mail", "2003-02-28"),
        DagTest("mail_spam_filter", "2003-02-28"),
        DagTest("privacy_retention", retention_day, conf={"dry_run": True}),
    ]
    said: list[str] = []
    run_dag_tests(settings, runs, tmp_path, said.append)
    store = DeltaTableStore()
    bronze = store.to_pandas(settings.table_uri("bronze", "mail"))
    quarantined = store.count(settings.table_uri("quarantine", "mail"))
    assert len(bronze) + quarantined == 100
    assert store.count(settings.table_uri("views", "bronze_mail")) == len(bronze)
    metrics = WarehouseFS(settings).read_bytes(
        settings.table_uri("models", "mail", "spam_filter", "metrics.json")
    )
    assert b'"chosen_on": "validation F1 (spam)"' in metrics
    assert set(bronze["ds"]) == {"2002-10-10", "2003-02-28"}  # the dry run deleted nothing
    assert WarehouseFS(settings).exists(settings.table_uri("ops", "register", "record_of_processing.html"))
    assert any(r["action"] == "read" and r["table_uri"].endswith("bronze/mail") for r in read_audit(settings))
    from moulin.cli import run

    before = len(read_audit(settings))
    assert run(["table", "show", "views/bronze_mail", "--limit", "1"]) == 0  # an analyst's read, audited
    shown = read_audit(settings)[before:]
    assert [r["action"] for r in shown] == ["read"] and shown[0]["table_uri"].endswith("views/bronze_mail")
    assert (
        run(["table", "count", "bronze/mail"]) == 0 and len(read_audit(settings)) == before + 1
    )  # no values read

    next_day = (dt.date.fromisoformat(retention_day) + dt.timedelta(days=1)).isoformat()  # a new DAG run
    run_dag_tests(
        settings, [DagTest("privacy_retention", next_day, conf={"dry_run": False})], tmp_path, said.append
    )
    assert set(store.to_pandas(settings.table_uri("bronze", "mail"))["ds"]) == {"2003-02-28"}
    assert any(r["action"] == "retention" for r in read_audit(settings))
