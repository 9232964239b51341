"""Delta tables written by other engines (Databricks, delta-rs), built here by hand:
column mapping (mode name: physical column names in the files, the log and its
statistics), the variant type, and features moulin must refuse.

Each table is a hand-written ``_delta_log/00000000000000000000.json`` plus Parquet
files written with pyarrow (or Spark, for variant columns) under physical names.
deltalake's DataFusion engine (``QueryBuilder``) is the reference reader: its
``to_pyarrow_table`` does not apply column mapping (see
``test_deltalake_add_actions_of_column_mapped_table``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest
from pyspark.sql import functions as F

from moulin.delta import DeltaTableStore
from moulin.delta.errors import UnsupportedTableError

pytestmark = pytest.mark.integration

# Physical names as Databricks makes them (col-<uuid>).
PHYS = {
    "id": "col-5f2a0c1e-7b3d-4e8a-9c21-0d6b3e5f7a11",
    "dep delay": "col-8e41b7d2-2c59-4f0e-a6b3-91c7d2e4f622",
    "carrier": "col-1a9d3f60-c4e2-47b8-8d15-3e6f9a0b1c33",
    "info": "col-c7b2e915-58a4-4d3c-b0f6-7a2e1d9c8b44",
    "a": "col-40f8d6a3-9e17-4b25-a3c8-e5d1f0b7a255",
    "b": "col-d35e1b08-6f92-4ac7-81e4-2b9c6d3f0e66",
    "month": "col-9b6c4a27-d1e5-4f83-b7a9-5c0e8f2d1a77",
    "extra": "col-26e0f9b4-a8c1-4d76-9f32-d4b5a7c6e088",
    "legs": "col-71c3e8a5-0d2f-4b9e-8a61-c5f4b3d2e099",
    "x": "col-b84f2d67-3e1a-4c05-9d72-a6e5c4f3b0aa",
}
IDS = {name: i + 1 for i, name in enumerate(PHYS)}


def path_of(uri: str) -> Path:
    return Path(urlparse(uri).path)


def cm_field(name: str, type_, nullable: bool = True) -> dict:
    return {
        "name": name,
        "type": type_,
        "nullable": nullable,
        "metadata": {"delta.columnMapping.id": IDS[name], "delta.columnMapping.physicalName": PHYS[name]},
    }


def cm_schema(partitioned: bool, label: str = "carrier", extra: bool = False) -> dict:
    info = {"type": "struct", "fields": [cm_field("a", "integer", nullable=False), cm_field("b", "string")]}
    fields = [
        cm_field("id", "long", nullable=False),
        cm_field("dep delay", "double"),
        {**cm_field("carrier", "string"), "name": label},  # renamed: same physical name
        cm_field("info", info),
        cm_field(
            "legs",
            {
                "type": "array",
                "elementType": {"type": "struct", "fields": [cm_field("x", "integer")]},
                "containsNull": True,
            },
        ),
    ]
    if partitioned:
        fields.append(cm_field("month", "integer"))
    if extra:
        fields.append(cm_field("extra", "string"))
    return {"type": "struct", "fields": fields}


def protocol(kind: str, features: list[str]) -> dict:
    if kind == "legacy":  # column mapping before table features
        return {"minReaderVersion": 2, "minWriterVersion": 5}
    return {
        "minReaderVersion": 3,
        "minWriterVersion": 7,
        "readerFeatures": features,
        "writerFeatures": features,
    }


def metadata(schema: dict, partition_by: list[str], configuration: dict) -> dict:
    return {
        "id": "7d3f2c1a-0b9e-4a8d-8c7f-6e5d4c3b2a19",
        "format": {"provider": "parquet", "options": {}},
        "schemaString": json.dumps(schema),
        "partitionColumns": partition_by,
        "configuration": configuration,
        "createdTime": 1700000000000,
    }


def cm_conf() -> dict:
    return {"delta.columnMapping.mode": "name", "delta.columnMapping.maxColumnId": str(len(PHYS))}


def write_commit(root: Path, version: int, actions: list[dict]) -> None:
    log = root / "_delta_log"
    log.mkdir(parents=True, exist_ok=True)
    with open(log / f"{version:020d}.json", "w") as fh:
        for action in actions:
            fh.write(json.dumps(action) + "\n")


def add_action(root: Path, rel: str, partition_values: dict, stats: dict | None) -> dict:
    add = {
        "path": rel,
        "partitionValues": partition_values,
        "size": os.path.getsize(root / rel),
        "modificationTime": 1700000000000,
        "dataChange": True,
    }
    if stats is not None:
        add["stats"] = json.dumps(stats)
    return {"add": add}


def expected_row(i: int, month: int | None | bool = None) -> dict:
    row = {
        "id": i,
        "dep delay": i * 1.5,
        "carrier": ["AA", "DL", "UA"][i % 3],
        "info": None if i % 7 == 3 else {"a": i, "b": f"b{i}"},
        "legs": [{"x": i}, {"x": i + 1}] if i % 5 else None,
    }
    if month is not False:
        row["month"] = month
    return row


def write_mapped_file(root: Path, rel: str, rows: list[dict], extra: bool = False) -> dict:
    """A Parquet file of ``rows`` (logical names) under physical names; its stats (physical keys)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    info_type = pa.struct([pa.field(PHYS["a"], pa.int32(), nullable=False), (PHYS["b"], pa.string())])
    columns = {
        PHYS["id"]: pa.array([r["id"] for r in rows], pa.int64()),
        PHYS["dep delay"]: pa.array([r["dep delay"] for r in rows], pa.float64()),
        PHYS["carrier"]: pa.array([r["carrier"] for r in rows], pa.string()),
        PHYS["info"]: pa.array(
            [
                None if r["info"] is None else {PHYS["a"]: r["info"]["a"], PHYS["b"]: r["info"]["b"]}
                for r in rows
            ],
            info_type,
        ),
    }
    columns[PHYS["legs"]] = pa.array(
        [None if r["legs"] is None else [{PHYS["x"]: leg["x"]} for leg in r["legs"]] for r in rows],
        pa.list_(pa.struct([(PHYS["x"], pa.int32())])),
    )
    if extra:
        columns[PHYS["extra"]] = pa.array([r["extra"] for r in rows], pa.string())
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), root / rel)
    infos = [r["info"]["a"] for r in rows if r["info"] is not None]
    return {
        "numRecords": len(rows),
        "minValues": {
            PHYS["id"]: min(r["id"] for r in rows),
            PHYS["dep delay"]: min(r["dep delay"] for r in rows),
            PHYS["carrier"]: min(r["carrier"] for r in rows),
            PHYS["info"]: {PHYS["a"]: min(infos)} if infos else {},
        },
        "maxValues": {
            PHYS["id"]: max(r["id"] for r in rows),
            PHYS["dep delay"]: max(r["dep delay"] for r in rows),
            PHYS["carrier"]: max(r["carrier"] for r in rows),
            PHYS["info"]: {PHYS["a"]: max(infos)} if infos else {},
        },
        "nullCount": {
            PHYS["id"]: 0,
            PHYS["dep delay"]: 0,
            PHYS["carrier"]: 0,
            # a struct's null counts are per leaf field (a null struct counts in each)
            PHYS["info"]: {PHYS["a"]: len(rows) - len(infos), PHYS["b"]: len(rows) - len(infos)},
        },
    }


# Folder layouts of partitioned tables: random prefixes (Databricks), hive folders
# named by physical names, hive folders by logical names holding WRONG values (a
# reader taking partition values from folder names returns wrong rows).
LAYOUTS = {
    "random": lambda month, n: f"{['Ab', 'Xy', 'Q7', 'k0'][(month or 0) % 4]}/part-{n:05d}.snappy.parquet",
    "hive-physical": lambda month, n: (
        f"{PHYS['month']}={month if month is not None else '__HIVE_DEFAULT_PARTITION__'}/part-{n:05d}.parquet"
    ),
    "hive-logical-wrong": lambda month, n: f"month={(month or 0) + 10}/part-{n:05d}.parquet",
}


def build_partitioned(uri: str, layout: str, proto: str) -> list[dict]:
    """A column-mapped table partitioned by ``month`` (1..3 and null); its rows (logical names)."""
    root = path_of(uri)
    groups: list[tuple[int | None, list[int]]] = [
        (1, [i for i in range(0, 30) if i % 3 == 0 and i < 15]),
        (1, [i for i in range(0, 30) if i % 3 == 0 and i >= 15]),  # two files in month 1
        (2, [i for i in range(0, 30) if i % 3 == 1]),
        (3, [i for i in range(0, 30) if i % 3 == 2]),
        (None, [30, 31, 32]),
    ]
    adds, all_rows = [], []
    for n, (month, ids) in enumerate(groups):
        rows = [expected_row(i, month) for i in ids]
        rel = LAYOUTS[layout](month, n)
        stats = write_mapped_file(root, rel, rows)
        adds.append(add_action(root, rel, {PHYS["month"]: None if month is None else str(month)}, stats))
        all_rows += rows
    write_commit(
        root,
        0,
        [
            {"protocol": protocol(proto, ["columnMapping"])},
            {"metaData": metadata(cm_schema(partitioned=True), ["month"], cm_conf())},
            *adds,
        ],
    )
    return all_rows


def reference_rows(uri: str, version: int | None = None) -> list[dict]:
    """The table's rows as deltalake's DataFusion engine reads them."""
    import pyarrow as pa
    from deltalake import DeltaTable, QueryBuilder

    table = DeltaTable(uri, version=version)
    return pa.table(QueryBuilder().register("t", table).execute("SELECT * FROM t")).to_pylist()


def as_dicts(df) -> list[dict]:
    return [r.asDict(recursive=True) for r in df.collect()]


def key(row: dict):
    return json.dumps(row, sort_keys=True, default=str)


def same_rows(left: list[dict], right: list[dict]) -> bool:
    return sorted(map(key, left)) == sorted(map(key, right))


@pytest.fixture(scope="module")
def store(spark) -> DeltaTableStore:
    return DeltaTableStore(spark)


def test_deltalake_add_actions_of_column_mapped_table(local_dir) -> None:
    """Pins what deltalake returns for a column-mapped table (Snapshot.files relies on it)."""
    import pyarrow as pa
    from deltalake import DeltaTable

    uri = f"{local_dir}/cm"
    build_partitioned(uri, "random", "legacy")
    table = DeltaTable(uri)
    row = pa.table(table.get_add_actions(flatten=True)).to_pylist()[0]
    # partition values: by LOGICAL name, typed; statistics: by PHYSICAL name (nested: dotted).
    assert row["partition.month"] == 1 and f"partition.{PHYS['month']}" not in row
    assert row[f"min.{PHYS['id']}"] == 0 and "min.id" not in row
    assert row[f"max.{PHYS['info']}.{PHYS['a']}"] == 12
    assert f"null_count.{PHYS['dep delay']}" in row
    # deltalake's pyarrow dataset ignores column mapping under a legacy protocol:
    # every data column reads as null (moulin's to_arrow does not use it for these tables).
    assert {r["id"] for r in table.to_pyarrow_table().to_pylist()} == {None}


@pytest.mark.parametrize(
    "layout,proto",
    [("random", "legacy"), ("hive-physical", "features"), ("hive-logical-wrong", "legacy")],
)
def test_column_mapped_partitioned_table_reads_by_logical_names(
    spark, store, local_dir, layout, proto
) -> None:
    uri = f"{local_dir}/cm_{layout}"
    expected = build_partitioned(uri, layout, proto)
    assert same_rows(reference_rows(uri), expected)  # deltalake reads the table as built

    df = store.read(uri)
    assert df.columns == ["id", "dep delay", "carrier", "info", "legs", "month"]
    assert df.schema["info"].dataType.fieldNames() == ["a", "b"]
    assert dict(df.dtypes) == {
        "id": "bigint",
        "dep delay": "double",
        "carrier": "string",
        "info": "struct<a:int,b:string>",
        "legs": "array<struct<x:int>>",
        "month": "int",
    }
    assert not any(k.startswith("delta.columnMapping") for f in df.schema.fields for k in f.metadata)
    assert same_rows(as_dicts(df), expected)

    cases = [
        ([("id", ">=", 20)], F.col("id") >= 20),
        ([("dep delay", "<", 9.0)], F.col("`dep delay`") < 9.0),
        ([("carrier", "=", "DL")], F.col("carrier") == "DL"),
        ([("month", "=", 2)], F.col("month") == 2),
        ([("month", "is null", None)], F.col("month").isNull()),
        ([("month", "in", [1, 3]), ("id", "<", 10)], F.col("month").isin(1, 3) & (F.col("id") < 10)),
    ]
    for filters, column in cases:
        got = as_dicts(store.read(uri, filters=filters))
        assert got, filters
        assert same_rows(got, as_dicts(df.filter(column))), filters

    none = store.read(uri, filters=[("id", ">", 1000)])  # every file skipped
    assert none.count() == 0 and none.schema == df.schema

    # Skipping by logical names: partition values and statistics.
    snap = store.snapshot(uri)
    files = snap.files()
    assert len(files) == 5
    assert {f.partition_values["month"] for f in files} == {1, 2, 3, None}
    assert set(files[0].mins) == {"id", "dep delay", "carrier", "info.a", "info.b"}
    assert {k for k, v in files[0].mins.items() if v is not None} == {"id", "dep delay", "carrier", "info.a"}
    assert len(snap.select([("month", "=", 2)])) == 1
    assert len(snap.select([("id", ">=", 30)])) == 1  # the null-month file only
    assert len(snap.select([("carrier", "=", "DL")])) == 2  # month 2, and the null month (AA..UA)

    assert store.count(uri) == len(expected)
    arrow = store.to_arrow(uri)
    assert arrow.column_names == ["id", "dep delay", "carrier", "info", "legs", "month"]
    assert same_rows(arrow.to_pylist(), expected)
    part = store.to_arrow(uri, columns=["id", "info"], filters=[("month", "=", 1)])
    assert part.column_names == ["id", "info"]
    assert sorted(r["id"] for r in part.to_pylist()) == sorted(r["id"] for r in expected if r["month"] == 1)
    meta = store.metadata(uri)
    assert (meta.partition_by, meta.num_files, meta.num_rows, meta.version) == (
        ["month"],
        5,
        len(expected),
        0,
    )
    assert meta.schema.fieldNames() == ["id", "dep delay", "carrier", "info", "legs", "month"]
    uris = store.file_uris(uri)
    assert len(uris) == 5 and all(path_of(u).exists() for u in uris)


def test_column_mapped_table_with_rename_and_new_column(spark, store, local_dir) -> None:
    """Unpartitioned, reader/writer features, no statistics; version 1 renames a column
    (same physical name) and adds one: time travel reads each version's names."""
    uri = f"{local_dir}/cm_flat"
    root = path_of(uri)
    v0 = [expected_row(i, month=False) for i in range(0, 12)]
    write_mapped_file(root, "Zq/part-00000.parquet", v0[:6])
    write_mapped_file(root, "Zq/part-00001.parquet", v0[6:])
    write_commit(
        root,
        0,
        [
            {"protocol": protocol("features", ["columnMapping"])},
            {"metaData": metadata(cm_schema(partitioned=False), [], cm_conf())},
            add_action(root, "Zq/part-00000.parquet", {}, None),
            add_action(root, "Zq/part-00001.parquet", {}, None),
        ],
    )
    v1_new = [{**expected_row(i, month=False), "extra": f"e{i}"} for i in range(12, 15)]
    write_mapped_file(root, "Rt/part-00002.parquet", v1_new, extra=True)
    write_commit(
        root,
        1,
        [
            {"metaData": metadata(cm_schema(partitioned=False, label="airline", extra=True), [], cm_conf())},
            add_action(root, "Rt/part-00002.parquet", {}, None),
        ],
    )

    def renamed(row: dict) -> dict:
        out = {("airline" if k == "carrier" else k): v for k, v in row.items()}
        return {"extra": None, **out}

    latest = [renamed(r) for r in v0] + [renamed(r) for r in v1_new]
    assert same_rows(reference_rows(uri), latest)
    assert same_rows(reference_rows(uri, version=0), v0)

    df = store.read(uri)
    assert df.columns == ["id", "dep delay", "airline", "info", "legs", "extra"]
    assert same_rows(as_dicts(df), latest)
    assert same_rows(as_dicts(store.read(uri, version=0)), v0)
    assert store.read(uri, version=0).columns == ["id", "dep delay", "carrier", "info", "legs"]
    got = as_dicts(store.read(uri, filters=[("airline", "=", "UA")]))
    assert got and same_rows(got, as_dicts(df.filter(F.col("airline") == "UA")))
    got = as_dicts(store.read(uri, filters=[("extra", "is not null", None)]))
    assert same_rows(got, latest[12:])

    assert store.count(uri) == 15  # no statistics: counted by reading (to_arrow)
    assert store.count(uri, version=0) == 12
    assert same_rows(store.to_arrow(uri).to_pylist(), latest)
    assert same_rows(store.to_arrow(uri, version=0).to_pylist(), v0)
    assert store.to_arrow(uri, filters=[("id", "<", 3)]).num_rows == 3
    meta = store.metadata(uri)
    assert (meta.partition_by, meta.num_files, meta.num_rows, meta.version) == ([], 3, None, 1)


def test_write_to_column_mapped_table_is_refused(spark, store, local_dir) -> None:
    uri = f"{local_dir}/cm_write"
    build_partitioned(uri, "random", "legacy")
    df = store.read(uri).limit(3)
    before = store.file_uris(uri)
    with pytest.raises(UnsupportedTableError) as err:
        store.write(df, uri)
    assert "columnMapping" in str(err.value) and "no retry will help" in str(err.value)
    key = store.read(uri).columns[0]
    with pytest.raises(UnsupportedTableError, match="columnMapping"):
        store.merge(df, uri, keys=[key])
    assert store.version(uri) == 0 and store.file_uris(uri) == before


def test_column_mapping_mode_id_is_refused(spark, store, local_dir) -> None:
    uri = f"{local_dir}/cm_id"
    root = path_of(uri)
    rows = [expected_row(i, month=False) for i in range(3)]
    write_mapped_file(root, "part-00000.parquet", rows)
    write_commit(
        root,
        0,
        [
            {"protocol": protocol("legacy", [])},
            {
                "metaData": metadata(
                    cm_schema(partitioned=False), [], {**cm_conf(), "delta.columnMapping.mode": "id"}
                )
            },
            add_action(root, "part-00000.parquet", {}, None),
        ],
    )
    for call in (lambda: store.read(uri), lambda: store.count(uri), lambda: store.metadata(uri)):
        with pytest.raises(UnsupportedTableError) as err:
            call()
        assert "columnMapping mode id" in str(err.value) and "no retry will help" in str(err.value)


@pytest.mark.parametrize("feature", ["someFutureFeature", "typeWidening"])
def test_unknown_reader_feature_is_refused(spark, store, local_dir, feature) -> None:
    """someFutureFeature: deltalake itself refuses to load the table; typeWidening:
    deltalake loads it, moulin refuses it.  Both say which feature, and that no retry helps."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    uri = f"{local_dir}/future"
    root = path_of(uri)
    root.mkdir(parents=True)
    pq.write_table(pa.table({"id": pa.array([1, 2], pa.int64())}), root / "part-00000.parquet")
    schema = {"type": "struct", "fields": [{"name": "id", "type": "long", "nullable": True, "metadata": {}}]}
    write_commit(
        root,
        0,
        [
            {"protocol": protocol("features", [feature])},
            {"metaData": metadata(schema, [], {})},
            add_action(root, "part-00000.parquet", {}, None),
        ],
    )
    for call in (
        lambda: store.read(uri),
        lambda: store.to_arrow(uri),
        lambda: store.metadata(uri),
        lambda: store.write(spark.range(2), uri),
    ):
        with pytest.raises(UnsupportedTableError) as err:
            call()
        assert feature in str(err.value) and "no retry will help" in str(err.value), str(err.value)


@pytest.mark.parametrize("feature,mapped", [("variantType", False), ("variantType-preview", True)])
def test_variant_table_reads(spark, store, local_dir, tmp_path, feature, mapped) -> None:
    """A Delta table with a variant column, its Parquet files written by Spark (parse_json)."""
    uri = f"{local_dir}/variant"
    root = path_of(uri)
    v_name = "col-0e7c5a93-b2d4-4f61-8a0c-9d3e6b1f2a99" if mapped else "v"
    id_name = PHYS["id"] if mapped else "id"
    staging = tmp_path / "spark_out"
    source = spark.range(0, 8, numPartitions=2).select(
        F.col("id").alias(id_name),
        F.expr(
            'parse_json(concat(\'{"a":\', id, \',"tags":["x",\', id * 2, \'],"s":"t\', id, \'"}\'))'
        ).alias(v_name),
    )
    source.write.parquet(str(staging))
    root.mkdir(parents=True)
    adds = []
    for n, f in enumerate(sorted(staging.glob("*.parquet"))):
        rel = f"Vx/part-{n:05d}.parquet"
        (root / "Vx").mkdir(exist_ok=True)
        shutil.copy(f, root / rel)
        adds.append(add_action(root, rel, {}, None))
    fields = [{"name": "id", "type": "long", "nullable": True, "metadata": {}}]
    fields.append({"name": "v", "type": "variant", "nullable": True, "metadata": {}})
    features = [feature]
    conf: dict = {}
    if mapped:
        fields[0]["metadata"] = {"delta.columnMapping.id": 1, "delta.columnMapping.physicalName": id_name}
        fields[1]["metadata"] = {"delta.columnMapping.id": 2, "delta.columnMapping.physicalName": v_name}
        features.append("columnMapping")
        conf = {"delta.columnMapping.mode": "name", "delta.columnMapping.maxColumnId": "2"}
    write_commit(
        root,
        0,
        [
            {"protocol": protocol("features", features)},
            {"metaData": metadata({"type": "struct", "fields": fields}, [], conf)},
            *adds,
        ],
    )

    df = store.read(uri)
    assert dict(df.dtypes) == {"id": "bigint", "v": "variant"}
    got = sorted(
        (r["id"], r["a"], r["s"], r["j"])
        for r in df.selectExpr(
            "id",
            "variant_get(v, '$.a', 'int') AS a",
            "variant_get(v, '$.s', 'string') AS s",
            "to_json(v) AS j",
        ).collect()
    )
    want = sorted(
        (r["id"], r["a"], r["s"], r["j"])
        for r in source.selectExpr(
            f"`{id_name}` AS id",
            f"variant_get(`{v_name}`, '$.a', 'int') AS a",
            f"variant_get(`{v_name}`, '$.s', 'string') AS s",
            f"to_json(`{v_name}`) AS j",
        ).collect()
    )
    assert got == want and len(got) == 8
    assert got[3][3] == '{"a":3,"s":"t3","tags":["x",6]}'
    assert sorted(r["id"] for r in store.read(uri, filters=[("id", ">=", 5)]).collect()) == [5, 6, 7]
    assert store.count(uri) == 8
    arrow = store.to_arrow(uri)
    assert arrow.column_names == ["id", "v"] and sorted(arrow.column("id").to_pylist()) == list(range(8))
    assert store.metadata(uri).schema["v"].dataType.typeName() == "variant"
