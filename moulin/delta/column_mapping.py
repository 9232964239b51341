"""Delta column mapping (``delta.columnMapping.mode=name``): logical names over physical ones.

A column-mapped table (as Databricks writes them) names every column, nested
struct fields included, twice: the logical name of its schema, and the physical
name (``delta.columnMapping.physicalName``, e.g. ``col-5f2a...``) its Parquet
files and the log's statistics and partition values use.  Data files are read
(:func:`moulin.delta.snapshot_reads.read_mapped`) with the physical schema, then each column is cast (a struct cast renames nested
fields by position) and aliased to its logical name and type; partition values
always come from the log, never from folder names (which can be anything, e.g.
``Ab/``).  Mode ``id`` (Parquet field ids) is refused by ``check_supported``.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql.types import ArrayType, DataType, MapType, StructField, StructType

MODE_KEY = "delta.columnMapping.mode"
PHYSICAL_NAME_KEY = "delta.columnMapping.physicalName"
_MAPPING_PREFIX = "delta.columnMapping."
# Modes moulin reads; "none" is no mapping at all.
READABLE_MODES = ("none", "name")


def mapping_mode(configuration: dict[str, str] | None) -> str:
    """The table's column mapping mode: ``none``, ``name`` or ``id`` (lower case)."""
    mode = (configuration or {}).get(MODE_KEY) or "none"
    return str(mode).strip().lower() or "none"


def physical_name(field: StructField) -> str:
    """The name of ``field`` in the data files (its logical name where none is set)."""
    return str((field.metadata or {}).get(PHYSICAL_NAME_KEY) or field.name)


def _clean_metadata(metadata: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (metadata or {}).items() if not k.startswith(_MAPPING_PREFIX)}


def physical_type(data_type: DataType) -> DataType:
    """``data_type`` with every struct field named by its physical name (all nullable)."""
    if isinstance(data_type, StructType):
        return StructType(
            [StructField(physical_name(f), physical_type(f.dataType), True) for f in data_type.fields]
        )
    if isinstance(data_type, ArrayType):
        return ArrayType(physical_type(data_type.elementType), True)
    if isinstance(data_type, MapType):
        return MapType(physical_type(data_type.keyType), physical_type(data_type.valueType), True)
    return data_type


def logical_type(data_type: DataType) -> DataType:
    """``data_type`` all nullable, without column-mapping metadata (other metadata kept).

    All nullable because Spark reads files as nullable, and a cast to a
    non-nullable nested field is not allowed.
    """
    if isinstance(data_type, StructType):
        return StructType(
            [
                StructField(f.name, logical_type(f.dataType), True, _clean_metadata(f.metadata))
                for f in data_type.fields
            ]
        )
    if isinstance(data_type, ArrayType):
        return ArrayType(logical_type(data_type.elementType), True)
    if isinstance(data_type, MapType):
        return MapType(logical_type(data_type.keyType), logical_type(data_type.valueType), True)
    return data_type


def logical_paths(schema: StructType) -> dict[str, str]:
    """Dotted physical paths of the schema's columns and nested struct fields -> logical paths.

    Keys of deltalake's flattened add actions (``min.<path>``) use physical paths.
    """
    out: dict[str, str] = {}

    def walk(struct: StructType, phys: str, logical: str) -> None:
        for f in struct.fields:
            p = f"{phys}.{physical_name(f)}" if phys else physical_name(f)
            q = f"{logical}.{f.name}" if logical else f.name
            out[p] = q
            if isinstance(f.dataType, StructType):
                walk(f.dataType, p, q)

    walk(schema, "", "")
    return out


def logical_partition_keys(keys: list[str], schema: StructType, partition_by: list[str]) -> dict[str, str]:
    """Partition-value keys of add actions -> logical partition column names.

    deltalake 1.6 returns them by logical name already (the log keys them by
    physical name); physical keys are mapped too, should that change.
    """
    if set(keys) <= set(partition_by):
        return {k: k for k in keys}
    physical = {physical_name(schema[c]): c for c in partition_by if c in schema.fieldNames()}
    return {k: physical.get(k, k) for k in keys}
