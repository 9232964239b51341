"""The Spark SQL that puts one table of moulin's catalog into the endpoint's Spark catalog.

A Delta table's snapshot becomes a *snapshot table*, ``_snapshots.<layer>__<table>__v<version>``:
an external Parquet table with the snapshot's schema whose location is a Hadoop glob
naming exactly the snapshot's data files (``<table>/{ds=2024-01-01/part-0.parquet,...}``),
so a file that a later commit removed, or that no commit added, is never read.  Partition
columns come from the folders (``basePath`` is the table's root) when every file sits in
its ``col=value`` folder, as moulin's and Spark's writers put them; otherwise each group of
files with the same partition values becomes its own table and the values are literals.
A snapshot table never changes: a new version is a new table.

The catalog name (``gold.flight_features``) is a *view* over its snapshot table, replaced
in one catalog operation when a new version is served.  Its properties say what it
serves (``moulin.table``, ``moulin.uri``, ``moulin.version``, ``moulin.personal``); a
name analysts may not query, or not written yet, is a view over no file at all whose
``moulin.refusal`` property is the message the endpoint's query guard refuses it with
(see ``java/moulin/sqlendpoint/QueryGuard.java``).

Everything here is text: the statements are run by :mod:`moulin.sql_endpoint.sync`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from moulin.delta.column_mapping import logical_type, physical_name, physical_type
from moulin.delta.predicates import format_partition_value
from moulin.delta.snapshot_reads import hive_consistent
from moulin.errors import MoulinError

if TYPE_CHECKING:
    from pyspark.sql.types import DataType, StructField

    from moulin.catalog import CatalogColumn, CatalogEntry
    from moulin.delta.log import FileEntry, Snapshot

#: The database of the snapshot tables (never queried by name: the guard refuses it).
SNAPSHOTS_DB = "_snapshots"
#: Characters with a meaning in Hadoop globs, escaped in file names.
_GLOB_SPECIAL = frozenset("\\{}[]*?,^")
#: Contract types used as they are in a stub view's CAST (anything else: STRING).
_PLAIN_TYPE = re.compile(r"[a-z_]+(\(\d+(,\s*\d+)?\))?|(array|map|struct)<[a-z0-9_<>,:\s]+>", re.IGNORECASE)


class SnapshotSqlError(MoulinError):
    """A snapshot cannot be served as it is (e.g. files outside its table folder)."""


@dataclass(frozen=True)
class ServedSql:
    """The statements that serve one catalog name, in order, and the snapshot tables they create."""

    statements: tuple[str, ...]
    snapshot_tables: tuple[str, ...]


def quote(name: str) -> str:
    """``name`` as a Spark SQL identifier (backticks)."""
    return "`" + name.replace("`", "``") + "`"


def sql_string(text: str) -> str:
    """``text`` as a Spark SQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def glob_escape(path: str) -> str:
    """A relative file path with Hadoop's glob characters escaped."""
    return "".join("\\" + c if c in _GLOB_SPECIAL else c for c in path)


def files_glob(root: str, paths: list[str]) -> str:
    """A Hadoop glob under ``root`` that matches exactly the relative ``paths`` (one or more)."""
    if not paths:
        raise SnapshotSqlError(f"no file to serve under {root}")
    escaped = [glob_escape(p) for p in paths]
    if len(escaped) == 1:
        return f"{root}/{escaped[0]}"
    return f"{root}/{{{','.join(escaped)}}}"


def type_sql(data_type: DataType) -> str:
    """A Spark type as Spark SQL DDL (field names quoted)."""
    from pyspark.sql.types import ArrayType, DecimalType, MapType, StructType

    if isinstance(data_type, StructType):
        return (
            "STRUCT<" + ", ".join(f"{quote(f.name)}: {type_sql(f.dataType)}" for f in data_type.fields) + ">"
        )
    if isinstance(data_type, ArrayType):
        return f"ARRAY<{type_sql(data_type.elementType)}>"
    if isinstance(data_type, MapType):
        return f"MAP<{type_sql(data_type.keyType)}, {type_sql(data_type.valueType)}>"
    if isinstance(data_type, DecimalType):
        return f"DECIMAL({data_type.precision},{data_type.scale})"
    return data_type.simpleString().upper()


def snapshot_table_name(entry_name: str, version: int, group: int | None = None) -> str:
    """``_snapshots.<layer>__<table>__v<version>`` (``__g<i>`` for one group of files)."""
    base = entry_name.replace(".", "__") + f"__v{version}"
    return f"{SNAPSHOTS_DB}.{base}" if group is None else f"{SNAPSHOTS_DB}.{base}__g{group}"


def _qualified(name: str) -> str:
    return ".".join(quote(part) for part in name.split("."))


def _stored(field: StructField, mapped: bool) -> tuple[str, str]:
    """(name, type) of a data column in the files: physical under column mapping."""
    if mapped:
        return physical_name(field), type_sql(physical_type(field.dataType))
    return field.name, type_sql(field.dataType)


def _create_table(
    name: str, columns: list[tuple[str, str]], glob: str, partitions: list[str], base: str
) -> str:
    cols = ", ".join(f"{quote(n)} {t}" for n, t in columns)
    options = [f"path {sql_string(glob)}"]
    partitioned = ""
    if partitions:
        partitioned = f" PARTITIONED BY ({', '.join(quote(p) for p in partitions)})"
        options.append(f"basePath {sql_string(base)}")
    return (
        f"CREATE TABLE {_qualified(name)} ({cols}) USING parquet{partitioned} OPTIONS ({', '.join(options)})"
    )


def _literal(value, field: StructField) -> str:
    text = format_partition_value(value)
    target = type_sql(field.dataType)
    return f"CAST(NULL AS {target})" if text is None else f"CAST({sql_string(text)} AS {target})"


def _properties(entry: CatalogEntry, extra: dict[str, str]) -> str:
    props = {"moulin.table": entry.name, "moulin.uri": entry.uri, "moulin.contract": entry.contract, **extra}
    return ", ".join(f"{sql_string(k)}={sql_string(v)}" for k, v in props.items())


def _column_list(names: list[str], columns: dict[str, CatalogColumn]) -> str:
    parts = []
    for name in names:
        column = columns.get(name)
        comment = f"personal data: {column.personal}" if column and column.personal else ""
        parts.append(f"{quote(name)} COMMENT {sql_string(comment)}" if comment else quote(name))
    return ", ".join(parts)


def _create_view(entry: CatalogEntry, names: list[str], body: str, props: dict[str, str]) -> str:
    columns = {c.name: c for c in entry.columns}
    return (
        f"CREATE OR REPLACE VIEW {_qualified(entry.name)} ({_column_list(names, columns)}) "
        f"COMMENT {sql_string(entry.description or entry.name)} "
        f"TBLPROPERTIES ({_properties(entry, props)}) AS {body}"
    )


def serve_snapshot(entry: CatalogEntry, snap: Snapshot, personal: list[str]) -> ServedSql:
    """The statements that serve ``snap`` under ``entry``'s name: its snapshot table(s), then
    the view (see the module).  ``personal``: the columns the table's metadata lists as personal."""
    files = snap.files()
    schema = snap.schema
    names = [f.name for f in schema.fields]
    props = {"moulin.version": str(snap.version), "moulin.personal": ",".join(personal)}
    if not files:
        return ServedSql((stub_view(entry, None, props, schema.fields),), ())
    outside = [f.path for f in files if "://" in f.path or f.path.startswith("/")]
    if outside:
        raise SnapshotSqlError(
            f"{entry.name} (version {snap.version}) has data files outside its table folder "
            f"({outside[0]}): the endpoint serves files under {snap.uri} only; query it with `moulin sql`"
        )
    mapped = snap.column_mapping != "none"
    partition_by = list(snap.partition_by)
    data_fields = [f for f in schema.fields if f.name not in partition_by]
    stored = [_stored(f, mapped) for f in data_fields]
    by_name = {f.name: f for f in schema.fields}

    def select(source: str, literals: dict[str, str]) -> str:
        parts = []
        for field in schema.fields:
            if field.name in literals:
                parts.append(f"{literals[field.name]} AS {quote(field.name)}")
            elif mapped and field.name not in partition_by:
                target = type_sql(logical_type(field.dataType))
                parts.append(f"CAST({quote(physical_name(field))} AS {target}) AS {quote(field.name)}")
            else:
                parts.append(quote(field.name))
        return f"SELECT {', '.join(parts)} FROM {_qualified(source)}"

    if not partition_by or (not mapped and all(hive_consistent(f, partition_by) for f in files)):
        table = snapshot_table_name(entry.name, snap.version)
        columns = stored + [(p, type_sql(by_name[p].dataType)) for p in partition_by]
        create = _create_table(
            table, columns, files_glob(snap.uri, [f.path for f in files]), partition_by, snap.uri
        )
        return ServedSql((create, _create_view(entry, names, select(table, {}), props)), (table,))
    groups: dict[tuple, list[FileEntry]] = {}
    for f in files:
        groups.setdefault(tuple(f.partition_values.get(c) for c in partition_by), []).append(f)
    statements, tables, selects = [], [], []
    for i, (values, group) in enumerate(groups.items()):
        table = snapshot_table_name(entry.name, snap.version, i)
        statements.append(
            _create_table(table, stored, files_glob(snap.uri, [f.path for f in group]), [], snap.uri)
        )
        literals = {c: _literal(v, by_name[c]) for c, v in zip(partition_by, values, strict=True)}
        selects.append(select(table, literals))
        tables.append(table)
    statements.append(_create_view(entry, names, " UNION ALL ".join(selects), props))
    return ServedSql(tuple(statements), tuple(tables))


def stub_view(
    entry: CatalogEntry, refusal: str | None, props: dict[str, str] | None = None, fields=None
) -> str:
    """A view of ``entry`` that reads no file: no rows, the contract's columns (or ``fields``);
    ``refusal`` (when given) is the message every query of it is refused with."""
    extra = dict(props or {})
    if refusal is not None:
        extra["moulin.refusal"] = refusal
    if fields is not None:
        typed = [(f.name, type_sql(f.dataType)) for f in fields]
    else:
        typed = [(c.name, c.type if _PLAIN_TYPE.fullmatch(c.type) else "string") for c in entry.columns]
    typed = typed or [("no_columns", "string")]
    body = "SELECT " + ", ".join(f"CAST(NULL AS {t}) AS {quote(n)}" for n, t in typed) + " WHERE false"
    return _create_view(entry, [n for n, _ in typed], body, extra)
