"""Reading a snapshot's data files: Spark DataFrames over chosen files and Arrow datasets.

:func:`read_files` reads files written in the hive layout (``<col>=<val>/``) with
Spark's partition discovery, files of other writers with their partition values
from the log as literals, and column-mapped tables (:mod:`moulin.delta.column_mapping`)
with their logical names and types (:func:`read_mapped`); :func:`arrow_dataset`
gives the Arrow dataset of a snapshot, column mapping applied.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql.types import StructField, StructType

from moulin.delta.column_mapping import logical_type, mapping_mode, physical_name, physical_type
from moulin.delta.log import FileEntry, Snapshot
from moulin.delta.write_protocol import HIVE_NULL


def read_files(spark, snap: Snapshot, files: list[FileEntry]):
    """A DataFrame over some files of a snapshot (partition columns from the log)."""
    from pyspark.sql import functions as F

    if snap.column_mapping != "none":  # physical names in the files: see column_mapping
        return read_mapped(spark, snap, files)
    schema = snap.schema
    names = [f"`{f.name}`" for f in schema.fields]
    if not files:
        return spark.createDataFrame(spark.sparkContext.emptyRDD(), schema)
    if not snap.partition_by:
        return spark.read.schema(schema).parquet(*[snap.file_uri(f) for f in files])
    if all(hive_consistent(f, snap.partition_by) for f in files):
        return (
            spark.read.schema(schema)
            .option("basePath", snap.uri)
            .parquet(*[snap.file_uri(f) for f in files])
            .select(*names)
        )
    # Files outside the hive layout (another writer): partition values as literals.
    data_schema = StructType([f for f in schema.fields if f.name not in snap.partition_by])
    groups: dict[tuple, list[FileEntry]] = {}
    for f in files:
        groups.setdefault(tuple(f.partition_values.get(c) for c in snap.partition_by), []).append(f)
    out = None
    for values, group in groups.items():
        part = spark.read.schema(data_schema).parquet(*[snap.file_uri(f) for f in group])
        for col, value in zip(snap.partition_by, values, strict=True):
            part = part.withColumn(col, F.lit(value).cast(schema[col].dataType))
        part = part.select(*names)
        out = part if out is None else out.unionByName(part)
    return out


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def read_mapped(spark, snap: Snapshot, files: list[FileEntry]):
    """A DataFrame over some files of a column-mapped snapshot, with logical names and types.

    Files are grouped by partition values (from the log, as literals); each group
    is read with the physical schema of the data columns.
    """
    from pyspark.sql import functions as F

    schema = snap.schema
    target = logical_type(schema)
    if not files:
        return spark.createDataFrame(spark.sparkContext.emptyRDD(), target)
    partition_by = list(snap.partition_by)
    data_fields = [f for f in schema.fields if f.name not in partition_by]
    read_schema = StructType(
        [StructField(physical_name(f), physical_type(f.dataType), True) for f in data_fields]
    )
    groups: dict[tuple, list[FileEntry]] = {}
    for entry in files:
        groups.setdefault(tuple(entry.partition_values.get(c) for c in partition_by), []).append(entry)
    out = None
    for values, group in groups.items():
        part = spark.read.schema(read_schema).parquet(*[snap.file_uri(f) for f in group])
        literals = dict(zip(partition_by, values, strict=True))
        columns = []
        for logical, field in zip(schema.fields, target.fields, strict=True):
            if field.name in literals:
                value = F.lit(literals[field.name])
            else:
                value = F.col(_quote(physical_name(logical)))
            columns.append(value.cast(field.dataType).alias(field.name, metadata=field.metadata))
        part = part.select(*columns)
        out = part if out is None else out.unionByName(part)
    return out


def arrow_dataset(snap: Snapshot):
    """A ``pyarrow.dataset.Dataset`` of the snapshot with logical column names.

    deltalake's ``to_pyarrow_dataset`` does not apply column mapping (it refuses
    the ``columnMapping`` reader feature, and under a legacy protocol reads every
    data column as null): column-mapped tables are read with deltalake's
    DataFusion engine (``QueryBuilder``), into memory.
    """
    if mapping_mode(snap.configuration) == "none":
        return snap.table.to_pyarrow_dataset()
    import pyarrow as pa
    import pyarrow.dataset as ds
    from deltalake import QueryBuilder

    schema = snap.table.schema().to_arrow()
    schema = schema if isinstance(schema, pa.Schema) else pa.schema(schema)
    reader = QueryBuilder().register("moulin_snapshot", snap.table).execute("SELECT * FROM moulin_snapshot")
    table = pa.table(reader)
    return ds.dataset(table.select(schema.names).cast(schema))


def _spark_unescape(text: str) -> str:
    """A partition folder value as Spark's partition discovery reads it.

    Spark decodes each ``%XX`` into ONE character (``ExternalCatalogUtils.unescapePathName``),
    so a UTF-8 percent-encoded folder name (as deltalake writes) reads as mojibake.
    """
    out, i = [], 0
    while i < len(text):
        if text[i] == "%" and _is_hex(text[i + 1 : i + 3]):
            out.append(chr(int(text[i + 1 : i + 3], 16)))
            i += 3
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _is_hex(pair: str) -> bool:
    return len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair)


def hive_consistent(entry: FileEntry, partition_by: list[str]) -> bool:
    """Whether Spark's partition discovery reads the file's partition values from its folders."""
    segments = entry.path.split("/")[:-1]
    if len(segments) != len(partition_by):
        return False
    for segment, col in zip(segments, partition_by, strict=True):
        key, sep, raw = segment.partition("=")
        if not sep or _spark_unescape(key) != col:
            return False
        value = _spark_unescape(raw)
        expected = entry.partition_values.get(col)
        if expected is None:
            if value != HIVE_NULL:
                return False
        elif isinstance(expected, (dt.date, dt.datetime)):
            continue  # formats vary; Spark parses both
        elif isinstance(expected, str):
            if value != expected:
                return False
        elif str(expected).lower() != value.lower():
            return False
    return True
