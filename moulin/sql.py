"""SQL over the warehouse's tables by name, run by DuckDB (``moulin sql``).

A query names tables as the catalog does (``bronze.flights``,
``gold.carrier_delay_stats``, ``views.bronze_mail``: see :mod:`moulin.catalog`).
:func:`query` finds the names with DuckDB's own parser, refuses tables analysts
may not read, pins each table's Delta version once (every reference to a table in
the query reads that one version), makes each a DuckDB view over the Arrow
dataset of that version, and runs the query.  Nothing is pushed down by moulin:
DuckDB and pyarrow prune files and rows as they would on any Arrow dataset.

``as_of`` (a version number, an ISO timestamp or a ``datetime``; naive times are
UTC) reads every table as it was then.  The connection reads no files, network,
extension or other database of its own: only the tables named.  Reading a table
whose Delta metadata lists personal-data columns (an analysts' view: pseudonyms)
appends a ``read`` row to the audit trail (:mod:`moulin.privacy.audit`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from moulin.catalog import (
    SYSTEM_SCHEMAS,
    Catalog,
    CatalogEntry,
    SqlError,
    TableNotWrittenError,
    load_catalog,
)
from moulin.settings import Settings, load_settings

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    import polars as pl
    import pyarrow as pa

    from moulin.delta.log import Snapshot

__all__ = [
    "QueryResult",
    "SqlError",
    "TableNotWrittenError",
    "UnknownColumnError",
    "VersionNotFoundError",
    "query",
    "query_pandas",
    "query_polars",
    "run_query",
]

#: What ``as_of`` accepts: a version, an ISO timestamp (or a version as text), a datetime.
AsOf = int | str | dt.datetime | None
_COLUMN_ERRORS = (
    re.compile(r'Referenced column "([^"]+)" not found'),
    re.compile(r'does not have a column named "([^"]+)"'),
    re.compile(r'Column "([^"]+)" does not exist'),
)
_MISSING_TABLE = re.compile(r"Table with name (\S+) does not exist")


class UnknownColumnError(SqlError):
    """The query names a column that none of its tables has (the message lists theirs)."""


class VersionNotFoundError(SqlError):
    """A table has no version at the ``as_of`` asked (too new, vacuumed, before the table)."""


@dataclass(frozen=True)
class TableRef:
    """A table as the query names it: ``catalog.schema.table`` parts (empty when left out)."""

    catalog: str
    schema: str
    table: str
    time_travel: bool = False

    @property
    def name(self) -> str:
        return ".".join(p for p in (self.catalog, self.schema, self.table) if p)


@dataclass
class QueryResult:
    """The rows of a query and the Delta version read of each table it named."""

    table: pa.Table
    versions: dict[str, int] = field(default_factory=dict)


def parse_as_of(value: AsOf) -> int | dt.datetime | None:
    """``as_of`` as a version (int) or an aware datetime; SqlError when it is neither."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise SqlError(f"as_of {value!r}: give a version number or an ISO timestamp")
    if isinstance(value, int):
        if value < 0:
            raise SqlError(f"as_of {value}: versions start at 0")
        return value
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        raise SqlError(
            f"as_of {text!r} is neither a version number nor an ISO timestamp "
            "(2024-03-01, 2024-03-01T12:00:00Z)"
        ) from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def _connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that reads no file, network, extension or Python variable."""
    import duckdb

    con = duckdb.connect(
        config={
            "enable_external_access": False,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        }
    )
    con.execute("SET python_enable_replacements = false")
    try:
        con.execute("SET TimeZone = 'UTC'")
    except duckdb.Error:  # a build without ICU: timestamps stay in UTC anyway
        pass
    return con


def _walk(node: Any, out: list[TableRef]) -> None:
    if isinstance(node, dict):
        if node.get("type") == "BASE_TABLE":
            out.append(
                TableRef(
                    node.get("catalog_name") or "",
                    node.get("schema_name") or "",
                    node.get("table_name") or "",
                    node.get("at_clause") is not None,
                )
            )
        for value in node.values():
            _walk(value, out)
    elif isinstance(node, list):
        for value in node:
            _walk(value, out)


def table_refs(sql: str, con: duckdb.DuckDBPyConnection | None = None) -> list[TableRef]:
    """The tables one SELECT query reads, as DuckDB's parser finds them (subqueries,
    joins and CTE bodies included; names of CTEs appear unqualified).  SqlError for
    a syntax error, several statements or a statement that is not a query."""
    con = con or _connect()
    tree = json.loads(con.execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchall()[0][0])
    if tree.get("error"):
        message = tree.get("error_message", "")
        if tree.get("error_type") == "parser":
            at = int(tree.get("position") or 0)
            raise SqlError(f"the query does not parse: {message} (character {at + 1}: {sql[at : at + 30]!r})")
        raise SqlError(
            "only one SELECT query can run here (SELECT, FROM ..., WITH ..., DESCRIBE, SUMMARIZE); "
            f"DuckDB's parser says: {message}"
        )
    statements = tree.get("statements") or []
    if len(statements) != 1:
        raise SqlError(f"give one SELECT query (found {len(statements)} statements)")
    refs: list[TableRef] = []
    _walk(statements[0], refs)
    return refs


def _resolve(catalog: Catalog, refs: list[TableRef]) -> list[CatalogEntry]:
    """The catalog entries of the schema-qualified references (each once), refusing
    what analysts may not read; unqualified names are left to DuckDB (CTEs)."""
    out: dict[str, CatalogEntry] = {}
    for ref in refs:
        if not ref.schema or ref.schema.lower() in SYSTEM_SCHEMAS:
            continue
        if ref.catalog and ref.catalog.lower() != "memory":
            raise SqlError(f"{ref.name}: name tables as <layer>.<table>, without a database")
        if ref.time_travel:
            raise SqlError(f"{ref.name}: use as_of (--as-of) to read older versions, not AT (...)")
        entry = catalog.resolve(f"{ref.schema}.{ref.table}")
        out.setdefault(entry.name, entry)
    return list(out.values())


def _commit_time(table, version: int) -> dt.datetime | None:
    for commit in table.history():
        if commit.get("version") == version and isinstance(commit.get("timestamp"), int | float):
            return dt.datetime.fromtimestamp(commit["timestamp"] / 1000, dt.UTC)
    return None


def pin(entry: CatalogEntry, as_of: int | dt.datetime | None = None) -> Snapshot:
    """The snapshot of ``entry``'s table read by a query: its latest version, or the
    one ``as_of`` names (VersionNotFoundError when it has none, TableNotWrittenError
    when the table does not exist)."""
    from moulin.delta import DeltaStoreError, DeltaTableStore
    from moulin.delta.log import Snapshot, open_delta

    uri = entry.uri
    if not DeltaTableStore(None).exists(uri):
        how = "`moulin privacy views` builds it" if entry.kind == "view" else "run the stage that writes it"
        raise TableNotWrittenError(
            f"{entry.name} is not written yet (no Delta table at {uri}; contract {entry.contract}): {how}"
        )
    latest = open_delta(uri)
    if as_of is None:
        return Snapshot(uri, latest)
    if isinstance(as_of, int) and not 0 <= as_of <= latest.version():
        raise VersionNotFoundError(
            f"{entry.name} has no version {as_of}: its versions go from 0 to {latest.version()}"
        )
    try:
        if isinstance(as_of, int):
            table = open_delta(uri, version=as_of)
        else:
            table = open_delta(uri, timestamp=as_of)
    except DeltaStoreError as exc:
        raise VersionNotFoundError(f"{entry.name}: {exc}") from None
    if isinstance(as_of, dt.datetime) and table.version() == 0:
        first = _commit_time(latest, 0)
        if first is not None and as_of < first:
            raise VersionNotFoundError(
                f"{entry.name} did not exist at {as_of.isoformat()}: "
                f"its first version was written at {first.isoformat()}"
            )
    return Snapshot(uri, table)


def _audit(snap: Snapshot, settings: Settings) -> None:
    """Record the read of a table whose Delta metadata lists personal-data columns."""
    from moulin.delta.log import personal_columns

    columns = personal_columns(snap)
    if columns:
        from moulin.privacy.audit import record

        record("read", snap.uri, snap.version, columns, detail={"via": "moulin sql"}, settings=settings)


def _register(
    con: duckdb.DuckDBPyConnection, entry: CatalogEntry, snap: Snapshot, alias: str, settings: Settings
) -> list[str]:
    """Make ``entry`` a DuckDB view ``<schema>.<table>`` over the Arrow dataset of ``snap``
    (audited when it holds personal data); returns its columns."""
    from moulin.delta.snapshot_reads import arrow_dataset

    _audit(snap, settings)
    dataset = arrow_dataset(snap)
    schema, _, table = entry.name.partition(".")
    con.register(alias, dataset)
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    con.execute(f'CREATE VIEW "{schema}"."{table}" AS SELECT * FROM "{alias}"')
    return list(dataset.schema.names)


def _one_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines()]
    kept = [line for line in lines if line and not line.startswith("LINE ") and set(line) != {"^"}]
    return " ".join(kept)


def _translate(exc: Exception, catalog: Catalog, columns: dict[str, list[str]]) -> SqlError:
    """A DuckDB error as moulin's, naming the table or column at fault."""
    text = str(exc)
    missing = _MISSING_TABLE.search(text)
    if missing:
        return catalog.unknown(missing.group(1).strip('"!'))
    for pattern in _COLUMN_ERRORS:
        found = pattern.search(text)
        if found:
            having = "; ".join(f"{name} has {', '.join(cols)}" for name, cols in columns.items())
            return UnknownColumnError(f'column "{found.group(1)}" not found: {having or _one_line(exc)}')
    if type(exc).__name__ == "PermissionException":
        return SqlError(
            "queries read the warehouse's tables by name only (no files, extensions or databases): "
            f"{_one_line(exc)}"
        )
    return SqlError(_one_line(exc))


def run_query(
    sql: str, *, as_of: AsOf = None, settings: Settings | None = None, limit: int | None = None
) -> QueryResult:
    """Run ``sql`` over the tables it names (see the module); ``limit`` keeps the first rows.

    Returns the rows and the version read of each table.  Errors are
    :class:`moulin.catalog.SqlError`s: an unknown or refused table, a missing
    column, a version that does not exist, a table not written yet, a syntax error."""
    import duckdb

    settings = settings or load_settings()
    when = parse_as_of(as_of)
    if limit is not None and limit < 0:
        raise SqlError(f"limit {limit}: give a number of rows >= 0")
    catalog = load_catalog(settings)
    con = _connect()
    try:
        entries = _resolve(catalog, table_refs(sql, con))
        snaps = {entry.name: pin(entry, when) for entry in entries}  # every version pinned first
        columns: dict[str, list[str]] = {}
        for i, entry in enumerate(entries):
            columns[entry.name] = _register(con, entry, snaps[entry.name], f"__moulin_table_{i}", settings)
        con.execute("SET lock_configuration = true")
        try:
            relation = con.sql(sql)
            if relation is None:
                raise SqlError("the statement returned no rows: give a SELECT query")
            if limit is not None:
                relation = relation.limit(limit)
            fetch = getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table
            result = fetch()
        except duckdb.Error as exc:
            raise _translate(exc, catalog, columns) from None
    finally:
        con.close()
    return QueryResult(result, {name: snap.version for name, snap in snaps.items()})


def query(sql: str, *, as_of: AsOf = None, settings: Settings | None = None) -> pa.Table:
    """The rows of ``sql`` over the tables it names, as a ``pyarrow.Table`` (see :func:`run_query`)."""
    return run_query(sql, as_of=as_of, settings=settings).table


def query_pandas(sql: str, *, as_of: AsOf = None, settings: Settings | None = None) -> pd.DataFrame:
    """:func:`query` as a pandas DataFrame."""
    return query(sql, as_of=as_of, settings=settings).to_pandas()


def query_polars(sql: str, *, as_of: AsOf = None, settings: Settings | None = None) -> pl.DataFrame:
    """:func:`query` as a polars DataFrame."""
    import polars as pl

    return pl.from_arrow(query(sql, as_of=as_of, settings=settings))
