"""Schema enforcement of moulin.delta (pure: Spark types only, no session)."""

import pytest
from pyspark.sql.types import IntegerType, LongType, StringType, StructField, StructType

from moulin.delta import DeltaStoreError, SchemaMismatchError
from moulin.delta.schema import delta_to_spark, reconcile, spark_to_delta

TABLE = StructType(
    [StructField("id", LongType()), StructField("name", StringType()), StructField("month", IntegerType())]
)


def test_matching_schema_ignores_nullability_and_order() -> None:
    df = StructType(
        [
            StructField("month", IntegerType(), False),
            StructField("id", LongType(), False),
            StructField("name", StringType()),
        ]
    )
    assert reconcile("t", TABLE, df, ["month"], None, "append") == TABLE


def test_mismatch_names_missing_extra_and_mistyped_columns() -> None:
    df = StructType(
        [
            StructField("id", StringType()),
            StructField("month", IntegerType()),
            StructField("color", StringType()),
        ]
    )
    with pytest.raises(SchemaMismatchError) as err:
        reconcile("file:///w/flights", TABLE, df, ["month"], None, "append")
    text = str(err.value)
    assert "file:///w/flights" in text
    assert "missing columns (in the table, not in the DataFrame): name string" in text
    assert "extra columns (in the DataFrame, not in the table): color string" in text
    assert "id is string in the DataFrame but bigint in the table" in text
    assert err.value.missing == ["name"] and err.value.extra == ["color"] and err.value.mistyped == ["id"]


def test_merge_adds_nullable_columns_only_when_asked() -> None:
    df = StructType(list(TABLE.fields) + [StructField("color", StringType(), False)])
    with pytest.raises(SchemaMismatchError, match="schema_mode='merge'"):
        reconcile("t", TABLE, df, ["month"], None, "append")
    merged = reconcile("t", TABLE, df, ["month"], "merge", "append")
    assert merged.fieldNames() == ["id", "name", "month", "color"]
    assert merged["color"].nullable
    # merge never changes a type
    bad = StructType([StructField("id", StringType()), StructField("month", IntegerType())])
    with pytest.raises(SchemaMismatchError, match="mistyped"):
        reconcile("t", TABLE, bad, ["month"], "merge", "append")


def test_new_table_checks_partition_columns() -> None:
    with pytest.raises(DeltaStoreError, match="partition column\\(s\\) day"):
        reconcile("t", None, TABLE, ["day"], None, "append")
    new = reconcile("t", None, StructType([StructField("id", LongType(), False)]), [], None, "append")
    assert new["id"].nullable


def test_delta_schema_round_trip() -> None:
    assert delta_to_spark(spark_to_delta(TABLE)) == TABLE
