"""Extracting a table or a query of any SQL database (SQLAlchemy URL) into a JSON-lines landing.

A full extraction reads everything; with a watermark column only the rows
above the stored watermark (``raw/<source>/_state.json``, shared with
:mod:`moulin.ingest.sql`) are read, under the state file's lock, and the
watermark advances after the landing.  A logical date already landed is a
no-op that queries nothing.  Table, column and watermark names must be plain
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
from moulin.ingest.landing import Landing, land_file
from moulin.ingest.sql import landed_already, read_watermark, state_uri, write_watermark
from moulin.settings import Settings
from moulin.storage import WarehouseFS


class ExtractionError(DataError):
    """The source table, column or query does not exist or does not run."""


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
