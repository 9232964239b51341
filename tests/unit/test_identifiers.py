"""Names that reach SQL text and warehouse paths: plain identifiers and safe path parts
only (moulin.identifiers), in the SQL extractors, Settings.table_uri and run ids."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from moulin.errors import DataError, UnsafeNameError
from moulin.identifiers import check_identifier, check_path_part, check_relative_path, quote_identifier
from moulin.ingest.database import extract_to_landing
from moulin.settings import load_settings
from moulin.storage import WarehouseFS

INJECTION = "x; DROP TABLE t"


# ------------------------------------------------------------------ identifiers
@pytest.mark.parametrize("name", ["planes", "plane_id", "_x", "Order2", "A"])
def test_plain_identifiers_pass(name: str) -> None:
    assert check_identifier(name, "here") == name


@pytest.mark.parametrize(
    "name",
    [INJECTION, "x;", "1abc", "", "a b", 'a"b', "a-b", "a.b", "a--", "t/*", "é", "a\nb", "a\x00"],
)
def test_other_identifiers_are_refused_naming_where_and_the_rule(name: str) -> None:
    with pytest.raises(UnsafeNameError) as info:
        check_identifier(name, "source spec orders: sql.table")
    message = str(info.value)
    assert "source spec orders: sql.table" in message
    assert "letters, digits and _" in message


def test_schema_qualified_tables_only_where_allowed() -> None:
    assert check_identifier("main.planes", "t", qualified=True) == "main.planes"
    for bad in ("a.b.c", ".t", "t.", "main.x; DROP TABLE t", "../t"):
        with pytest.raises(UnsafeNameError, match="schema.table"):
            check_identifier(bad, "t", qualified=True)
    with pytest.raises(UnsafeNameError):
        check_identifier("main.planes", "column")
    with pytest.raises(UnsafeNameError, match="int"):
        check_identifier(42, "t")


def test_unsafe_name_error_is_a_data_error_and_a_value_error() -> None:
    assert issubclass(UnsafeNameError, DataError) and issubclass(UnsafeNameError, ValueError)


def test_quoting_uses_the_dialects_preparer() -> None:
    from sqlalchemy.dialects import sqlite

    preparer = sqlite.dialect().identifier_preparer
    assert quote_identifier("planes", preparer, "t") == "planes"
    assert quote_identifier("order", preparer, "t") == '"order"'
    assert quote_identifier("main.order", preparer, "t", qualified=True) == 'main."order"'
    with pytest.raises(UnsafeNameError):
        quote_identifier('x" ; DROP TABLE t; --', preparer, "t")


# ------------------------------------------------------------------ path parts
@pytest.mark.parametrize(
    "part", ["runs", "ds=2024-01-01.json", "20240101T000000Z-a1b2c3", "flight_delay", "a..b"]
)
def test_safe_path_parts_pass(part: str) -> None:
    assert check_path_part(part, "run id") == part


@pytest.mark.parametrize(
    ("part", "why"),
    [
        ("", "empty"),
        (".", "relative folder"),
        ("..", "relative folder"),
        ("/etc", "absolute"),
        ("a\\..\\b", "backslash"),
        ("a\x00b", "NUL"),
        ("a\nb", "control"),
        ("a\x7fb", "control"),
        ("a/b", "'/'"),
        ("a b", "' '"),
        ("x;rm", "';'"),
        ("é", "'é'"),
        ("~", "'~'"),
    ],
)
def test_unsafe_path_parts_are_refused(part: str, why: str) -> None:
    with pytest.raises(UnsafeNameError) as info:
        check_path_part(part, "run id")
    message = str(info.value)
    assert message.startswith("run id ") and why in message
    assert "letters, digits" in message


def test_relative_paths_are_checked_part_by_part() -> None:
    assert check_relative_path("flights/gold", "table") == "flights/gold"
    assert (
        check_relative_path("quality/runs/x/ds=2024-01-01.json", "t") == "quality/runs/x/ds=2024-01-01.json"
    )
    for bad in ("a/../b", "..", "../x", "a//b", "a/", "/abs", "a/./b", "a\\b"):
        with pytest.raises(UnsafeNameError, match="table"):
            check_relative_path(bad, "table")


# ------------------------------------------------------------------ Settings.table_uri
def test_table_uri_keeps_the_callers_forms(tmp_path: Path) -> None:
    s = load_settings(env={"MOULIN_HOME": str(tmp_path)})
    w = s.warehouse
    assert s.table_uri("bronze", "flights") == f"{w}/bronze/flights"
    assert (
        s.table_uri("quality", "runs", "src", "ds=2024-01-01.json")
        == f"{w}/quality/runs/src/ds=2024-01-01.json"
    )
    assert s.table_uri("flights/gold") == f"{w}/flights/gold"
    assert s.table_uri("/gold/flight_features/") == f"{w}/gold/flight_features"
    assert (
        s.table_uri("raw/flights/ds=2013-09-01/_manifest.json")
        == f"{w}/raw/flights/ds=2013-09-01/_manifest.json"
    )
    assert s.table_uri("models", "flight_delay", "manual__2026-11-25T21_36_34_00_00").endswith(
        "/models/flight_delay/manual__2026-11-25T21_36_34_00_00"
    )


@pytest.mark.parametrize(
    "parts",
    [
        ("raw", "../../etc"),
        ("models", "..", "x"),
        ("..",),
        ("gold/../../outside",),
        ("raw", "src", "ds=../../x"),
        ("a\\..\\b",),
        ("raw", "a//b"),
        ("raw", ""),
        ("raw", "x; rm -rf"),
        ("raw", "a\x00b"),
    ],
)
def test_table_uri_refuses_parts_that_leave_the_warehouse(tmp_path: Path, parts: tuple[str, ...]) -> None:
    s = load_settings(env={"MOULIN_HOME": str(tmp_path)})
    with pytest.raises(UnsafeNameError, match="warehouse path"):
        s.table_uri(*parts)


# ------------------------------------------------------------------ SQL extraction
@pytest.fixture
def shop_db(tmp_path: Path) -> Path:
    """A SQLite database with reserved-word names (quoted by the preparer) and a victim table."""
    path = tmp_path / "shop.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute('CREATE TABLE "order" (id INTEGER, "select" TEXT, amount REAL)')
        conn.executemany(
            'INSERT INTO "order" VALUES (?, ?, ?)', [(1, "a", 1.5), (2, "b", 2.5), (3, None, 3.0)]
        )
        conn.execute("CREATE TABLE t (x INTEGER)")
        conn.execute("INSERT INTO t VALUES (1)")
    return path


def _tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_database_extraction_refuses_unsafe_source_names(settings, shop_db, tmp_path) -> None:
    for source in ("../escape", "a/b", ".."):
        with pytest.raises(UnsafeNameError, match="SQL source name"):
            extract_to_landing(
                settings, source, "2024-01-01", f"sqlite:///{shop_db}", ["x"], tmp_path / "s", table="t"
            )
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("sql.table", {"table": INJECTION}),
        ("sql.table", {"table": "main.t; DROP TABLE t"}),
        ("sql.table", {"table": "../t"}),
        ("sql.watermark", {"table": "t", "watermark": INJECTION}),
        ("column", {"table": "t", "columns": ["x; DROP TABLE t"]}),
    ],
)
def test_database_extraction_refuses_unsafe_names(settings, shop_db, tmp_path, field, kwargs) -> None:
    kwargs = {"columns": ["x"], **kwargs}
    with pytest.raises(UnsafeNameError) as info:
        extract_to_landing(
            settings, "shop_db_t", "2024-01-01", f"sqlite:///{shop_db}", staging_dir=tmp_path / "s", **kwargs
        )
    message = str(info.value)
    assert "source shop_db_t" in message and field in message and "letters, digits and _" in message
    assert _tables(shop_db) == {"order", "t"}


def test_database_extraction_reads_reserved_and_schema_qualified_names(settings, shop_db, tmp_path) -> None:
    landing = extract_to_landing(
        settings, "shop_db_order_t", "2024-01-01", f"sqlite:///{shop_db}", ["id", "select"],
        tmp_path / "s", table="main.order", watermark="id",
    )  # fmt: skip
    assert landing.rows == 3 and landing.manifest["watermark_after"] == 3
    lines = WarehouseFS(settings).read_bytes(landing.files[0]["uri"]).decode().splitlines()
    assert lines[0] == '{"id": 1, "select": "a"}'


# ------------------------------------------------------------------ run ids of the flights use case
def test_airflow_run_ids_become_one_safe_folder_name() -> None:
    from moulin.orchestration import safe_run_id

    assert safe_run_id("manual__2026-11-25T21:36:34+00:00") == "manual__2026-11-25T21_36_34_00_00"
    assert safe_run_id("..") == "run"
    assert safe_run_id("../../etc") == "_.._etc"
    assert safe_run_id("a/b\\c\x00") == "a_b_c_"
    for run_id in ("..", "../../etc", "a/b", ".hidden", "x\n"):
        assert check_path_part(safe_run_id(run_id), "run id")
