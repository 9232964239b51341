"""``DeltaTableStore``: Spark DataFrames in and out of Delta tables on any profile's FS.

Writes: Spark writes the Parquet data files in parallel into a staging folder
unique to the write (``<table>/_staging/<uuid>``, so concurrent jobs never share
a ``_temporary``), the files are renamed into the hive-style layout
``<table>/<col>=<val>/part-....parquet`` with the Hadoop ``FileSystem`` API, their
statistics are read from the Parquet footers, and ONE Delta transaction
(deltalake) adds them.  Until that commit the table is unchanged: a killed write
leaves only unreferenced files, which readers never see and ``vacuum`` removes.

Concurrency is optimistic: appends retry against newer versions (deltalake's
conflict checker); overwrites and ``replace_where`` writes fail with
:class:`ConcurrentWriteError` when anything committed since they read the table,
and so does an append that lost against a concurrent overwrite.

A write whose rows were computed from a read of the same table (erasure,
retention, a rebuild) passes the version it read as ``expected_version``: it
commits only on top of that version, else raises :class:`StaleReadError` (a
:class:`ConcurrentWriteError`) and commits nothing.  :func:`retry_on_conflict`
reruns such a read-then-write from a fresh read, a bounded number of times.

Spark-free operations (``history``, ``version``, ``exists``, ``metadata``,
``file_uris``, ``to_arrow``, ``to_pandas``, ``count``) work with
``DeltaTableStore(None)``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from moulin import kerberos
from moulin.delta.commits import (
    WRITE_ID_KEY,
    add_actions,
    commit_actions,
    latest_version,
    put_commit,
    remove_action,
)
from moulin.delta.compaction import compact
from moulin.delta.errors import (
    ConcurrentWriteError,
    DeltaStoreError,
    NullConstraintError,
    StaleReadError,
)
from moulin.delta.hadoop_fs import HadoopFS
from moulin.delta.log import (
    OWNER_KEY,
    PERSONAL_DATA_KEY,
    STATS_COLUMNS_KEY,
    STATS_NUM_COLS_KEY,
    Snapshot,
    check_writer_features,
    normalize_uri,
    open_delta,
    personal_columns,
    raw_partition_values,
)
from moulin.delta.observers import ReadEvent, notify_read
from moulin.delta.options import AppTransaction, SchemaMode, TableProperties, WriteMode
from moulin.delta.predicates import (
    Predicate,
    normalize_filters,
    partition_value,
    to_arrow_expression,
    to_column,
    value_matches,
)
from moulin.delta.results import CompactionPolicy, TableMetadata, WriteResult
from moulin.delta.schema import reconcile, spark_to_delta
from moulin.delta.snapshot_reads import arrow_dataset, read_files
from moulin.delta.stats import stats_json
from moulin.delta.write_protocol import STAGING_DIR, FaultHook, StagedWrite, WriteProtocol
from moulin.phases import phase

MAX_COMMIT_ATTEMPTS = 20  # versions an append moves past when concurrent appends win
READ_WRITE_ATTEMPTS = 5  # fresh reads a read-then-write makes before it gives up (retry_on_conflict)
T = TypeVar("T")


@dataclass(frozen=True)
class CommitRequest:
    """What one commit of staged files needs, as :meth:`DeltaTableStore.write` decided it.

    ``snap`` is the snapshot the write read (None: the table does not exist yet);
    ``preds`` the replaceWhere predicates; ``info`` the commitInfo entries; ``pinned``
    commits only as the version after ``snap`` (no retry past concurrent commits,
    appends included; see ``expected_version``); ``schema_overwrite`` replaces the
    schema (CREATE OR REPLACE).
    """

    uri: str
    snap: Snapshot | None
    staged: StagedWrite
    mode: WriteMode
    target: Any  # pyspark.sql.types.StructType (pyspark is imported lazily)
    partition_by: list[str]
    preds: list[Predicate]
    transaction: AppTransaction | None
    description: str | None
    info: dict[str, str]
    schema_overwrite: bool = False
    pinned: bool = False


log = logging.getLogger(__name__)


def _commit_failed(exc: BaseException) -> bool:
    """Whether deltalake refused a commit because another transaction committed first."""
    from deltalake.exceptions import CommitFailedError

    return isinstance(exc, CommitFailedError)


def retry_on_conflict(
    table_uri: str,
    what: str,
    attempt: Callable[[int], T],
    attempts: int = READ_WRITE_ATTEMPTS,
) -> T:
    """Run ``attempt(n)`` (a read of the table and a write pinned to the version it
    read, ``expected_version``) until it commits without a concurrent commit in
    between; each rerun reads afresh.  After ``attempts`` conflicts it raises a
    :class:`ConcurrentWriteError` naming the table and ``what`` was being done."""
    last: ConcurrentWriteError | None = None
    for n in range(attempts):
        try:
            return attempt(n)
        except ConcurrentWriteError as exc:
            last = exc
            log.warning(
                "%s of %s: a concurrent commit landed between its read and its write (attempt %d of %d); "
                "reading the table again",
                what,
                table_uri,
                n + 1,
                attempts,
            )
            time.sleep(min(0.2 * 2**n, 2.0))
    raise ConcurrentWriteError(
        f"{what} of table {table_uri} gave up after {attempts} attempts: each time another commit landed "
        f"between its read and its write ({' '.join(str(last).split())[:300]}); nothing of the last attempt "
        "was committed: rerun it when the table's other writers have finished"
    )


class DeltaTableStore:
    """Read and write Delta tables with Spark (and deltalake for the log)."""

    def __init__(self, spark=None, compaction: CompactionPolicy | None = CompactionPolicy()) -> None:
        """``compaction``: when writes compact small files (None: never; see :class:`CompactionPolicy`)."""
        self.spark = spark
        self.compaction = compaction
        self._fs: dict[str, HadoopFS] = {}
        # Fault-injection points for tests and benchmarks: before_commit_hook(table_uri,
        # mode) runs just before the Delta commit of a write; fault_hook(step, table_uri)
        # at each named step of a write, merge or compaction (see WriteStep).
        self.before_commit_hook: Callable[[str, str], None] | None = None
        self.fault_hook: FaultHook | None = None

    # ------------------------------------------------------------------ helpers
    def _need_spark(self, what: str):
        if self.spark is None:
            raise DeltaStoreError(
                f"{what} needs a Spark session: build the store with DeltaTableStore(spark)"
            )
        return self.spark

    def fs_of(self, uri: str) -> HadoopFS:
        """The Hadoop file system of the table at ``uri`` (one per scheme and authority)."""
        key = uri.split("://", 1)[0] + "://" + uri.split("://", 1)[1].split("/", 1)[0]
        if key not in self._fs:
            self._fs[key] = HadoopFS(self._need_spark("file access"), uri)
        return self._fs[key]

    def snapshot(self, uri: str, version: int | None = None, timestamp=None) -> Snapshot:
        """The table's snapshot at ``version`` or ``timestamp`` (default: the latest)."""
        return Snapshot(uri, open_delta(uri, version, timestamp))

    def _existing(self, uri: str, fs: HadoopFS) -> Snapshot | None:
        """The latest snapshot, None for a new table; refuses non-Delta folders with files."""
        log_files = [f for f in fs.list_dir(f"{uri}/_delta_log") if not f.is_dir]
        if any(f.relative.endswith((".json", ".checkpoint.parquet")) for f in log_files):
            return self.snapshot(uri)
        others = [f.relative for f in fs.list_dir(uri) if f.relative not in (STAGING_DIR, "_delta_log")]
        if others:
            raise DeltaStoreError(
                f"{uri} exists and holds {', '.join(sorted(others)[:5])} but is not a Delta table "
                "(no commits in _delta_log): write to another path, or remove these files first"
            )
        return None

    # ------------------------------------------------------------------ write
    def write(
        self,
        df,
        table_uri: str,
        mode: WriteMode = "append",
        partition_by: list[str] | None = None,
        replace_where: str | dict | list | None = None,
        *,
        transaction: AppTransaction | None = None,
        schema_mode: SchemaMode | None = None,
        properties: TableProperties | None = None,
        commit_info: dict | None = None,
        expected_version: int | None = None,
    ) -> WriteResult:
        """Write ``df`` to the Delta table at ``table_uri`` in ONE commit.

        * ``mode="append"`` adds rows; ``mode="overwrite"`` replaces the table, or
          only the partitions matching ``replace_where`` (a dict ``{col: value}``,
          a list of ``(col, op, value)`` or a string ``"month = 1 AND year = 2013"``
          on partition columns; every written row must match it);
        * ``partition_by`` is fixed when the table is created;
        * the DataFrame's columns must match the table's (name and type) unless
          ``schema_mode="merge"`` (adds new nullable columns) or
          ``schema_mode="overwrite"`` with ``mode="overwrite"``; a mismatch raises
          :class:`SchemaMismatchError` before any data is written;
        * ``transaction`` (:class:`AppTransaction`) makes the write idempotent: if the
          table already holds a transaction of its ``app_id`` at its ``version`` or
          later, nothing is written and the result says ``committed=False``;
        * ``properties`` (:class:`TableProperties`: description, owner, personal-data
          columns) are stored in the table's Delta metadata (when they differ from
          the stored ones, in one extra metadata commit after the data commit);
        * ``commit_info`` is added to the commit's ``commitInfo``;
        * ``expected_version``: the version of this table that ``df`` was computed
          from (-1: the table did not exist).  The write commits only as the next
          version after it: if any other commit landed since, it raises
          :class:`StaleReadError` and commits nothing, appends included (read
          again and rerun, e.g. with :func:`retry_on_conflict`).
        """
        self._need_spark("write")
        uri = normalize_uri(table_uri)
        if mode not in ("append", "overwrite"):
            raise DeltaStoreError(f"write mode {mode!r} for table {uri}: use 'append' or 'overwrite'")
        if replace_where is not None and mode != "overwrite":
            raise DeltaStoreError(f"replace_where needs mode='overwrite' (table {uri})")
        props = properties or TableProperties()
        description, owner = props.description, props.owner
        personal_data = list(props.personal_data) if props.personal_data is not None else None
        if expected_version is not None and (not isinstance(expected_version, int) or expected_version < -1):
            raise DeltaStoreError(
                f"expected_version {expected_version!r} for table {uri} must be a version the write read "
                "(an int >= 0), or -1 for a table that did not exist"
            )
        fs = self.fs_of(uri)
        snap = self._existing(uri, fs)

        if snap is not None and _already_done(snap, transaction):
            self._apply_metadata(uri, description, owner, personal_data, snap.schema)
            return WriteResult(uri, self.snapshot(uri).version, False, 0, 0)
        if expected_version is not None:
            found = snap.version if snap is not None else -1
            if found != expected_version:
                raise StaleReadError(uri, expected_version, found)

        if snap is not None:
            if partition_by is not None and list(partition_by) != snap.partition_by:
                raise DeltaStoreError(
                    f"table {uri} is partitioned by {snap.partition_by or 'nothing'}, not by {list(partition_by)}: "
                    "drop partition_by or write to a new table"
                )
            partition_by = snap.partition_by
        partition_by = list(partition_by or [])
        target = reconcile(uri, snap.schema if snap else None, df.schema, partition_by, schema_mode, mode)
        if snap is not None and schema_mode != "overwrite":
            from moulin.delta.schema import check_partition_columns

            check_partition_columns(uri, target, partition_by)
        types = {f.name: f.dataType.typeName() for f in target.fields}
        preds: list[Predicate] = []
        if replace_where is not None:
            preds = normalize_filters(uri, replace_where, types)
            outside = [c for c, _, _ in preds if c not in partition_by]
            if outside:
                raise DeltaStoreError(
                    f"replace_where on table {uri} may only use partition columns ({partition_by or 'none'}), "
                    f"not {', '.join(outside)}"
                )
        self._check_personal_data(uri, personal_data, target)
        if snap is not None and schema_mode == "overwrite":
            # CREATE OR REPLACE drops the table's properties: carry them over.
            old = self._metadata_of(snap)
            owner = owner if owner is not None else old.owner
            if personal_data is None:
                personal_data = [c for c in old.personal_data if c in set(target.fieldNames())]

        present = set(df.columns)
        out_df = df.select(*[f"`{f.name}`" for f in target.fields if f.name in present])
        if snap is not None:
            check_writer_features(uri, snap.table, mode)
        private = set(personal_data or []) | set(personal_columns(snap) if snap is not None else [])
        protocol = WriteProtocol(fs, uri, self.fault_hook)
        with phase("write"):  # Spark computes the frame and writes its Parquet files
            staged = protocol.stage(out_df, partition_by, types, private)
        since = snap.version if snap is not None else -1

        def move_and_commit() -> bool | None:
            protocol.fault("staged")
            if preds:
                self._check_replace_where(staged, preds, partition_by, types, replace_where)
            self._check_not_null(uri, out_df, target, staged, partition_by)
            self._check_empty_partition_strings(uri, out_df, target, staged, partition_by)
            protocol.move(staged)
            info = {**(commit_info or {}), WRITE_ID_KEY: protocol.write_id}
            if preds:
                info["moulin.replaceWhere"] = json.dumps([[c, o, str(v)] for c, o, v in preds])
            if self.before_commit_hook is not None:
                self.before_commit_hook(uri, mode)
            protocol.fault("before_commit")
            return self._commit(
                CommitRequest(
                    uri=uri,
                    snap=snap,
                    staged=staged,
                    mode=mode,
                    target=target,
                    partition_by=list(partition_by),
                    preds=list(preds),
                    transaction=transaction,
                    description=description,
                    info=info,
                    schema_overwrite=schema_mode == "overwrite",
                    pinned=expected_version is not None,
                )
            )

        with phase("commit"):
            version = protocol.run(since, move_and_commit)
            if version is None:
                return WriteResult(uri, self.snapshot(uri).version, False, 0, 0)
            protocol.fault("before_metadata")
            version = self._apply_metadata(uri, description, owner, personal_data, target) or version
            version = self._auto_compact(uri, partition_by, staged.partition_values) or version
            return WriteResult(uri, version, True, len(staged.moved), staged.num_rows)

    def _auto_compact(self, uri: str, partition_by: list[str], written: list[dict]) -> int | None:
        """Compact the written partitions that hold too many small files; the new version or None.

        Never fails the write, which is committed already: a compaction that loses a
        race or fails is logged and left to the next write (or ``optimize``).
        """
        policy = self.compaction
        if policy is None:
            return None
        try:
            snap = self.snapshot(uri)
            wanted = {tuple(sorted(pvs.items(), key=lambda kv: kv[0])) for pvs in written}
            counts: dict[tuple, int] = {}
            for entry in snap.files():
                if entry.size >= policy.small_file_bytes:
                    continue
                key = tuple(sorted(raw_partition_values(entry).items(), key=lambda kv: kv[0]))
                counts[key] = counts.get(key, 0) + 1
            crowded = {k for k in wanted if counts.get(k, 0) >= policy.min_small_files}
            if not crowded:
                return None
            protocol = WriteProtocol(self.fs_of(uri), uri, self.fault_hook)
            return compact(
                self._need_spark("read"),
                protocol,
                policy.target_size,
                policy.small_file_bytes,
                crowded,
                operation="auto-compact",
            )["version"]
        except Exception as exc:  # noqa: BLE001 - the write stands; compaction is an optimisation
            log.warning("auto-compaction of %s skipped: %s", uri, " ".join(str(exc).split())[:300])
            return None

    def _commit_with_new_columns(self, request: CommitRequest, snap: Snapshot) -> bool | None:
        """The data and the table's new columns in ONE commit, written by moulin, on ``snap``.

        deltalake's write transaction cannot change the schema of an append, and
        adding the columns in a commit of their own would leave the table between
        two states if the data commit then failed.  The commit file is put only
        if its version is free; appends move on past concurrent appends.
        """
        uri, staged, mode, target = request.uri, request.staged, request.mode, request.target
        partition_by, preds, transaction, info = (
            request.partition_by,
            request.preds,
            request.transaction,
            request.info,
        )
        pinned = request.pinned or mode == "overwrite"
        fs = self.fs_of(uri)
        now = int(time.time() * 1000)
        meta = snap.metadata
        metadata = {
            "metaData": {
                "id": meta.id,
                "name": meta.name,
                "description": meta.description,
                "format": {"provider": "parquet", "options": {}},
                "schemaString": json.dumps(target.jsonValue(), separators=(",", ":")),
                "partitionColumns": list(partition_by),
                "configuration": dict(snap.configuration),
                "createdTime": meta.created_time,
            }
        }
        removes = []
        if mode == "overwrite":
            entries = snap.files()
            if preds:
                entries = [
                    e
                    for e in snap.select(preds)
                    if all(value_matches(op, e.partition_values.get(c), v) for c, op, v in preds)
                ]
            removes = [
                remove_action(e.path, e.size, raw_partition_values(e), now, data_change=True) for e in entries
            ]
        adds = add_actions(staged, data_change=True)
        head = {
            "commitInfo": {
                "timestamp": now,
                "operation": "WRITE",
                "operationParameters": {
                    "mode": "Overwrite" if mode == "overwrite" else "Append",
                    "partitionBy": json.dumps(partition_by),
                },
                "engineInfo": "moulin",
                **info,
            }
        }
        txn = (
            [{"txn": {"appId": transaction.app_id, "version": transaction.version, "lastUpdated": now}}]
            if transaction is not None
            else []
        )
        version = snap.version + 1
        for _ in range(MAX_COMMIT_ATTEMPTS):
            if put_commit(fs, uri, version, [head, *txn, metadata, *removes, *adds]):
                return True
            other = list(commit_actions(fs, uri, version))
            if transaction is not None and any(
                a.get("txn", {}).get("appId") == transaction.app_id
                and int(a["txn"].get("version", -1)) >= transaction.version
                for a in other
            ):
                return None
            if (
                mode == "overwrite"
                or pinned
                or any(
                    "metaData" in a
                    or "protocol" in a
                    or ("remove" in a and a["remove"].get("dataChange", True))
                    for a in other
                )
            ):
                raise ConcurrentWriteError(
                    f"{mode} of table {uri} with new columns conflicts with version {version}, committed "
                    f"concurrently after it read version {snap.version}; nothing was committed: rerun the write"
                )
            version += 1
        raise ConcurrentWriteError(
            f"append with new columns to table {uri} lost {MAX_COMMIT_ATTEMPTS} races to concurrent "
            "commits; nothing was committed: rerun the write"
        )

    def _check_not_null(self, uri: str, df, target, staged: StagedWrite, partition_by: list[str]) -> None:
        """Refuse nulls in the table's non-nullable top-level columns (from the staged files' stats)."""
        required = [f.name for f in target.fields if not f.nullable]
        if not required:
            return
        from pyspark.sql import functions as F

        bad = []
        for name in required:
            if name in partition_by:
                if any(pvs.get(name) is None for pvs in staged.partition_values):
                    bad.append(name)
                continue
            if name not in df.columns:
                bad.append(name)
                continue
            counts = [st.get("nullCount", {}).get(name) for st in staged.stats]
            if any(c is None for c in counts):
                if df.filter(F.col(f"`{name}`").isNull()).limit(1).count():
                    bad.append(name)
            elif sum(counts):
                bad.append(name)
        if bad:
            raise NullConstraintError(
                f"table {uri} declares column(s) {', '.join(bad)} NOT NULL but the DataFrame holds nulls "
                "there (or lacks the column): fill or filter those rows; nothing was committed",
                columns=bad,
            )

    def _check_empty_partition_strings(
        self, uri: str, df, target, staged: StagedWrite, partition_by: list[str]
    ) -> None:
        """Refuse '' in string partition columns: Hive and Delta store it as null."""
        names = [
            c
            for c in partition_by
            if target[c].dataType.typeName() == "string"
            and any(pvs.get(c) is None for pvs in staged.partition_values)
        ]
        if not names:
            return
        from pyspark.sql import functions as F

        empty = [c for c in names if df.filter(F.col(f"`{c}`") == "").limit(1).count()]
        if empty:
            raise DeltaStoreError(
                f"partition column(s) {', '.join(empty)} of table {uri} hold empty strings, which Delta "
                "and Hive partition folders store as null: map '' to a real value (or to null) before "
                "writing; nothing was committed"
            )

    def _check_personal_data(self, uri: str, personal_data, schema) -> None:
        if personal_data is None:
            return
        names = {f.name for f in schema.fields}
        unknown = [c for c in personal_data if c not in names]
        if unknown:
            raise DeltaStoreError(
                f"personal_data names column(s) {', '.join(unknown)} that table {uri} does not have "
                f"(columns: {', '.join(sorted(names))})"
            )

    def _check_replace_where(self, staged, preds, partition_by, types, replace_where) -> None:
        for pvs in staged.partition_values:
            for col, op, target in preds:
                value = partition_value(types[col], pvs.get(col))
                if not value_matches(op, value, target):
                    shown = ", ".join(f"{k}={v}" for k, v in pvs.items())
                    raise DeltaStoreError(
                        f"the DataFrame written to {staged.uri} holds rows of partition {shown}, outside "
                        f"replace_where {replace_where!r}: filter the DataFrame to the replaced partitions; "
                        "nothing was committed"
                    )

    def _add_actions(self, staged: StagedWrite) -> list:
        from deltalake.transaction import AddAction

        return [
            AddAction(rel, st.size, pvs, mtime, True, stats_json(stats))
            for rel, st, pvs, mtime, stats in zip(
                staged.moved, staged.files, staged.partition_values, staged.mtimes, staged.stats, strict=True
            )
        ]

    def _commit(self, request: CommitRequest) -> bool | None:
        """One Delta commit of the staged files: True, or None for an idempotent no-op.

        Errors raised here come from the commit itself; the caller reads the
        committed version back from the log (see :meth:`WriteProtocol.run`).
        """

        kerberos.refresh()  # a write may outlast the ticket it started with
        uri, snap, staged, mode = request.uri, request.snap, request.staged, request.mode
        target, partition_by, preds = request.target, request.partition_by, request.preds
        transaction, description, info = request.transaction, request.description, request.info
        schema_overwrite, pinned = request.schema_overwrite, request.pinned
        from deltalake.transaction import (
            CommitProperties,
            RemoveAction,
            Transaction,
            create_table_with_add_actions,
        )

        adds = self._add_actions(staged)
        txns = [Transaction(transaction.app_id, transaction.version)] if transaction is not None else None
        strict = mode == "overwrite" or pinned
        props = CommitProperties(
            custom_metadata=info, app_transactions=txns, max_commit_retries=0 if strict else None
        )
        schema = spark_to_delta(target)
        try:
            if snap is None:
                try:
                    create_table_with_add_actions(
                        uri,
                        schema,
                        adds,
                        mode="error",
                        partition_by=partition_by or None,
                        description=description,
                        commit_properties=props,
                    )
                    return True
                except Exception:
                    if latest_version(self.fs_of(uri), uri) < 0:
                        raise
                    # A concurrent write created the table first (deltalake says so only in words).
                    if strict:
                        raise ConcurrentWriteError(
                            f"table {uri} was created by a concurrent write while this overwrite ran; "
                            "nothing was committed: rerun the write"
                        ) from None
                    snap = self.snapshot(uri)
                    reconcile(uri, snap.schema, target, partition_by, None, mode)
                    if snap.partition_by != partition_by:
                        raise ConcurrentWriteError(
                            f"table {uri} was created concurrently with partitions {snap.partition_by}; "
                            "nothing was committed: rerun the write"
                        ) from None
            if _already_done(snap, transaction):
                return None
            if schema_overwrite:
                # CREATE OR REPLACE: new schema, every current file removed, one commit.
                if self.snapshot(uri).version != snap.version:
                    raise ConcurrentWriteError(
                        f"table {uri} changed while this schema overwrite ran (it read version "
                        f"{snap.version}); nothing was committed: rerun the write"
                    )
                create_table_with_add_actions(
                    uri,
                    schema,
                    adds,
                    mode="overwrite",
                    partition_by=partition_by or None,
                    description=description if description is not None else snap.metadata.description,
                    commit_properties=props,
                )
                return True
            new_fields = [f for f in target.fields if f.name not in set(snap.schema.fieldNames())]
            if new_fields and not _needs_protocol_upgrade(new_fields):
                return self._commit_with_new_columns(request, snap)
            if new_fields:
                # Columns whose type needs a newer protocol: deltalake upgrades it when
                # the columns are added, in a commit before the data.
                from pyspark.sql.types import StructType

                snap.table.alter.add_columns(list(spark_to_delta(StructType(new_fields)).fields))
                fresh = self.snapshot(uri)
                if strict and fresh.version != snap.version + 1:
                    raise ConcurrentWriteError(
                        f"table {uri} changed while this overwrite ran (it read version {snap.version}); "
                        "nothing was committed (new columns were added): rerun the write"
                    )
                snap = fresh
            actions: list = list(adds)
            tx_mode = "append"
            if mode == "overwrite" and not preds:
                tx_mode = "overwrite"
            elif preds:
                now = int(time.time() * 1000)
                for entry in snap.select(preds):
                    if all(value_matches(op, entry.partition_values.get(c), v) for c, op, v in preds):
                        actions.append(
                            RemoveAction(
                                path=entry.path,
                                data_change=True,
                                deletion_timestamp=now,
                                size=entry.size,
                                partition_values=raw_partition_values(entry),
                            )
                        )
            snap.table.create_write_transaction(
                actions,
                mode=tx_mode,
                schema=schema,
                partition_by=partition_by or None,
                commit_properties=props,
            )
            return True
        except ConcurrentWriteError:
            raise
        except Exception as exc:
            since = snap.version if snap is not None else -1
            if _commit_failed(exc) or latest_version(self.fs_of(uri), uri) > since:
                if _already_done(self.snapshot(uri), transaction):
                    return None
                base = snap.version if snap is not None else "none"
                raise ConcurrentWriteError(
                    f"{mode} of table {uri} conflicts with a transaction committed concurrently after it read "
                    f"version {base} ({' '.join(str(exc).split())[:300]}); nothing was committed and its files "
                    "were removed: rerun the write"
                ) from None
            raise DeltaStoreError(
                f"commit to Delta table {uri} failed: {' '.join(str(exc).split())[:500]}; nothing was committed"
            ) from exc

    def _apply_metadata(self, uri, description, owner, personal_data, schema) -> int | None:
        """Store description/owner/personal data where they differ; the new version or None."""
        if description is None and owner is None and personal_data is None:
            return None
        from deltalake.transaction import CommitProperties

        for attempt in range(5):
            table = open_delta(uri)
            meta = table.metadata()
            conf = dict(meta.configuration or {})
            props = {}
            if owner is not None and conf.get(OWNER_KEY) != owner:
                props[OWNER_KEY] = owner
            if personal_data is not None:
                wanted = json.dumps(list(personal_data))
                if conf.get(PERSONAL_DATA_KEY) != wanted:
                    props[PERSONAL_DATA_KEY] = wanted
                props.update(
                    {k: v for k, v in stats_limits(schema, personal_data).items() if conf.get(k) != v}
                )
            changed = False
            try:
                if props:
                    table.alter.set_table_properties(
                        props,
                        raise_if_not_exists=False,
                        commit_properties=CommitProperties(custom_metadata={"moulin.operation": "metadata"}),
                    )
                    changed = True
                if description is not None and meta.description != description:
                    table = open_delta(uri)
                    table.alter.set_table_description(description)
                    changed = True
            except Exception as exc:
                if _commit_failed(exc) and attempt < 4:
                    time.sleep(0.2 * (attempt + 1))
                    continue
                raise DeltaStoreError(
                    f"data of table {uri} was committed but its metadata (owner/description/personal data) "
                    f"could not be stored: {' '.join(str(exc).split())[:300]}; rerun the write or set it again"
                ) from None
            return open_delta(uri).version() if changed else None
        return None

    # ------------------------------------------------------------------ merge
    def merge(
        self,
        source_df,
        table_uri: str,
        keys: list[str],
        delete_missing: bool = False,
        *,
        transaction: AppTransaction | None = None,
        delete_flag: str | None = None,
        keep_newer: str | None = None,
    ) -> WriteResult:
        """Upsert ``source_df`` into the table by ``keys`` in one commit.

        New keys are inserted, matched rows whose values changed are updated;
        ``delete_missing=True`` deletes target rows whose key is absent from the
        source (full snapshot of a dimension), and ``delete_flag`` names a boolean
        source column marking rows to delete (change data; the column is not stored).
        ``keep_newer`` names a column ordering the rows' versions (a landing date): a
        matched row whose value of it is newer than the source's is kept as it is, so
        merging an older batch again (a backfill) never replaces newer values.
        A missing table is created from the source (flagged rows excluded).

        The source is collected to the driver as Arrow and merged by deltalake
        (``DeltaTable.merge``), which rewrites the touched files: the source must
        fit in driver memory (``spark.driver.memory``; roughly the Arrow size of the
        source times 2-3).  For sources larger than a few million rows, split them
        by partition.  Source keys must be unique.
        """
        import pyarrow as pa
        import pyarrow.compute as pc
        from deltalake.transaction import CommitProperties, Transaction

        self._need_spark("merge")
        uri = normalize_uri(table_uri)
        keys = list(keys or [])
        if not keys:
            raise DeltaStoreError(f"merge into {uri} needs at least one key column")
        cols = [c for c in source_df.columns if c != delete_flag]
        missing_keys = [k for k in keys if k not in cols]
        if missing_keys:
            raise DeltaStoreError(
                f"merge keys {', '.join(missing_keys)} are not columns of the source for {uri}"
            )
        if delete_flag is not None and delete_flag not in source_df.columns:
            raise DeltaStoreError(f"delete_flag column {delete_flag!r} is not in the source for {uri}")
        fs = self.fs_of(uri)
        snap = self._existing(uri, fs)
        if snap is None:
            from pyspark.sql import functions as F

            data = source_df
            if delete_flag is not None:
                data = data.filter(~F.coalesce(F.col(f"`{delete_flag}`"), F.lit(False))).drop(delete_flag)
            return self.write(data, uri, mode="append", transaction=transaction)
        check_writer_features(uri, snap.table, "append")
        if _already_done(snap, transaction):
            return WriteResult(uri, snap.version, False, 0, 0)
        personal = personal_columns(snap)
        if personal and any(
            snap.configuration.get(k) != v for k, v in stats_limits(snap.schema, personal).items()
        ):
            # deltalake writes min/max of every column unless told: never of personal data
            self._apply_metadata(uri, None, None, personal, snap.schema)
            snap = self.snapshot(uri)
        data_schema = source_df.select(*[f"`{c}`" for c in cols]).schema
        reconcile(uri, snap.schema, data_schema, snap.partition_by, None, "append")
        arrow = source_df.toArrow()
        target_arrow = snap.table.schema().to_arrow()
        target_arrow = pa.schema(target_arrow) if not isinstance(target_arrow, pa.Schema) else target_arrow
        fields = [target_arrow.field(c) for c in cols]
        if delete_flag is not None:
            fields.append(pa.field(delete_flag, pa.bool_()))
        arrow = arrow.select([f.name for f in fields]).cast(pa.schema(fields))
        if arrow.num_rows:
            dups = arrow.group_by(keys).aggregate([([], "count_all")])
            dups = dups.filter(pc.greater(dups["count_all"], 1))
            if dups.num_rows:
                sample = dups.slice(0, 3).drop(["count_all"]).to_pylist()
                raise DeltaStoreError(
                    f"merge source for {uri} repeats keys {keys}: e.g. {sample}; deduplicate the source first"
                )

        def ident(c: str) -> str:  # deltalake SQL: double-quoted identifiers (backticks are not)
            return '"' + c.replace('"', '""') + '"'

        def q(alias: str, c: str) -> str:
            return f"{alias}.{ident(c)}"

        predicate = " AND ".join(f"{q('t', k)} = {q('s', k)}" for k in keys)
        protocol = WriteProtocol(fs, uri, self.fault_hook)
        props = CommitProperties(
            custom_metadata={
                "moulin.operation": "merge",
                "moulin.keys": json.dumps(keys),
                WRITE_ID_KEY: protocol.write_id,
            },
            app_transactions=[Transaction(transaction.app_id, transaction.version)] if transaction else None,
        )
        values = [c for c in cols if c not in keys]
        metrics: dict = {}

        def merge_and_commit() -> bool:
            merger = snap.table.merge(
                arrow, predicate, source_alias="s", target_alias="t", commit_properties=props
            )
            flag = f"{q('s', delete_flag)} = true" if delete_flag is not None else None
            if flag:
                merger = merger.when_matched_delete(predicate=flag)
            if values:
                changed = " OR ".join(f"({q('t', c)} IS DISTINCT FROM {q('s', c)})" for c in values)
                if keep_newer is not None:
                    newer = f"{q('t', keep_newer)} > {q('s', keep_newer)}"
                    changed = f"({changed}) AND NOT ({newer} AND {q('t', keep_newer)} IS NOT NULL)"
                merger = merger.when_matched_update(
                    updates={ident(c): q("s", c) for c in values}, predicate=changed
                )
            merger = merger.when_not_matched_insert(
                updates={ident(c): q("s", c) for c in cols},
                predicate=f"{q('s', delete_flag)} IS NOT TRUE" if delete_flag else None,
            )
            if delete_missing:
                merger = merger.when_not_matched_by_source_delete()
            protocol.fault("before_commit")
            try:
                metrics.update(merger.execute())
            except Exception as exc:
                if _commit_failed(exc):
                    raise ConcurrentWriteError(
                        f"merge into {uri} conflicts with a concurrent transaction "
                        f"({' '.join(str(exc).split())[:300]}); nothing was committed: rerun the merge"
                    ) from None
                raise DeltaStoreError(f"merge into {uri} failed: {' '.join(str(exc).split())[:500]}") from exc
            # deltalake makes no commit when the merge changes nothing
            return (
                bool(metrics.get("num_target_files_added") or metrics.get("num_target_files_removed")) or None
            )

        version = protocol.run(snap.version, merge_and_commit)
        if version is None:  # the table already held the source's rows: nothing to commit
            version = open_delta(uri).version()
        return WriteResult(
            uri,
            version,
            True,
            int(metrics.get("num_target_files_added", 0)),
            arrow.num_rows,
            metrics=dict(metrics),
        )

    # ------------------------------------------------------------------ read
    def read(self, table_uri: str, version: int | None = None, timestamp=None, filters=None):
        """The table (latest, a version or a timestamp) as a Spark DataFrame.

        ``filters`` (``[("month", "=", 1), ("dep_delay", ">", 30)]``, a dict or a
        string) prune partitions and skip files by their statistics, then filter
        rows.
        """
        spark = self._need_spark("read")
        uri = normalize_uri(table_uri)
        snap = self.snapshot(uri, version, timestamp)
        _announce_read(snap)
        preds = normalize_filters(uri, filters, snap.type_names)
        df = read_files(spark, snap, snap.select(preds))
        types = snap.type_names
        for pred in preds:
            df = df.filter(to_column(pred, types[pred[0]]))
        return df

    def count(
        self, table_uri: str, version: int | None = None, partition: dict[str, Any] | None = None
    ) -> int:
        """Rows of the table (of one ``partition``, e.g. ``{"ds": "2024-01-01"}``), from the
        log's statistics when every file has them; else by reading the files."""
        uri = normalize_uri(table_uri)
        snap = self.snapshot(uri, version)
        files = snap.files()
        if partition:
            files = [f for f in files if all(f.partition_values.get(k) == v for k, v in partition.items())]
        if all(f.num_records is not None for f in files):
            return sum(int(f.num_records) for f in files)
        return self.to_arrow(uri, version=version, columns=[], filters=partition).num_rows

    def to_arrow(
        self, table_uri: str, version: int | None = None, columns: list[str] | None = None, filters=None
    ):
        """The table as a ``pyarrow.Table`` (small reads: all in memory), read by deltalake."""
        uri = normalize_uri(table_uri)
        snap = self.snapshot(uri, version)
        _announce_read(snap, columns)
        preds = normalize_filters(uri, filters, snap.type_names)
        if columns is not None:
            unknown = [c for c in columns if c not in snap.type_names]
            if unknown:
                raise DeltaStoreError(
                    f"column(s) {', '.join(unknown)} not in table {uri} (columns: {', '.join(snap.type_names)})"
                )
        dataset = arrow_dataset(snap)  # deltalake's, or column-mapped tables read with logical names
        return dataset.to_table(columns=columns, filter=to_arrow_expression(preds))

    def to_pandas(
        self, table_uri: str, version: int | None = None, columns: list[str] | None = None, filters=None
    ):
        """The table as a pandas DataFrame (small reads)."""
        return self.to_arrow(table_uri, version=version, columns=columns, filters=filters).to_pandas()

    # ------------------------------------------------------------------ log
    def history(self, table_uri: str, limit: int | None = None) -> list[dict]:
        """Commits of the table, newest first (version, timestamp, operation, parameters...)."""
        return open_delta(normalize_uri(table_uri)).history(limit=limit)

    def version(self, table_uri: str) -> int:
        """The latest version of the table."""
        return open_delta(normalize_uri(table_uri)).version()

    def exists(self, table_uri: str) -> bool:
        """Whether a Delta table exists at ``table_uri``."""
        from deltalake import DeltaTable

        uri = normalize_uri(table_uri)
        try:
            return bool(DeltaTable.is_deltatable(uri))
        except Exception:  # noqa: BLE001 - unreachable FS: not a table we can use
            return False

    def file_uris(self, table_uri: str, version: int | None = None) -> list[str]:
        """URIs of the data files of a snapshot (e.g. for petastorm)."""
        uri = normalize_uri(table_uri)
        snap = self.snapshot(uri, version)
        return [snap.file_uri(f) for f in snap.files()]

    def metadata(self, table_uri: str) -> TableMetadata:
        """Description, owner, personal-data columns, partitioning, version, files, schema."""
        return self._metadata_of(self.snapshot(normalize_uri(table_uri)))

    def _metadata_of(self, snap: Snapshot) -> TableMetadata:
        uri = snap.uri
        conf = snap.configuration
        personal = personal_columns(snap)
        files = snap.files()
        rows = (
            sum(int(f.num_records) for f in files) if all(f.num_records is not None for f in files) else None
        )
        return TableMetadata(
            table_uri=uri,
            description=snap.metadata.description,
            owner=conf.get(OWNER_KEY),
            personal_data=list(personal),
            partition_by=snap.partition_by,
            version=snap.version,
            num_files=len(files),
            schema=snap.schema,
            num_rows=rows,
            configuration=conf,
        )

    # ------------------------------------------------------------------ maintenance
    def optimize(self, table_uri: str, target_size: int = 128 * 2**20) -> dict:
        """Compact small files toward ``target_size`` bytes in one commit (data unchanged).

        Safe under concurrent commits (see :mod:`moulin.delta.compaction`); raises
        :class:`ConcurrentWriteError` when a concurrent commit removed files it
        rewrote.  Returns ``numFilesAdded``, ``numFilesRemoved``,
        ``partitionsOptimized`` and the table ``version`` after the call.
        """
        if not isinstance(target_size, int) or target_size < 1024 * 1024:
            raise DeltaStoreError(
                f"optimize target_size {target_size!r} for {table_uri} must be an int >= 1 MiB"
            )
        spark = self._need_spark("optimize")
        uri = normalize_uri(table_uri)
        return compact(spark, WriteProtocol(self.fs_of(uri), uri, self.fault_hook), target_size)

    def vacuum(
        self, table_uri: str, retention_hours: float = 168, force: bool = False, dry_run: bool = False
    ) -> list[str]:
        """Delete files no snapshot within ``retention_hours`` needs; returns their URIs.

        Removes files dropped from the table, orphan data files of killed writes
        (never committed) and leftover ``_staging`` folders, all older than the
        retention.  A retention under 168 h is refused unless ``force=True`` (it can
        break time travel and concurrent writes still in flight).
        """
        from moulin.delta.maintenance import vacuum

        uri = normalize_uri(table_uri)
        return vacuum(uri, self.fs_of(uri), retention_hours, force, dry_run)


def _announce_read(snap: Snapshot, columns: list[str] | None = None) -> None:
    """Tell the read observers (:mod:`moulin.delta.observers`) of a read of personal-data
    columns (all of them, or those among ``columns``); an observer that raises refuses it."""
    personal = personal_columns(snap)
    read = personal if columns is None else [c for c in columns if c in personal]
    if read:
        notify_read(ReadEvent(snap.uri, snap.version, tuple(read)))


def stats_limits(schema, personal: list[str]) -> dict[str, str]:
    """Table properties that keep ``personal`` columns out of the files' statistics (min/max)
    that Delta writers (deltalake's merge, Spark) record in the log: the columns with stats
    are named (``delta.dataSkippingStatsColumns``), or none at all when every column is personal."""
    if not personal:
        return {}
    kept = [n for n in schema.fieldNames() if n not in set(personal)]
    if not kept:
        return {STATS_NUM_COLS_KEY: "0"}
    return {STATS_COLUMNS_KEY: ",".join(f"`{n}`" if not n.isidentifier() else n for n in kept)}


def _already_done(snap: Snapshot, transaction: AppTransaction | None) -> bool:
    """Whether the table holds ``transaction`` (its app id at its version or later)."""
    if transaction is None:
        return False
    done = snap.table.transaction_version(transaction.app_id)
    return done is not None and done >= transaction.version


def _needs_protocol_upgrade(fields) -> bool:
    """Whether adding these columns needs a table feature (timestamp_ntz, variant)."""
    text = json.dumps([f.jsonValue() for f in fields])
    return '"timestamp_ntz"' in text or '"variant"' in text
