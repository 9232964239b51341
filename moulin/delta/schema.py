"""Schemas: Spark ``StructType`` <-> Delta schema, and write-time schema enforcement.

Delta's schema JSON is Spark's ``StructType`` JSON, so conversion goes through it.
Table schemas are stored all-nullable (as Delta Lake on Spark does), and types are
compared ignoring nullability.
"""

from __future__ import annotations

import json
from typing import Any

from pyspark.sql.types import DataType, StructField, StructType

from moulin.delta.errors import DeltaStoreError, SchemaMismatchError

SCHEMA_MODES = (None, "merge", "overwrite")
# Spark types a partition column may have (they serialize to a string losslessly).
_PARTITION_TYPES = ("string", "integer", "long", "short", "byte", "date", "timestamp", "boolean")


def _relax(value: Any) -> Any:
    """A schema JSON value with every nullability flag set to True and metadata dropped."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in ("nullable", "containsNull", "valueContainsNull"):
                out[key] = True
            elif key == "metadata":
                out[key] = {}
            else:
                out[key] = _relax(item)
        return out
    if isinstance(value, list):
        return [_relax(v) for v in value]
    return value


def nullable(schema: StructType) -> StructType:
    """``schema`` with all fields (nested included) nullable, column metadata kept."""
    relaxed = _relax(schema.jsonValue())
    for field_json, original in zip(relaxed["fields"], schema.fields, strict=True):
        field_json["metadata"] = dict(original.metadata or {})
    return StructType.fromJson(relaxed)


def type_key(data_type: DataType) -> str:
    """A comparable identity of a type, ignoring nullability."""
    return json.dumps(_relax(data_type.jsonValue()), sort_keys=True)


def type_name(data_type: DataType) -> str:
    """The short SQL-ish name of a type, for messages."""
    return data_type.simpleString()


def spark_to_delta(schema: StructType):
    """The deltalake ``Schema`` of a Spark schema."""
    from deltalake import Schema

    for f in schema.fields:
        if f.dataType.typeName() in ("void", "null"):
            raise DeltaStoreError(
                f"column {f.name!r} has no type (NullType, e.g. from lit(None)): cast it to a type before writing"
            )
    return Schema.from_json(json.dumps(schema.jsonValue()))


def delta_to_spark(delta_schema) -> StructType:
    """The Spark ``StructType`` of a deltalake ``Schema``."""
    return StructType.fromJson(json.loads(delta_schema.to_json()))


def check_partition_columns(table_uri: str, schema: StructType, partition_by: list[str]) -> None:
    """Partition columns must exist, be distinct, of a simple type, and leave data columns."""
    names = {f.name: f for f in schema.fields}
    missing = [c for c in partition_by if c not in names]
    if missing:
        raise DeltaStoreError(
            f"partition column(s) {', '.join(missing)} of table {table_uri} are not in the DataFrame "
            f"(columns: {', '.join(names)})"
        )
    if len(set(partition_by)) != len(partition_by):
        raise DeltaStoreError(f"partition columns of {table_uri} repeat a column: {partition_by}")
    for c in partition_by:
        if names[c].dataType.typeName() not in _PARTITION_TYPES:
            raise DeltaStoreError(
                f"column {c!r} of type {type_name(names[c].dataType)} cannot partition table {table_uri}: "
                f"use one of {', '.join(_PARTITION_TYPES)}"
            )
    if len(partition_by) == len(names):
        raise DeltaStoreError(f"table {table_uri} needs at least one column that is not a partition column")


def reconcile(
    table_uri: str,
    table_schema: StructType | None,
    df_schema: StructType,
    partition_by: list[str],
    schema_mode: str | None,
    mode: str,
) -> StructType:
    """The table schema after a write of ``df_schema``; raises before any data is written.

    * new table, or ``schema_mode="overwrite"`` with ``mode="overwrite"``: the
      DataFrame's schema (all nullable);
    * otherwise the columns must match by name and type (nullability ignored);
      with ``schema_mode="merge"`` new columns are appended to the table schema (as
      nullable) and columns absent from the DataFrame are allowed (read as null).
    """
    if schema_mode not in SCHEMA_MODES:
        raise DeltaStoreError(f"schema_mode {schema_mode!r} is not one of None, 'merge', 'overwrite'")
    if schema_mode == "overwrite" and mode != "overwrite":
        raise DeltaStoreError(f"schema_mode='overwrite' needs mode='overwrite' (table {table_uri})")
    names = [f.name for f in df_schema.fields]
    dup = sorted({n for n in names if names.count(n) > 1})
    lower = [n.lower() for n in names]
    dup += sorted({n for n in names if lower.count(n.lower()) > 1 and n not in dup})
    if dup:
        raise SchemaMismatchError(
            f"the DataFrame written to {table_uri} has duplicate column names (Delta ignores case): "
            f"{', '.join(dup)}; rename them"
        )
    if table_schema is None or schema_mode == "overwrite":
        check_partition_columns(table_uri, df_schema, partition_by)
        return nullable(df_schema)
    table_fields = {f.name: f for f in table_schema.fields}
    df_fields = {f.name: f for f in df_schema.fields}
    missing = [n for n in table_fields if n not in df_fields]
    extra = [n for n in df_fields if n not in table_fields]
    mistyped = [
        n
        for n in df_fields
        if n in table_fields and type_key(df_fields[n].dataType) != type_key(table_fields[n].dataType)
    ]
    missing_partitions = [n for n in missing if n in partition_by]
    if schema_mode == "merge" and not mistyped and not missing_partitions:
        if not extra:
            return table_schema
        added = nullable(
            StructType([StructField(n, df_fields[n].dataType, True, df_fields[n].metadata) for n in extra])
        )
        return StructType(list(table_schema.fields) + list(added.fields))  # table's NOT NULL kept
    if not (missing or extra or mistyped):
        return table_schema
    parts = []
    if missing:
        parts.append(
            "missing columns (in the table, not in the DataFrame): "
            + ", ".join(f"{n} {type_name(table_fields[n].dataType)}" for n in missing)
        )
    if extra:
        parts.append(
            "extra columns (in the DataFrame, not in the table): "
            + ", ".join(f"{n} {type_name(df_fields[n].dataType)}" for n in extra)
        )
    if mistyped:
        parts.append(
            "mistyped columns: "
            + ", ".join(
                f"{n} is {type_name(df_fields[n].dataType)} in the DataFrame but "
                f"{type_name(table_fields[n].dataType)} in the table"
                for n in mistyped
            )
        )
    hint = (
        "select/cast the DataFrame's columns to the table schema"
        + (
            ""
            if mistyped or missing_partitions
            else ", or pass schema_mode='merge' to add new nullable columns"
        )
        + (", or overwrite with schema_mode='overwrite'" if mode == "overwrite" else "")
    )
    raise SchemaMismatchError(
        f"schema mismatch writing to Delta table {table_uri}: {'; '.join(parts)}. Nothing was written: {hint}.",
        missing=missing,
        extra=extra,
        mistyped=mistyped,
    )
