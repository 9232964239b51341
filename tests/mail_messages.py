"""A ``silver/mail_messages``-shaped Delta table from the installed SpamAssassin corpus,
without Spark: parsed messages, addresses pseudonymised with a test key and masked in
the text, the label by mailbox, the split by a seeded hash of subject and body, one
partition per drop date (as ``schemas/silver_mail.yaml`` says).  The training tests
and the before/after comparison of the spam filter read it."""

from __future__ import annotations

import hashlib

from moulin.ingest.mail import parse_message
from moulin.privacy.keys import PseudonymKey
from moulin.privacy.pseudonyms import mask_text, pseudonym
from moulin.settings import Settings
from moulin.usecases.mail.corpus import DROPS, group_messages

KEY = PseudonymKey(b"mail test key, not a secret".ljust(32, b"."), "tests")
PURPOSE = "spam_filtering"


def _split(subject: str, body: str, seed: int = 13) -> str:
    bucket = int(hashlib.sha256(f"{seed}\0{subject}\0{body}".encode()).hexdigest()[:8], 16) % 1000 / 1000
    return "train" if bucket < 0.7 else "validation" if bucket < 0.85 else "test"


def silver_rows(settings: Settings, limit: int | None = None) -> list[dict]:
    """The silver rows of every drop (``limit`` messages per corpus group)."""
    rows = []
    for ds, boxes in DROPS.items():
        for label, groups in boxes.items():
            for group in groups:
                for raw in group_messages(settings, group, limit):
                    m = parse_message(raw)
                    to = [a for a in (m["to_addresses"] or "").split(", ") if a]
                    subject, body = mask_text(m["subject"]), mask_text(m["body"]) or ""
                    rows.append(
                        {
                            "message_id": m["message_id"] and pseudonym(m["message_id"], PURPOSE, KEY),
                            "from_address": m["from_address"] and pseudonym(m["from_address"], PURPOSE, KEY),
                            "to_addresses": ", ".join(pseudonym(a, PURPOSE, KEY) for a in to) or None,
                            "n_recipients": len(to),
                            "subject": subject,
                            "body": body,
                            "label": label,
                            "split": _split(subject or "", body),
                            "ds": ds,
                        }
                    )
    return rows


def write_silver(settings: Settings, rows: list[dict]) -> str:
    """Write ``rows`` as the silver table of ``settings`` (partitioned by ``ds``); its URI."""
    import pandas as pd
    import pyarrow as pa
    from deltalake import write_deltalake

    uri = settings.table_uri("silver", "mail_messages")
    frame = pd.DataFrame(rows)
    frame["n_recipients"] = frame["n_recipients"].astype("int32")
    write_deltalake(
        uri, pa.Table.from_pandas(frame, preserve_index=False), mode="overwrite", partition_by=["ds"]
    )
    return uri
