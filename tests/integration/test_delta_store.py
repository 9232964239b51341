"""DeltaTableStore on local disk and on the real local HDFS: writes, reads, skipping,
schema enforcement, idempotency, merge, time travel, metadata, maintenance."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from pyspark.sql import Row
from pyspark.sql import functions as F

from moulin.delta import (
    AppTransaction,
    CompactionPolicy,
    DeltaStoreError,
    DeltaTableStore,
    SchemaMismatchError,
    TableMetadata,
    TableProperties,
    WriteResult,
)
from moulin.delta.errors import VacuumedVersionError
from moulin.delta.hadoop_fs import HadoopFS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def store(spark) -> DeltaTableStore:
    return DeltaTableStore(spark)


@pytest.fixture(params=["local", "hdfs"])
def base_dir(request) -> str:
    return request.getfixturevalue("local_dir" if request.param == "local" else "hdfs_dir")


def flights(spark, n: int = 60, offset: int = 0):
    """A tiny flights-like DataFrame: month in 1..3, carrier, delays, dates, timestamps."""
    return spark.range(offset, offset + n, numPartitions=2).select(
        F.col("id"),
        ((F.col("id") % 3) + 1).cast("int").alias("month"),
        F.element_at(
            F.array(F.lit("AA"), F.lit("DL"), F.lit("UA")), ((F.col("id") % 3) + 1).cast("int")
        ).alias("carrier"),
        (F.col("id") * 1.5).alias("dep_delay"),
        F.expr("date_add(date'2013-01-01', cast(id as int))").alias("day"),
        F.expr("timestamp_seconds(1357000000 + id * 60)").alias("sched"),
        (F.col("id") % 2 == 0).alias("even"),
        F.when(F.col("id") % 5 == 0, None).otherwise(F.col("id").cast("string")).alias("note"),
    )


def rows(df) -> list[tuple]:
    return sorted(tuple(r) for r in df.collect())


def add_actions(uri: str) -> list[dict]:
    import pyarrow as pa
    from deltalake import DeltaTable

    return pa.table(DeltaTable(uri).get_add_actions(flatten=True)).to_pylist()


def test_partitioned_round_trip_with_stats_and_skipping(spark, store, base_dir) -> None:
    uri = f"{base_dir}/flights"
    df = flights(spark)
    res = store.write(df, uri, partition_by=["month"])
    assert isinstance(res, WriteResult)
    assert (res.committed, res.version, res.num_rows) == (True, 0, 60)
    assert res.num_files == len(store.file_uris(uri)) >= 3
    assert rows(store.read(uri)) == rows(df)

    actions = add_actions(uri)
    for a in actions:  # partition values and per-file statistics in the log
        assert a["path"].startswith(f"month={a['partition.month']}/")
        assert a["num_records"] > 0 and a["min.id"] <= a["max.id"] and a["null_count.id"] == 0
        assert a["min.carrier"] == a["max.carrier"] and a["min.day"] <= a["max.day"]
        assert "max.dep_delay" not in a or a["max.dep_delay"] is None  # doubles: min only
    # partition columns are not stored in data files
    one = spark.read.parquet(store.file_uris(uri)[0])
    assert "month" not in one.columns and "carrier" in one.columns

    snap = store.snapshot(uri)
    all_files = snap.files()
    by_partition = snap.select([("month", "=", 2)])
    by_stats = snap.select([("id", ">=", 50)])
    assert len(by_partition) < len(all_files) and len(by_stats) < len(all_files)
    assert rows(store.read(uri, filters=[("month", "=", 2)])) == rows(df.filter("month = 2"))
    assert rows(store.read(uri, filters=[("id", ">=", 50), ("carrier", "in", ["AA", "UA"])])) == rows(
        df.filter("id >= 50 AND carrier IN ('AA', 'UA')")
    )
    # fewer files are read: the scan's input files are the selected ones
    scanned = store.read(uri, filters=[("id", ">=", 50)]).inputFiles()
    assert 0 < len(scanned) == len(by_stats) < len(all_files)
    assert store.read(uri, filters=[("id", ">", 10_000)]).count() == 0
    assert store.read(uri, filters="day < '2013-01-05' AND month = 1").count() == 2


def test_unpartitioned_round_trip_nulls_and_types(spark, store, local_dir) -> None:
    uri = f"{local_dir}/plain"
    df = flights(spark, 25)
    store.write(df, uri)
    back = store.read(uri)
    assert back.schema.fieldNames() == df.schema.fieldNames()
    assert [f.dataType for f in back.schema] == [f.dataType for f in df.schema]
    assert rows(back) == rows(df)
    assert (
        store.read(uri, filters=[("sched", ">=", dt.datetime(2013, 1, 1, 0, 30))]).count()
        == rows(df.filter("sched >= timestamp'2013-01-01 00:30:00'")).__len__()
    )
    assert store.to_arrow(uri).num_rows == 25
    pdf = store.to_pandas(uri, columns=["id", "note"], filters=[("id", "<", 10)])
    assert sorted(pdf["id"]) == list(range(10)) and pdf["note"].isna().sum() == 2


def test_replace_where_overwrites_only_matching_partitions(spark, store, local_dir) -> None:
    uri = f"{local_dir}/rw"
    df = flights(spark)
    store.write(df, uri, partition_by=["month"])
    new = flights(spark, 6, offset=1000).filter("month = 2")
    res = store.write(new, uri, mode="overwrite", replace_where={"month": 2})
    assert res.committed and res.version == 1
    expected = rows(df.filter("month != 2")) + rows(new)
    assert rows(store.read(uri)) == sorted(expected)
    # string predicates too; rows outside the predicate are refused, nothing committed
    with pytest.raises(DeltaStoreError, match="outside replace_where"):
        store.write(flights(spark, 6), uri, mode="overwrite", replace_where="month = 1")
    assert store.version(uri) == 1
    with pytest.raises(DeltaStoreError, match="may only use partition columns"):
        store.write(new, uri, mode="overwrite", replace_where=[("id", ">", 3)])
    res = store.write(
        flights(spark, 3).filter("month = 1"), uri, mode="overwrite", replace_where="month IN (1)"
    )
    assert store.read(uri, filters={"month": 1}).count() == 1


def test_schema_mismatch_fails_before_writing(spark, store, base_dir) -> None:
    uri = f"{base_dir}/strict"
    store.write(flights(spark, 6), uri, partition_by=["month"])
    files_before = sorted(f.uri for f in HadoopFS(spark, uri).list_files(uri))
    bad = (
        flights(spark, 6)
        .drop("note")
        .withColumn("id", F.col("id").cast("string"))
        .withColumn("color", F.lit("x"))
    )
    with pytest.raises(SchemaMismatchError) as err:
        store.write(bad, uri)
    text = str(err.value)
    assert uri in text
    assert "missing columns (in the table, not in the DataFrame): note string" in text
    assert "extra columns (in the DataFrame, not in the table): color string" in text
    assert "id is string in the DataFrame but bigint in the table" in text
    assert store.version(uri) == 0
    assert sorted(f.uri for f in HadoopFS(spark, uri).list_files(uri)) == files_before
    with pytest.raises(DeltaStoreError, match="partitioned by \\['month'\\]"):
        store.write(flights(spark, 6), uri, partition_by=["carrier"])


def test_schema_evolution_only_when_asked(spark, store, local_dir) -> None:
    uri = f"{local_dir}/evolve"
    store.write(flights(spark, 6), uri, partition_by=["month"])
    wider = flights(spark, 6, offset=100).withColumn("gate", F.lit("G1"))
    with pytest.raises(SchemaMismatchError, match="extra columns .*gate string"):
        store.write(wider, uri)
    res = store.write(wider, uri, schema_mode="merge")
    assert res.committed and res.version == 1  # the new column and its data: one commit
    assert len(store.history(uri)) == 2
    assert sorted(store.to_pandas(uri, filters=[("gate", "=", "G1")])["id"]) == list(range(100, 106))
    back = store.read(uri)
    assert back.schema.fieldNames()[-1] == "gate"
    assert back.filter("gate IS NULL").count() == 6 and back.filter("gate = 'G1'").count() == 6
    # merge also accepts a narrower DataFrame (missing columns read as null)
    store.write(flights(spark, 3, offset=200).drop("note"), uri, schema_mode="merge")
    assert store.read(uri, filters=[("id", ">=", 200)]).filter("note IS NULL").count() == 3


def test_overwrite_whole_table_and_schema(spark, store, local_dir) -> None:
    uri = f"{local_dir}/ow"
    store.write(flights(spark, 6), uri)
    store.write(flights(spark, 4, offset=50), uri, mode="overwrite")
    assert sorted(r.id for r in store.read(uri).collect()) == [50, 51, 52, 53]
    with pytest.raises(SchemaMismatchError):
        store.write(spark.range(3).withColumnRenamed("id", "k"), uri, mode="overwrite")
    store.write(spark.range(3).withColumnRenamed("id", "k"), uri, mode="overwrite", schema_mode="overwrite")
    assert store.read(uri).columns == ["k"] and store.read(uri).count() == 3


def test_idempotent_retry_commits_nothing(spark, store, base_dir) -> None:
    uri = f"{base_dir}/idem"
    df = flights(spark, 9)
    app = "source_flights.bronze"
    first = store.write(df, uri, partition_by=["month"], transaction=AppTransaction(app, 20130101))
    again = store.write(df, uri, partition_by=["month"], transaction=AppTransaction(app, 20130101))
    assert first.committed and not again.committed
    assert again.version == first.version and again.num_rows == 0
    assert store.read(uri).count() == 9
    next_day = store.write(flights(spark, 3, offset=9), uri, transaction=AppTransaction(app, 20130102))
    assert next_day.committed and store.read(uri).count() == 12
    older = store.write(df, uri, transaction=AppTransaction(app, 20130101))  # late retry of an older run
    assert not older.committed and store.read(uri).count() == 12
    from deltalake import DeltaTable

    assert DeltaTable(uri).transaction_version(app) == 20130102
    assert not [
        f
        for f in HadoopFS(spark, uri).list_dir(uri)
        if f.relative == "_staging" and f.is_dir and HadoopFS(spark, uri).list_dir(f.uri)
    ]


def test_merge_upserts_and_deletes(spark, store, local_dir) -> None:
    uri = f"{local_dir}/dim"
    rows0 = [
        Row(code="AA", name="American", hub="DFW"),
        Row(code="DL", name="Delta", hub="ATL"),
        Row(code="UA", name="United", hub="ORD"),
    ]
    store.write(spark.createDataFrame(rows0), uri)
    source = spark.createDataFrame(
        [
            Row(code="AA", name="American", hub="DFW"),
            Row(code="DL", name="Delta Air Lines", hub="ATL"),
            Row(code="B6", name="JetBlue", hub="JFK"),
        ]
    )
    res = store.merge(source, uri, keys=["code"])
    assert res.committed and res.metrics["num_target_rows_updated"] == 1
    assert res.metrics["num_target_rows_inserted"] == 1
    got = {r.code: r.name for r in store.read(uri).collect()}
    assert got == {"AA": "American", "DL": "Delta Air Lines", "UA": "United", "B6": "JetBlue"}

    res = store.merge(
        source, uri, keys=["code"], delete_missing=True, transaction=AppTransaction("dims.airlines", 1)
    )
    assert sorted(r.code for r in store.read(uri).collect()) == ["AA", "B6", "DL"]
    assert not store.merge(
        source, uri, keys=["code"], transaction=AppTransaction("dims.airlines", 1)
    ).committed

    changes = spark.createDataFrame(
        [
            Row(code="AA", name="American", hub="DFW", deleted=True),
            Row(code="F9", name="Frontier", hub="DEN", deleted=False),
            Row(code="ZZ", name="Ghost", hub="XXX", deleted=True),
        ]
    )
    store.merge(changes, uri, keys=["code"], delete_flag="deleted")
    assert sorted(r.code for r in store.read(uri).collect()) == ["B6", "DL", "F9"]
    assert store.read(uri).columns == ["code", "name", "hub"]
    dup = spark.createDataFrame([Row(code="X", name="a", hub="b"), Row(code="X", name="c", hub="d")])
    with pytest.raises(DeltaStoreError, match="repeats keys"):
        store.merge(dup, uri, keys=["code"])


def test_time_travel_and_history(spark, store, base_dir) -> None:
    uri = f"{base_dir}/tt"
    store.write(flights(spark, 3), uri, commit_info={"run": "first"})
    time.sleep(1.1)
    between = dt.datetime.now(dt.UTC)
    time.sleep(1.1)
    store.write(flights(spark, 4, offset=10), uri)
    assert store.read(uri, version=0).count() == 3
    assert store.read(uri).count() == 7
    assert store.read(uri, timestamp=between).count() == 3
    assert store.read(uri, timestamp=between.isoformat()).count() == 3
    assert store.to_arrow(uri, version=0).num_rows == 3
    hist = store.history(uri)
    assert [h["version"] for h in hist] == [1, 0]
    assert hist[1]["run"] == "first" and "moulin.writeId" in hist[0]
    with pytest.raises(DeltaStoreError, match="has no version 9: its versions go from 0 to 1"):
        store.read(uri, version=9)


def test_metadata_round_trip(spark, store, local_dir) -> None:
    uri = f"{local_dir}/meta"
    store.write(
        flights(spark, 6),
        uri,
        partition_by=["month"],
        properties=TableProperties("Flights of 2013, one row per flight", "data-eng@moulin", ("note",)),
    )
    meta = store.metadata(uri)
    assert isinstance(meta, TableMetadata)
    assert meta.description == "Flights of 2013, one row per flight"
    assert (meta.owner, meta.personal_data, meta.partition_by) == ("data-eng@moulin", ["note"], ["month"])
    assert meta.num_rows == 6 and meta.num_files == len(store.file_uris(uri))
    assert meta.schema.fieldNames() == flights(spark, 1).columns and meta.version == store.version(uri)
    store.write(flights(spark, 2, offset=9), uri, properties=TableProperties(owner="ml@moulin"))
    assert store.metadata(uri).owner == "ml@moulin"
    assert store.metadata(uri).personal_data == ["note"]
    with pytest.raises(DeltaStoreError, match="personal_data names column\\(s\\) email"):
        store.write(flights(spark, 2), uri, properties=TableProperties(personal_data=("email",)))


def test_optimize_and_vacuum(spark, store, base_dir) -> None:
    uri = f"{base_dir}/maint"
    for i in range(3):
        store.write(flights(spark, 6, offset=10 * i), uri, partition_by=["month"])
    before = rows(store.read(uri))
    n_before = len(store.file_uris(uri))
    metrics = store.optimize(uri)
    assert metrics["numFilesRemoved"] == n_before and metrics["numFilesAdded"] == 3
    assert len(store.file_uris(uri)) == 3 and rows(store.read(uri)) == before
    assert store.history(uri)[0]["operation"] == "OPTIMIZE"
    with pytest.raises(DeltaStoreError, match="under 168 h"):
        store.vacuum(uri, retention_hours=1)
    assert store.vacuum(uri) == []  # files just removed are inside the retention
    dry = store.vacuum(uri, retention_hours=0, force=True, dry_run=True)
    assert len([p for p in dry if p.endswith(".parquet")]) == n_before
    removed = store.vacuum(uri, retention_hours=0, force=True)
    assert len([p for p in removed if p.endswith(".parquet") and "/." not in p]) == n_before
    assert rows(store.read(uri)) == before
    left = [
        f
        for f in HadoopFS(spark, uri).list_files(uri)
        if f.relative.endswith(".parquet") and not f.relative.rsplit("/", 1)[-1].startswith(".")
    ]
    assert len(left) == 3
    ops = [h["operation"] for h in store.history(uri)]
    # VACUUM, then the property that marks the versions it made unreadable
    assert ops[:2] == ["SET TBLPROPERTIES", "VACUUM END"], json.dumps(ops)
    optimized = 3  # versions 0-2: the appends, 3: OPTIMIZE (intact)
    assert rows(store.read(uri, version=optimized)) == before
    for old in range(optimized):
        with pytest.raises(VacuumedVersionError, match=f"version {old} of table .* was vacuumed"):
            store.read(uri, version=old)
        with pytest.raises(VacuumedVersionError, match="was vacuumed"):
            store.count(uri, version=old)
        with pytest.raises(VacuumedVersionError, match="was vacuumed"):
            store.file_uris(uri, version=old)


def test_auto_compaction_of_small_files(spark, local_dir) -> None:
    uri = f"{local_dir}/compact"
    store = DeltaTableStore(spark, compaction=CompactionPolicy(min_small_files=4))
    for i in range(3):
        store.write(flights(spark, 6, offset=10 * i).coalesce(1), uri, partition_by=["month"])
    assert len(store.file_uris(uri)) == 9  # 3 partitions x 3 files: under the threshold
    before = rows(store.read(uri))
    result = store.write(flights(spark, 6, offset=100).filter("month = 1").coalesce(1), uri)
    ops = [h["operation"] for h in store.history(uri)]
    assert ops[0] == "OPTIMIZE" and result.version == store.version(uri)
    months = sorted(u.split("month=")[1].split("/")[0] for u in store.file_uris(uri))
    assert months == ["1", "2", "2", "2", "3", "3", "3"]  # only the crowded partition compacted
    assert rows(store.read(uri)) == sorted(before + rows(flights(spark, 6, offset=100).filter("month = 1")))
    none = DeltaTableStore(spark, compaction=None)
    for i in range(5):
        none.write(flights(spark, 3, offset=200 + i).filter("month = 2").coalesce(1), uri)
    assert store.history(uri)[0]["operation"] != "OPTIMIZE"
