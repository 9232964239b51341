"""Feature table: contract columns, date split, route rate from the train period only."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import functions as F

from moulin.contracts import load_contract
from moulin.usecases.flights.features import assign_split, build_features, route_delay_rates


def _silver(spark, late_in_test: int = 0):
    rows = []
    flight = 0

    def add(day: dt.date, origin: str, dest: str, delayed: int | None):
        nonlocal flight
        flight += 1
        rows.append(
            (f"{day}_UA_{flight}_{origin}", day, day.month, day.isoweekday() % 7 + 1, "UA", origin, dest, 5,
             1000.0, 10.0, 30.0, 50.0, 5.0, 0.0, 1010.0, 10.0, delayed is None, delayed)
        )  # fmt: skip

    for i in range(4):
        add(dt.date(2013, 3, 1 + i), "EWR", "IAH", 1 if i == 0 else 0)  # train: 1 of 4 late
    add(dt.date(2013, 8, 31), "EWR", "IAH", None)  # cancelled: excluded
    add(dt.date(2013, 9, 1), "EWR", "IAH", 1)  # validation
    add(dt.date(2013, 10, 31), "JFK", "LAX", 0)  # validation, route unseen in train
    for i in range(3):
        add(dt.date(2013, 11, 1 + i), "EWR", "IAH", 1 if i < late_in_test else 0)  # test
    schema = (
        "flight_id string, dep_date date, month int, day_of_week int, carrier string, origin string, dest string, "
        "sched_dep_hour int, distance double, plane_age double, temp double, humid double, wind_speed double, "
        "precip double, pressure double, visib double, cancelled boolean, dep_delayed_15 int"
    )
    return spark.createDataFrame(rows, schema)


def test_split_bounds_are_inclusive(spark):
    df = spark.createDataFrame(
        [(dt.date(2013, 8, 31),), (dt.date(2013, 9, 1),), (dt.date(2013, 10, 31),), (dt.date(2013, 11, 1),)],
        "d date",
    )
    splits = [r["split"] for r in assign_split(df, "d", "2013-08-31", "2013-10-31").orderBy("d").collect()]
    assert splits == ["train", "validation", "validation", "test"]


def test_features_match_contract_and_have_no_leakage(spark):
    contract = load_contract("flight_features")
    feats = build_features(_silver(spark), contract)
    assert feats.columns == contract.column_names
    assert [f.dataType.simpleString() for f in feats.schema.fields][:4] == ["string", "date", "string", "int"]
    rows = {r["flight_id"]: r for r in feats.collect()}
    assert len(rows) == 9  # the cancelled flight is gone
    assert {r["split"] for r in rows.values()} == {"train", "validation", "test"}
    # smoothed: (1 + 10 * 0.25) / (4 + 10), overall train rate 1/4
    ewr = [r["route_delay_rate"] for r in rows.values() if r["origin"] == "EWR"]
    assert set(ewr) == {(1 + 10 * 0.25) / 14}
    assert [r["route_delay_rate"] for r in rows.values() if r["dest"] == "LAX"] == [None]
    # changing labels after the train period does not change any feature
    other = build_features(_silver(spark, late_in_test=3), contract).drop("dep_delayed_15")
    assert sorted(feats.drop("dep_delayed_15").collect()) == sorted(other.collect())


def test_route_rates_use_only_given_rows(spark):
    rates = route_delay_rates(_silver(spark).filter(F.col("dep_date") <= "2013-08-31"))
    assert [(r["origin"], r["dest"]) for r in rates.collect()] == [("EWR", "IAH")]
