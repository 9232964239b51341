"""The e-mail source end to end on the real HDFS (real Spark, Delta, the quality gate):
pseudonyms at bronze, a spam filter on pseudonymised data, erasure proven by a scan
of every file, key rotation and retention."""

from __future__ import annotations

import collections
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from moulin.delta import DeltaTableStore
from moulin.ingest.mail import parse_message, split_mbox
from moulin.privacy.keys import key_file, load_key
from moulin.privacy.pseudonyms import EMAIL, pseudonym

LIMIT = 60  # messages per corpus group: 300 messages in two drops
QUARANTINED_SUBJECT = "weseloh@bibsam.kb.se"  # a spam whose Date has an offset of -19:00


@pytest.fixture(scope="module")
def mail(spark, hdfs_settings, hdfs_warehouse, tmp_path_factory):
    from moulin.usecases.mail.usecase import USECASE

    home = tmp_path_factory.mktemp("mail-home")
    settings = replace(hdfs_settings, home=home, warehouse_uri=f"{hdfs_warehouse}/mail-privacy")
    # the training job (spark-submit) loads its settings from the environment, as `moulin mail run` does
    env = {"MOULIN_HOME": str(home), "MOULIN_WAREHOUSE_URI": settings.warehouse_uri}
    before = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        out = USECASE.run(spark, settings, limit=LIMIT, say=print)
        yield settings, out
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _bronze(settings):
    return DeltaTableStore().to_pandas(settings.table_uri("bronze", "mail"))


def _senders(settings, ds: str, box: str) -> collections.Counter:
    data = (settings.home / "drops" / "mail" / ds / f"{box}.mbox").read_bytes()
    senders = (parse_message(m)["from_address"] for m in split_mbox(data))
    return collections.Counter(s.lower() for s in senders if s and "@" in s)


def test_every_message_is_accounted_for(mail) -> None:
    settings, out = mail
    assert [b["ds"] for b in out["gates"]] == ["2002-10-10", "2003-02-28"]
    for b in out["gates"]:
        assert b["rows_manifest"] == b["rows_read"] == b["rows_bronze"] + b["rows_quarantined"]
    assert [b["rows_manifest"] for b in out["gates"]] == [3 * LIMIT, 2 * LIMIT]
    assert sum(b["rows_quarantined"] for b in out["gates"]) >= 1
    assert out["silver"]["rows"] == sum(b["rows_bronze"] for b in out["gates"])


def test_bronze_holds_pseudonyms_and_masked_text_only(mail) -> None:
    settings, _ = mail
    bronze = _bronze(settings)
    for column in ("from_address", "from_name", "to_addresses", "received_ips", "message_id"):
        values = [v for cell in bronze[column].dropna() for v in cell.split(", ")]
        assert values and all(v.startswith("ps_") and len(v) == 35 for v in values), column
    for column in ("subject", "body"):
        assert not any(EMAIL.search(t) for t in bronze[column].dropna()), column
    top, n = _senders(settings, "2002-10-10", "ham").most_common(1)[0]
    key = load_key(settings)
    assert (bronze["from_address"] == pseudonym(top, "spam_filtering", key)).sum() == n


def test_the_spam_filters_are_compared_and_reported_without_message_text_or_sender(mail) -> None:
    from moulin.storage import WarehouseFS

    settings, out = mail
    fs = WarehouseFS(settings)
    results = json.loads(fs.read_bytes(out["training"]["results_uri"]))
    assert results["selection"]["split"] == "validation" and results["selection"]["metric"] == "f1"
    assert results["selection"]["recommended"] == out["training"]["recommended"]
    for model in results["models"]:
        test = model["test"]
        assert test["accuracy"] >= 0.85 and test["roc_auc"] >= 0.9, model["model"]
        lo, hi = test["intervals"]["f1"]
        assert lo <= test["f1"] <= hi
    (pair,) = results["comparisons"]
    assert "mcnemar" in pair and "p_adjusted" in pair
    silver = DeltaTableStore().to_pandas(settings.table_uri("silver", "mail_messages"))
    report = fs.read_bytes(out["report_uri"]).decode()
    for text in (json.dumps(results), report):
        assert not any(sender in text for sender in silver["from_address"].dropna())
        assert not any(subject in text for subject in silver["subject"].dropna() if len(subject) > 25)
    assert "Against the goal" in report


def test_analysts_views_show_pseudonyms_only(mail, spark) -> None:
    from moulin.privacy.views import build_views

    settings, out = mail
    views = {v["view"].rsplit("/", 1)[1]: v for v in build_views(spark, settings, print)}
    assert set(views) == {"bronze_mail", "silver_mail_messages"}
    built = {v["view"].rsplit("/", 1)[1]: v for v in out["follow_on"]["views"]["views"]}
    assert built == views  # the chain's follow-on task built them: this build commits nothing
    assert views["bronze_mail"]["hidden"] == ["sent_at"]  # a quasi-identifier kept in clear
    view = DeltaTableStore().to_pandas(views["bronze_mail"]["view"])
    assert "sent_at" not in view.columns and len(view) == len(_bronze(settings))
    assert view["from_address"].dropna().str.startswith("ps_").all()
    assert build_views(spark, settings)[0]["version"] == views["bronze_mail"]["version"]  # idempotent


def test_erasure_of_three_subjects_is_proven_on_disk(mail, spark) -> None:
    from moulin.privacy.erasure import erase_subject, read_requests

    settings, _ = mail
    store = DeltaTableStore(spark)
    ham_sender = _senders(settings, "2002-10-10", "ham").most_common(1)[0][0]
    spam_sender = _senders(settings, "2003-02-28", "spam").most_common(1)[0][0]
    subjects = [ham_sender, QUARANTINED_SUBJECT, spam_sender]
    tables = {name: settings.table_uri(*name.split("/")) for name in ("bronze/mail", "silver/mail_messages", "quarantine/mail")}  # fmt: skip
    counts = {name: store.count(uri) for name, uri in tables.items()}
    bronze_version = store.version(tables["bronze/mail"])
    erased = collections.Counter()
    for subject in subjects:
        report = erase_subject(spark, settings, subject, print)
        assert not report.noop
        assert report.proof_before["hits"] >= 1 and report.proof_after["hits"] == 0  # the scan can fail
        assert report.proof_after["files_scanned"] > 20 and report.proof_after["bytes_scanned"] > 100_000
        assert report.raw_files, f"{subject}: no raw file rewritten"
        for t in report.tables:
            erased[t.uri] += t.rows_erased
        print(f"{subject}: {report.proof_after} in {report.seconds} s")
    assert erased[tables["quarantine/mail"]] >= 1
    for name, uri in tables.items():  # every other row is still there
        assert store.count(uri) == counts[name] - erased[uri], name
    with pytest.raises(Exception):  # noqa: B017 - the files of the old version are gone (Spark or Delta error)
        store.read(tables["bronze/mail"], version=bronze_version).count()
    again = erase_subject(spark, settings, ham_sender, print)
    assert again.noop and again.proof_after["hits"] == 0
    requests = read_requests(settings)
    assert [r["noop"] for r in requests] == [False, False, False, True]
    key = load_key(settings)
    assert requests[0]["subject_pseudonym"] == pseudonym(ham_sender, "privacy_requests", key)
    assert ham_sender not in json.dumps(requests, default=str)


def test_the_erase_stage_takes_a_request_id_and_no_log_holds_the_address(mail, monkeypatch) -> None:
    """The ``privacy_erase`` stage on a job server, as the DAG runs it: the job's
    command line and logs hold the request id only, so its own proof (which scans
    the job server's logs) holds; a retry after completion is a no-op."""
    from moulin.jobs.server import stop_servers
    from moulin.privacy import tasks
    from moulin.privacy.requests import register_erasure, request_file
    from moulin.settings import load_settings

    fixture_settings, _ = mail
    for var, value in {"MOULIN_HOME": str(fixture_settings.home), "MOULIN_PROFILE": "hdfs-local",
                       "MOULIN_WAREHOUSE_URI": fixture_settings.warehouse_uri}.items():  # fmt: skip
        monkeypatch.setenv(var, value)
    settings = load_settings("hdfs-local")
    erased = {QUARANTINED_SUBJECT, _senders(settings, "2002-10-10", "ham").most_common(1)[0][0],
              _senders(settings, "2003-02-28", "spam").most_common(1)[0][0]}  # by the test above  # fmt: skip
    subject = next(s for s, _ in _senders(settings, "2003-02-28", "ham").most_common() if s not in erased)
    request_id = register_erasure(settings, subject)
    try:
        out = tasks.erase(request_id, settings)
        again = tasks.erase(request_id, settings)
    finally:
        stop_servers(settings)
    assert out["request_id"] == request_id and not out["noop"]
    assert out["proof_before"]["hits"] >= 1 and out["proof_after"]["hits"] == 0
    assert again["already_complete"]
    assert not request_file(settings, request_id).exists()  # proven complete: the address is forgotten
    logs = [p for p in (settings.home / "run").rglob("*.log") if p.is_file()]
    assert logs and any(request_id.encode() in p.read_bytes() for p in logs)  # the stage ran there
    assert not [p for p in logs if subject.encode() in p.read_bytes().lower()]


def test_no_secret_reaches_a_log_or_a_table(mail) -> None:
    from moulin.privacy.scan import scan

    settings, _ = mail
    key = load_key(settings)
    needles = {"key": key.secret.hex(), "subkey": key.for_purpose("spam_filtering").hex()}
    assert not scan(settings, needles).hits  # every file of the warehouse
    for path in Path(settings.home).rglob("*"):
        if path.is_file() and path != key_file(settings):
            text = path.read_bytes()
            assert all(n.encode() not in text for n in needles.values()), path
    for path in Path(os.environ["MOULIN_HOME"]).rglob("*.log"):  # the session's job servers
        assert all(n.encode() not in path.read_bytes() for n in needles.values()), path


def test_key_rotation_pseudonymises_bronze_again(mail, spark) -> None:
    """After a rotation, erasure refuses while a derived table holds
    pseudonyms of the previous key (naming it); once the table is rebuilt the rotation
    finishes (previous key destroyed) and the erasure leaves no pseudonym of either key."""
    from moulin.privacy.erasure import erase_subject, local_log_dirs, subject_needles
    from moulin.privacy.rotation import RotationUnfinishedError, read_rotation, rotate_key
    from moulin.privacy.scan import scan
    from moulin.usecases.kit.generate import run_step
    from moulin.usecases.mail.usecase import USECASE

    settings, _ = mail
    before = _bronze(settings).sort_values(["ds", "body"])
    old = load_key(settings)
    silver_uri = settings.table_uri("silver", "mail_messages")
    silver = set(DeltaTableStore().to_pandas(silver_uri)["from_address"].dropna())
    subject = next(s for s, _ in _senders(settings, "2002-10-10", "spam").most_common()
                   if pseudonym(s, "spam_filtering", old) in silver)  # fmt: skip
    out = rotate_key(spark, settings, print)
    after = _bronze(settings).sort_values(["ds", "body"])
    assert out["previous_key_id"] == old.key_id != out["key_id"] == load_key(settings).key_id
    assert len(after) == len(before)
    # the same messages (the erasure's raw rewrite turned mentions into <erased>, bronze masks them as <email>)
    assert sorted(after["body"].str.replace("<erased>", "<email>")) == sorted(before["body"])
    assert not set(after["from_address"].dropna()) & set(before["from_address"].dropna())
    previous = key_file(settings).with_name("pseudonym.key.previous")
    assert out["status"] == "rebuilding" and silver_uri in out["rebuild"]
    assert previous.exists()  # silver still holds the previous key's pseudonyms
    with pytest.raises(RotationUnfinishedError, match="silver/mail_messages"):
        erase_subject(spark, settings, subject, print)  # before the fix: "done", silver untouched
    # the derived table's stage runs again, under the new key
    run_step(spark, settings, USECASE, USECASE.steps[0])
    report = erase_subject(spark, settings, subject, print)  # finishes the rotation, then erases
    assert read_rotation(settings)["status"] == "finished" and not previous.exists()
    assert not report.noop and any(t.uri == silver_uri and t.rows_erased for t in report.tables)
    for key in (old, load_key(settings)):  # neither key's pseudonyms of the subject are left
        hits = scan(settings, subject_needles(subject, key), local_log_dirs(settings)).hits
        assert not hits, (key.key_id, sorted(hits)[:5])


def test_a_rotation_blocked_by_a_landing_names_it_and_continues_once_repaired(mail, spark) -> None:
    """A landing that cannot be gated blocks the rotation without stopping
    the others; the error names it and what to do; rerun after the repair, the rotation
    continues with the same new key (never a third one) and finishes."""
    from moulin.ingest.landing import read_manifest
    from moulin.privacy.erasure import erase_subject
    from moulin.privacy.rotation import (
        RotationBlockedError,
        RotationUnfinishedError,
        read_rotation,
        rotate_key,
    )
    from moulin.storage import WarehouseFS
    from moulin.usecases.kit.generate import run_step
    from moulin.usecases.mail.usecase import USECASE

    settings, _ = mail
    fs = WarehouseFS(settings)
    (entry, *_) = read_manifest(settings, "mail", "2003-02-28", fs)["files"]
    good = fs.read_bytes(entry["uri"])
    extra = b"\nFrom someone@example.net Mon Mar  3 10:00:00 2003\nFrom: someone@example.net\n\nhello\n"
    fs.write_bytes(entry["uri"], good + extra)  # one more message than its manifest counts: not gateable
    previous = key_file(settings).with_name("pseudonym.key.previous")
    try:
        with pytest.raises(RotationBlockedError, match=r"mail/2003-02-28: AccountingError.*--drop-landing"):
            rotate_key(spark, settings, print)
        state = read_rotation(settings)
        assert state["landings"]["mail/2002-10-10"]["status"] == "gated"  # the others went on
        assert state["landings"]["mail/2003-02-28"]["status"] == "blocked" and previous.exists()
        with pytest.raises(RotationUnfinishedError, match="mail/2003-02-28"):
            erase_subject(spark, settings, "nobody@example.net", print)
    finally:
        fs.write_bytes(entry["uri"], good)  # the operator repairs the landing
    out = rotate_key(spark, settings, print)  # continues: same key, the gated landing not redone
    assert out["key_id"] == state["key_id"] == load_key(settings).key_id
    assert {r["ds"] for r in out["regated"]} == {"2002-10-10", "2003-02-28"}
    assert out["status"] == "rebuilding" and previous.exists()
    run_step(spark, settings, USECASE, USECASE.steps[0])
    assert rotate_key(spark, settings, print)["status"] == "finished" and not previous.exists()


def test_retention_deletes_expired_drops(mail, spark) -> None:
    import datetime as dt

    from moulin.privacy.retention import apply_retention
    from moulin.storage import WarehouseFS

    settings, _ = mail
    store = DeltaTableStore(spark)
    today = dt.date(2002, 12, 1) + dt.timedelta(days=9125)  # the first drop is past 9125 days, the second not
    dry = apply_retention(spark, settings, today, dry_run=True, say=print)
    expired = {a["target"].split("/mail-privacy/")[1]: a["expired"] for a in dry}
    assert expired["bronze/mail"] == expired["raw/mail"] == expired["silver/mail_messages"] == ["2002-10-10"]
    assert {v for v in _bronze(settings)["ds"]} == {"2002-10-10", "2003-02-28"}  # dry run: nothing deleted
    done = apply_retention(spark, settings, today, say=print)
    assert all(a["version"] is not None for a in done if a["kind"] == "table" and a["expired"])
    assert {v for v in _bronze(settings)["ds"]} == {"2003-02-28"}
    assert not WarehouseFS(settings).exists(settings.table_uri("raw", "mail", "ds=2002-10-10"))
    assert store.count(settings.table_uri("quarantine", "mail"), partition={"ds": "2002-10-10"}) == 0
