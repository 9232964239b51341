"""mbox: mailbox files (RFC 4155) of RFC 822 messages, one record per message (:mod:`moulin.ingest.mail`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from moulin.ingest.formats import (
    CORRUPT,
    CORRUPT_REASON,
    FormatOptions,
    RawFileFormat,
    RawFiles,
    RecordContract,
    RowCounter,
    record_schema,
)
from moulin.ingest.mail import MAIL_FIELDS, count_mbox_messages, parse_message, split_mbox

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def read_mbox(spark: SparkSession, uris: list[str], contract: RecordContract) -> DataFrame:
    """Mailbox files as one record per message (:mod:`moulin.ingest.mail`); a message
    that does not parse keeps only ``_corrupt_record`` (its reason)."""
    names = contract.column_names
    schema = record_schema(contract, MAIL_FIELDS, "mail", "mbox")

    def explode(batches):
        import pandas as pd

        for pdf in batches:
            rows = []
            for path, content in zip(pdf["path"], pdf["content"], strict=True):
                for i, raw in enumerate(split_mbox(bytes(content))):
                    try:
                        fields = parse_message(raw)
                        rows.append(
                            {
                                **{c: fields.get(c) for c in names},
                                CORRUPT: None,
                                CORRUPT_REASON: None,
                                "_source_file": path,
                            }
                        )
                    except Exception as exc:  # noqa: BLE001 - any parse failure is the record's reason
                        reason = f"message {i + 1}: {exc}"[:500]
                        rows.append({CORRUPT: reason, CORRUPT_REASON: reason, "_source_file": path})
            yield pd.DataFrame(rows, columns=[f.name for f in schema.fields])

    files = spark.read.format("binaryFile").load(uris).select("path", "content")
    return files.mapInPandas(explode, schema)


class Mbox(RawFileFormat):
    """Mailboxes: lines of text, but each message declares its own charsets (no file encoding
    is applied to values); erasure removes a subject's messages."""

    name = "mbox"
    line_format = True
    erased_as = "mailbox"

    def counter(self, options: FormatOptions) -> RowCounter:
        return count_mbox_messages

    def read(self, spark: SparkSession, files: RawFiles) -> DataFrame:
        return read_mbox(spark, files.uris, files.contract)
