"""Compaction (OPTIMIZE) that stays correct under concurrent commits.

Small files of a partition are read with Spark, rewritten as one file per bin
(up to ``target_size`` bytes of input), and ONE commit removes the small files
and adds the new ones (``dataChange=false``: the rows are unchanged).  The
commit file is put only if its version is free; when another commit took it,
compaction moves on past commits that only added files, and gives up
(``ConcurrentWriteError``, its new files removed) if a concurrent commit removed
any file it rewrote.  deltalake 1.6's ``optimize.compact`` lacks that check:
two concurrent compactions of the same files both commit and every row of them
is then read twice.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import unquote

from moulin.delta.commits import WRITE_ID_KEY, add_actions, commit_actions, put_commit, remove_action
from moulin.delta.errors import ConcurrentWriteError
from moulin.delta.log import (
    FileEntry,
    Snapshot,
    check_writer_features,
    open_delta,
    personal_columns,
    raw_partition_values,
)
from moulin.delta.snapshot_reads import read_files
from moulin.delta.write_protocol import WriteProtocol

MAX_COMMIT_ATTEMPTS = 20


def _key(entry: FileEntry) -> tuple:
    from moulin.delta.predicates import format_partition_value

    return tuple(sorted((k, format_partition_value(v)) for k, v in entry.partition_values.items()))


def plan_bins(
    files: list[FileEntry], target_size: int, small_file_bytes: int, partitions: set[tuple] | None
) -> list[list[FileEntry]]:
    """Groups of two or more small files of one partition, each up to ``target_size`` bytes."""
    by_partition: dict[tuple, list[FileEntry]] = {}
    for entry in files:
        if entry.size >= small_file_bytes:
            continue
        key = _key(entry)
        if partitions is not None and key not in partitions:
            continue
        by_partition.setdefault(key, []).append(entry)
    bins: list[list[FileEntry]] = []
    for entries in by_partition.values():
        current: list[FileEntry] = []
        total = 0
        for entry in sorted(entries, key=lambda e: e.path):
            if current and total + entry.size > target_size:
                bins.append(current)
                current, total = [], 0
            current.append(entry)
            total += entry.size
        bins.append(current)
    return [b for b in bins if len(b) > 1]


def compact(
    spark,
    protocol: WriteProtocol,
    target_size: int,
    small_file_bytes: int | None = None,
    partitions: set[tuple] | None = None,
    operation: str = "optimize",
) -> dict[str, Any]:
    """Compact the small files of the table ``protocol.uri`` (of the given partitions) in one
    commit (``protocol``: the write, its file system and fault hook); metrics.

    ``partitions`` are keys ``((column, raw value), ...)``; None compacts every
    partition.  Files of ``small_file_bytes`` or more (default ``target_size``)
    are left alone.
    """
    uri = protocol.uri
    snap = Snapshot(uri, open_delta(uri))
    check_writer_features(uri, snap.table, "append")
    bins = plan_bins(snap.files(), target_size, small_file_bytes or target_size, partitions)
    metrics: dict[str, Any] = {"numFilesAdded": 0, "numFilesRemoved": 0, "partitionsOptimized": 0}
    if not bins:
        return {**metrics, "version": snap.version}
    partition_by = snap.partition_by
    types = {f.name: f.dataType.typeName() for f in snap.schema.fields}
    names = [f"`{f.name}`" for f in snap.schema.fields]
    private = set(personal_columns(snap))

    def rewrite_and_commit() -> bool:
        for group in bins:
            df = read_files(spark, snap, group).select(*names).coalesce(1)
            protocol.move(protocol.stage(df, partition_by, types, private))
        protocol.fault("before_commit")
        _commit(protocol, snap, bins, operation, target_size)
        return True

    version = protocol.run(snap.version, rewrite_and_commit)
    staged = protocol.staged
    metrics.update(
        numFilesAdded=sum(len(one.moved) for one in staged),
        numFilesRemoved=sum(len(group) for group in bins),
        partitionsOptimized=len({_key(group[0]) for group in bins}),
        version=version,
    )
    return metrics


def _commit(protocol: WriteProtocol, snap: Snapshot, bins, operation: str, target_size: int) -> int:
    fs, uri = protocol.fs, protocol.uri
    now = int(time.time() * 1000)
    removed = {e.path for group in bins for e in group}
    actions: list[dict] = [
        {
            "commitInfo": {
                "timestamp": now,
                "operation": "OPTIMIZE",
                "operationParameters": {"targetSize": str(target_size)},
                "engineInfo": "moulin",
                "moulin.operation": operation,
                WRITE_ID_KEY: protocol.write_id,
            }
        }
    ]
    for group in bins:
        for e in group:
            actions.append(remove_action(e.path, e.size, raw_partition_values(e), now, data_change=False))
    for one in protocol.staged:
        actions += add_actions(one, data_change=False)
    version = snap.version + 1
    for _ in range(MAX_COMMIT_ATTEMPTS):
        if put_commit(fs, uri, version, actions):
            return version
        for action in commit_actions(fs, uri, version):
            gone = action.get("remove")
            if (
                "metaData" in action
                or "protocol" in action
                or (gone and unquote(gone.get("path", "")) in removed)
            ):
                raise ConcurrentWriteError(
                    f"compaction of table {uri} conflicts with version {version}, which changed the schema or "
                    f"removed files it rewrote ({json.dumps(sorted(removed))[:200]}); nothing was committed: "
                    "rerun it"
                )
        version += 1
    raise ConcurrentWriteError(
        f"compaction of table {uri} lost {MAX_COMMIT_ATTEMPTS} races to concurrent commits; "
        "nothing was committed: rerun it"
    )
