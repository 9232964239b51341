"""Contracts as data: every schema loads, types map to Spark, errors name file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from moulin.contracts import ContractError, load_all_contracts, load_contract, load_contract_file, spark_type
from moulin.sources.spec import SourceSpecError, sources_by_contract

FEATURE_COLUMNS = [
    "flight_id", "dep_date", "split", "dep_delayed_15", "carrier", "origin", "dest", "month",
    "day_of_week", "sched_dep_hour", "distance", "plane_age", "temp", "humid", "wind_speed",
    "precip", "pressure", "visib", "route_delay_rate",
]  # fmt: skip


def test_all_contracts_load():
    contracts = load_all_contracts()
    for name in ["bronze_flights", "bronze_weather", "bronze_planes", "bronze_airports", "bronze_airlines",
                 "silver_flights", "gold_route_delay_stats", "gold_carrier_delay_stats",
                 "gold_hour_delay_stats", "flight_features", "quarantine", "table_profiles"]:  # fmt: skip
        assert name in contracts
        assert 0 <= contracts[name].quarantine_threshold <= 1
    sources = sources_by_contract()
    for name, contract in contracts.items():
        if contract.layer == "bronze":
            assert sources[name] == name.removeprefix("bronze_"), f"{name} is written by no source spec"
            assert contract.personal_data_note, f"{name} must say why it holds no personal data"


def test_a_bronze_source_is_declared_by_its_spec_only(tmp_path, monkeypatch):
    """The contract names no source (its spec does): a ``source:`` block is refused with
    the fix, and two specs writing one contract are refused naming both."""
    data = yaml.safe_load(Path(load_contract("bronze_weather").path).read_text())
    data["source"] = {"name": "weather", "format": "csv"}
    (tmp_path / "bronze_weather.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ContractError, match=r"field source: .*declared once, by its source spec.*"
                       r"`contract: bronze_weather` names this table\): delete the contract's source block"):  # fmt: skip
        load_contract_file(tmp_path / "bronze_weather.yaml")
    (tmp_path / "sources").mkdir()
    for name in ("weather", "weather_copy"):
        (tmp_path / "sources" / f"{name}.yaml").write_text(
            f"name: {name}\nkind: file\ncontract: bronze_weather\nfile: {{path: x, format: csv}}\n"
        )
    monkeypatch.setenv("MOULIN_CONTRACTS_DIR", str(tmp_path))
    with pytest.raises(SourceSpecError, match=r"sources 'weather' and 'weather_copy' both write contract"):
        sources_by_contract()


def test_feature_contract_keeps_its_columns_and_roles():
    contract = load_contract("flight_features")
    assert contract.column_names == FEATURE_COLUMNS
    assert contract.columns_with_role("label") == ["dep_delayed_15"]
    assert contract.split["train_until"] == "2013-08-31"


def test_spark_schema_of_bronze_has_lineage_columns():
    schema = load_contract("bronze_flights").spark_schema()
    assert schema["dep_time"].dataType.typeName() == "integer"
    assert schema["time_hour"].dataType.typeName() == "timestamp"
    assert not schema["carrier"].nullable and schema["tailnum"].nullable
    assert schema.fieldNames()[-2:] == ["_source_file", "ds"]
    assert load_contract("silver_flights").spark_schema().fieldNames()[0] == "flight_id"
    assert spark_type("array<string>").simpleString() == "array<string>"


def test_expectations_are_expanded_and_named():
    names = [e.name for e in load_contract("bronze_weather").expectations]
    assert "not_null:origin" in names and "unique:origin+time_hour" in names
    assert "between:wind_speed" in names


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _base() -> dict:
    return {
        "name": "t",
        "layer": "silver",
        "table": "silver/t",
        "keys": ["a"],
        "columns": [
            {"name": "a", "type": "int", "nullable": False},
            {"name": "b", "type": "string", "nullable": True},
        ],
        "expectations": [{"type": "not_null", "columns": ["a"]}],
        "quarantine_threshold": 0.0,
    }


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda d: d.pop("quarantine_threshold"), "quarantine_threshold", "missing required field"),
        (lambda d: d["columns"][1].update(type="integer"), "columns[1].type", "unknown Spark type 'integer'"),
        (lambda d: d["columns"][0].update(nullable="no"), "columns[0].nullable", "true or false"),
        (lambda d: d.update(keys=["zz"]), "keys", "unknown column 'zz'"),
        (lambda d: d.update(quarantine_threshold=1.5), "quarantine_threshold", "between 0 and 1"),
        (
            lambda d: d["expectations"].append({"type": "looks_fine"}),
            "expectations[1].type",
            "unknown expectation",
        ),
        (
            lambda d: d["expectations"].append({"type": "between", "column": "a"}),
            "expectations[1]",
            "min and/or max",
        ),
        (
            lambda d: d["expectations"].append({"type": "regex", "column": "b", "pattern": "("}),
            "expectations[1].pattern",
            "invalid regular",
        ),
        (lambda d: d.update(colums=[]), "colums", "unknown field"),
        (lambda d: d.update(layer="platinum"), "layer", "not one of"),
        (
            lambda d: d.update(source={"name": "t", "incremental_column": "id"}),
            "source",
            "declared once, by its source spec (sources/<name>.yaml, whose `contract: t` names this table)",
        ),
    ],
)
def test_invalid_contracts_name_file_and_field(tmp_path, change, field, words):
    data = _base()
    change(data)
    path = _write(tmp_path, data)
    with pytest.raises(ContractError) as info:
        load_contract_file(path)
    message = str(info.value)
    assert str(path) in message and f"field {field}:" in message and words in message


def test_invalid_yaml_and_missing_contract(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ContractError, match="invalid YAML"):
        load_contract_file(path)
    with pytest.raises(ContractError, match="no contract .nope.*available: bad, t"):
        _write(tmp_path, _base())
        load_contract("nope", tmp_path)


def test_ge_expectations_built_from_contract():
    pairs = load_contract("bronze_airlines").ge_expectations()
    types = [ge.expectation_type for _, ge in pairs]
    assert types == [
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_unique",
        "expect_column_values_to_match_regex",
    ]
    # expressions have no GE twin
    flights = load_contract("bronze_flights")
    assert len(flights.ge_expectations()) == len([e for e in flights.expectations if e.type != "expression"])
