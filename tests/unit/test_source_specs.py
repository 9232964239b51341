"""Source specs: validation errors name file, line and field; contracts found outside the
repo; contracts drafted from a sample; manifests count rows with an independent reader."""

from __future__ import annotations

from pathlib import Path

import pytest
from source_files import order_rows, to_csv, to_jsonl, write_contracts

from moulin.contracts import ContractError, load_contract
from moulin.ingest.counting import count_csv_rows, count_jsonl_rows, decode_error
from moulin.sources.infer import draft, infer_type
from moulin.sources.spec import SourceSpecError, load_spec_file, parse_spec, validate_spec


@pytest.fixture
def team(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MOULIN_CONTRACTS_DIR", str(tmp_path / "contracts"))
    return tmp_path / "contracts"


def test_a_valid_spec_and_its_contract_from_a_folder_outside_the_repo(team, tmp_path) -> None:
    spec = load_spec_file(write_contracts(team, tmp_path / "drops"))
    assert (spec.name, spec.kind, spec.mode, spec.raw_format) == ("orders", "file", "partition", "csv")
    contract = validate_spec(spec)
    assert contract.path.parent == team and contract.column("unit_price").type == "decimal(10,2)"
    assert load_contract("bronze_flights").path.parent.name == "schemas"  # moulin's own still found
    names = [e.name for e in contract.expectations]
    assert "unique:order_id" in names and "not_null:customer" in names  # keys and nullable: false enforced


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: orders\nkind: ftp\ncontract: bronze_orders\n", r"orders.yaml:2: field kind: 'ftp' is not one of"),
        ("name: orders\nkind: file\ncontract: bronze_orders\nfile:\n  format: csv\n", r":4: field file.path"),
        ("name: orders\nkind: file\ncontract: bronze_orders\nfile:\n  path: x\n  header: maybe\n",
         r":6: field file.header: expected true or false"),
        ("name: orders\nkind: sql\ncontract: bronze_orders\nsql:\n  table: t\n", r"field sql: give either url"),
        ("name: orders\nkind: file\ncontract: bronze_orders\nfile: {path: x}\nmode: upsert\n",
         r":5: field mode: 'upsert'"),
        ("name: orders\nkind: file\ncontract: bronze_orders\nfile: {path: x}\nschedul: '@daily'\n",
         r":5: field schedul: unknown field"),
        ("name: orders\nkind: file\ncontract: bronze_orders\nfile: {path: x}\nend_date: soon\n",
         r":5: field end_date: expected a date YYYY-MM-DD, got 'soon'"),
        ("name: orders\nkind: file\ncontract: bronze_orders\nfile: {path: x}\nstart_date: 2013-02-01\n"
         "end_date: 2013-01-01\n", r":6: field end_date: 2013-01-01 is before start_date 2013-02-01"),
    ],
)  # fmt: skip
def test_spec_errors_name_file_line_and_field(tmp_path, text, message) -> None:
    path = tmp_path / "orders.yaml"
    path.write_text(text)
    with pytest.raises(SourceSpecError, match=message):
        load_spec_file(path)


def test_spec_checked_against_its_contract(team, tmp_path) -> None:
    path = write_contracts(team, tmp_path, extra="mode: merge\n")
    (team / "bronze_orders.yaml").write_text(
        (team / "bronze_orders.yaml").read_text().replace("keys: [order_id]", "keys: []")
    )
    with pytest.raises(SourceSpecError, match="field mode: merge needs keys"):
        validate_spec(load_spec_file(path))
    path.write_text(path.read_text().replace("contract: bronze_orders", "contract: bronze_nowhere"))
    with pytest.raises(SourceSpecError, match="field contract: no contract 'bronze_nowhere'"):
        validate_spec(load_spec_file(path))


def test_contract_decimal_type_and_bad_type_message(tmp_path) -> None:
    with pytest.raises(ContractError, match=r"decimal\(p,s\)"):
        from moulin.contracts import parse_contract

        parse_contract(
            {"name": "t", "layer": "gold", "table": "gold/t", "quarantine_threshold": 0,
             "columns": [{"name": "x", "type": "money", "nullable": True}]}, tmp_path / "t.yaml")  # fmt: skip


def test_infer_drafts_types_nullability_keys_and_ranges(tmp_path) -> None:
    assert [infer_type(v) for v in (["1", "-2"], ["3000000000"], ["1.5", "2"], ["true", "False"],
            ["2024-01-02"], ["2024-01-02T10:00:00+01:00"], ["x", "1"])] == [
        "int", "bigint", "double", "boolean", "date", "timestamp", "string"]  # fmt: skip
    path = tmp_path / "orders.csv"
    path.write_bytes(to_csv(order_rows(60)))
    contract, spec = draft(path, "orders")
    cols = {c["name"]: c for c in contract["columns"]}
    assert cols["order_id"] == {"name": "order_id", "type": "int", "nullable": False}
    assert cols["quantity"]["nullable"] and cols["shipped_at"]["type"] == "timestamp"
    assert cols["express"]["type"] == "boolean" and cols["order_date"]["type"] == "date"
    assert contract["keys"] == ["order_id"] and spec["file"]["format"] == "csv"
    ranged = {e["column"]: e for e in contract["expectations"] if e["type"] == "between"}
    assert "order_id" not in ranged  # an identifier: no range
    assert isinstance(ranged["rating"]["min"], int) and isinstance(ranged["weight_kg"]["max"], float)
    jsonl = tmp_path / "orders.jsonl"
    jsonl.write_bytes(to_jsonl(order_rows(10)))
    contract, _ = draft(jsonl, "orders", fmt="jsonl")
    assert {c["name"]: c["type"] for c in contract["columns"]}["express"] == "boolean"


def test_manifest_counts_skip_blank_lines_and_keep_quoted_newlines() -> None:
    data = b'a,b\n1,"x\ny"\n\n2,z\n'
    assert count_csv_rows(data) == 2
    assert count_jsonl_rows(b'{"a": 1}\n\n{"a": 2}\n') == 2
    assert decode_error(b"ok\ncaf\xe9\n", "utf-8") == "byte 0xe9 at offset 6 (line 2) is not valid utf-8"
    assert decode_error(b"ok", "utf-8") is None


def test_parse_spec_defaults(tmp_path) -> None:
    spec = parse_spec(
        {"name": "s", "kind": "file", "contract": "c", "file": {"path": "*.csv"}}, tmp_path / "s.yaml"
    )
    assert spec.on_changed_file == "refuse" and not spec.allow_empty and spec.file.require_final_newline
    assert spec.file.pattern("2024-03-01", tmp_path) == str(tmp_path / "*.csv")


def test_the_flights_sources_are_specs(tmp_path) -> None:
    """Flights' five sources: monthly drops partitioned by date, two snapshot files, an
    incremental SQL table merged by key and a SQL snapshot, on one window that ends."""
    import datetime as dt

    from moulin.sources.spec import load_spec, spec_warnings

    specs = {name: load_spec(name) for name in ("flights", "weather", "airlines", "planes", "airports")}
    assert {n: (s.kind, s.mode) for n, s in specs.items()} == {
        "flights": ("file", "partition"), "weather": ("file", "snapshot"), "airlines": ("file", "snapshot"),
        "planes": ("sql", "merge"), "airports": ("sql", "snapshot"),
    }  # fmt: skip
    for spec in specs.values():
        validate_spec(spec)
        assert (spec.start_date, spec.end_date) == (dt.date(2013, 1, 1), dt.date(2013, 12, 1))
        assert not spec_warnings(spec)
    planes = specs["planes"]
    assert planes.sql.watermark == "plane_id" and planes.allow_empty
    assert planes.sql.database_url(tmp_path) == f"sqlite:///{tmp_path}/sources/flights.sqlite"
    assert specs["flights"].file.pattern("2013-09-01", tmp_path, tmp_path) == str(
        tmp_path / "drops" / "flights" / "2013-09-01" / "*.csv"
    )
