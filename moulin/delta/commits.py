"""Raw reads of a table's commit files (``_delta_log/NNNNNNNNNNNNNNNNNNNN.json``).

Used to decide from the log itself whether a write committed (its write id in
``commitInfo``), whatever a call returned, and to find the versions that added
or removed files.  Works through the same Hadoop ``FileSystem`` as the data files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from moulin.delta.hadoop_fs import HadoopFS

LOG_DIR = "_delta_log"
WRITE_ID_KEY = "moulin.writeId"  # commitInfo key: the id of the moulin write that made the commit


def commit_uri(uri: str, version: int) -> str:
    """URI of the commit file of ``version``."""
    return f"{uri}/{LOG_DIR}/{version:020d}.json"


def latest_version(fs: HadoopFS, uri: str) -> int:
    """The newest version with a commit file (-1 when the table has none)."""
    newest = -1
    for st in fs.list_dir(f"{uri}/{LOG_DIR}"):
        name = st.relative
        if st.is_dir or not name.endswith(".json") or "." in name[:-5]:
            continue
        stem = name[:-5]
        if stem.isdigit():
            newest = max(newest, int(stem))
    return newest


def commit_actions(fs: HadoopFS, uri: str, version: int) -> Iterator[dict[str, Any]]:
    """The actions of one commit file, in order."""
    raw = fs.read_bytes(commit_uri(uri, version)).decode("utf-8")
    for line in raw.splitlines():
        if line.strip():
            yield json.loads(line)


def commit_info(fs: HadoopFS, uri: str, version: int) -> dict[str, Any]:
    """The ``commitInfo`` of one commit (empty when it has none)."""
    for action in commit_actions(fs, uri, version):
        if "commitInfo" in action:
            return dict(action["commitInfo"] or {})
    return {}


def commit_write_id(fs: HadoopFS, uri: str, version: int) -> str | None:
    """The moulin write id recorded in a commit's ``commitInfo`` (None if another writer made it)."""
    value = commit_info(fs, uri, version).get(WRITE_ID_KEY)
    return str(value) if value is not None else None


def encode_path(relative: str) -> str:
    """A data file's relative path as the log spells it (URL-encoded, as deltalake writes)."""
    from urllib.parse import quote

    return quote(relative, safe="/=")


def put_commit(fs: HadoopFS, uri: str, version: int, actions: list[dict[str, Any]]) -> bool:
    """Write commit ``version`` with ``actions`` unless it exists; False when another writer has it.

    The commit is written under a temporary name in ``_delta_log`` and moved to
    its version's name only if that name is free (atomic on HDFS and locally).
    """
    import uuid

    body = "\n".join(json.dumps(a, separators=(",", ":")) for a in actions) + "\n"
    tmp = f"{uri}/{LOG_DIR}/_commit_{uuid.uuid4().hex}.json.tmp"
    fs.write_bytes(tmp, body.encode("utf-8"))
    try:
        return fs.put_if_absent(tmp, commit_uri(uri, version))
    finally:
        if fs.exists(tmp):
            fs.delete(tmp)


def remove_action(path: str, size: int, partition_values: dict, now_ms: int, data_change: bool) -> dict:
    """A ``remove`` action of the data file at ``path`` (relative, as on disk)."""
    return {
        "remove": {
            "path": encode_path(path),
            "deletionTimestamp": now_ms,
            "dataChange": data_change,
            "extendedFileMetadata": True,
            "partitionValues": partition_values,
            "size": size,
        }
    }


def add_actions(staged, data_change: bool) -> list[dict]:
    """``add`` actions of the files a staged write moved into the table."""
    from moulin.delta.stats import stats_json

    return [
        {
            "add": {
                "path": encode_path(rel),
                "partitionValues": pvs,
                "size": st.size,
                "modificationTime": mtime,
                "dataChange": data_change,
                "stats": stats_json(stats),
            }
        }
        for rel, st, pvs, mtime, stats in zip(
            staged.moved, staged.files, staged.partition_values, staged.mtimes, staged.stats, strict=True
        )
    ]
