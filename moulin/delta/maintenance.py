"""Table maintenance: VACUUM (files no snapshot needs); compaction lives in ``compaction``."""

from __future__ import annotations

import math
import time
from urllib.parse import unquote

from moulin.delta.commits import commit_actions, latest_version
from moulin.delta.errors import DeltaStoreError
from moulin.delta.hadoop_fs import HadoopFS
from moulin.delta.log import VACUUMED_THROUGH_KEY, open_delta

MIN_RETENTION_HOURS = 168.0
STAGING_DIR = "_staging"


def vacuum(uri: str, fs: HadoopFS, retention_hours: float, force: bool, dry_run: bool) -> list[str]:
    """Delete unreferenced files and stale staging folders older than the retention."""
    if retention_hours is None or retention_hours < 0:
        raise DeltaStoreError(f"vacuum retention {retention_hours!r} for {uri} must be >= 0 hours")
    if retention_hours < MIN_RETENTION_HOURS and not force:
        raise DeltaStoreError(
            f"vacuum of {uri} with a retention of {retention_hours} h is refused: under "
            f"{MIN_RETENTION_HOURS:.0f} h it can delete files that time travel or running writes still "
            "need; pass force=True if you are sure"
        )
    table = open_delta(uri)
    try:
        # "full" mode also deletes files the log never referenced (orphans of killed writes).
        removed = table.vacuum(
            retention_hours=math.ceil(retention_hours),
            dry_run=dry_run,
            enforce_retention_duration=not force,
            full=True,
        )
    except Exception as exc:
        raise DeltaStoreError(f"vacuum of {uri} failed: {' '.join(str(exc).split())[:500]}") from exc
    if removed and not dry_run:
        _record_vacuumed_versions(uri, fs, [p for p in removed if "://" not in p and not p.startswith("/")])
    out = [p if "://" in p or p.startswith("/") else f"{uri}/{p}" for p in removed]
    out = [f"file://{p}" if p.startswith("/") else p for p in out]
    # Staging folders of writes that died before their commit.
    cutoff_ms = (time.time() - retention_hours * 3600) * 1000
    for folder in fs.list_dir(f"{uri}/{STAGING_DIR}"):
        newest = max([folder.modification_time] + [f.modification_time for f in fs.list_files(folder.uri)])
        if newest <= cutoff_ms:
            if not dry_run:
                fs.delete(folder.uri, True)
            out.append(folder.uri)
    if not dry_run and fs.exists(f"{uri}/{STAGING_DIR}") and not fs.list_dir(f"{uri}/{STAGING_DIR}"):
        fs.delete(f"{uri}/{STAGING_DIR}", True)
    return out


def _record_vacuumed_versions(uri: str, fs: HadoopFS, deleted: list[str]) -> None:
    """Store the newest version that needed a deleted file, so reads of it fail clearly.

    A file removed from the table at version ``r`` belongs to versions before
    ``r`` only: every version from ``r_max`` on is intact.  Versions before
    ``r_max`` are all declared vacuumed (some may be intact; none is guessed).
    """
    from deltalake.transaction import CommitProperties

    wanted = {unquote(p) for p in deleted}
    newest_removal = -1
    version = latest_version(fs, uri)
    while wanted and version >= 0:
        try:
            actions = list(commit_actions(fs, uri, version))
        except Exception:  # noqa: BLE001 - older commit files were cleaned from the log
            break
        for action in actions:
            remove = action.get("remove")
            if remove is not None and unquote(remove.get("path", "")) in wanted:
                wanted.discard(unquote(remove["path"]))
                newest_removal = max(newest_removal, version)
        version -= 1
    # Deleted files not found were never committed (orphans), or were removed in
    # commits already cleaned from the log (versions that cannot be loaded anyway).
    through = newest_removal - 1
    if through < 0:
        return
    table = open_delta(uri)
    current = int(dict(table.metadata().configuration or {}).get(VACUUMED_THROUGH_KEY, -1))
    if through > current:
        table.alter.set_table_properties(
            {VACUUMED_THROUGH_KEY: str(through)},
            raise_if_not_exists=False,
            commit_properties=CommitProperties(custom_metadata={"moulin.operation": "vacuum-mark"}),
        )
