"""SQL by table name (moulin.catalog, moulin.sql, ``moulin sql``) over real Delta tables
written with deltalake in a warehouse of each test's own (no Spark)."""

from __future__ import annotations

import datetime as dt
import io
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake

from moulin import sql as moulin_sql
from moulin.catalog import (
    RefusedTableError,
    SqlError,
    TableNotWrittenError,
    UnknownTableError,
    load_catalog,
)
from moulin.cli import run
from moulin.contracts import load_all_contracts
from moulin.privacy.access import personal_table_uris
from moulin.privacy.views import view_contracts
from moulin.settings import Settings, load_settings
from moulin.sql import UnknownColumnError, VersionNotFoundError, query, query_pandas, query_polars, run_query

STATS = "gold/carrier_delay_stats"


@pytest.fixture
def wh(moulin_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings whose warehouse is a fresh folder (also in the environment, for the CLI)."""
    monkeypatch.setenv("MOULIN_WAREHOUSE_URI", (tmp_path / "warehouse").as_uri())
    return load_settings("local")


def _stats(rows: list[tuple[str, int, float | None]]) -> pa.Table:
    carrier, month, delay = zip(*rows, strict=True) if rows else ((), (), ())
    return pa.table(
        {
            "carrier": pa.array(carrier, pa.string()),
            "month": pa.array(month, pa.int32()),
            "mean_delay": pa.array(delay, pa.float64()),
        }
    )


def _write_stats(settings: Settings, rows, mode: str = "append") -> None:
    write_deltalake(settings.table_uri(STATS), _stats(rows), mode=mode)


# ---------------------------------------------------------------- the catalog


def test_catalog_names_every_contract_table_and_view(wh: Settings) -> None:
    catalog = load_catalog(wh)
    contracts = [c for c in load_all_contracts().values() if "<" not in c.table]
    for contract in contracts:
        layer, _, table = contract.table.partition("/")
        entry = catalog.entries[f"{layer}.{table.replace('/', '_')}"]
        assert entry.uri == wh.table_uri(contract.table)
        assert entry.contract == contract.name and entry.owner == contract.owner
        assert entry.description == contract.description
    flights = catalog.entries["bronze.flights"]
    assert flights.queryable and not flights.personal and flights.kind == "table"
    assert {"dep_delay", "_source_file", "ds"} <= {c.name for c in flights.columns}
    assert catalog.entries["gold.flight_features"].uri == wh.table_uri("gold/flight_features")
    # every analysts' view, named views.<layer>_<table>
    views = {n for n, e in catalog.entries.items() if e.kind == "view"}
    assert views == {f"views.{c.table.replace('/', '_')}" for c in view_contracts()}
    assert "views.bronze_mail" in views
    view = catalog.entries["views.bronze_mail"]
    assert view.queryable and view.personal
    marks = {c.name: c.personal for c in view.columns}
    assert marks["from_address"] == "direct_identifier, pseudonymise"
    assert "sent_at" not in marks  # kept in clear in the table: not in the view
    # personal tables are exactly those access.py closes to analysts
    personal = set(personal_table_uris(wh, contracts))
    assert {e.uri for e in catalog.entries.values() if e.kind == "table" and e.personal} == personal
    mail = catalog.entries["bronze.mail"]
    assert not mail.queryable and mail.view == "views.bronze_mail"
    assert {c.name: c.personal for c in mail.columns}["sent_at"] == "quasi_identifier, keep"
    assert not catalog.entries["quality.table_profiles"].queryable  # the ops zone
    assert not any(name.startswith("quarantine") for name in catalog.names())  # a template path


def test_catalog_reads_the_contracts_folder_of_the_settings(
    wh: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "contracts"
    folder.mkdir()
    (folder / "gold_orders.yaml").write_text(
        "name: gold_orders\nlayer: gold\ntable: gold/orders\ndescription: Orders per day.\n"
        "owner: shop\nquarantine_threshold: 0.0\n"
        "columns:\n  - {name: day, type: date, nullable: false}\n  - {name: orders, type: bigint, nullable: true}\n"
    )
    (folder / "silver_customers.yaml").write_text(
        "name: silver_customers\nlayer: silver\ntable: silver/customers\nowner: crm\n"
        "personal_data: [email]\nquarantine_threshold: 0.0\n"
        "columns:\n  - {name: id, type: bigint, nullable: false}\n  - {name: email, type: string, nullable: true}\n"
    )
    monkeypatch.setenv("MOULIN_CONTRACTS_DIR", str(folder))
    catalog = load_catalog(load_settings("local"))
    assert catalog.entries["gold.orders"].description == "Orders per day."
    assert "bronze.flights" in catalog.entries  # moulin's own contracts too
    write_deltalake(wh.table_uri("gold/orders"), pa.table({"day": [dt.date(2024, 3, 1)], "orders": [7]}))
    assert query("SELECT orders FROM gold.orders", settings=wh).to_pylist() == [{"orders": 7}]
    write_deltalake(wh.table_uri("silver/customers"), pa.table({"id": [1], "email": ["a@b.org"]}))
    with pytest.raises(
        RefusedTableError, match=r"silver\.customers holds personal data \(email\).*no analysts' view"
    ):
        query("SELECT * FROM silver.customers", settings=wh)


# ---------------------------------------------------------------- resolution and versions


def test_names_resolve_and_a_new_commit_is_visible_at_once(wh: Settings) -> None:
    entry = load_catalog(wh).entries["gold.carrier_delay_stats"]
    assert entry.version() is None  # not written yet
    _write_stats(wh, [("AA", 1, 3.5), ("DL", 1, None)])
    assert entry.version() == 0  # read when asked, not when the catalog was built
    sql = "SELECT carrier FROM gold.carrier_delay_stats ORDER BY carrier"
    result = run_query(sql, settings=wh)
    assert result.table.column("carrier").to_pylist() == ["AA", "DL"]
    assert result.versions == {"gold.carrier_delay_stats": 0}
    _write_stats(wh, [("UA", 2, 1.0)])  # a commit by any writer
    result = run_query(sql, settings=wh)
    assert result.table.column("carrier").to_pylist() == ["AA", "DL", "UA"]
    assert result.versions == {"gold.carrier_delay_stats": 1}
    # names are case-insensitive, quoted or not; pandas and polars helpers
    assert query_pandas('SELECT count(*) AS n FROM "Gold".Carrier_Delay_Stats', settings=wh)["n"][0] == 3
    assert query_polars("SELECT count(*) AS n FROM gold.carrier_delay_stats", settings=wh)["n"][0] == 3


def test_as_of_reads_every_table_at_an_older_version(wh: Settings) -> None:
    _write_stats(wh, [("AA", 1, 3.5)])
    time.sleep(0.05)
    between = dt.datetime.now(dt.UTC)
    time.sleep(0.05)
    _write_stats(wh, [("DL", 1, 2.0)])
    sql = "SELECT carrier FROM gold.carrier_delay_stats ORDER BY carrier"
    assert query(sql, as_of=0, settings=wh).column("carrier").to_pylist() == ["AA"]
    assert query(sql, as_of="0", settings=wh).column("carrier").to_pylist() == ["AA"]
    assert query(sql, as_of=between, settings=wh).column("carrier").to_pylist() == ["AA"]
    assert query(sql, as_of=between.isoformat(), settings=wh).column("carrier").to_pylist() == ["AA"]
    naive = between.astimezone(dt.UTC).replace(tzinfo=None).isoformat()  # naive: UTC
    assert query(sql, as_of=naive, settings=wh).column("carrier").to_pylist() == ["AA"]
    assert query(sql, as_of=1, settings=wh).column("carrier").to_pylist() == ["AA", "DL"]
    with pytest.raises(VersionNotFoundError, match=r"gold\.carrier_delay_stats has no version 7.*0 to 1"):
        query(sql, as_of=7, settings=wh)
    with pytest.raises(VersionNotFoundError, match=r"gold\.carrier_delay_stats did not exist at 2001"):
        query(sql, as_of="2001-01-01", settings=wh)
    with pytest.raises(SqlError, match="neither a version number nor an ISO timestamp"):
        query(sql, as_of="last week", settings=wh)


def test_a_table_named_twice_is_read_at_one_version(wh: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_stats(wh, [("AA", 1, 3.5), ("DL", 1, 1.0)])
    real_pin = moulin_sql.pin
    pinned: list[str] = []

    def pin_then_commit(entry, as_of=None):
        snap = real_pin(entry, as_of)
        pinned.append(entry.name)
        _write_stats(wh, [("UA", 2, 9.0)])  # lands while the query is being prepared
        return snap

    monkeypatch.setattr(moulin_sql, "pin", pin_then_commit)
    out = query(
        "SELECT (SELECT count(*) FROM gold.carrier_delay_stats) AS a,"
        " (SELECT count(*) FROM gold.carrier_delay_stats s JOIN gold.carrier_delay_stats t USING (carrier)) AS b,"
        " (SELECT count(*) FROM gold.carrier_delay_stats WHERE carrier = 'UA') AS ua",
        settings=wh,
    ).to_pylist()
    assert out == [{"a": 2, "b": 2, "ua": 0}]
    assert pinned == ["gold.carrier_delay_stats"]
    assert query("SELECT count(*) AS n FROM gold.carrier_delay_stats", settings=wh).to_pylist() == [{"n": 3}]


def _flights() -> pa.Table:
    day = dt.date(2024, 1, 1)
    at = dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC)
    rows = [
        (1, "AA", 1.5, day, at, "2024-01-01"),
        (2, "DL", None, day + dt.timedelta(days=1), at, "2024-01-01"),
        (3, None, 3.0, None, at + dt.timedelta(hours=5), None),
        (4, "UA", -2.0, dt.date(2024, 2, 1), None, "2024-01-02"),
        (5, "AA", float("nan"), day, at, "2024-01-02"),
        (6, "dl", 0.0, dt.date(2023, 12, 31), None, None),
        (7, "", -0.5, day, at - dt.timedelta(days=1), "2024-01-03"),
    ]
    cols = list(zip(*rows, strict=True))
    return pa.table(
        {
            "id": pa.array(cols[0], pa.int64()),
            "carrier": pa.array(cols[1], pa.string()),
            "dep_delay": pa.array(cols[2], pa.float64()),
            "day": pa.array(cols[3], pa.date32()),
            "dep_time": pa.array(cols[4], pa.timestamp("us", tz="UTC")),
            "ds": pa.array(cols[5], pa.string()),
        }
    )


#: predicate in SQL -> the same filter on the whole table in pandas (nulls never match)
FILTERS = {
    "carrier = 'AA'": lambda d: d.carrier == "AA",
    "carrier <> 'AA'": lambda d: d.carrier != "AA",
    "carrier IS NULL": lambda d: d.carrier.isna(),
    "carrier IS NOT NULL AND carrier = ''": lambda d: d.carrier == "",
    "carrier LIKE 'D%'": lambda d: d.carrier.str.startswith("D"),
    "carrier IN ('AA', 'UA') AND day < DATE '2024-02-01'": lambda d: (
        d.carrier.isin(["AA", "UA"]) & (d.day < dt.date(2024, 2, 1))
    ),
    "NOT (carrier = 'AA')": lambda d: d.carrier != "AA",
    "day >= DATE '2024-01-02'": lambda d: d.day >= dt.date(2024, 1, 2),
    "day IS NULL OR day = DATE '2023-12-31'": lambda d: d.day.isna() | (d.day == dt.date(2023, 12, 31)),
    "dep_delay BETWEEN -1 AND 2": lambda d: (d.dep_delay >= -1) & (d.dep_delay <= 2),
    "dep_delay < 0": lambda d: d.dep_delay < 0,
    "dep_delay IS NULL": lambda d: d.dep_delay.isna() & ~d.id.isin([5]),  # NaN is not NULL
    "dep_time >= TIMESTAMPTZ '2024-01-01 10:00:00+00'": lambda d: (
        d.dep_time >= pd.Timestamp("2024-01-01 10:00", tz="UTC")
    ),
    "ds = '2024-01-02'": lambda d: d.ds == "2024-01-02",
    "ds IS NULL": lambda d: d.ds.isna(),
    "ds > '2024-01-01' AND carrier <> 'UA'": lambda d: (d.ds > "2024-01-01") & (d.carrier != "UA"),
    "coalesce(ds, 'none') = 'none' AND id > 3": lambda d: d.ds.isna() & (d.id > 3),
}


def test_filters_return_what_filtering_the_whole_table_does(wh: Settings) -> None:
    uri = wh.table_uri("silver/flights")
    table = _flights()
    write_deltalake(uri, table.slice(0, 4), partition_by=["ds"])  # several files and partitions,
    write_deltalake(uri, table.slice(4), mode="append", partition_by=["ds"])  # null partitions too
    whole = query("SELECT * FROM silver.flights", settings=wh)
    assert whole.num_rows == table.num_rows
    frame = whole.to_pandas(types_mapper=pd.ArrowDtype)
    for predicate, pandas_filter in FILTERS.items():
        got = query(f"SELECT id FROM silver.flights WHERE {predicate} ORDER BY id", settings=wh)
        expected = sorted(frame[pandas_filter(frame).fillna(False).astype(bool)]["id"].tolist())
        assert got.column("id").to_pylist() == expected, predicate
    rows = query("SELECT * FROM silver.flights WHERE carrier = 'AA' ORDER BY id", settings=wh)
    expected = table.filter(pc.equal(table["carrier"], "AA")).select(rows.column_names)
    pd.testing.assert_frame_equal(rows.to_pandas(), expected.to_pandas())  # whole rows, NaN included


# ---------------------------------------------------------------- errors


def test_unknown_tables_and_columns_are_named(wh: Settings) -> None:
    _write_stats(wh, [("AA", 1, 3.5)])
    with pytest.raises(
        UnknownTableError, match=r"unknown table gold\.carrier_delay: did you mean gold\.carrier_delay_stats"
    ):
        query("SELECT * FROM gold.carrier_delay", settings=wh)
    with pytest.raises(
        UnknownTableError, match=r"unknown table flights: did you mean bronze\.flights, silver\.flights"
    ):
        query("SELECT * FROM flights", settings=wh)
    with pytest.raises(UnknownTableError, match=r"unknown table nowhere\.at_all"):
        query("SELECT 1 WHERE EXISTS (SELECT 1 FROM nowhere.at_all)", settings=wh)
    message = r'column "delay" not found: gold\.carrier_delay_stats has carrier, month, mean_delay'
    with pytest.raises(UnknownColumnError, match=message):
        query("SELECT delay FROM gold.carrier_delay_stats", settings=wh)
    with pytest.raises(UnknownColumnError, match=message):
        query("SELECT s.delay FROM gold.carrier_delay_stats s", settings=wh)
    # CTEs are not tables of the catalog
    assert query(
        "WITH t AS (SELECT * FROM gold.carrier_delay_stats) SELECT count(*) AS n FROM t", settings=wh
    ).to_pylist() == [{"n": 1}]


def test_tables_not_written_yet_are_named(wh: Settings) -> None:
    with pytest.raises(TableNotWrittenError, match=r"gold\.flight_features is not written yet"):
        query("SELECT * FROM gold.flight_features", settings=wh)
    with pytest.raises(
        TableNotWrittenError, match=r"views\.bronze_mail is not written yet.*moulin privacy views"
    ):
        query("SELECT * FROM views.bronze_mail", settings=wh)


def test_personal_tables_and_closed_zones_are_refused(wh: Settings) -> None:
    write_deltalake(wh.table_uri("bronze/mail"), pa.table({"from_address": ["ann@example.org"]}))
    for sql in (
        "SELECT * FROM bronze.mail",
        "SELECT count(*) FROM gold.carrier_delay_stats WHERE carrier IN (SELECT from_address FROM bronze.mail)",
    ):
        with pytest.raises(
            RefusedTableError, match=r"bronze\.mail holds personal data.*query views\.bronze_mail instead"
        ):
            query(sql, settings=wh)
    with pytest.raises(RefusedTableError, match=r"silver\.mail_messages .*views\.silver_mail_messages"):
        query("SELECT * FROM silver.mail_messages", settings=wh)
    for name, zone in (
        ("quarantine.flights", "quarantine"),
        ("raw.flights", "raw"),
        ("ops.audit", "ops"),
        ("quality.table_profiles", "ops"),
    ):
        with pytest.raises(RefusedTableError, match=rf"{name} is in the {zone} zone"):
            query(f"SELECT * FROM {name}", settings=wh)


def test_a_view_is_queryable_and_its_read_is_audited(wh: Settings) -> None:
    from moulin.privacy.audit import read_audit

    uri = wh.table_uri("views/bronze_mail")
    data = pa.table({"from_address": ["ps_1", "ps_2"], "subject": ["hi", "[email]"], "ds": ["d", "d"]})
    write_deltalake(uri, data)
    personal = {"moulin.personalData": '["from_address", "subject"]'}  # as DeltaTableStore.write sets it
    DeltaTable(uri).alter.set_table_properties(personal, raise_if_not_exists=False)
    out = query("SELECT count(DISTINCT from_address) AS n FROM views.bronze_mail", settings=wh)
    assert out.to_pylist() == [{"n": 2}]
    reads = [r for r in read_audit(wh) if r["action"] == "read" and r["table_uri"] == uri]
    assert len(reads) == 1 and reads[0]["columns"] == "from_address,subject" and reads[0]["version"] == 1


def test_only_one_select_reading_tables_by_name_runs(wh: Settings) -> None:
    _write_stats(wh, [("AA", 1, 3.5)])
    for sql, message in (
        ("SELEC * FROM gold.carrier_delay_stats", "does not parse"),
        ("DROP TABLE gold.carrier_delay_stats", "only one SELECT query"),
        ("SELECT 1; SELECT 2", "found 2 statements"),
        ("SELECT * FROM read_csv('/etc/hostname')", "by name only"),
        ("SELECT * FROM gold.carrier_delay_stats AT (VERSION => 0)", "as_of"),
        ("SELECT * FROM other.gold.carrier_delay_stats", "without a database"),
    ):
        with pytest.raises(SqlError, match=message):
            query(sql, settings=wh)


# ---------------------------------------------------------------- the command line


def test_cli_lists_the_tables(wh: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    _write_stats(wh, [("AA", 1, 3.5), ("DL", 1, None)])
    _write_stats(wh, [("UA", 2, 1.0)])
    assert run(["sql", "--tables"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert lines["gold.carrier_delay_stats"].split()[1:3] == ["v1", "3"]
    assert "Monthly departure delay statistics per carrier" in lines["gold.carrier_delay_stats"]
    assert "not written" in lines["bronze.flights"]
    assert "personal: query views.bronze_mail" in lines["bronze.mail"]
    assert "pseudonyms" in lines["views.bronze_mail"]
    assert "not queryable" in lines["quality.table_profiles"]


def test_cli_runs_a_query_in_each_format(
    wh: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_stats(wh, [("AA", 1, 3.5), ("DL", 1, None)])
    _write_stats(wh, [("UA", 2, 1.0)])
    sql = "SELECT carrier, mean_delay FROM gold.carrier_delay_stats ORDER BY carrier"
    assert run(["sql", sql]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["carrier", "mean_delay"]
    assert [line.split() for line in out[1:4]] == [["AA", "3.5"], ["DL", "<NA>"], ["UA", "1.0"]]
    assert out[4] == "# 3 rows; read gold.carrier_delay_stats v1"
    assert run(["sql", sql, "--limit", "1", "--as-of", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and out[2] == "# 1 row (--limit 1); read gold.carrier_delay_stats v0"
    assert run(["sql", sql, "--format", "csv"]) == 0
    csv = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert csv["carrier"].tolist() == ["AA", "DL", "UA"] and csv["mean_delay"].isna().tolist() == [
        False,
        True,
        False,
    ]
    target = tmp_path / "out.parquet"
    assert run(["sql", sql, "--format", "parquet", "--out", str(target)]) == 0
    assert "wrote 3 rows to" in capsys.readouterr().out
    assert pq.read_table(target).to_pylist() == query(sql, settings=wh).to_pylist()


def test_cli_errors_are_one_line_with_exit_code_1(wh: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    _write_stats(wh, [("AA", 1, 3.5)])
    for argv, message in (
        (["sql", "SELECT * FROM gold.nope"], "unknown table gold.nope"),
        (["sql", "SELECT nope FROM gold.carrier_delay_stats"], 'column "nope" not found'),
        (["sql", "SELECT * FROM bronze.mail"], "query views.bronze_mail instead"),
        (["sql", "SELECT * FROM gold.carrier_delay_stats", "--as-of", "9"], "has no version 9"),
        (["sql", "SELECT * FROM gold.carrier_delay_stats", "--format", "parquet"], "give --out FILE"),
        (["sql"], "give a query"),
    ):
        assert run(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("moulin: ") and message in err, err
