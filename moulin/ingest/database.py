"""Extracting a table or a query of any SQL database (SQLAlchemy URL) into a JSON-lines landing.

A full extraction reads everything; with a watermark column (a monotonic id
such as ``plane_id``) only the rows above the stored watermark
(``raw/<source>/_state.json``) are read, and the watermark advances after the
landing.  A logical date already landed is a no-op that queries nothing.

Concurrency and crashes: an incremental extraction holds the lock of
``_state.json`` (``_state.json.lock``, see :meth:`moulin.storage.WarehouseFS.lock`)
from its read of the watermark through the query and the landing to the write
of the new watermark, so concurrent runs of one source run one after the other
and the later one starts from the earlier one's watermark: no row is extracted
twice and the watermark never goes back.  The state file is written
atomically; if a run stops between its landing and its watermark write, the
next run of that date repairs the watermark from the manifest.  Table, column and watermark names must be plain
SQL identifiers (:func:`moulin.identifiers.check_identifier`; ``schema.table``
for a table in another schema), checked before anything connects, and are then
quoted by SQLAlchemy (the dialect's identifier preparer), never pasted into the
query text.  A spec's ``sql.query`` is SQL written by the spec's author and runs
as written.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import re
from pathlib import Path
from typing import Any

from moulin.errors import DataError
from moulin.identifiers import check_identifier, check_path_part
from moulin.ingest.counting import count_jsonl_rows
from moulin.ingest.landing import Landing, land_file, landing_dir, read_manifest
from moulin.settings import Settings
from moulin.storage import WarehouseFS

STATE = "_state.json"


class ExtractionError(DataError):
    """The source table, column or query does not exist or does not run."""


def state_uri(settings: Settings, source: str) -> str:
    """URI of the watermark state file of ``source``."""
    return settings.table_uri("raw", source, STATE)


def read_watermark(settings: Settings, source: str, fs: WarehouseFS | None = None) -> Any:
    """The last extracted value of the watermark column (None before the first run)."""
    fs = fs or WarehouseFS(settings)
    uri = state_uri(settings, source)
    if not fs.exists(uri):
        return None
    return json.loads(fs.read_bytes(uri)).get("watermark")


def write_watermark(
    settings: Settings, source: str, column: str, value: Any, ds: str, fs: WarehouseFS
) -> None:
    """Record ``value`` of ``column`` as the watermark of ``source`` (written atomically)."""
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
    if watermark_column and after is not None:
        stored = read_watermark(settings, source, fs)
        if stored is None or stored < after:
            write_watermark(settings, source, watermark_column, after, ds, fs)
    return Landing(source, ds, "unchanged", f"{landing_dir(settings, source, ds)}/_manifest.json", manifest)


def json_value(value: Any) -> Any:
    """A database value as JSON: dates and times in ISO 8601, decimals as text, bytes in base64."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return value


def records_to_jsonl(records: list[dict[str, Any]]) -> bytes:
    """JSON lines (one object per record, ``\\n`` after each) of ``records``."""
    return b"".join(
        json.dumps({k: json_value(v) for k, v in r.items()}, ensure_ascii=False).encode() + b"\n"
        for r in records
    )


def _select(engine, table: str | None, query: str | None, columns: list[str], watermark: str | None, after):
    import sqlalchemy as sa

    if query is not None:
        return sa.text(query), {}
    schema, _, name = table.rpartition(".")
    meta = sa.MetaData()
    try:
        tbl = sa.Table(name, meta, schema=schema or None, autoload_with=engine)
    except sa.exc.NoSuchTableError:
        raise ExtractionError(
            f"SQL table {table!r} does not exist in {engine.url!r}: check sql.table"
        ) from None
    missing = [c for c in [*columns, *([watermark] if watermark else [])] if c not in tbl.c]
    if missing:
        raise ExtractionError(
            f"SQL table {table!r} has no column(s) {missing} (it has {list(tbl.c.keys())}): "
            f"fix the contract's columns or sql.watermark"
        )
    stmt = sa.select(*[tbl.c[c] for c in columns])
    if watermark:
        stmt = stmt.add_columns(tbl.c[watermark].label("__watermark"))
        if after is not None:
            stmt = stmt.where(tbl.c[watermark] > after)
        stmt = stmt.order_by(tbl.c[watermark])
    return stmt, {}


def extract_to_landing(
    settings: Settings,
    source: str,
    ds: str,
    url: str,
    columns: list[str],
    staging_dir: Path,
    table: str | None = None,
    query: str | None = None,
    watermark: str | None = None,
    fs: WarehouseFS | None = None,
) -> Landing:
    """Extract ``table`` (its ``columns``) or ``query`` from the database at ``url`` and
    land it for ``ds`` as ``<source>_<ds>.jsonl``.

    ``table``, ``columns`` and ``watermark`` must be plain SQL identifiers
    (``schema.table`` allowed): :class:`moulin.errors.UnsafeNameError` names the
    source and the field otherwise.
    """
    check_source_names(source, ds, columns, table, watermark, query)
    fs = fs or WarehouseFS(settings)
    if watermark is None:
        return _extract(settings, source, ds, url, columns, staging_dir, table, query, None, fs)
    with fs.lock(state_uri(settings, source)):
        return _extract(settings, source, ds, url, columns, staging_dir, table, query, watermark, fs)


def check_source_names(
    source: str, ds: str, columns: list[str], table: str | None, watermark: str | None, query: str | None
) -> None:
    """Refuse a source name or logical date that is not a safe folder name and a table,
    column or watermark that is not a plain SQL identifier, naming the source and the field."""
    check_path_part(source, "SQL source name")
    check_path_part(ds, f"SQL source {source!r}: logical date")
    if (table is None) == (query is None):
        raise ExtractionError(f"source {source}: give either sql.table or sql.query")
    if table is not None:
        check_identifier(table, f"source {source}: field sql.table", qualified=True)
        for column in columns:
            check_identifier(column, f"source {source}: column (of its bronze contract)")
    if watermark is not None:
        check_identifier(watermark, f"source {source}: field sql.watermark")


def redact_url(url: str) -> str:
    """``url`` with its password (``scheme://user:password@host``) replaced by ``***``,
    whether or not SQLAlchemy can parse it: fit for error messages and logs."""
    import sqlalchemy as sa

    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        return re.sub(r"([^\s/@:]+:)[^\s/@]+@", r"\1***@", url)  # user:password@


def _extract(settings, source, ds, url, columns, staging_dir, table, query, watermark, fs) -> Landing:
    import sqlalchemy as sa

    done = landed_already(settings, source, ds, watermark, fs)
    if done is not None:
        return done
    before = read_watermark(settings, source, fs) if watermark else None
    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, ImportError) as exc:
        shown = redact_url(url)
        raise ExtractionError(
            f"source {source}: cannot use database URL {shown!r} ({type(exc).__name__}: "
            f"{str(exc).replace(url, shown)}): check sql.url or its Connection"
        ) from None
    try:
        with engine.connect() as conn:
            stmt, params = _select(engine, table, query, columns, watermark, before)
            result = conn.execute(stmt, params)
            rows = [dict(r._mapping) for r in result]
    except sa.exc.ProgrammingError as exc:  # wrong SQL or objects; OperationalError (connection) retries
        raise ExtractionError(f"source {source}: the query failed: {exc.orig}") from None
    finally:
        engine.dispose()
    after = before
    if watermark:
        after = max((r["__watermark"] for r in rows), default=before)
        rows = [{k: v for k, v in r.items() if k != "__watermark"} for r in rows]
    staging_dir.mkdir(parents=True, exist_ok=True)
    local = staging_dir / f"{source}_{ds}.jsonl"
    local.write_bytes(records_to_jsonl(rows))
    extra: dict[str, Any] = {"database": sa.make_url(url).render_as_string(hide_password=True)}
    extra["table" if table else "query"] = table or query
    if watermark:
        extra.update({"watermark_column": watermark, "watermark_before": before, "watermark_after": after})
    landing = land_file(settings, source, ds, local, extra=extra, fs=fs, count_rows=count_jsonl_rows)
    if watermark:
        write_watermark(settings, source, watermark, after, ds, fs)
    return landing
