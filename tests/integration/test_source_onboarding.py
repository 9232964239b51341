"""Onboarding a source as someone new would (issue 28): what could duplicate, swap or alter
data silently is refused or said — a file redelivered under another date, a header in
another order, line breaks inside quoted fields of CRLF files, non-finite doubles."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
from dataclasses import replace
from pathlib import Path

import pytest
from source_files import COLUMNS, CONTRACT, order_rows, to_csv, write_contracts

from moulin.cli import build_parser
from moulin.contracts import ContractError, load_contract, load_contract_file
from moulin.delta import DeltaTableStore
from moulin.ingest.landing import RedeliveryError, read_manifest
from moulin.quality import QualityError
from moulin.quality.rules import check_header
from moulin.sources.bronze import gate_landing
from moulin.sources.cli import run_source, source_cli
from moulin.sources.land import land_source
from moulin.sources.spec import load_spec_file

pytestmark = pytest.mark.integration

DS, NEXT = "2024-03-01", "2024-03-02"


@pytest.fixture(scope="module")
def contracts(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("onboarding-contracts")
    os.environ["MOULIN_CONTRACTS_DIR"] = str(folder)
    yield folder
    del os.environ["MOULIN_CONTRACTS_DIR"]


@pytest.fixture(scope="module")
def src_settings(settings, tmp_path_factory, contracts):
    return replace(settings, home=tmp_path_factory.mktemp("onboarding-home"), contracts_dir=contracts)


def onboard(contracts: Path, drops: Path, name: str, keys: str = "[order_id]", file_extra: str = "",
            contract_edit=lambda text: text):  # fmt: skip
    """The test source ``name`` (the orders contract with ``keys``; ``file_extra``: more
    ``file:`` lines of the spec; ``contract_edit``: a change of the contract's text)."""
    spec = write_contracts(contracts, drops, name=name)
    contract = contracts / f"bronze_{name}.yaml"
    contract.write_text(contract_edit(contract.read_text().replace("keys: [order_id]", f"keys: {keys}")))
    spec.write_text(spec.read_text().replace("  format: csv\n", f"  format: csv\n{file_extra}"))
    return load_spec_file(spec)


def bronze_rows(settings, name: str) -> list[dict]:
    return DeltaTableStore(None).to_arrow(settings.table_uri("bronze", name)).to_pylist()


def quarantined(settings, name: str) -> list[dict]:
    uri = settings.table_uri("quarantine", name)
    return DeltaTableStore(None).to_arrow(uri).to_pylist() if DeltaTableStore(None).exists(uri) else []


# ------------------------------------------------------------------ 1. redelivery
@pytest.mark.parametrize("keys", ["[order_id]", "[]"])
def test_a_file_already_landed_under_another_date_is_refused_naming_that_date(
    keys, spark, src_settings, contracts, tmp_path
):
    name = "redelivered_keys" if keys != "[]" else "redelivered_nokeys"
    spec = onboard(contracts, tmp_path, name, keys=keys)
    data = to_csv(order_rows(20, seed=21))
    (tmp_path / f"{name}_{DS}.csv").write_bytes(data)
    (tmp_path / f"{name}_{NEXT}.csv").write_bytes(data)
    land_source(src_settings, spec, DS)
    gate_landing(spark, src_settings, spec, DS, run_ge=False)
    with pytest.raises(RedeliveryError) as refused:  # what `moulin source run <name> --ds <NEXT>` does
        run_source(src_settings, name, NEXT, run_ge=False, spark=spark)
    message = str(refused.value)
    assert f"{name}_{NEXT}.csv has the same bytes as" in message and f"landed under ds={DS}" in message
    assert f"moulin source run {name} --ds {NEXT} --redelivery" in message
    assert read_manifest(src_settings, name, NEXT) is None  # nothing landed, no table changed
    assert len(bronze_rows(src_settings, name)) == 20
    assert build_parser().parse_args(["source", "run", name, "--ds", NEXT, "--redelivery"]).redelivery
    landed = land_source(src_settings, spec, NEXT, redelivery=True)  # the operator says it is deliberate
    assert landed["status"] == "landed"
    assert read_manifest(src_settings, name, NEXT)["redelivery_of"][0].startswith(f"ds={DS}: ")
    if keys == "[]":
        out = gate_landing(spark, src_settings, spec, NEXT, run_ge=False)
        assert out.rows_bronze == 20 and len(bronze_rows(src_settings, name)) == 40


def test_the_source_dag_lands_a_redelivery_only_when_its_run_says_so(src_settings, contracts, tmp_path):
    """The operator's way in Airflow: the DAG's ``redelivery`` parameter (default false)."""
    from moulin.settings import load_settings
    from moulin.sources.dags import build

    name = "redelivered_dag"
    spec = onboard(contracts, tmp_path, name)
    data = to_csv(order_rows(10, seed=22))
    (tmp_path / f"{name}_{DS}.csv").write_bytes(data)
    (tmp_path / f"{name}_{NEXT}.csv").write_bytes(data)
    dag = build(spec)
    assert dag.params["redelivery"] is False
    land = dag.get_task("land").python_callable  # what the task runs, in this process
    assert land(ds=DS, params=dict(dag.params))["status"] == "landed"
    with pytest.raises(RedeliveryError, match=f"trigger {spec.dag_id} for {NEXT} with the parameter"):
        land(ds=NEXT, params=dict(dag.params))
    settings = load_settings()
    assert read_manifest(settings, name, NEXT) is None
    assert land(ds=NEXT, params={"redelivery": True})["status"] == "landed"
    assert read_manifest(settings, name, NEXT)["redelivery_of"][0].startswith(f"ds={DS}: ")


# ------------------------------------------------------------------ 2. header order
def test_the_swapped_header_error_never_advises_reordering_the_contract(contracts, tmp_path):
    spec = onboard(contracts, tmp_path, "swapped_message")
    contract = load_contract("bronze_swapped_message")
    swapped = [COLUMNS[0], COLUMNS[2], COLUMNS[1], *COLUMNS[3:]]
    with pytest.raises(QualityError) as refused:
        check_header(",".join(swapped), contract, "orders.csv", spec_path=str(spec.path))
    message = str(refused.value)
    assert "reorder the contract" not in message
    assert "moved: ['city', 'customer']" in message
    assert f"set file.columns_from_header: true in {spec.path}" in message
    assert check_header(",".join(swapped), contract, "orders.csv", by_name=True) == swapped


def test_columns_from_header_puts_each_value_under_its_header_name(spark, src_settings, contracts, tmp_path):
    name = "by_name"
    spec = onboard(contracts, tmp_path, name, file_extra="  columns_from_header: true\n")
    assert spec.file is not None and spec.file.columns_from_header
    in_order = order_rows(5, seed=22)
    swapped = order_rows(5, start_id=6, seed=23)
    other = [COLUMNS[0], COLUMNS[2], COLUMNS[1], *COLUMNS[3:-1], COLUMNS[-1]]
    other[3], other[-1] = other[-1], other[3]  # quantity <-> weight_kg, last column moved
    (tmp_path / f"{name}_{DS}_a.csv").write_bytes(to_csv(in_order))
    (tmp_path / f"{name}_{DS}_b.csv").write_bytes(to_csv(swapped, columns=other))
    land_source(src_settings, spec, DS)
    out = gate_landing(spark, src_settings, spec, DS, run_ge=True)
    assert (out.rows_bronze, out.rows_quarantined) == (10, 0)
    got = {r["order_id"]: r for r in bronze_rows(src_settings, name)}
    for row in in_order + swapped:
        stored = got[row["order_id"]]
        assert (stored["customer"], stored["city"] or "") == (row["customer"], row["city"])
        assert str(stored["quantity"] or "") == row["quantity"]
        assert f"{stored['weight_kg']:.3f}" == row["weight_kg"]


# ------------------------------------------------------------------ 3. text intact
TEXTS = ["one\r\ntwo", "a\nb", "c\r\n\r\nd", 'said "x"\r\nthen', "tail\r\n", "plain"]


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_text_is_what_pythons_csv_module_reads_for_lf_and_crlf_files(
    line_end, spark, src_settings, contracts, tmp_path
):
    name = "text_crlf" if line_end == "\r\n" else "text_lf"
    spec = onboard(contracts, tmp_path, name)
    rows = order_rows(len(TEXTS) * 3, seed=24)
    for i, row in enumerate(rows):
        row["note"] = TEXTS[i % len(TEXTS)]
        row["weight_kg"] = row["weight_kg"] if i % 2 else ""  # the last column, quoted or not, empty
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=line_end)
    writer.writerow(COLUMNS)
    writer.writerows([[r[c] for c in COLUMNS] for r in rows])
    data = out.getvalue().encode()
    (tmp_path / f"{name}_{DS}.csv").write_bytes(data)
    expected = {int(r[0]): r for r in list(csv.reader(io.StringIO(data.decode(), newline="")))[1:]}
    land_source(src_settings, spec, DS)
    result = gate_landing(spark, src_settings, spec, DS, run_ge=False)
    assert result.rows_bronze == len(rows)
    for stored in bronze_rows(src_settings, name):
        raw = expected[stored["order_id"]]
        for column in ("customer", "city", "status", "note"):
            assert (stored[column] or "") == raw[COLUMNS.index(column)], (column, stored)
        assert ("" if stored["weight_kg"] is None else f"{stored['weight_kg']:.3f}") == raw[-1]


# ------------------------------------------------------------------ 4. doubles
NON_FINITE = ["NaN", "Infinity", "-inf", "1e400", "1.5d", "0x1p3"]


def test_non_finite_and_suffixed_doubles_are_quarantined_with_a_reason(
    spark, src_settings, contracts, tmp_path
):
    name = "doubles"
    spec = onboard(contracts, tmp_path, name, contract_edit=lambda t: t.replace("0.2\n", "0.9\n"))
    rows = order_rows(len(NON_FINITE) + 2, seed=25)
    for row, value in zip(rows, NON_FINITE, strict=False):
        row["discount"] = value
    (tmp_path / f"{name}_{DS}.csv").write_bytes(to_csv(rows))
    land_source(src_settings, spec, DS)
    out = gate_landing(spark, src_settings, spec, DS, run_ge=True)  # GE and the rows agree
    assert (out.rows_bronze, out.rows_quarantined) == (2, len(NON_FINITE))
    assert out.failures == {"parses:discount": len(NON_FINITE)}
    reasons = {r["reason"] for r in quarantined(src_settings, name)}
    assert "discount='NaN' does not parse as double: a finite decimal number is expected" in "".join(reasons)
    assert all("allow_non_finite: true" in r for r in reasons)


def test_allow_non_finite_keeps_nan_and_infinity_but_not_suffixes(spark, src_settings, contracts, tmp_path):
    name = "doubles_allowed"
    allow = "{name: discount, type: double, nullable: true, allow_non_finite: true}"
    spec = onboard(
        contracts,
        tmp_path,
        name,
        contract_edit=lambda t: t.replace("{name: discount, type: double, nullable: true}", allow).replace(
            "0.2\n", "0.9\n"
        ),
    )
    rows = order_rows(len(NON_FINITE), seed=26)
    for row, value in zip(rows, NON_FINITE, strict=True):
        row["discount"] = value
    (tmp_path / f"{name}_{DS}.csv").write_bytes(to_csv(rows))
    land_source(src_settings, spec, DS)
    out = gate_landing(spark, src_settings, spec, DS, run_ge=True)
    assert (out.rows_bronze, out.rows_quarantined) == (4, 2)  # 1.5d and 0x1p3 never parse
    kept = sorted(str(r["discount"]) for r in bronze_rows(src_settings, name))
    assert kept == ["-inf", "inf", "inf", "nan"]


def test_allow_non_finite_with_a_range_or_not_null_is_refused_by_the_contract(tmp_path):
    plain = "{name: discount, type: double, nullable: true}"
    allowed = CONTRACT.replace(
        plain, "{name: discount, type: double, nullable: true, allow_non_finite: true}"
    )
    cases = {
        "ignores NaN in a range check": allowed.replace("column: quantity", "column: discount"),
        "needs nullable: true": CONTRACT.replace(
            plain, "{name: discount, type: double, nullable: false, allow_non_finite: true}"
        ),
        "double and float columns only": CONTRACT.replace(
            "{name: city, type: string, nullable: true}",
            "{name: city, type: string, nullable: true, allow_non_finite: true}",
        ),
    }
    for message, text in cases.items():
        path = tmp_path / "bronze_orders.yaml"
        path.write_text(text)
        with pytest.raises(ContractError, match=message):
            load_contract_file(path)


# ------------------------------------------------------------------ 5. dates
def test_validate_warns_about_a_glob_without_the_date(src_settings, contracts, tmp_path, capsys):
    spec = onboard(contracts, tmp_path, "undated")
    spec.path.write_text(spec.path.read_text().replace("undated_{ds}*.csv", "undated_*.csv"))
    source_cli(build_parser().parse_args(["source", "validate", "undated"]), src_settings)
    printed = capsys.readouterr().out
    assert "warning:" in printed and "has no {ds} or {ds_nodash}" in printed and "undated_*.csv" in printed


def test_replace_withdraws_files_gone_from_the_drop_and_unland_takes_a_date_back(
    spark, src_settings, contracts, tmp_path, capsys
):
    name = "wrong_date"
    spec = onboard(contracts, tmp_path, name)
    dated = spec.path.read_text()
    spec.path.write_text(dated.replace(f"{name}_{{ds}}*.csv", f"{name}_*.csv"))  # infer's old draft
    (tmp_path / f"{name}_{DS}.csv").write_bytes(to_csv(order_rows(20, seed=27)))
    (tmp_path / f"{name}_{NEXT}.csv").write_bytes(to_csv(order_rows(30, start_id=101, seed=28)))
    first = run_source(src_settings, name, DS, run_ge=False, spark=spark)
    assert first["rows_bronze"] == 50  # both files landed under the first date
    spec.path.write_text(dated)  # the glob fixed
    with pytest.raises(RedeliveryError, match=f"landed under ds={DS}"):
        run_source(src_settings, name, NEXT, run_ge=False, spark=spark)
    again = run_source(src_settings, name, DS, replace=True, run_ge=False, spark=spark)
    assert f"withdrew {name}_{NEXT}.csv: no longer in the drop (30 records)" in capsys.readouterr().out
    assert again["rows_bronze"] == 20 and len(bronze_rows(src_settings, name)) == 20
    assert run_source(src_settings, name, NEXT, run_ge=False, spark=spark)["rows_bronze"] == 30
    assert len(bronze_rows(src_settings, name)) == 50
    from moulin.sources.cli import unland

    done = unland(src_settings, name, NEXT, spark=spark)
    printed = capsys.readouterr().out
    assert "withdrew 1 file(s) with 30 records" in printed and "removed 30 rows from bronze" in printed
    assert done["rows_removed_bronze"] == 30 and read_manifest(src_settings, name, NEXT)["files"] == []
    assert sorted(r["ds"] for r in bronze_rows(src_settings, name)) == [DS] * 20
    back = run_source(src_settings, name, NEXT, run_ge=False, spark=spark)  # lands again from its drop
    assert back["rows_bronze"] == 30 and len(bronze_rows(src_settings, name)) == 50


# ------------------------------------------------------------------ 6. infer
def test_infer_reads_the_whole_file_leaves_identifiers_and_asks_for_the_start_date(tmp_path):
    from moulin.sources.infer import draft, to_yaml
    from moulin.sources.spec import SourceSpecError, parse_spec

    rows = order_rows(12_000, seed=29)
    for i, row in enumerate(rows):
        row["quantity"] = str(1 + i // 100)  # sorted: 1..120, the first 10,000 rows stop at 100
        row["weight_kg"] = f"{i / 1000:.3f}"
    path = tmp_path / f"shop_orders_{DS}.csv"
    path.write_bytes(to_csv(rows))
    contract, spec = draft(path, "shop_orders")
    ranges = {e["column"]: (e["min"], e["max"]) for e in contract["expectations"] if e["type"] == "between"}
    assert ranges["quantity"] == (1, 120) and isinstance(ranges["quantity"][1], int)
    assert ranges["weight_kg"] == (0.0, 11.999)
    assert "order_id" not in ranges and contract["keys"] == ["order_id"]
    assert "max: 120\n" in to_yaml(contract)
    assert spec["file"]["path"].endswith("shop_orders_{ds}*.csv")
    spec_path = tmp_path / "sources" / "shop_orders.yaml"
    with pytest.raises(SourceSpecError, match="field start_date: set the logical date of the first drop"):
        parse_spec(spec, spec_path)
    _, dated = draft(path, "shop_orders", start_date=dt.date(2024, 3, 1))
    assert parse_spec(dated, spec_path).start_date == dt.date(2024, 3, 1)


# ------------------------------------------------------------------ 7. messages
def test_undecodable_bytes_name_file_encoding_and_the_byte(spark, src_settings, contracts, tmp_path, capsys):
    name = "latin"
    spec = onboard(contracts, tmp_path, name)
    rows = order_rows(10, seed=30)
    for row in rows:
        row["customer"] = "Café Zoë"
    (tmp_path / f"{name}_{DS}.csv").write_bytes(to_csv(rows).decode().encode("latin-1"))
    with pytest.raises(QualityError) as failed:
        run_source(src_settings, name, DS, run_ge=False, spark=spark)
    message = str(failed.value)
    assert "at offset" in message and f"set file.encoding in {spec.path}" in message
    assert "is not valid utf-8" in capsys.readouterr().out  # the landing says it too
    spec.path.write_text(
        spec.path.read_text().replace("  format: csv\n", "  format: csv\n  encoding: latin-1\n")
    )
    out = run_source(src_settings, name, DS, run_ge=False, spark=spark)
    assert out["rows_bronze"] == 10 and {r["customer"] for r in bronze_rows(src_settings, name)} == {
        "Café Zoë"
    }


def test_a_byte_order_mark_is_named_and_utf8_sig_is_read_by_validate_and_the_run(
    spark, src_settings, contracts, tmp_path, capsys
):
    from moulin.sources.spec import SourceSpecError

    name = "bom"
    spec = onboard(contracts, tmp_path, name)
    (tmp_path / f"{name}_{DS}.csv").write_bytes(b"\xef\xbb\xbf" + to_csv(order_rows(5, seed=31)))
    with pytest.raises(QualityError, match=f"byte-order mark.*set file.encoding: utf-8-sig in {spec.path}"):
        run_source(src_settings, name, DS, run_ge=False, spark=spark)
    text = spec.path.read_text()
    spec.path.write_text(text.replace("  format: csv\n", "  format: csv\n  encoding: utf-8-sig\n"))
    source_cli(build_parser().parse_args(["source", "validate", name]), src_settings)
    assert run_source(src_settings, name, DS, run_ge=False, spark=spark)["rows_bronze"] == 5
    spec.path.write_text(text.replace("  format: csv\n", "  format: csv\n  encoding: utf-32-be\n"))
    with pytest.raises(
        SourceSpecError, match="field file.encoding: Spark's CSV and JSON readers cannot read"
    ):
        source_cli(build_parser().parse_args(["source", "validate", name]), src_settings)


def test_table_history_prints_one_readable_line_per_version(spark, src_settings, tmp_path, capsys):
    import pyarrow as pa
    from deltalake import write_deltalake

    from moulin.table_cli import history_line, table_cli

    uri = str(tmp_path / "history_table")
    write_deltalake(uri, pa.table({"x": [1, 2, 3, 4, 5], "ds": [DS] * 5}), partition_by=["ds"])
    write_deltalake(uri, pa.table({"x": [6], "ds": [NEXT]}), mode="append")
    table_cli(build_parser().parse_args(["table", "history", f"file://{uri}"]), src_settings)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["v1", "v0"] and not any("{" in line for line in lines)
    assert "WRITE (mode Append)  +1 rows, +1 files" in lines[0]
    assert "WRITE (mode ErrorIfExists)  +5 rows, +1 files" in lines[1]
    # moulin's own commits of files Spark wrote carry no row metrics: counted from the log
    from moulin.delta import DeltaTableStore

    frame = spark.createDataFrame([(7, DS), (8, DS)], "x long, ds string")
    DeltaTableStore(spark).write(frame, f"file://{uri}", mode="overwrite", replace_where={"ds": DS})
    table_cli(build_parser().parse_args(["table", "history", f"file://{uri}"]), src_settings)
    newest = capsys.readouterr().out.splitlines()[0]
    assert newest.startswith("v2 ") and "+2 rows, -5 rows" in newest, newest
    replaced = {"version": 7, "timestamp": 0, "operation": "WRITE", "operationParameters": {"mode": "Append"},
                "moulin.replaceWhere": '[["ds", "=", "2024-03-02"]]', "engineInfo": "delta-rs:py-1.6.6"}  # fmt: skip
    assert history_line(replaced) == (
        "v7  1970-01-01 00:00:00Z  WRITE (mode Append, replacing ds = 2024-03-02)  -  delta-rs:py-1.6.6"
    )
