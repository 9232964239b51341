"""Sources onboarded with only a spec and a contract (written by the tests, in a contracts
folder outside the repo): CSV, JSON lines, SQL with a watermark and a paginated HTTP API,
then bad input through the full gate, with rows accounted for by three counts."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import re
import sqlite3
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from source_files import COLUMNS, order_rows, to_csv, to_jsonl, write_contracts

from moulin.delta import DeltaTableStore
from moulin.ingest.landing import LandingError, RedeliveryError
from moulin.quality import AccountingError, QualityError, QualityGateError
from moulin.quality.data_docs import remote_references
from moulin.sources.bronze import gate_landing
from moulin.sources.land import land_source
from moulin.sources.spec import load_spec_file
from moulin.storage import WarehouseFS

pytestmark = pytest.mark.integration

DS = "2024-03-01"


@pytest.fixture(scope="module")
def contracts(tmp_path_factory) -> Path:
    """A team's own contracts folder, named by MOULIN_CONTRACTS_DIR for this module."""
    folder = tmp_path_factory.mktemp("team-contracts")
    os.environ["MOULIN_CONTRACTS_DIR"] = str(folder)
    yield folder
    del os.environ["MOULIN_CONTRACTS_DIR"]


@pytest.fixture(scope="module")
def src_settings(settings, tmp_path_factory, contracts):
    home = tmp_path_factory.mktemp("sources-home")
    return replace(settings, home=home, contracts_dir=contracts)


@pytest.fixture
def drops(tmp_path) -> Path:
    return tmp_path


def onboard(contracts: Path, drops: Path, name: str, **kw):
    return load_spec_file(write_contracts(contracts, drops, name=name, **kw))


def run(spark, settings, spec, ds=DS, run_ge=False, replace=False, redelivery=False):
    land_source(settings, spec, ds, replace=replace, redelivery=redelivery)
    return gate_landing(spark, settings, spec, ds, run_ge=run_ge)


def quarantined(settings, source, ds=DS) -> list[dict]:
    uri = settings.table_uri("quarantine", source)
    return DeltaTableStore(None).to_arrow(uri, filters={"ds": ds}).to_pylist()


def bronze_rows(spark, settings, name, ds=None):
    df = DeltaTableStore(spark).read(settings.table_uri("bronze", name))
    return [r.asDict() for r in (df.filter(f"ds = '{ds}'") if ds else df).collect()]


def assert_accounted(out) -> None:
    assert out.rows_manifest == out.rows_read == out.rows_bronze + out.rows_quarantined


# ------------------------------------------------------------------ kinds of sources
def test_csv_source_lands_and_gates_typed_rows_and_a_retry_changes_nothing(
    spark, src_settings, contracts, drops
):
    spec = onboard(contracts, drops, "orders")
    rows = order_rows(120)
    rows[3]["quantity"] = "many"  # does not parse as int
    rows[4]["status"] = "lost"  # not in the set
    (drops / f"orders_{DS}.csv").write_bytes(to_csv(rows))
    out = run(spark, src_settings, spec, run_ge=True)
    assert_accounted(out)
    assert (out.rows_read, out.rows_bronze, out.rows_quarantined) == (120, 118, 2)
    assert out.bronze_committed and out.quarantine_committed
    reasons = {tuple(r["failed_expectations"]): r["reason"] for r in quarantined(src_settings, "orders")}
    assert reasons[("parses:quantity",)] == "quantity='many' does not parse as int"
    assert "status=lost not in" in reasons[("in_set:status",)]
    got = {r["order_id"]: r for r in bronze_rows(spark, src_settings, "orders")}
    first = rows[0]
    assert got[1]["customer"] == first["customer"] and got[1]["unit_price"] == decimal.Decimal(
        first["unit_price"]
    )
    assert got[1]["express"] is (first["express"] == "true")
    with_zone = next(r for r in rows if r["shipped_at"] and r["order_id"] not in (4, 5))
    expected = dt.datetime.fromisoformat(with_zone["shipped_at"]).astimezone(dt.UTC).replace(tzinfo=None)
    assert got[with_zone["order_id"]]["shipped_at"] == expected
    multi = next(r for r in rows if "\n" in r["note"] and r["order_id"] not in (4, 5))
    assert got[multi["order_id"]]["note"] == "line one\nline two"
    record = json.loads(WarehouseFS(src_settings).read_bytes(out.record_uri))
    assert record["rows_committed_bronze"] == 118 and record["rows_manifest"] == 120
    fs = WarehouseFS(src_settings)
    ge = json.loads(fs.read_bytes(record["ge_result_uri"]))
    assert ge["success"] is False and {r["expectation_config"]["type"] for r in ge["results"]} >= {
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_be_unique",
    }
    docs = fs.read_bytes(out.data_docs_uri).decode()
    assert docs.lstrip().lower().startswith("<!doctype html") and "bronze_orders_contract" in docs
    assert remote_references(docs) == []  # styled offline: no CDN stylesheet or script
    again = run(spark, src_settings, spec)
    assert not again.bronze_committed and not again.quarantine_committed
    assert "skipped, already done" in again.line()
    assert again.bronze_version == out.bronze_version


def test_jsonl_source(spark, src_settings, contracts, drops):
    spec = onboard(contracts, drops, "orders_json", fmt="jsonl")
    rows = order_rows(40, seed=3)
    data = to_jsonl(rows) + b'{"order_id": 41, "customer": "x", broken\n'
    (drops / f"orders_json_{DS}.jsonl").write_bytes(data)
    out = run(spark, src_settings, spec)
    assert_accounted(out)
    assert (out.rows_read, out.rows_bronze, out.rows_quarantined) == (41, 40, 1)
    (bad,) = quarantined(src_settings, "orders_json")
    assert bad["failed_expectations"][0] == "well_formed_row" and "broken" in bad["row"]


def test_sql_source_with_a_watermark_pulls_only_new_rows(spark, src_settings, contracts, drops):
    db = drops / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE orders (order_id INTEGER PRIMARY KEY, customer TEXT, city TEXT, quantity INTEGER, "
            "unit_price NUMERIC, discount REAL, order_date TEXT, shipped_at TEXT, express BOOLEAN, status TEXT, "
            "note TEXT, rating INTEGER, weight_kg REAL)"
        )
        rows = order_rows(30, seed=5)
        conn.executemany(
            f"INSERT INTO orders VALUES ({','.join('?' * len(COLUMNS))})",
            [[r[c] if r[c] != "" else None for c in COLUMNS] for r in rows],
        )
    extra = f"mode: partition\nsql:\n  url: sqlite:///{db}\n  table: orders\n  watermark: order_id\n"
    spec = onboard(contracts, drops, "shop_orders", kind="sql", extra=extra)
    first = run(spark, src_settings, spec, ds="2024-03-01")
    assert_accounted(first)
    assert first.rows_read == 30 and first.rows_quarantined == 0
    with sqlite3.connect(db) as conn:
        more = order_rows(5, start_id=31, seed=6)
        conn.executemany(
            f"INSERT INTO orders VALUES ({','.join('?' * len(COLUMNS))})",
            [[r[c] if r[c] != "" else None for c in COLUMNS] for r in more],
        )
    second = run(spark, src_settings, spec, ds="2024-03-02")
    assert (second.rows_read, second.rows_bronze) == (5, 5)
    assert len(bronze_rows(spark, src_settings, "shop_orders")) == 35


class _Api(BaseHTTPRequestHandler):
    pages: dict[int, list[dict]] = {}
    failures: dict[int, list[int]] = {}
    requests: list[str] = []

    def do_GET(self):  # noqa: N802
        from urllib.parse import parse_qs, urlparse

        query = parse_qs(urlparse(self.path).query)
        page = int(query["page"][0])
        type(self).requests.append(self.path)
        pending = type(self).failures.get(page, [])
        if pending:
            status = pending.pop(0)
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(b"slow down" if status == 429 else b"oops")
            return
        body = json.dumps({"data": type(self).pages.get(page, []), "page": page}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_http_source_pages_through_retries_429_and_500(spark, src_settings, contracts, drops, monkeypatch):
    rows = json.loads("[" + to_jsonl(order_rows(25, seed=9)).decode().strip().replace("\n", ",") + "]")
    _Api.pages = {1: rows[:10], 2: rows[10:20], 3: rows[20:]}
    _Api.failures = {1: [429], 2: [500]}
    _Api.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("AIRFLOW_CONN_SHOP_API", f"http://127.0.0.1:{server.server_port}")
        extra = (
            "http:\n  connection: shop_api\n  endpoint: /v1/orders\n  records: data\n"
            "  page_size_param: per_page\n  page_size: 10\n  backoff_s: 0.05\n"
        )
        spec = onboard(contracts, drops, "api_orders", kind="http", extra=extra)
        out = run(spark, src_settings, spec)
    finally:
        server.shutdown()
    assert_accounted(out)
    assert (out.rows_read, out.rows_bronze) == (25, 25)
    pages = [int(p.split("page=")[1].split("&")[0]) for p in _Api.requests]
    assert pages == [1, 1, 2, 2, 3, 4]  # one 429 and one 500 retried, stopped at the empty page
    manifest = json.loads(
        WarehouseFS(src_settings).read_bytes(
            src_settings.table_uri("raw", "api_orders", f"ds={DS}", "_manifest.json")
        )
    )
    assert manifest["pages"] == 4 and manifest["retried"] == 2


# ------------------------------------------------------------------ bad input
def _csv_with_header(header: list[str], rows: list[dict]) -> bytes:
    return to_csv(rows, columns=header)


BAD_FILES = {
    "missing_column": (
        lambda rows: _csv_with_header([c for c in COLUMNS if c != "city"], rows),
        "missing ['city']",
    ),
    "extra_column": (lambda rows: _csv_with_header([*COLUMNS, "coupon"], rows), "unexpected ['coupon']"),
    "renamed_header": (
        lambda rows: to_csv(rows).replace(b"unit_price", b"price", 1),
        "renamed? [('unit_price', 'price')]",
    ),
    "reordered_header": (
        lambda rows: _csv_with_header([COLUMNS[1], COLUMNS[0], *COLUMNS[2:]], rows),
        "in another order",
    ),
    "header_only": (lambda rows: to_csv([]), "has no data rows"),
    "zero_byte": (lambda rows: b"", "is empty (0 bytes)"),
    "truncated_last_line": (lambda rows: to_csv(rows)[:-3], "does not end with a line end"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_file_that_cannot_be_read_as_the_contract_says_fails_naming_the_file(
    case, spark, src_settings, contracts, drops
):
    name = f"bad_{case}"
    spec = onboard(contracts, drops, name)
    make, message = BAD_FILES[case]
    (drops / f"{name}_{DS}.csv").write_bytes(make(order_rows(10)))
    with pytest.raises(QualityError, match=re.escape(message)) as failed:
        run(spark, src_settings, spec)
    assert f"{name}_{DS}.csv" in str(failed.value)
    assert not DeltaTableStore(None).exists(src_settings.table_uri("bronze", name))


BAD_ROWS = {
    "non_numeric": (lambda rows: rows.__setitem__(2, {**rows[2], "rating": "five"}), 1, "parses:rating"),
    "duplicate_keys": (lambda rows: rows.__setitem__(5, {**rows[5], "order_id": 1}), 2, "unique:order_id"),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_bad_rows_are_quarantined_with_their_reasons(case, spark, src_settings, contracts, drops):
    name = f"rows_{case}"
    spec = onboard(contracts, drops, name)
    rows = order_rows(20, seed=11)
    change, count, reason = BAD_ROWS[case]
    change(rows)
    (drops / f"{name}_{DS}.csv").write_bytes(to_csv(rows))
    out = run(spark, src_settings, spec)
    assert_accounted(out)
    assert out.rows_quarantined == count and out.failures == {reason: count}


def test_invalid_utf8_quoted_newlines_and_blank_lines(spark, src_settings, contracts, drops):
    spec = onboard(contracts, drops, "messy")
    rows = order_rows(12, seed=12)
    rows[1]["note"] = "first\nsecond\n\nfourth"
    rows[6]["customer"] = "MARKER"
    data = to_csv(rows).replace(b"\n", b"\n\n", 1)  # a blank line after the header
    data = data.replace(b"MARKER", b"caf\xe9", 1)  # Latin-1 bytes in a UTF-8 file
    (drops / f"messy_{DS}.csv").write_bytes(data + b"\n\n")
    out = run(spark, src_settings, spec)
    assert_accounted(out)
    assert (out.rows_read, out.rows_quarantined) == (12, 1) and out.failures == {"valid_utf8": 1}
    (bad,) = quarantined(src_settings, "messy")
    assert bad["reason"] == (
        f"bytes that are not valid utf-8 in customer (if the file is not utf-8, set file.encoding in {spec.path})"
    )
    got = {r["order_id"]: r for r in bronze_rows(spark, src_settings, "messy")}
    assert got[2]["note"] == "first\nsecond\n\nfourth"


# ------------------------------------------------------------------ the four data-loss paths
def test_the_same_file_under_a_new_date_is_quarantined_not_appended_twice(
    spark, src_settings, contracts, drops
):
    spec = onboard(contracts, drops, "twice", extra="quarantine_threshold: 1.0\n")
    data = to_csv(order_rows(30, seed=13))
    (drops / "twice_2024-03-01.csv").write_bytes(data)
    (drops / "twice_2024-03-02.csv").write_bytes(data)
    run(spark, src_settings, spec, ds="2024-03-01")
    with pytest.raises(RedeliveryError, match="landed under ds=2024-03-01"):
        run(spark, src_settings, spec, ds="2024-03-02")
    # a deliberate redelivery is landed; the keys already in bronze keep it out
    out = run(spark, src_settings, spec, ds="2024-03-02", redelivery=True)
    assert_accounted(out)
    assert out.rows_quarantined == 30 and out.failures == {"unique_in_table:order_id": 30}
    assert len(bronze_rows(spark, src_settings, "twice")) == 30
    without_override = onboard(contracts, drops, "twice_strict")
    (drops / "twice_strict_2024-03-01.csv").write_bytes(data)
    (drops / "twice_strict_2024-03-02.csv").write_bytes(data)
    run(spark, src_settings, without_override, ds="2024-03-01")
    with pytest.raises(QualityGateError, match="30 of 30 rows"):
        run(spark, src_settings, without_override, ds="2024-03-02", redelivery=True)


def test_a_second_file_under_a_processed_date_is_processed_and_same_bytes_renamed_add_nothing(
    spark, src_settings, contracts, drops
):
    spec = onboard(contracts, drops, "late")
    (drops / f"late_{DS}_a.csv").write_bytes(to_csv(order_rows(30, seed=14)))
    first = run(spark, src_settings, spec)
    (drops / f"late_{DS}_b.csv").write_bytes(to_csv(order_rows(1000, start_id=100, seed=15)))
    second = run(spark, src_settings, spec)
    assert second.bronze_committed and second.rows_bronze == 1030 and second.run_key != first.run_key
    assert len(bronze_rows(spark, src_settings, "late", DS)) == 1030
    (drops / f"late_{DS}_c.csv").write_bytes((drops / f"late_{DS}_b.csv").read_bytes())
    third = run(spark, src_settings, spec)
    assert not third.bronze_committed and third.rows_read == 1030
    record = json.loads(WarehouseFS(src_settings).read_bytes(third.record_uri))
    assert record["rows_quarantined"] == len(quarantined(src_settings, "late")) == 0


def test_a_changed_file_is_refused_or_replaces_the_landing_with_a_new_version(
    spark, src_settings, contracts, drops
):
    spec = onboard(contracts, drops, "fixed")
    path = drops / f"fixed_{DS}.csv"
    bad = order_rows(20, seed=16)
    bad[0]["rating"] = "nine"
    path.write_bytes(to_csv(bad))
    first = run(spark, src_settings, spec)
    assert first.rows_quarantined == 1
    path.write_bytes(to_csv(order_rows(20, seed=16)))
    with pytest.raises(LandingError, match="on_changed_file: replace"):
        run(spark, src_settings, spec)
    fixed = run(spark, src_settings, spec, replace=True)
    assert (fixed.rows_bronze, fixed.rows_quarantined) == (20, 0) and fixed.bronze_committed
    assert quarantined(src_settings, "fixed") == []
    manifest = json.loads(
        WarehouseFS(src_settings).read_bytes(
            src_settings.table_uri("raw", "fixed", f"ds={DS}", "_manifest.json")
        )
    )
    assert manifest["version"] == 2 and manifest["files"][0]["uri"].endswith(f"/v2/fixed_{DS}.csv")
    assert WarehouseFS(src_settings).exists(manifest["superseded"][0]["uri"])  # the old file kept in raw


def test_a_manifest_that_disagrees_with_what_spark_read_fails_before_any_write(
    spark, src_settings, contracts, drops
):
    """The counts are independent: a landing whose manifest counts another number of
    records than Spark reads (here: the manifest altered on disk) stops the run."""
    spec = onboard(contracts, drops, "miscount")
    (drops / f"miscount_{DS}.csv").write_bytes(to_csv(order_rows(15, seed=20)))
    land_source(src_settings, spec, DS)
    fs = WarehouseFS(src_settings)
    uri = src_settings.table_uri("raw", "miscount", f"ds={DS}", "_manifest.json")
    manifest = json.loads(fs.read_bytes(uri))
    manifest["files"][0]["rows"] = 16
    fs.write_bytes(uri, json.dumps(manifest).encode())
    with pytest.raises(AccountingError, match="manifest counts 16 records .* but Spark read 15"):
        gate_landing(spark, src_settings, spec, DS)
    store = DeltaTableStore(None)
    assert not store.exists(src_settings.table_uri("bronze", "miscount"))
    assert not store.exists(src_settings.table_uri("quarantine", "miscount"))


def test_a_column_to_pseudonymise_is_never_written_in_clear_text(
    spark, src_settings, contracts, drops, monkeypatch
):
    """With no column treatment registered the gate stops before it writes anything; with
    privacy's treatment it writes pseudonyms only."""
    import moulin
    from moulin.privacy.bronze_treatment import pseudonymise_at_bronze
    from moulin.sources.treatments import (
        NoColumnTreatmentError,
        register_column_treatment,
        unregister_column_treatment,
    )

    spec = onboard(contracts, drops, "personal")
    path = contracts / "bronze_personal.yaml"
    customer = "  - {name: customer, type: string, nullable: false}"
    treated = (
        "  - {name: customer, type: string, nullable: false,\n"
        "     personal: {category: direct_identifier, treatment: pseudonymise, purpose: support}}"
    )
    privacy = "privacy: {purpose: support, legal_basis: contract}\ncolumns:\n"
    path.write_text(path.read_text().replace(customer, treated).replace("columns:\n", privacy, 1))
    spec = load_spec_file(spec.path)
    rows = order_rows(20, seed=23)
    (drops / f"personal_{DS}.csv").write_bytes(to_csv(rows))
    land_source(src_settings, spec, DS)
    store = DeltaTableStore(None)
    monkeypatch.setattr(moulin, "BRONZE_TREATMENTS", ())
    unregister_column_treatment(pseudonymise_at_bronze)
    try:
        with pytest.raises(
            NoColumnTreatmentError, match="bronze_personal .* asks for customer to be pseudonymised"
        ):
            gate_landing(spark, src_settings, spec, DS)
    finally:
        register_column_treatment(pseudonymise_at_bronze)
    assert not store.exists(src_settings.table_uri("bronze", "personal"))
    assert not store.exists(src_settings.table_uri("quarantine", "personal"))
    out = gate_landing(spark, src_settings, spec, DS)
    assert_accounted(out)
    customers = {r["customer"] for r in bronze_rows(spark, src_settings, "personal")}
    pseudonyms = [p for c in customers for p in c.split(", ")]  # "Zoë Dupont, SA" is a list of two
    assert pseudonyms and all(p.startswith("ps_") and len(p) == 35 for p in pseudonyms)
    assert not customers & {r["customer"] for r in rows}


def test_backfilling_an_earlier_date_after_a_later_one_writes(spark, src_settings, contracts, drops):
    spec = onboard(contracts, drops, "backfill")
    (drops / "backfill_2024-03-05.csv").write_bytes(to_csv(order_rows(10, start_id=50, seed=17)))
    (drops / "backfill_2024-03-04.csv").write_bytes(to_csv(order_rows(10, start_id=1, seed=18)))
    later = run(spark, src_settings, spec, ds="2024-03-05")
    earlier = run(spark, src_settings, spec, ds="2024-03-04")
    assert later.bronze_committed and earlier.bronze_committed
    assert len(bronze_rows(spark, src_settings, "backfill")) == 20


def test_a_source_on_hdfs(spark, hdfs_settings, hdfs_cluster, contracts, drops, tmp_path):
    settings = replace(hdfs_settings, home=tmp_path / "home", contracts_dir=contracts)
    spec = onboard(contracts, drops, "hdfs_orders")
    (drops / f"hdfs_orders_{DS}.csv").write_bytes(to_csv(order_rows(50, seed=19)))
    out = run(spark, settings, spec)
    assert_accounted(out)
    assert out.rows_bronze == 50 and settings.table_uri("x").startswith("hdfs://")


def _sqlite_orders(path: Path, rows: list[dict]) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE orders ({', '.join(COLUMNS)})")
        conn.executemany(
            f"INSERT INTO orders VALUES ({','.join('?' * len(COLUMNS))})",
            [[r[c] if r[c] != "" else None for c in COLUMNS] for r in rows],
        )


@pytest.mark.parametrize("kind", ["csv", "jsonl", "sql", "http"])
def test_the_source_dag_runs_under_airflow_and_fills_bronze(kind, settings, contracts, drops, monkeypatch):
    """The DAG built from the spec, in a real DagBag, run by `airflow dags test` (Spark job included)."""
    from moulin.orchestration import airflow_command, ensure_airflow_db

    name = f"dag_{kind}"
    rows = order_rows(40, seed=21)
    rows[7]["quantity"] = "-" if kind == "csv" else "-1"  # fails parses:quantity / between:quantity
    server = None
    if kind == "csv":
        spec = onboard(contracts, drops, name)
        (drops / f"{name}_{DS}.csv").write_bytes(to_csv(rows))
    elif kind == "jsonl":
        spec = onboard(contracts, drops, name, fmt="jsonl")
        (drops / f"{name}_{DS}.jsonl").write_bytes(to_jsonl(rows))
    elif kind == "sql":
        _sqlite_orders(drops / "shop.db", rows)
        extra = f"sql:\n  url: sqlite:///{drops / 'shop.db'}\n  table: orders\n  watermark: order_id\n"
        spec = onboard(contracts, drops, name, kind="sql", extra=extra)
    else:
        records = [json.loads(line) for line in to_jsonl(rows).decode().splitlines()]
        _Api.pages, _Api.failures, _Api.requests = {1: records[:25], 2: records[25:]}, {2: [503]}, []
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        monkeypatch.setenv("AIRFLOW_CONN_DAG_API", f"http://127.0.0.1:{server.server_port}")
        extra = "http:\n  connection: dag_api\n  endpoint: /v1/orders\n  backoff_s: 0.05\n"
        spec = onboard(contracts, drops, name, kind="http", extra=extra)
    ensure_airflow_db(settings)
    try:
        result = airflow_command(settings, "dags", "test", spec.dag_id, DS, check=False)
    finally:
        if server is not None:
            server.shutdown()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "manifest 40 = read 40 = bronze 39 + quarantined 1" in output
    store = DeltaTableStore(None)
    assert store.count(settings.table_uri("bronze", name)) == 39
    assert store.count(settings.table_uri("quarantine", name)) == 1
