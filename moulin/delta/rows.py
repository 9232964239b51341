"""Small append-only Delta tables written one row at a time (audit, alerts, requests).

Each row is one delta-rs commit (no Spark): fit for records that come one by one
from a task, a callback or a command, and for tables that stay small.
"""

from __future__ import annotations

import time

from moulin.errors import MoulinError


class RowAppendError(MoulinError):
    """A row could not be appended; the message names the table and what was refused."""


def append_row(
    uri: str, row: dict, what: str, schema=None, error: type[MoulinError] = RowAppendError
) -> None:
    """Append one row to the Delta table ``uri`` (created on first use), retrying a
    concurrent append; ``error`` naming ``what`` when it cannot be written."""
    import pyarrow as pa
    from deltalake import write_deltalake

    table = pa.Table.from_pylist([row], schema=schema)
    for attempt in range(5):
        try:
            write_deltalake(uri, table, mode="append")
            return
        except Exception as exc:  # noqa: BLE001 - a concurrent append: retry; else refuse
            if attempt == 4:
                raise error(
                    f"cannot append to {uri} ({' '.join(str(exc).split())[:200]}): {what} is refused; "
                    "check the warehouse and retry"
                ) from None
            time.sleep(0.2 * (attempt + 1))


def read_rows(uri: str, order_by: str) -> list[dict]:
    """The rows of the Delta table ``uri`` ordered by ``order_by`` (none if it does not exist)."""
    from deltalake import DeltaTable

    if not DeltaTable.is_deltatable(uri):
        return []
    return sorted(DeltaTable(uri).to_pyarrow_table().to_pylist(), key=lambda r: r[order_by])
