"""The mail source, its use case and the retention DAG run through Airflow (the calls
``airflow dags test`` makes, one process; stages on the job server) on a sample."""

from __future__ import annotations

import datetime as dt
import json

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
    fs = WarehouseFS(settings)
    (run,) = [i.uri for i in fs.list(settings.table_uri("models", "mail")) if i.is_dir]
    results = json.loads(fs.read_bytes(f"{run}/results.json"))
    assert results["selection"]["metric"] == "f1" and len(results["models"]) == 2
    assert "Against the goal" in fs.read_bytes(f"{run}/report.html").decode()  # the report task ran
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


def test_the_erase_dag_takes_a_request_id_and_no_log_conf_or_xcom_holds_the_address(
    settings, tmp_path
) -> None:
    """An operator's erasure through the ``privacy_erase`` DAG: the run's conf is the
    request id; afterwards the address is in no DAG-run log, no task or job-server
    log and not in Airflow's metadata database (DagRun conf, XCom)."""
    import collections

    from moulin.ingest.mail import parse_message, split_mbox
    from moulin.privacy.erasure import read_requests
    from moulin.privacy.requests import register_erasure, request_file
    from moulin.usecases.mail.corpus import prepare_drops

    prepare_drops(settings, limit=20)
    ensure_airflow_db(settings)
    drop = (settings.home / "drops" / "mail" / "2003-02-28" / "ham.mbox").read_bytes()
    senders = collections.Counter((parse_message(m)["from_address"] or "").lower() for m in split_mbox(drop))
    subject = next(s for s, _ in senders.most_common() if "@" in s)
    said: list[str] = []
    run_dag_tests(settings, [DagTest("source_mail", "2003-02-28")], tmp_path, said.append)
    request_id = register_erasure(settings, subject)
    run_dag_tests(
        settings,
        [DagTest("privacy_erase", "2026-12-07", conf={"request_id": request_id})],
        tmp_path,
        said.append,
    )
    done = [r for r in read_requests(settings) if r["request_id"] == request_id]
    assert len(done) == 1 and done[0]["hits_before"] >= 1 and done[0]["hits_after"] == 0
    assert not request_file(settings, request_id).exists()
    places = [tmp_path, settings.home / "airflow", settings.home / "run", settings.home / "logs"]
    files = [p for folder in places if folder.is_dir() for p in folder.rglob("*") if p.is_file()]
    assert any(request_id.encode() in p.read_bytes() for p in files)  # the run is recorded there
    assert [str(p) for p in files if subject.encode() in p.read_bytes().lower()] == []
