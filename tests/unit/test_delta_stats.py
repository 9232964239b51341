"""Delta statistics from Parquet footers (pyarrow-written files, no Spark)."""

import datetime as dt
import json

import pyarrow as pa
import pyarrow.parquet as pq

from moulin.delta.stats import parse_footer, stats_json


def _stats(tmp_path, table: pa.Table, types: dict[str, str], **kw):
    path = tmp_path / "f.parquet"
    pq.write_table(table, path, **kw)
    meta = parse_footer(path.read_bytes(), str(path))
    from moulin.delta.stats import file_stats

    return file_stats(meta, types)


def test_stats_per_type_merged_over_row_groups(tmp_path) -> None:
    table = pa.table(
        {
            "i": [3, 1, None, 7],
            "s": ["b", "a", "c", None],
            "d": [dt.date(2020, 1, 2), dt.date(2020, 1, 1), None, dt.date(2021, 5, 1)],
            "ts": pa.array(
                [dt.datetime(2020, 1, 1, 0, 0, 0, 1500), dt.datetime(2020, 1, 1, 0, 0, 0, 2500), None, None],
                pa.timestamp("us", tz="UTC"),
            ),
            "b": [True, False, None, True],
            "x": [1.5, float("nan"), 0.5, None],
            "dec": pa.array([1, 2, 3, 4]).cast(pa.decimal128(22, 2)),
        }
    )
    types = {
        "i": "long",
        "s": "string",
        "d": "date",
        "ts": "timestamp",
        "b": "boolean",
        "x": "double",
        "dec": "decimal",
    }
    stats = _stats(tmp_path, table, types, row_group_size=2)
    assert stats["numRecords"] == 4
    assert stats["minValues"] == {
        "i": 1,
        "s": "a",
        "d": "2020-01-01",
        "ts": "2020-01-01T00:00:00.001Z",  # floored to ms
        "b": False,
        "x": 0.5,
    }
    assert stats["maxValues"] == {
        "i": 7,
        "s": "c",
        "d": "2021-05-01",
        "ts": "2020-01-01T00:00:00.003Z",  # ceiled to ms
        "b": True,
    }  # no max for doubles (NaN), none for decimals
    assert stats["nullCount"] == {"i": 1, "s": 1, "d": 1, "ts": 2, "b": 1, "x": 1, "dec": 0}
    assert json.loads(stats_json(stats)) == stats


def test_long_strings_keep_a_prefix_min_and_no_max(tmp_path) -> None:
    long = "x" * 40
    stats = _stats(tmp_path, pa.table({"s": [long + "b", long + "a"]}), {"s": "string"})
    assert stats["minValues"]["s"] == "x" * 32
    assert "s" not in stats["maxValues"]


def test_all_null_column_has_counts_but_no_bounds(tmp_path) -> None:
    stats = _stats(tmp_path, pa.table({"i": pa.array([None, None], pa.int64())}), {"i": "long"})
    assert stats["nullCount"] == {"i": 2}
    assert stats["minValues"] == {} and stats["maxValues"] == {}
