"""The table step of the mail use case (declared in :mod:`moulin.usecases.mail.usecase`):
bronze -> silver (labelled, split), with the check of the mailbox names; the spam
filters trained on it are :mod:`moulin.usecases.mail.training`'s."""

from __future__ import annotations

from moulin.errors import DataError
from moulin.usecases.mail.params import PARAMS

LABELS = {"spam.mbox": "spam", "ham.mbox": "ham"}


class MailboxNameError(DataError):
    """A landed mailbox file is named neither spam.mbox nor ham.mbox: its label is unknown."""


def to_silver(bronze, seed: int = PARAMS.split_seed):
    """Bronze messages -> silver rows: the label from the mailbox file, the number of
    recipients, a split seeded by content (subject and masked body); display names
    and relay IPs dropped."""
    from pyspark.sql import functions as F

    box = F.regexp_extract(F.col("_source_file"), r"([^/]+)$", 1)
    label = F.coalesce(*[F.when(box.endswith(name), F.lit(value)) for name, value in LABELS.items()])
    # by content, not by pseudonym: the split survives a key rotation, and copies of one
    # message (same subject and body) fall in the same split
    bucket = F.pmod(F.xxhash64("subject", "body", F.lit(seed)), F.lit(1000)) / 1000.0
    split = (
        F.when(bucket < PARAMS.train_share, "train")
        .when(bucket < PARAMS.train_share + PARAMS.validation_share, "validation")
        .otherwise("test")
    )
    recipients = F.when(F.col("to_addresses").isNull(), F.lit(0)).otherwise(
        F.size(F.split("to_addresses", ", "))
    )
    return bronze.select(
        "message_id",
        "sent_at",
        "from_address",
        "to_addresses",
        recipients.cast("int").alias("n_recipients"),
        "subject",
        "body",
        label.alias("label"),
        split.alias("split"),
        "ds",
    )


def check_mailbox_names(bronze, bronze_uri: str) -> None:
    """Refuse a landed mailbox file named neither spam.mbox nor ham.mbox (its label is unknown)."""
    unknown = [
        r["_source_file"]
        for r in bronze.select("_source_file").distinct().collect()
        if r["_source_file"].rsplit("/", 1)[-1] not in LABELS
    ]
    if unknown:
        raise MailboxNameError(
            f"mailbox file(s) {unknown[:3]} in {bronze_uri} are named neither spam.mbox nor ham.mbox: "
            "the label comes from the mailbox name; land them under one of those names"
        )
