"""The protocol every moulin Delta write follows: stage, commit, settle.

1. **Stage**: Spark writes the data files into a folder unique to the write
   (``<table>/_staging/<write id>``) and their statistics are read from the
   Parquet footers; the files are then renamed into the table's hive-style
   layout.  Until the commit they are unreferenced: readers never see them.
2. **Commit**: one Delta commit whose ``commitInfo`` carries the write id
   (:data:`~moulin.delta.commits.WRITE_ID_KEY`).  How the commit is built is the
   caller's business (a write, a merge, a compaction).
3. **Settle**: the log, never whether a call returned, decides the outcome.  The
   committed version is read back by write id; after a failure the write's files
   are removed only when the log proves the write absent, and kept when the log
   cannot be read (VACUUM removes unreferenced files later).

:class:`DeltaTableStore` writes, merges and compactions all run through
:meth:`WriteProtocol.run`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import unquote

from moulin.delta.commits import commit_write_id, latest_version
from moulin.delta.errors import CommitOutcomeUnknownError, DeltaStoreError
from moulin.delta.hadoop_fs import FileStatus, HadoopFS
from moulin.delta.stats import file_stats, read_file_metadata

STAGING_DIR = "_staging"
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
# Named points of a write where tests and benchmarks inject faults (FaultHook):
# "committed" fires right after the commit call returned (a failure there is a
# lost reply), "read_back" before the committed version is read back,
# "log_lookup" before each lookup of the write in the log.
WriteStep = Literal[
    "staged", "moved", "before_commit", "committed", "read_back", "log_lookup", "before_metadata"
]
FaultHook = Callable[[WriteStep, str], None]
log = logging.getLogger(__name__)


class StagedWrite:
    """Data files of one write, written and moved into the table but not committed."""

    def __init__(self, uri: str, staging: str, write_id: str) -> None:
        self.uri = uri
        self.staging = staging
        self.write_id = write_id
        self.files: list[FileStatus] = []  # in staging
        self.partition_values: list[dict[str, str | None]] = []
        self.stats: list[dict[str, Any]] = []
        self.moved: list[str] = []  # relative paths now in the table folder
        self.mtimes: list[int] = []

    @property
    def num_rows(self) -> int:
        return sum(int(s.get("numRecords", 0)) for s in self.stats)


class WriteProtocol:
    """One write to the Delta table at ``uri``: its staged files and its commit's outcome.

    ``write_id`` (a fresh one by default) is what the commit must carry in its
    ``commitInfo`` for :meth:`run` to find it in the log.
    """

    def __init__(
        self, fs: HadoopFS, uri: str, fault_hook: FaultHook | None = None, write_id: str | None = None
    ) -> None:
        self.fs = fs
        self.uri = uri
        self.fault_hook = fault_hook
        self.write_id = write_id or uuid.uuid4().hex
        self.staged: list[StagedWrite] = []

    def fault(self, step: WriteStep) -> None:
        """Run the fault hook at ``step`` (tests and benchmarks inject failures there)."""
        if self.fault_hook is not None:
            self.fault_hook(step, self.uri)

    # ------------------------------------------------------------------ stage
    def stage(
        self,
        df,
        partition_by: list[str],
        types: dict[str, str],
        private: set[str] | frozenset = frozenset(),
    ) -> StagedWrite:
        """Spark writes ``df``'s data files into a fresh staging folder; read their footers.

        Columns in ``private`` (personal data) get no minimum or maximum in the Delta
        log: the log outlives deleted files (an erased value must not survive in
        an old commit's statistics); their null counts are kept."""
        staged = StagedWrite(self.uri, f"{self.uri}/{STAGING_DIR}/{uuid.uuid4().hex}", self.write_id)
        writer = df.write.mode("errorifexists")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        try:
            writer.parquet(staged.staging)
        except Exception:
            self.fs.delete(staged.staging, True)
            raise
        self.staged.append(staged)
        data_types = {k: v for k, v in types.items() if k not in partition_by}
        for st in self.fs.list_files(staged.staging):
            name = st.relative.rsplit("/", 1)[-1]
            if name.startswith(("_", ".")) or not name.endswith(".parquet"):
                continue
            pvs = {}
            for segment in st.relative.split("/")[:-1]:
                key, sep, raw = segment.partition("=")
                if not sep:
                    raise DeltaStoreError(f"unexpected folder {segment!r} in staging folder {staged.staging}")
                value = unquote(raw)
                pvs[unquote(key)] = None if value == HIVE_NULL else value
            meta = read_file_metadata(self.fs, st.uri, st.size)
            staged.files.append(st)
            staged.partition_values.append(pvs)
            stats = file_stats(meta, data_types)
            for bound in ("minValues", "maxValues"):
                for name in private:
                    stats.get(bound, {}).pop(name, None)
            staged.stats.append(stats)
        return staged

    def move(self, staged: StagedWrite) -> None:
        """Rename the staged files into the table's hive-style layout."""
        made: set[str] = set()
        for st in staged.files:
            rel = st.relative
            parent = rel.rsplit("/", 1)[0] if "/" in rel else ""
            if parent and parent not in made:
                self.fs.mkdirs(f"{staged.uri}/{parent}")
                made.add(parent)
            if not self.fs.rename(st.uri, f"{staged.uri}/{rel}"):
                raise DeltaStoreError(
                    f"could not move data file {st.uri} to {staged.uri}/{rel} (target exists or parent "
                    "missing); nothing was committed, rerun the write"
                )
            staged.moved.append(rel)
            staged.mtimes.append(st.modification_time)
        self.fault("moved")

    # ------------------------------------------------------------------ commit and settle
    def run(self, since: int, body: Callable[[], bool | None]) -> int | None:
        """Run ``body`` (what is left to stage and move, then ONE commit carrying
        :attr:`write_id`) and settle its outcome from the log; the version committed.

        ``since`` is the version the write read (-1: no table).  ``body`` returns
        None for an idempotent no-op (the transaction was committed already):
        then None is returned and the staged files go unless the log holds them.
        After any failure the log decides: a committed write stands (its version
        is returned, or an interrupt re-raised with the files kept); an absent one
        has its files removed and the failure re-raised.  Staging folders always go.
        """
        try:
            landed = body()
            self.fault("committed")
            if landed is None:  # an idempotent retry that lost a race to its twin
                self.discard_unless_committed(since)
                return None
            self.fault("read_back")
            return self.version_of(since)
        except BaseException as exc:
            return self.settle(since, exc)
        finally:
            for staged in self.staged:
                self.drop_staging(staged)

    def find(self, since: int) -> int | None:
        """The version after ``since`` whose ``commitInfo`` carries this write's id, or None.

        Reads every commit file from ``since + 1`` to the latest version, so it
        works however many commits landed concurrently.
        """
        self.fault("log_lookup")
        latest = latest_version(self.fs, self.uri)
        for version in range(latest, since, -1):
            if commit_write_id(self.fs, self.uri, version) == self.write_id:
                return version
        return None

    def version_of(self, since: int = -1) -> int:
        """The version this write committed, read from the commit files.

        Not from ``DeltaTable.history()``: under concurrent commits it numbers
        the entries from the loaded snapshot's version, which can be stale.
        """
        found = self.find(since)
        if found is None:
            raise DeltaStoreError(
                f"the commit of write {self.write_id} to table {self.uri} returned but is not in the log after "
                f"version {since}; the table may have been replaced concurrently: check its history"
            )
        return found

    def settle(self, since: int, exc: BaseException) -> int:
        """After a failed write: the committed version if the log holds the write, else re-raise."""
        attempts = 3 if isinstance(exc, Exception) else 1
        found: int | None = None
        last_error: Exception | None = None
        for attempt in range(attempts):
            try:
                found = self.find(since)
                last_error = None
                break
            except Exception as err:  # noqa: BLE001 - the FS may be briefly unavailable
                last_error = err
                if attempt < attempts - 1:
                    time.sleep(0.5 * 2**attempt)
        if last_error is not None:
            raise CommitOutcomeUnknownError(
                f"write {self.write_id} to Delta table {self.uri} failed "
                f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]}) and its commit could not be "
                f"looked up in the log ({' '.join(str(last_error).split())[:200]}); its data files were kept. "
                "Rerun the write with the same app_id/app_version (an idempotent write is not repeated); "
                "files of a write that did not commit are removed by VACUUM"
            ) from exc
        if found is None:
            self.discard()
            raise exc
        if not isinstance(exc, Exception):  # an interrupt after the commit: keep the files, stop
            raise exc
        log.warning(
            "write %s to %s raised %s after its commit landed as version %d; the write stands",
            self.write_id,
            self.uri,
            type(exc).__name__,
            found,
        )
        return found

    def discard_unless_committed(self, since: int) -> None:
        """Remove the moved files only when the log proves the write absent."""
        try:
            found = self.find(since)
        except Exception:  # noqa: BLE001 - unknown: keep the files for VACUUM
            return
        if found is None:
            self.discard()

    def discard(self) -> None:
        """Remove every file this write moved into the table (best effort)."""
        for staged in self.staged:
            for rel in staged.moved:
                try:
                    self.fs.delete(f"{staged.uri}/{rel}", False)
                except Exception:  # noqa: BLE001 - best effort; vacuum removes leftovers
                    pass

    def drop_staging(self, staged: StagedWrite) -> None:
        """Remove a staging folder, and ``_staging`` itself once empty."""
        try:
            self.fs.delete(staged.staging, True)
            root = staged.staging.rsplit("/", 1)[0]
            if not self.fs.list_dir(root):
                self.fs.delete(root, False)  # not recursive: a concurrent write's folder stays
        except Exception:  # noqa: BLE001 - cleanup only; VACUUM removes stale staging folders
            pass
