"""Predicates of moulin.delta: parsing, typing, exact and range evaluation (no Spark)."""

import datetime as dt

import pytest

from moulin.delta import DeltaStoreError
from moulin.delta.log import FileEntry
from moulin.delta.predicates import normalize_filters, parse_predicate, range_may_match

COLS = {"month": "integer", "carrier": "string", "day": "date", "ts": "timestamp", "delay": "double"}


def test_parse_predicate_conjunction() -> None:
    preds = parse_predicate(
        "t", "month = 1 AND carrier IN ('AA', 'O''B') AND delay >= 2.5 AND day <> '2013-01-01'"
    )
    assert preds == [
        ("month", "=", 1),
        ("carrier", "in", ["AA", "O'B"]),
        ("delay", ">=", 2.5),
        ("day", "!=", "2013-01-01"),
    ]
    assert parse_predicate("t", "`month` NOT IN (1, 2)") == [("month", "not in", [1, 2])]


@pytest.mark.parametrize("bad", ["month = ", "month 1", "month = 1 OR month = 2", "= 1", "month IN 1"])
def test_parse_predicate_rejects(bad: str) -> None:
    with pytest.raises(DeltaStoreError, match="cannot parse predicate"):
        parse_predicate("file:///t", bad)


def test_normalize_filters_types_values() -> None:
    preds = normalize_filters(
        "t", [("day", "=", "2013-01-02"), ("ts", ">", "2013-01-01T10:00:00"), ("month", "in", [1, "2"])], COLS
    )
    assert preds[0] == ("day", "=", dt.date(2013, 1, 2))
    assert preds[1] == ("ts", ">", dt.datetime(2013, 1, 1, 10, tzinfo=dt.UTC))
    assert preds[2] == ("month", "in", [1, 2])
    assert normalize_filters("t", {"month": 3}, COLS) == [("month", "=", 3)]


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ([("nope", "=", 1)], "filter column 'nope' is not a column of table t"),
        ([("month", "~", 1)], "filter operator '~'"),
        ([("month", "=", "x")], "does not fit column 'month' of type integer"),
        ([("month", "in", 1)], "needs a list of values"),
        ([("month", "=")], "is not a \\(column, op, value\\) triple"),
    ],
)
def test_normalize_filters_errors_name_the_problem(filters, message: str) -> None:
    with pytest.raises(DeltaStoreError, match=message):
        normalize_filters("t", filters, COLS)


def test_range_may_match() -> None:
    assert range_may_match("=", 1, 5, 3)
    assert not range_may_match("=", 1, 5, 6)
    assert not range_may_match(">", 1, 5, 5)
    assert range_may_match(">=", 1, 5, 5)
    assert not range_may_match("<", 1, 5, 1)
    assert range_may_match("<", None, None, 1)  # unknown bounds: keep the file
    assert range_may_match(">", 1, None, 100)
    assert not range_may_match("in", 1, 5, [7, 8])
    assert not range_may_match("!=", 4, 4, 4)


def test_file_entry_skips_by_partition_stats_and_nulls() -> None:
    entry = FileEntry("month=1/f.parquet", 10, {"month": 1}, 10, {"delay": 0.0}, {}, {"carrier": 10})
    assert entry.may_match([("month", "=", 1)], ["month"])
    assert not entry.may_match([("month", "in", [2, 3])], ["month"])
    assert not entry.may_match([("delay", "<", -1.0)], ["month"])
    assert entry.may_match([("delay", ">", 1000.0)], ["month"])  # no max: unknown
    assert not entry.may_match([("carrier", "=", "AA")], ["month"])  # all nulls
