"""Extracting tables from a SQL source database into raw CSV landings.

Full extraction re-reads the whole table; incremental extraction reads only the
rows whose incremental column (a monotonic id such as ``plane_id``; not the
nullable, unordered ``year``) is above the watermark kept in
``raw/<source>/_state.json``.  A logical date already landed is a no-op and
queries nothing.

Concurrency and crashes: an incremental :func:`extract_table` holds the lock of
``_state.json`` (``_state.json.lock``, see :meth:`moulin.storage.WarehouseFS.lock`)
from its read of the watermark through the query and the landing to the write
of the new watermark, so concurrent runs of one source (e.g. two logical dates)
run one after the other and the later one starts from the earlier one's
watermark: no row is extracted twice and the watermark never goes back.  Runs
should still go in logical-date order, since each takes the rows added since
the previous run, whatever its date.  The state file is written atomically; if
a run stops between its landing and its watermark write, the next run of that
date repairs the watermark from the manifest.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from moulin.errors import DataError
from moulin.identifiers import check_identifier, check_path_part, quote_identifier
from moulin.ingest.landing import Landing, land_file, landing_dir, read_manifest
from moulin.settings import Settings
from moulin.storage import WarehouseFS

STATE = "_state.json"
#: How a SQL NULL is written in an extracted CSV file.
NULL_MARKER = "NA"


def state_uri(settings: Settings, source: str) -> str:
    """URI of the watermark state file of ``source``."""
    return settings.table_uri("raw", source, STATE)


def read_watermark(settings: Settings, source: str, fs: WarehouseFS | None = None) -> int | None:
    """The last extracted value of the incremental column (None before the first run)."""
    fs = fs or WarehouseFS(settings)
    uri = state_uri(settings, source)
    if not fs.exists(uri):
        return None
    return json.loads(fs.read_bytes(uri)).get("watermark")


def write_watermark(
    settings: Settings, source: str, column: str, value: int | None, ds: str, fs: WarehouseFS
) -> None:
    state = {"source": source, "column": column, "watermark": value, "ds": ds}
    fs.write_bytes(state_uri(settings, source), json.dumps(state, indent=2, sort_keys=True).encode() + b"\n")


def landed_already(
    settings: Settings, source: str, ds: str, watermark_column: str | None, fs: WarehouseFS
) -> Landing | None:
    """The landing of ``ds`` if there is one (then the watermark is repaired from its
    manifest when a run stopped between its landing and its watermark write)."""
    manifest = read_manifest(settings, source, ds, fs)
    if manifest is None:
        return None
    after = manifest.get("watermark_after")
    if watermark_column and after is not None and (read_watermark(settings, source, fs) or -1) < after:
        write_watermark(settings, source, watermark_column, after, ds, fs)
    return Landing(source, ds, "unchanged", f"{landing_dir(settings, source, ds)}/_manifest.json", manifest)


def extract_table(
    settings: Settings,
    db_path: Path,
    source: str,
    table: str,
    columns: list[str],
    ds: str,
    staging_dir: Path,
    incremental_column: str | None = None,
    fs: WarehouseFS | None = None,
) -> Landing:
    """Extract ``columns`` of SQL ``table`` into ``<source>_<ds>.csv`` and land it for ``ds``.

    With ``incremental_column`` only rows above the stored watermark are read,
    and the watermark advances after the landing (it is repaired from the
    manifest if a run stopped in between); the whole run holds the lock of the
    source's state file.  ``table``, ``columns`` and ``incremental_column`` must be
    plain SQL identifiers (:class:`moulin.errors.UnsafeNameError` otherwise).
    """
    check_sql_names(source, table, columns, incremental_column)
    check_path_part(ds, f"SQL source {source!r}: logical date")
    fs = fs or WarehouseFS(settings)
    if incremental_column is None:
        return _extract(settings, db_path, source, table, columns, ds, staging_dir, None, fs)
    with fs.lock(state_uri(settings, source)):
        return _extract(settings, db_path, source, table, columns, ds, staging_dir, incremental_column, fs)


def check_sql_names(source: str, table: str, columns: list[str], incremental_column: str | None) -> None:
    """Refuse (:class:`moulin.errors.UnsafeNameError`) a source name that is not a safe
    folder name, and a table, column or incremental column that is not a plain SQL
    identifier: they are written into the query text."""
    check_path_part(source, "SQL source name")
    check_identifier(table, f"SQL source {source!r}: table", qualified=True)
    if not columns:
        raise DataError(f"SQL source {source!r}: no columns to extract")
    for column in columns:
        check_identifier(column, f"SQL source {source!r}: column")
    if incremental_column is not None:
        check_identifier(incremental_column, f"SQL source {source!r}: incremental column")


def _sqlite_preparer():
    from sqlalchemy.dialects import sqlite

    return sqlite.dialect().identifier_preparer


def _extract(
    settings: Settings,
    db_path: Path,
    source: str,
    table: str,
    columns: list[str],
    ds: str,
    staging_dir: Path,
    incremental_column: str | None,
    fs: WarehouseFS,
) -> Landing:
    """The body of :func:`extract_table` (under the state lock when incremental)."""
    done = landed_already(settings, source, ds, incremental_column, fs)
    if done is not None:
        return done
    preparer = _sqlite_preparer()
    quoted = [quote_identifier(c, preparer, f"SQL source {source!r}: column") for c in columns]
    cols = ", ".join(quoted)
    from_table = quote_identifier(table, preparer, f"SQL source {source!r}: table", qualified=True)
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        if incremental_column:
            inc = quote_identifier(incremental_column, preparer, f"SQL source {source!r}: incremental column")
            before = read_watermark(settings, source, fs)
            query = f"SELECT {cols}, {inc} FROM {from_table} WHERE {inc} > ? ORDER BY {inc}"
            rows = conn.execute(query, (before if before is not None else -1,)).fetchall()
            after = max((r[-1] for r in rows), default=before)
            rows = [r[:-1] for r in rows]
        else:
            before = after = None
            query = f"SELECT {cols} FROM {from_table} ORDER BY {quoted[0]}"
            rows = conn.execute(query).fetchall()
    staging_dir.mkdir(parents=True, exist_ok=True)
    local = staging_dir / f"{source}_{ds}.csv"
    local.write_bytes(rows_to_csv(columns, rows))
    extra = {"query": query, "database": str(db_path), "table": table}
    if incremental_column:
        extra.update(
            {"incremental_column": incremental_column, "watermark_before": before, "watermark_after": after}
        )
    landing = land_file(settings, source, ds, local, extra=extra, fs=fs)
    if incremental_column:
        write_watermark(settings, source, incremental_column, after, ds, fs)
    return landing


def format_value(value: object) -> str:
    """A SQL value as CSV text: NULL -> ``NA``, floats in shortest round-trip form."""
    if value is None:
        return NULL_MARKER
    if isinstance(value, float):
        return repr(value)
    return str(value)


def rows_to_csv(header: list[str], rows: Iterable[tuple]) -> bytes:
    """CSV bytes (``\\n`` line ends, minimal quoting) of ``rows``: byte-stable for equal input."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([format_value(v) for v in row])
    return buffer.getvalue().encode("utf-8")
