"""Bronze quality gate: typed parsing, quarantine reasons, thresholds, accounting, GE agreement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moulin.contracts import load_contract, parse_contract
from moulin.quality import (
    QualityError,
    QualityGateError,
    check_header,
    quality_gate,
    read_raw_csv,
)

CONTRACT = {
    "name": "bronze_tiny",
    "layer": "bronze",
    "table": "bronze/tiny",
    "keys": ["id"],
    "columns": [
        {"name": "id", "type": "int", "nullable": False},
        {"name": "code", "type": "string", "nullable": False},
        {"name": "delay", "type": "double", "nullable": True},
        {"name": "at", "type": "timestamp", "nullable": True},
    ],
    "expectations": [
        {"type": "not_null", "columns": ["id", "code"]},
        {"type": "unique", "columns": ["id"]},
        {"type": "in_set", "column": "code", "values": ["A", "B"]},
        {"type": "between", "column": "delay", "min": -60, "max": 600},
        {"type": "regex", "column": "code", "pattern": "^[A-Z]$"},
        {"name": "delay_needs_time", "type": "expression", "sql": "delay IS NULL OR at IS NOT NULL"},
    ],
    "quarantine_threshold": 0.8,
}
ROWS = [
    # id, code, delay, at
    ("1", "A", "5.5", "2013-01-01T10:00:00Z"),  # good
    ("2", "B", "NA", "NA"),  # good: NA is a null marker
    ("3", "C", "1", "2013-01-01T11:00:00Z"),  # in_set
    ("4", "A", "abc", "2013-01-01T11:00:00Z"),  # does not parse
    ("5", "A", "900", "2013-01-01T11:00:00Z"),  # between
    ("6", "A", "1", "NA"),  # expression
    ("7", "A", "1", "2013-01-01T12:00:00Z"),  # duplicate id (both rows fail)
    ("7", "B", "2", "2013-01-01T12:00:00Z"),
    ("NA", "B", "2", "2013-01-01T12:00:00Z"),  # id missing
    ("8", "A", "2", "2013-01-01T12:00:00Z"),  # good
]


@pytest.fixture(scope="module")
def contract():
    return parse_contract(CONTRACT, Path("schemas/bronze_tiny.yaml"))


def _raw(spark, rows=ROWS):
    df = spark.createDataFrame(rows, "id string, code string, delay string, at string")
    return df.selectExpr("*", "'file:///raw/tiny.csv' AS _source_file", "'2013-01-01' AS ds")


def test_quarantine_reasons_and_accounting(spark, contract):
    result = quality_gate(_raw(spark), contract, run_id="run-1", ds="2013-01-01", run_ge=False)
    try:
        rec = result.record
        assert (rec["rows_read"], rec["rows_bronze"], rec["rows_quarantined"]) == (10, 3, 7)
        assert rec["passed"] and rec["failed_share"] == pytest.approx(0.7)
        bronze = {r["id"]: r for r in result.bronze.collect()}
        assert sorted(bronze) == [1, 2, 8]
        assert bronze[2]["delay"] is None and bronze[2]["at"] is None
        assert bronze[1]["delay"] == 5.5 and bronze[1]["_source_file"] == "file:///raw/tiny.csv"
        q = {
            json.loads(r["row"])["id"] + "/" + json.loads(r["row"])["code"]: r
            for r in result.quarantine.collect()
        }
        assert q["3/C"]["failed_expectations"] == ["in_set:code"]
        assert "code=C not in ['A', 'B']" in q["3/C"]["reason"]
        assert q["4/A"]["failed_expectations"] == ["parses:delay"]
        assert q["4/A"]["reason"] == "delay='abc' does not parse as double"
        assert json.loads(q["4/A"]["row"]) == {
            "id": "4",
            "code": "A",
            "delay": "abc",
            "at": "2013-01-01T11:00:00Z",
        }
        assert q["5/A"]["failed_expectations"] == ["between:delay"]
        assert "delay=900.0 not between -60 and 600" in q["5/A"]["reason"]
        assert q["6/A"]["failed_expectations"] == ["delay_needs_time"]
        assert q["7/A"]["failed_expectations"] == ["unique:id"] == q["7/B"]["failed_expectations"]
        assert q["NA/B"]["failed_expectations"] == ["not_null:id"]
        assert {r["run_id"] for r in q.values()} == {"run-1"}
        assert {r["table"] for r in q.values()} == {"bronze_tiny"}
        assert rec["failures"]["unique:id"] == 2
    finally:
        result.release()


def test_threshold_fails_the_run_with_a_clear_error(spark, contract):
    strict = parse_contract({**CONTRACT, "quarantine_threshold": 0.1}, Path("schemas/bronze_tiny.yaml"))
    result = quality_gate(_raw(spark), strict, run_id="run-2", ds="2013-01-01", run_ge=False)
    assert not result.passed
    assert result.quarantine.count() == 7  # still available to write before failing
    with pytest.raises(QualityGateError) as info:
        result.enforce()
    message = str(info.value)
    assert "bronze_tiny" in message and "7 of 10" in message and "quarantine_threshold 10.00%" in message
    assert "unique:id (2)" in message
    result.release()


def test_csv_malformed_lines_and_header(spark, tmp_path, contract):
    path = tmp_path / "tiny.csv"
    path.write_text("id,code,delay,at\n1,A,1,2013-01-01T10:00:00Z\n2,B\n3,A,1,2013-01-01T10:00:00Z,extra\n")
    raw = read_raw_csv(spark, path.resolve().as_uri(), contract, "2013-01-01")
    result = quality_gate(raw, contract, run_id="run-3", ds="2013-01-01", run_ge=False)
    rows = result.quarantine.collect()
    assert result.record["rows_read"] == 3 and result.record["rows_bronze"] == 1
    assert all("well_formed_row" in r["failed_expectations"] for r in rows)
    assert {json.loads(r["row"])["line"] for r in rows} == {"2,B", "3,A,1,2013-01-01T10:00:00Z,extra"}
    assert all(r["source_file"].endswith("tiny.csv") for r in rows)
    assert all(r["ds"] == "2013-01-01" for r in rows)
    result.release()
    check_header("id,code,delay,at", contract, "tiny.csv")
    with pytest.raises(
        QualityError, match=r"tiny.csv: header does not match contract bronze_tiny.*missing \['at'\]"
    ):
        check_header("id,code,delay", contract, "tiny.csv")


def test_great_expectations_agrees_with_row_level(spark, contract):
    result = quality_gate(_raw(spark), contract, run_id="run-4", ds="2013-01-01", run_ge=True)
    ge = {r["name"]: r for r in result.record["ge"]}
    assert set(ge) == {e.name for e in contract.expectations if e.type != "expression"}
    assert ge["unique:id"]["unexpected_count"] == 2 and not ge["unique:id"]["success"]
    assert ge["in_set:code"]["unexpected_count"] == 1
    assert ge["not_null:code"]["success"] and ge["not_null:code"]["element_count"] == 10
    result.release()


def test_great_expectations_counts_the_same_on_pandas_and_spark(spark, contract):
    from moulin.quality.ge import validate

    on_spark = quality_gate(_raw(spark), contract, run_id="run-5", ds="2013-01-01", ge_local_max_rows=0)
    local = quality_gate(_raw(spark), contract, run_id="run-6", ds="2013-01-01", ge_local_max_rows=10)
    assert local.record["ge"] == on_spark.record["ge"]
    assert local.ge_validation.result_json != on_spark.ge_validation.result_json  # each names its engine
    on_spark.release()
    local.release()
    # A real contract (timestamps, bounds, sets) on rows that break some of it, both engines.
    weather = load_contract("bronze_weather")
    gated = quality_gate(_weather_raw(spark, weather), weather, "w", "2013-01-01", run_ge=False)
    frame = gated.evaluated.select(*weather.column_names)
    spark_results = validate(frame, weather).results
    assert any(r["unexpected_count"] for r in spark_results)
    assert validate(frame, weather, rows=3, local_max_rows=3).results == spark_results
    gated.release()


def _weather_raw(spark, contract):
    good = ["EWR", "2013", "2", "12", "3", "39.98", "33.98", "79.0", "240", "8.05546", "NA", "0", "1030", "10",
            "2013-02-12T08:00:00Z"]  # fmt: skip
    bad = [*good[:9], "1048.36058", *good[10:14], "2013-02-12T09:00:00Z"]
    other = ["XXX", *good[1:5], "NA", *good[6:14], "2013-02-12T10:00:00Z"]
    return spark.createDataFrame([good, bad, other], ", ".join(f"{c} string" for c in contract.column_names))


def test_real_weather_contract_quarantines_the_sensor_error(spark):
    contract = load_contract("bronze_weather")
    df = _weather_raw(spark, contract).limit(2)
    result = quality_gate(df, contract, run_id="w", ds="2013-01-01", run_ge=False)
    (row,) = result.quarantine.collect()
    assert row["failed_expectations"] == ["between:wind_speed"]
    assert "wind_speed=1048.36058 not between 0 and 150" in row["reason"]
    result.release()
