"""Keyed pseudonyms, masking, the key file, personal-data contracts, the mailbox
reader and the record of processing activities."""

from __future__ import annotations

import base64
import datetime as dt
import os
import stat
from pathlib import Path

import pytest

from moulin.contracts import ContractError, load_contract, parse_contract
from moulin.ingest.mail import count_mbox_messages, parse_message, split_mbox, write_mbox
from moulin.privacy.keys import PseudonymKey, PseudonymKeyError, key_file, load_key
from moulin.privacy.pseudonyms import mask_text, pseudonym, pseudonymise_value

KEY = PseudonymKey(bytes(range(32)), "test")
OTHER = PseudonymKey(bytes(range(1, 33)), "test")


def test_pseudonyms_are_stable_keyed_and_per_purpose() -> None:
    a = pseudonym("Alice@Example.org ", "spam_filtering", KEY)
    assert a == pseudonym("alice@example.org", "spam_filtering", KEY)  # normalised
    assert a.startswith("ps_") and len(a) == 35
    assert a != pseudonym("alice@example.org", "spam_filtering", OTHER)  # another key
    assert a != pseudonym("alice@example.org", "marketing", KEY)  # another purpose
    assert a != pseudonym("bob@example.org", "spam_filtering", KEY)
    import hashlib

    assert hashlib.sha256(b"alice@example.org").hexdigest()[:32] not in a  # not an unkeyed hash


def test_lists_are_pseudonymised_element_by_element() -> None:
    sub = KEY.for_purpose("spam_filtering")
    out = pseudonymise_value("a@x.org, b@y.org", sub)
    assert out == ", ".join(pseudonymise_value(v, sub) for v in ("a@x.org", "b@y.org"))
    assert pseudonymise_value(None, sub) is None


def test_free_text_is_masked() -> None:
    text = "write to John.Smith@corp.example.com or 10.0.0.254, not version 1.2.3.4.5"
    assert mask_text(text) == "write to <email> or <ip>, not version 1.2.3.4.5"


def test_the_key_file_is_created_0600_and_refused_when_readable_by_others(
    settings, tmp_path, monkeypatch
) -> None:
    from dataclasses import replace

    monkeypatch.delenv("MOULIN_PSEUDONYM_KEY", raising=False)
    local = replace(settings, home=tmp_path)
    key = load_key(local)
    path = key_file(local)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(local).secret == key.secret
    assert key.secret.hex() not in repr(key) and key.secret.hex() not in str(key)
    os.chmod(path, 0o644)
    with pytest.raises(PseudonymKeyError, match="chmod 600"):
        load_key(local)


def test_the_key_from_the_environment_wins(settings, monkeypatch) -> None:
    monkeypatch.setenv("MOULIN_PSEUDONYM_KEY", "ab" * 32)
    assert load_key(settings).secret == bytes.fromhex("ab" * 32)
    monkeypatch.setenv("MOULIN_PSEUDONYM_KEY", "not hex")
    with pytest.raises(PseudonymKeyError, match="not hex"):
        load_key(settings)


def _contract(**changes) -> dict:
    base = {
        "name": "bronze_people",
        "layer": "bronze",
        "table": "bronze/people",
        "quarantine_threshold": 0.1,
        "privacy": {"purpose": "support", "legal_basis": "contract", "subject_columns": ["email"]},
        "columns": [
            {"name": "email", "type": "string", "nullable": True,
             "personal": {"category": "direct_identifier", "treatment": "pseudonymise", "purpose": "support"}},
        ],
    }  # fmt: skip
    base.update(changes)
    return base


def test_personal_columns_are_validated() -> None:
    contract = parse_contract(_contract(), Path("people.yaml"))
    assert contract.personal_data == ("email",)
    assert contract.personal_columns["email"].pseudonymous
    bad = _contract()
    bad["columns"][0]["personal"]["category"] = "secret"
    with pytest.raises(ContractError, match="columns\\[0\\].personal.category"):
        parse_contract(bad, Path("people.yaml"))
    with pytest.raises(ContractError, match="field privacy: columns declare personal data"):
        parse_contract(_contract(privacy=None), Path("people.yaml"))
    with pytest.raises(ContractError, match="privacy.subject_columns: unknown column 'mail'"):
        parse_contract(_contract(privacy={"purpose": "p", "legal_basis": "b", "subject_columns": ["mail"]}),
                       Path("people.yaml"))  # fmt: skip


def test_contract_identifiers_and_table_paths_are_refused() -> None:
    bad = _contract()
    bad["columns"][0]["name"] = "x; DROP TABLE people"
    with pytest.raises(ContractError, match="not a plain identifier"):
        parse_contract(bad, Path("people.yaml"))
    with pytest.raises(ContractError, match="field table: '../../etc'"):
        parse_contract(_contract(table="../../etc"), Path("people.yaml"))


def test_the_mail_contract_pseudonymises_direct_identifiers() -> None:
    contract = load_contract("bronze_mail")
    treat = {n: p.treatment for n, p in contract.personal_columns.items()}
    assert treat["from_address"] == treat["to_addresses"] == treat["from_name"] == "pseudonymise"
    assert treat["body"] == treat["subject"] == "mask"
    assert "from_name" not in load_contract("silver_mail").column_names  # minimised


MESSAGE = (
    b"From alice@example.org Mon Sep  2 10:00:00 2002\n"
    b'From: "Alice A." <Alice@Example.org>\nTo: bob@example.net, Carol <carol@example.net>\n'
    b"Subject: =?iso-8859-1?q?caf=E9?=\nDate: Mon, 2 Sep 2002 10:00:00 +0200\n"
    b"Received: from relay (relay [192.0.2.7]) by mx\n\n"
    b"Hello\nFrom the start of a line\n"
)


def test_mailboxes_split_count_and_parse() -> None:
    box = write_mbox([MESSAGE, MESSAGE.replace(b"Hello", b"Bye")])
    assert b"\n>From the start" in box  # escaped in the file
    messages = split_mbox(box)
    assert len(messages) == count_mbox_messages(box) == 2
    assert messages[0] == MESSAGE.split(b"\n", 1)[1]  # the envelope line is the separator
    assert (
        write_mbox(messages) != box and split_mbox(write_mbox(messages)) == messages
    )  # a rewrite keeps them
    fields = parse_message(messages[0])
    assert fields["from_address"] == "Alice@Example.org" and fields["from_name"] == "Alice A."
    assert fields["to_addresses"] == "bob@example.net, carol@example.net"
    assert fields["subject"] == "café" and fields["received_ips"] == "192.0.2.7"
    assert fields["sent_at"] == "2002-09-02T10:00:00+02:00"
    assert "From the start of a line" in fields["body"]  # unescaped
    with pytest.raises(ValueError, match="no header"):
        parse_message(b"just a line without a colon\n")


def test_two_counters_disagree_on_a_cut_mailbox() -> None:
    """The landing's count (Python's mailbox) and the reader's split are separate code:
    a message glued to the previous one (no blank line before From) is one record for
    the reader but two for mailbox, so the gate's count check would stop the run."""
    box = write_mbox([MESSAGE, MESSAGE]).replace(b"\n\nFrom alice", b"\nFrom alice", 1)
    assert len(split_mbox(box)) == 1
    assert count_mbox_messages(box) == 2


def test_the_register_lists_every_personal_table(settings) -> None:
    from moulin.privacy.register import register_html

    page = register_html(settings)
    for text in ("bronze_mail", "silver_mail", "direct identifier", "pseudonymise", "9125 days",
                 "Legitimate interest", "spam-filter model training"):  # fmt: skip
        assert text in page
    assert "bronze_flights" not in page  # no personal data


# --------------------------------------------------------------------------- erasure: whole addresses only

SUBJECT = b"bob@example.com"


def _msg(envelope: bytes, headers: bytes, body: bytes = b"Hi\n") -> bytes:
    """One mbox message as it stands in a file: envelope line, headers, body, blank line."""
    return b"From " + envelope + b" Mon Jan  6 10:00:00 2003\n" + headers + b"\n" + body + b"\n"


NEIGHBOURS = [  # other people's messages: must come out byte for byte
    _msg(b"jimbob@example.com", b"From: jimbob@example.com\nTo: carol@example.org\nSubject: one\n"),
    _msg(b"sender@example.org", b"From: =?utf-8?q?J=C3=BCrgen_B?= <bob@example.com.au>\nTo: x@example.org\n"),
    _msg(b"x@example.org", b"From: x@example.org\nTo: jim.bob@example.com, bob@example.community\n"),
]
THE_SUBJECTS = [  # the subject's messages (sender, recipient, envelope sender): removed
    _msg(b"bob@example.com", b'From: "Bob" <bob@example.com>\nTo: carol@example.org\n'),
    _msg(b"MAILER-DAEMON", b"From: =?iso-8859-1?q?B=F6b?= <BOB@EXAMPLE.COM>\nTo: carol@example.org\n"),
    _msg(b"carol@example.org", b"From: carol@example.org\nTo: Bob <Bob@Example.Com>\n"),
    _msg(b"Bob@Example.com", b"From: nobody@example.org\nTo: carol@example.org\n"),
]
MENTION = _msg(
    b"carol@example.org", b"From: carol@example.org\nTo: x@example.org\n", b"ask BOB@example.com.\n"
)


def test_mask_replaces_the_whole_address_only() -> None:
    from moulin.privacy.erasure import _mask

    assert _mask(b"From: jimbob@example.com\nTo: bob@example.com.au\n", SUBJECT) == (
        b"From: jimbob@example.com\nTo: bob@example.com.au\n"
    )
    neighbours = (
        b"jim.bob@example.com x+bob@example.com bob@example.community bob@example.com-x 'bob@example.co'"
    )
    assert _mask(neighbours, SUBJECT) == neighbours
    assert _mask(b'"Bob" <BOB@Example.COM>, mailto:bob@example.com. (bob@example.com)', SUBJECT) == (
        b'"Bob" <<erased>>, mailto:<erased>. (<erased>)'
    )


def test_the_proof_finds_whole_addresses_only() -> None:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from moulin.privacy.scan import scan_bytes

    needles = {"address": SUBJECT, "pseudonym:x": b"ps_0123456789abcdef"}
    assert scan_bytes(b"From: jimbob@example.com\nTo: bob@example.com.au\n", needles, False) == set()
    assert scan_bytes(b"To: 'BOB@EXAMPLE.COM'\n", needles, False) == {"address"}
    assert scan_bytes(b"xps_0123456789abcdefx", needles, False) == {"pseudonym:x"}  # pseudonyms: substrings

    def parquet(values: list[str]) -> bytes:
        out = io.BytesIO()
        pq.write_table(pa.table({"v": values, "l": [[v] for v in values]}), out, compression="zstd")
        return out.getvalue()

    assert scan_bytes(parquet(["jimbob@example.com", "bob@example.com.au"] * 50), needles, True) == set()
    assert scan_bytes(parquet(["jimbob@example.com", "to Bob@Example.com"] * 50), needles, True) == {
        "address"
    }


def test_a_rewritten_mailbox_keeps_the_neighbours_byte_for_byte() -> None:
    import hashlib

    from moulin.privacy.erasure import _rewrite_mbox

    box = b"".join([NEIGHBOURS[0], THE_SUBJECTS[0], NEIGHBOURS[1], THE_SUBJECTS[1], MENTION, THE_SUBJECTS[2],
                    NEIGHBOURS[2], THE_SUBJECTS[3]])  # fmt: skip
    assert count_mbox_messages(box) == len(split_mbox(box)) == 8
    out, removed, kept = _rewrite_mbox(box, SUBJECT)
    assert (removed, kept) == (4, 4)
    expected = b"".join(
        [NEIGHBOURS[0], NEIGHBOURS[1], MENTION.replace(b"BOB@example.com", b"<erased>"), NEIGHBOURS[2]]
    )
    assert hashlib.sha256(out).hexdigest() == hashlib.sha256(expected).hexdigest()
    assert [
        line for line in out.split(b"\n") if line.startswith(b"From ")
    ] == [  # the envelopes, as they were
        b"From jimbob@example.com Mon Jan  6 10:00:00 2003",
        b"From sender@example.org Mon Jan  6 10:00:00 2003",
        b"From carol@example.org Mon Jan  6 10:00:00 2003",
        b"From x@example.org Mon Jan  6 10:00:00 2003",
    ]
    assert count_mbox_messages(out) == len(split_mbox(out)) == 4
    from moulin.privacy.scan import scan_bytes

    assert (
        scan_bytes(out, {"address": SUBJECT}, False) == set() != scan_bytes(box, {"address": SUBJECT}, False)
    )


def test_a_mailbox_emptied_by_an_erasure_holds_no_message_and_is_not_empty() -> None:
    from moulin.privacy.erasure import _rewrite_mbox, emptied_mailbox

    out, removed, kept = _rewrite_mbox(b"".join(THE_SUBJECTS), SUBJECT)
    assert (out, removed, kept) == (b"", 4, 0)
    ham, spam = emptied_mailbox("ham.mbox"), emptied_mailbox("spam.mbox")
    assert ham != spam and ham and not ham.startswith(b"From ") and ham.endswith(b"\n")
    assert count_mbox_messages(ham) == len(split_mbox(ham)) == 0


def _land_mail(settings, ds: str, boxes: dict[str, bytes]) -> None:
    from moulin.sources.land import land_source
    from moulin.sources.spec import load_spec

    folder = settings.home / "drops" / "mail" / ds
    folder.mkdir(parents=True)
    for name, data in boxes.items():
        (folder / name).write_bytes(data)
    land_source(settings, load_spec("mail"), ds)


def test_erasure_rewrites_raw_mailboxes_and_the_emptied_one_passes_the_gate(
    settings, tmp_path, spark
) -> None:
    import hashlib
    import json
    from dataclasses import replace

    from moulin.ingest.landing import read_manifest
    from moulin.privacy.erasure import _erase_raw
    from moulin.sources.bronze import gate_landing
    from moulin.sources.spec import load_spec
    from moulin.storage import WarehouseFS

    settings = replace(settings, home=tmp_path, warehouse_uri="")
    ds = "2002-10-10"
    spam = b"".join([NEIGHBOURS[0], THE_SUBJECTS[0], NEIGHBOURS[1]])
    _land_mail(settings, ds, {"ham.mbox": b"".join(THE_SUBJECTS[1:]), "spam.mbox": spam})
    done = _erase_raw(settings, "mail", "Bob@Example.com", print, "erase-20260101T000000-00000000")
    assert sorted((d["file"], d["records_removed"], d["emptied"]) for d in done) == [
        ("ham.mbox", 3, True), ("spam.mbox", 1, False)]  # fmt: skip
    fs = WarehouseFS(settings)
    manifest = read_manifest(settings, "mail", ds, fs)
    files = {f["file"]: f for f in manifest["files"]}
    assert files["ham.mbox"]["rows"] == 0 and files["ham.mbox"]["size"] > 0
    assert files["ham.mbox"]["erasure"] == {"request_id": "erase-20260101T000000-00000000",
                                            "records_removed": 3, "emptied": True}  # fmt: skip
    new_spam = fs.read_bytes(files["spam.mbox"]["uri"])
    assert hashlib.sha256(new_spam).digest() == hashlib.sha256(NEIGHBOURS[0] + NEIGHBOURS[1]).digest()
    assert all(
        old.get("removed") == "erasure" and not fs.exists(old["uri"]) for old in manifest["superseded"]
    )
    assert 'bob@example.com"' not in json.dumps(manifest).lower()
    outcome = gate_landing(spark, settings, load_spec("mail"), ds, run_ge=False)
    assert outcome.rows_manifest == outcome.rows_read == outcome.rows_bronze + outcome.rows_quarantined == 2


def test_quarantine_rows_are_selected_by_the_whole_address(spark) -> None:
    import json

    from moulin.privacy.erasure import PersonalTable, _condition

    rows = {
        "subject": {"from_address": "Bob@Example.com", "body": "x"},
        "subject_named": {"from_address": '"Bob" <bob@example.com>'},
        "jimbob": {"from_address": "jimbob@example.com"},
        "au": {"from_address": "bob@example.com.au"},
        "dotted": {"to_addresses": "jim.bob@example.com, carol@example.org"},
    }
    df = spark.createDataFrame(
        [(name, json.dumps(row)) for name, row in rows.items()], "name string, row string"
    )
    table = PersonalTable("quarantine_mail", "unused", None, "mail")
    picked = {r["name"] for r in df.filter(_condition(table, "bob@example.com", KEY)).collect()}
    assert picked == {"subject", "subject_named"}


# --------------------------------------------------------------------------- erasure requests


def test_an_erasure_request_keeps_the_address_in_a_private_file(settings, tmp_path) -> None:
    from dataclasses import replace

    from moulin.privacy.requests import (
        PrivacyRequestError,
        close_request,
        register_erasure,
        request_address,
        request_file,
    )

    settings = replace(settings, home=tmp_path)
    request_id = register_erasure(settings, "Alice@Example.org")
    assert "alice" not in request_id.lower() and "example" not in request_id
    path = request_file(settings, request_id)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert request_address(settings, request_id) == "Alice@Example.org"
    os.chmod(path, 0o644)
    with pytest.raises(PrivacyRequestError, match="readable by others"):
        request_address(settings, request_id)
    with pytest.raises(PrivacyRequestError, match="not an erasure request id"):
        request_address(settings, "../../secrets/pseudonym")
    close_request(settings, request_id)
    with pytest.raises(PrivacyRequestError, match="no pending erasure request"):
        request_address(settings, request_id)
    with pytest.raises(Exception, match="not an e-mail address"):
        register_erasure(settings, "not an address")


# --------------------------------------------------------------------------- encoded copies in mailboxes

B64_BODY = _msg(  # a neighbour's message whose base64 body mentions the subject
    b"carol@example.org",
    b"From: carol@example.org\nTo: x@example.org\nMIME-Version: 1.0\n"
    b'Content-Type: text/plain; charset="utf-8"\nContent-Transfer-Encoding: base64\n',
    base64.encodebytes("écris à BOB@example.com ou jimbob@example.com\n".encode()),
)
QP_BODY = _msg(
    b"carol@example.org",
    b"From: carol@example.org\nTo: x@example.org\nMIME-Version: 1.0\n"
    b'Content-Type: text/plain; charset="utf-8"\nContent-Transfer-Encoding: quoted-printable\n',
    b"=C3=A9cris =C3=A0 bob=40example.com\n",
)
ENCODED_SENDER = _msg(  # the subject's own message, the address only in an RFC 2047 word
    b"MAILER-DAEMON", b"From: =?utf-8?b?Ym9iQGV4YW1wbGUuY29t?=\nTo: carol@example.org\nSubject: hi\n"
)
ENCODED_SUBJECT_LINE = _msg(
    b"x@example.org",
    b"From: x@example.org\nTo: carol@example.org\nSubject: =?utf-8?q?re=3A_bob=40example=2Ecom?=\n",
)


def test_the_proof_finds_encoded_copies_in_mailboxes() -> None:
    from moulin.privacy.scan import scan_bytes

    needles = {"address": SUBJECT}
    for message in (B64_BODY, QP_BODY, ENCODED_SENDER, ENCODED_SUBJECT_LINE):
        assert scan_bytes(message, needles, False) == set()  # not in the bytes as they stand
        assert scan_bytes(message, needles, False, mail=True) == {"address"}  # before the fix: not found
    neighbours = b"".join(NEIGHBOURS)
    assert scan_bytes(neighbours, needles, False, mail=True) == set()


def test_erasure_removes_encoded_senders_and_masks_encoded_mentions() -> None:
    import hashlib

    from moulin.privacy.erasure import _rewrite_mbox
    from moulin.privacy.scan import mbox_decoded_text, scan_bytes

    box = b"".join([NEIGHBOURS[0], B64_BODY, ENCODED_SENDER, QP_BODY, ENCODED_SUBJECT_LINE, NEIGHBOURS[1]])
    out, removed, kept = _rewrite_mbox(box, SUBJECT)
    assert (removed, kept) == (1, 5)  # the message the subject sent, named in an encoded From
    assert scan_bytes(out, {"address": SUBJECT}, False, mail=True) == set()
    assert len(split_mbox(out)) == count_mbox_messages(out) == 5
    decoded = mbox_decoded_text(out).decode()
    assert "écris à <erased> ou jimbob@example.com" in decoded  # the neighbour's address kept
    assert "re: <erased>" in decoded
    for neighbour in (NEIGHBOURS[0], NEIGHBOURS[1]):  # untouched messages: byte for byte
        assert hashlib.sha256(neighbour).hexdigest() in {
            hashlib.sha256(out[i : i + len(neighbour)]).hexdigest()
            for i in range(len(out) - len(neighbour) + 1)
        }


# --------------------------------------------------------------------------- Airflow's metadata database


def _home(settings, tmp_path):
    from dataclasses import replace

    return replace(settings, home=tmp_path / "home", warehouse_uri="")


def test_the_proof_searches_the_sqlite_metadata_database_of_dags_test(settings, tmp_path) -> None:
    """The SQLite file ``airflow dags test`` uses (the one its environment names) is
    outside the log folders: the proof reads it, its file and its rows."""
    import sqlite3

    from moulin.orchestration import airflow_env, airflow_sqlite_path
    from moulin.privacy.erasure import local_log_dirs
    from moulin.privacy.scan import scan

    settings = _home(settings, tmp_path)
    path = airflow_sqlite_path(settings)
    assert airflow_env(settings)["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{path}"
    (settings.home / "airflow" / "logs").mkdir(parents=True)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE dag_run (id INTEGER PRIMARY KEY, conf TEXT, blob BLOB)")
        conn.execute("INSERT INTO dag_run (conf) VALUES (?)", ('{"to": "jimbob@example.com"}',))
        conn.execute(
            "INSERT INTO dag_run (conf) VALUES (?)",
            ('{"to": "Bob@Example.com", "pad": "' + "x" * 9000 + '"}',),
        )
    assert path.parent not in local_log_dirs(settings)  # not among the log folders
    hits = scan(settings, {"address": SUBJECT.decode()}, local_log_dirs(settings)).hits
    assert hits == [(path.resolve().as_uri(), "address")]
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM dag_run WHERE conf LIKE '%Bob@%'")
    with sqlite3.connect(path) as conn:
        conn.execute("VACUUM")  # the freed page's bytes are gone from the file too
    assert scan(settings, {"address": SUBJECT.decode()}, local_log_dirs(settings)).hits == []


def _with_platform(settings, **changes):
    """``settings`` with platform fields changed."""
    from dataclasses import replace

    return replace(settings, platform=replace(settings.platform, **changes))


def _pg_dump_installed() -> bool:
    from moulin.platform import postgres
    from moulin.settings import load_settings

    try:
        return (postgres.bin_dir(load_settings("local", env={})) / "pg_dump").exists()
    except postgres.PostgresError:
        return False


@pytest.mark.skipif(not _pg_dump_installed(), reason="PostgreSQL's pg_dump is not installed")
def test_an_unreachable_postgres_metadata_database_fails_the_erasure(settings, tmp_path) -> None:
    """Once the platform wrote the URI its Airflow reads, the proof dumps that database:
    when nothing answers there, the erasure stops before erasing, naming the database
    (without its password) and what to do."""
    from moulin.cluster.ports import port_free
    from moulin.platform import airflow_services, secrets
    from moulin.privacy.airflow_db import MetadataDatabaseError
    from moulin.privacy.erasure import erase_subject

    settings = _home(settings, tmp_path)
    port = next(p for p in range(47300, 47400) if port_free(p))
    settings = _with_platform(settings, postgres_port=port)
    airflow_services.prepare_secrets(settings)
    password = secrets.read_secret(settings, secrets.DB_PASSWORD)
    with pytest.raises(MetadataDatabaseError) as info:
        erase_subject(None, settings, SUBJECT.decode())
    message = str(info.value)
    assert f"postgresql://127.0.0.1:{port}/airflow (pg_dump)" in message and "moulin platform up" in message
    assert password not in message


# --------------------------------------------------------------------------- raw files in other encodings

PEOPLE_CSV = "name,email\nBob,Bob@Example.com\nJim,jimbob@example.com\nÉlise,bob@example.com.au\n"
BOMS = {"utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff", "utf-32-le": b"\xff\xfe\x00\x00",
        "utf-32-be": b"\x00\x00\xfe\xff"}  # fmt: skip


@pytest.mark.parametrize("codec", sorted(BOMS))
def test_text_in_utf16_and_utf32_is_searched_and_masked_in_its_encoding(codec: str) -> None:
    from moulin.privacy.erasure import _mask_text
    from moulin.privacy.scan import scan_bytes

    data = BOMS[codec] + PEOPLE_CSV.encode(codec)
    assert SUBJECT not in data.lower()  # not as ASCII bytes
    assert scan_bytes(data, {"address": SUBJECT}, False) == {"address"}
    masked = _mask_text(data, SUBJECT)
    assert masked.startswith(BOMS[codec])  # the same encoding, the same byte order
    assert masked[len(BOMS[codec]) :].decode(codec) == PEOPLE_CSV.replace("Bob@Example.com", "<erased>")
    assert scan_bytes(masked, {"address": SUBJECT}, False) == set()
    # without a byte-order mark, the source spec's encoding says how to read it
    bare = PEOPLE_CSV.encode(codec)
    assert scan_bytes(bare, {"address": SUBJECT}, False, encoding=codec) == {"address"}
    assert _mask_text(bare, SUBJECT, codec).decode(codec) == PEOPLE_CSV.replace("Bob@Example.com", "<erased>")


def _people_parquet(emails: list[str]) -> bytes:
    """A Parquet file whose addresses sit in a struct, a map and a list (gzip: no value in clear bytes)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    n = len(emails)
    table = pa.table({
        "id": list(range(n)),
        "contact": [{"email": e, "rank": i} for i, e in enumerate(emails)],
        "tags": pa.array([[("cc", e)] for e in emails], pa.map_(pa.string(), pa.string())),
        "seen": pa.array([dt.datetime(2024, 1, 1, tzinfo=dt.UTC)] * n, pa.timestamp("us", tz="UTC")),
    })  # fmt: skip
    out = io.BytesIO()
    pq.write_table(table, out, compression="gzip", write_statistics=False)
    return out.getvalue()


def _neighbours(n: int) -> list[str]:
    return [f"user{i}@example.org" for i in range(n)]


def test_raw_parquet_of_any_name_is_searched_and_masked_at_any_depth(settings, tmp_path) -> None:
    import io

    import pyarrow.parquet as pq

    from moulin.privacy.erasure import _mask_parquet
    from moulin.privacy.scan import scan, scan_bytes
    from moulin.storage import WarehouseFS

    emails = _neighbours(150) + ["Bob@Example.com", "jimbob@example.com"] + _neighbours(150)[::-1]
    data = _people_parquet(emails)
    assert SUBJECT not in data.lower()  # compressed: found only decoded
    assert scan_bytes(data, {"address": SUBJECT}, True) == {"address"}
    settings = _home(settings, tmp_path)
    fs = WarehouseFS(settings)
    uri = settings.table_uri("raw", "partner", "ds=2024-01-01", "people.parq")  # not named *.parquet
    fs.write_bytes(uri, data)
    assert scan(settings, {"address": SUBJECT.decode()}).hits == [(uri, "address")]
    masked = _mask_parquet(data, SUBJECT)
    before, after = pq.read_table(io.BytesIO(data)), pq.read_table(io.BytesIO(masked))
    assert after.schema == before.schema and after.num_rows == before.num_rows
    assert after["seen"] == before["seen"] and after["id"] == before["id"]
    contacts = [c["email"] for c in after["contact"].to_pylist()]
    assert contacts == [("<erased>" if e == "Bob@Example.com" else e) for e in emails]  # neighbours kept
    assert [t[0][1] for t in after["tags"].to_pylist()] == contacts
    assert pq.ParquetFile(io.BytesIO(masked)).metadata.row_group(0).column(0).compression == "GZIP"
    assert scan_bytes(masked, {"address": SUBJECT}, True) == set()


PEOPLE_CONTRACT = """\
name: bronze_{name}
layer: bronze
table: bronze/{name}
partition_by: [ds]
quarantine_threshold: 0.1
privacy: {{purpose: support, legal_basis: contract, retention_days: 30, subject_columns: [email]}}
columns:
  - {{name: email, type: string, nullable: true,
     personal: {{category: direct_identifier, treatment: pseudonymise, purpose: support}}}}
  - {{name: name, type: string, nullable: true}}
"""
PEOPLE_SPEC = """\
name: {name}
kind: file
contract: bronze_{name}
file:
  path: "{{home}}/drops/{name}/{{ds}}/*.{ext}"
  format: {fmt}
  encoding: {encoding}
"""


def test_erasure_masks_raw_files_in_utf16_and_parquet_in_their_format(
    settings, tmp_path, monkeypatch
) -> None:
    """A UTF-16 CSV drop (with a byte-order mark, and one without whose spec says
    utf-16-le) and a Parquet drop: the raw rewrite masks the subject in each, the new
    files stay valid in their format, and the proof then finds nothing."""
    import io

    import pyarrow.parquet as pq

    from moulin.ingest.landing import read_manifest
    from moulin.privacy.erasure import _erase_raw
    from moulin.privacy.scan import scan
    from moulin.sources.land import land_source
    from moulin.sources.spec import load_spec
    from moulin.storage import WarehouseFS

    contracts = tmp_path / "contracts"
    (contracts / "sources").mkdir(parents=True)
    sources = {"people16": ("csv", "csv", "utf-16"), "people16le": ("csv", "csv", "utf-16-le"),
               "peoplepq": ("parquet", "parquet", "utf-8")}  # fmt: skip
    for name, (fmt, ext, encoding) in sources.items():
        (contracts / f"bronze_{name}.yaml").write_text(PEOPLE_CONTRACT.format(name=name, fmt=fmt))
        (contracts / "sources" / f"{name}.yaml").write_text(
            PEOPLE_SPEC.format(name=name, fmt=fmt, ext=ext, encoding=encoding)
        )
    monkeypatch.setenv("MOULIN_CONTRACTS_DIR", str(contracts))
    settings = _home(settings, tmp_path)
    ds = "2024-01-01"
    drops = {
        "people16": ("people.csv", b"\xfe\xff" + PEOPLE_CSV.encode("utf-16-be")),
        "people16le": ("people.csv", PEOPLE_CSV.encode("utf-16-le")),
        "peoplepq": ("people.parquet", _people_parquet(_neighbours(100) + ["BOB@example.com"])),
    }
    for name, (file, data) in drops.items():
        folder = settings.home / "drops" / name / ds
        folder.mkdir(parents=True)
        (folder / file).write_bytes(data)
        land_source(settings, load_spec(name), ds)
    needles = {"address": SUBJECT.decode()}
    assert {uri.split("/raw/")[1].split("/")[0] for uri, _ in scan(settings, needles).hits} == set(drops)
    fs = WarehouseFS(settings)
    for name, (file, _) in drops.items():
        done = _erase_raw(settings, name, "bob@example.com", print, "erase-20260101T000000-00000000")
        assert [(d["file"], d["records_removed"]) for d in done] == [(file, 0)], name
    assert scan(settings, needles).hits == []
    erased = PEOPLE_CSV.replace("Bob@Example.com", "<erased>")
    new = {name: fs.read_bytes(read_manifest(settings, name, ds, fs)["files"][0]["uri"]) for name in drops}
    assert new["people16"] == b"\xfe\xff" + erased.encode("utf-16-be")
    assert new["people16le"] == erased.encode("utf-16-le")
    table = pq.read_table(io.BytesIO(new["peoplepq"]))
    assert [c["email"] for c in table["contact"].to_pylist()] == _neighbours(100) + ["<erased>"]
    for name in drops:
        assert read_manifest(settings, name, ds, fs)["files"][0].get("decode_error") is None


# --------------------------------------------------------------------------- quarantine reasons and Delta stats


def test_quarantine_reasons_quoting_an_address_get_no_delta_statistics(settings, tmp_path, spark) -> None:
    """A quarantined row's reason quotes the value that failed (here a sender address): the
    quarantine table's commits record no minimum or maximum of ``reason`` (nor of ``row``)."""
    import json

    from moulin.delta import DeltaTableStore
    from moulin.sources.bronze import gate_landing, quarantine_uri
    from moulin.sources.spec import load_spec

    settings = _home(settings, tmp_path)
    ds = "2002-10-11"
    good = [_msg(f"n{i}@example.org".encode(), f"From: n{i}@example.org\nTo: x@example.org\n".encode())
            for i in range(20)]  # fmt: skip
    bad = _msg(b"relay@example.org", b'From: "bob@example.com"@relay.example.org\nTo: x@example.org\n')
    _land_mail(settings, ds, {"ham.mbox": b"".join([*good[:10], bad, *good[10:]])})
    outcome = gate_landing(spark, settings, load_spec("mail"), ds, run_ge=False)
    assert outcome.rows_quarantined == 1
    uri = quarantine_uri(settings, "mail")
    (reason,) = DeltaTableStore(spark).to_pandas(uri)["reason"]
    assert SUBJECT.decode() in reason  # the reason quotes the address
    log = Path(uri.removeprefix("file://")) / "_delta_log"
    stats = [
        json.loads(action["add"]["stats"])
        for path in sorted(log.glob("*.json"))
        for action in map(json.loads, path.read_text().splitlines())
        if "add" in action and action["add"].get("stats")
    ]
    assert stats and sum(s["numRecords"] for s in stats) == 1
    for s in stats:
        for bound in ("minValues", "maxValues"):
            assert "reason" not in s.get(bound, {}) and "row" not in s.get(bound, {}), s
    assert SUBJECT.decode() not in json.dumps(stats).lower()
