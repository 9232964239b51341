"""Silver transforms on tiny hand-made DataFrames."""

from __future__ import annotations

import datetime as dt

from moulin.contracts import load_contract
from moulin.usecases.flights.transforms import (
    add_origin_weather,
    add_plane_age,
    conform_flights,
    silver_flights,
)

BRONZE = (
    "year int, month int, day int, dep_time int, sched_dep_time int, dep_delay double, arr_time int, "
    "sched_arr_time int, arr_delay double, carrier string, flight int, tailnum string, origin string, "
    "dest string, air_time double, distance double, hour int, minute int, time_hour timestamp"
)


def _bronze(spark):
    rows = [
        # winter (EST, UTC-5), delayed 20 min
        (2013, 1, 1, 535, 515, 20.0, 830, 819, 11.0, "UA", 1545, "N14228", "EWR", "IAH", 227.0, 1400.0, 5, 15,
         dt.datetime(2013, 1, 1, 10)),
        # summer (EDT, UTC-4), early, departs after midnight local? no: on time
        (2013, 7, 10, 1759, 1800, -1.0, 2000, 2010, -10.0, "AA", 11, "N1", "JFK", "LAX", 300.0, 2475.0, 18, 0,
         dt.datetime(2013, 7, 10, 22)),
        # cancelled, unknown plane
        (2013, 7, 10, 0, 2359, None, None, 100, None, "B6", 7, None, "LGA", "BOS", None, 184.0, 23, 59,
         dt.datetime(2013, 7, 11, 3)),
    ]  # fmt: skip
    rows[2] = (*rows[2][:3], None, *rows[2][4:])
    return spark.createDataFrame(rows, BRONZE)


def test_conform_converts_local_times_to_utc_and_flags(spark):
    out = {r["flight_id"]: r for r in conform_flights(_bronze(spark)).collect()}
    winter = out["2013-01-01_UA_1545_EWR"]
    assert winter["sched_dep_utc"] == dt.datetime(2013, 1, 1, 10, 15)
    assert winter["dep_utc"] == dt.datetime(2013, 1, 1, 10, 35)
    assert winter["dep_delayed_15"] == 1 and not winter["cancelled"]
    assert winter["dep_date"] == dt.date(2013, 1, 1) and winter["day_of_week"] == 3  # Tuesday
    summer = out["2013-07-10_AA_11_JFK"]
    assert summer["sched_dep_utc"] == dt.datetime(2013, 7, 10, 22, 0)
    assert summer["dep_delayed_15"] == 0 and summer["sched_dep_hour"] == 18
    cancelled = out["2013-07-10_B6_7_LGA"]
    assert cancelled["cancelled"] and cancelled["dep_utc"] is None and cancelled["dep_delayed_15"] is None
    assert cancelled["sched_dep_utc"] == dt.datetime(2013, 7, 11, 3, 59)  # next day in UTC


def test_plane_age_and_weather_at_departure_hour(spark):
    flights = conform_flights(_bronze(spark))
    planes = spark.createDataFrame([("N14228", 1999), ("N1", None)], "tailnum string, year int")
    aged = {r["flight_id"]: r for r in add_plane_age(flights, planes).collect()}
    assert aged["2013-01-01_UA_1545_EWR"]["plane_age"] == 14.0
    assert aged["2013-07-10_AA_11_JFK"]["plane_age"] is None
    assert aged["2013-07-10_B6_7_LGA"]["plane_year"] is None
    weather = spark.createDataFrame(
        [
            ("EWR", dt.datetime(2013, 1, 1, 10), 39.0, 59.0, 10.0, 0.0, 1012.0, 10.0),
            ("EWR", dt.datetime(2013, 1, 1, 11), 40.0, 60.0, 11.0, 0.0, 1013.0, 10.0),
            ("JFK", dt.datetime(2013, 1, 1, 10), 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
        ],
        "origin string, time_hour timestamp, temp double, humid double, wind_speed double, precip double, "
        "pressure double, visib double",
    )
    joined = {r["flight_id"]: r for r in add_origin_weather(flights, weather).collect()}
    assert joined["2013-01-01_UA_1545_EWR"]["temp"] == 39.0  # 10:15 UTC -> the 10:00 observation at EWR
    assert joined["2013-07-10_AA_11_JFK"]["temp"] is None
    assert len(joined) == 3


def test_silver_flights_has_the_contract_columns(spark):
    planes = spark.createDataFrame([("N14228", 1999)], "tailnum string, year int")
    weather = spark.createDataFrame(
        [("EWR", dt.datetime(2013, 1, 1, 10), 39.0, 59.0, 10.0, 0.0, 1012.0, 10.0)],
        "origin string, time_hour timestamp, temp double, humid double, wind_speed double, precip double, "
        "pressure double, visib double",
    )
    silver = silver_flights(_bronze(spark), planes, weather)
    contract = load_contract("silver_flights")
    assert silver.columns == contract.column_names
    assert silver.count() == 3
