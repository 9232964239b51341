"""Keeping the endpoint's Spark catalog in step with moulin's catalog and the Delta logs.

:class:`CatalogSync` runs in the endpoint's driver.  Each :meth:`~CatalogSync.sync` (at
start, then every ``sql_endpoint.refresh_s`` seconds) reloads moulin's catalog (the
contracts) and, for each name analysts may query, asks the table's Delta log whether a
version newer than the one served exists: one ``exists`` call on the next commit file
(``_delta_log/<version + 1>.json``) per table, so an idle warehouse costs almost nothing.
A newer version is read once with moulin's Delta reader (:class:`moulin.delta.log.Snapshot`)
and served as a new snapshot table, then the name's view is replaced in one catalog
operation (:mod:`moulin.sql_endpoint.ddl`).

What a query sees: Spark resolves each view when it plans the query, and a name read
twice in one query resolves once (the analyzer's relation cache), so a query reads one
version of each table, the one served when it was planned, whatever is committed while
it runs.  Its files stay on disk while it runs: a commit only adds files and marks others
removed; only ``VACUUM`` deletes them, after its retention (7 days by default).  A
replaced snapshot table is dropped ``keep_replaced_s`` later (the plans of running
queries hold their file lists, not the table).  Across tables, a query reads each one's
latest served version, as ``moulin sql`` reads each one's latest version.

Commits are made by other processes (Airflow tasks, job servers), so the driver cannot
hear of them from the store's in-process hooks: it looks, and a commit is served within
about ``refresh_s``.  ``SHOW TBLPROPERTIES gold.x`` shows the version served
(``moulin.version``).  Reads of views listing personal-data columns (pseudonyms) that the
query guard spooled are appended to the audit trail (:mod:`moulin.privacy.audit`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from moulin.catalog import Catalog, CatalogEntry, load_catalog
from moulin.cluster.files import write_atomic
from moulin.delta.errors import DeltaStoreError
from moulin.delta.hadoop_fs import HadoopFS
from moulin.delta.log import Snapshot, open_delta, personal_columns
from moulin.settings import Settings
from moulin.sql_endpoint.ddl import (
    SNAPSHOTS_DB,
    SnapshotSqlError,
    quote,
    serve_snapshot,
    sql_string,
    stub_view,
)

log = logging.getLogger(__name__)


@dataclass
class Served:
    """What the endpoint serves under one name: a version (``state`` "table"), or a view over
    no file whose queries are refused (``state`` "refused", "unwritten" or "error")."""

    state: str
    version: int | None = None
    message: str | None = None
    tables: list[str] = field(default_factory=list)
    since: float = field(default_factory=time.time)


def state_dir(settings: Settings) -> Path:
    """``<home>/sql-endpoint``: the jar, the served-versions file, the audit spool."""
    return settings.home / "sql-endpoint"


def served_file(settings: Settings) -> Path:
    """The JSON file listing what the running endpoint serves (``moulin sql-endpoint status``)."""
    return state_dir(settings) / "served.json"


def audit_spool(settings: Settings) -> Path:
    """Where the query guard appends reads of personal-data views, drained into the audit trail."""
    return state_dir(settings) / "audit-spool.jsonl"


def read_served(settings: Settings) -> dict:
    """The served-versions file of the endpoint (empty when it never ran)."""
    try:
        return json.loads(served_file(settings).read_text())
    except (OSError, ValueError):
        return {}


class CatalogSync:
    """Serves moulin's catalog in the Spark session ``spark`` (the endpoint's driver)."""

    def __init__(self, spark, settings: Settings, say: Callable[[str], None] = log.info) -> None:
        self.spark = spark
        self.settings = settings
        self.say = say
        self.served: dict[str, Served] = {}
        self.retired: list[tuple[float, str]] = []  # (drop after, snapshot table)
        self._fs: HadoopFS | None = None
        self._databases: set[str] = set()

    # ------------------------------------------------------------------ one pass
    def sync(self) -> list[str]:
        """Bring every name in step (see the module); return a line per change."""
        catalog = load_catalog(self.settings)
        changes: list[str] = []
        self._databases_of(catalog)
        for entry in catalog.entries.values():
            line = self._sync_entry(entry)
            if line:
                changes.append(line)
        for name in sorted(set(self.served) - set(catalog.entries)):
            self._sql(f"DROP VIEW IF EXISTS {'.'.join(quote(p) for p in name.split('.'))}")
            self._retire(self.served.pop(name).tables)
            changes.append(f"{name}: no longer in the catalog, dropped")
        self._drop_retired()
        self.drain_audit()
        if changes:
            self.write_status()
        return changes

    def _databases_of(self, catalog: Catalog) -> None:
        wanted = {name.partition(".")[0] for name in catalog.entries} | {SNAPSHOTS_DB}
        for db in sorted(wanted - self._databases):
            comment = (
                "snapshot tables of moulin's SQL endpoint (query the views of the other schemas)"
                if db == SNAPSHOTS_DB
                else f"moulin's {db} tables"
            )
            self._sql(f"CREATE DATABASE IF NOT EXISTS {quote(db)} COMMENT {sql_string(comment)}")
            self._databases.add(db)

    def _sync_entry(self, entry: CatalogEntry) -> str | None:
        current = self.served.get(entry.name)
        if entry.refusal is not None:
            if current and current.state == "refused" and current.message == entry.refusal:
                return None
            self._stub(entry, Served("refused", message=entry.refusal))
            return f"{entry.name}: refused to analysts"
        if current and current.version is not None and not self._newer(entry.uri, current.version):
            return None
        if not self._exists(entry.uri):
            if current and current.state == "unwritten":
                return None
            how = (
                "`moulin privacy views` builds it" if entry.kind == "view" else "run the stage that writes it"
            )
            message = f"{entry.name} is not written yet (no Delta table at {entry.uri}): {how}"
            self._stub(entry, Served("unwritten", message=message))
            return f"{entry.name}: not written yet"
        try:
            snap = Snapshot(entry.uri, open_delta(entry.uri))
            if current and current.version == snap.version:
                return None
            served = serve_snapshot(entry, snap, personal_columns(snap))
            for statement in served.statements:
                self._sql(statement)
        except (DeltaStoreError, SnapshotSqlError, *_spark_errors()) as exc:
            message = f"{entry.name} cannot be served: {' '.join(str(exc).split())[:600]}"
            if current and current.state == "error" and current.message == message:
                return None
            self._stub(entry, Served("error", message=message))
            return message
        self.served[entry.name] = Served("table", version=snap.version, tables=list(served.snapshot_tables))
        if current:
            self._retire(current.tables)
        before = f"version {current.version} -> " if current and current.version is not None else ""
        return f"{entry.name}: serving {before}version {snap.version} ({len(snap.files())} files)"

    def _stub(self, entry: CatalogEntry, served: Served) -> None:
        self._sql(stub_view(entry, served.message))
        old = self.served.get(entry.name)
        self.served[entry.name] = served
        if old:
            self._retire(old.tables)

    # ------------------------------------------------------------------ helpers
    def _sql(self, statement: str) -> None:
        self.spark.sql(statement)

    def _hadoop(self, uri: str) -> HadoopFS:
        if self._fs is None:
            self._fs = HadoopFS(self.spark, uri)
        return self._fs

    def _exists(self, uri: str) -> bool:
        return self._hadoop(uri).exists(f"{uri}/_delta_log")

    def _newer(self, uri: str, version: int) -> bool:
        """Whether the log of ``uri`` holds a commit after ``version`` (one exists call)."""
        return self._hadoop(uri).exists(f"{uri}/_delta_log/{version + 1:020d}.json")

    def _retire(self, tables: list[str]) -> None:
        after = time.monotonic() + self.settings.sql_endpoint.keep_replaced_s
        self.retired += [(after, t) for t in tables]

    def _drop_retired(self) -> None:
        now = time.monotonic()
        due = [t for after, t in self.retired if after <= now]
        self.retired = [(after, t) for after, t in self.retired if after > now]
        for table in due:  # external tables: DROP forgets the table, never its files
            self._sql(f"DROP TABLE IF EXISTS {'.'.join(quote(p) for p in table.split('.'))}")

    def write_status(self) -> None:
        """Write what is served to :func:`served_file` (for ``moulin sql-endpoint status``)."""
        ep = self.settings.sql_endpoint
        data = {
            "pid": os.getpid(),
            "url": ep.jdbc_url,
            "at": time.time(),
            "tables": {name: asdict(s) for name, s in sorted(self.served.items())},
        }
        write_atomic(served_file(self.settings), json.dumps(data, indent=1) + "\n")

    def drain_audit(self) -> int:
        """Append the spooled reads of personal-data views to the audit trail; return how many.

        The spool is renamed first, so the guard's new lines go to a new spool; a batch that
        cannot be recorded is kept and retried at the next pass."""
        spool = audit_spool(self.settings)
        draining = spool.with_suffix(".draining")
        if not draining.exists():
            if not spool.exists():
                return 0
            os.replace(spool, draining)
        from moulin.privacy.audit import AuditError, record

        lines = [json.loads(line) for line in draining.read_text().splitlines() if line.strip()]
        try:
            for read in lines:
                version = int(read["version"]) if str(read.get("version", "")).isdigit() else None
                detail = {
                    "via": "sql endpoint",
                    "user": read["user"],
                    "table": read["table"],
                    "at": read["at"],
                }
                record("read", read["uri"], version, read["columns"].split(","), detail, self.settings)
        except (AuditError, DeltaStoreError) as exc:
            self.say(f"audit: {len(lines)} spooled read(s) not recorded yet ({exc}); retrying next pass")
            return 0
        draining.unlink()
        return len(lines)


def _spark_errors() -> tuple[type[Exception], ...]:
    """Errors of a statement run through py4j (Spark's, and the JVM's not translated)."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    return (PySparkException, Py4JJavaError)
