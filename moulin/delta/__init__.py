"""The lakehouse storage layer: Delta tables written and read with Spark.

Spark writes the Parquet data files; one deltalake (delta-rs) transaction commits
them with partition values and per-file statistics.  See :class:`DeltaTableStore`.

    from moulin.delta import AppTransaction, DeltaTableStore
    store = DeltaTableStore(spark)
    store.write(df, settings.table_uri("flights"), partition_by=["month"],
                transaction=AppTransaction("flights.load", 20130101))
    df = store.read(settings.table_uri("flights"), filters=[("month", "=", 1)])
"""

from moulin.delta.errors import (
    ConcurrentWriteError,
    DeltaStoreError,
    SchemaMismatchError,
    StaleReadError,
    UnsupportedTableError,
)
from moulin.delta.options import AppTransaction, TableProperties
from moulin.delta.results import CompactionPolicy, TableMetadata, WriteResult
from moulin.delta.store import DeltaTableStore, retry_on_conflict

__all__ = [
    "AppTransaction",
    "CompactionPolicy",
    "ConcurrentWriteError",
    "DeltaStoreError",
    "DeltaTableStore",
    "SchemaMismatchError",
    "StaleReadError",
    "TableMetadata",
    "TableProperties",
    "UnsupportedTableError",
    "WriteResult",
    "retry_on_conflict",
]
