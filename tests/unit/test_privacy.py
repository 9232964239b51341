"""Keyed pseudonyms, masking, the key file, personal-data contracts, the mailbox
reader and the record of processing activities."""

from __future__ import annotations

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
        "source": {"name": "people"},
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
