"""Silver flights (C3): pure ``DataFrame -> DataFrame`` cleaning, conforming and enrichment.

Source times are local America/New_York wall-clock times; they become UTC
timestamps here (Spark's ``make_timestamp`` with an explicit zone, so the
result does not depend on the session time zone; in the repeated hour of
the autumn DST change the earlier, daylight-time instant is taken).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from moulin.contracts import Contract, load_contract

SOURCE_TZ = "America/New_York"
DATA_YEAR = 2013
DELAY_THRESHOLD_MIN = 15


def local_to_utc(
    year: Column, month: Column, day: Column, hour: Column, minute: Column, tz: str = SOURCE_TZ
) -> Column:
    """UTC timestamp of a local wall-clock time in ``tz``."""
    return F.make_timestamp(year, month, day, hour, minute, F.lit(0), F.lit(tz))


def conform_flights(bronze: DataFrame) -> DataFrame:
    """Bronze flights -> conformed flights.

    Adds ``flight_id`` (``<date>_<carrier>_<flight>_<origin>``, the natural
    key), ``dep_date`` (local date), ``day_of_week`` (1 = Sunday),
    ``sched_dep_hour``, ``sched_dep_utc``, ``dep_utc`` (scheduled + delay, null
    when cancelled), ``cancelled`` (no departure time) and ``dep_delayed_15``
    (1 if the departure delay is 15 minutes or more, null when cancelled).
    """
    dep_date = F.make_date("year", "month", "day")
    sched_utc = local_to_utc(F.col("year"), F.col("month"), F.col("day"), F.col("hour"), F.col("minute"))
    cancelled = F.col("dep_time").isNull()
    dep_utc = F.when(
        ~cancelled,
        F.timestamp_seconds(F.unix_seconds(sched_utc) + (F.col("dep_delay") * 60).cast("long")),
    )
    return bronze.select(
        F.concat_ws(
            "_", F.date_format(dep_date, "yyyy-MM-dd"), "carrier", F.col("flight").cast("string"), "origin"
        ).alias("flight_id"),
        dep_date.alias("dep_date"),
        F.col("year").cast("int").alias("year"),
        F.col("month").cast("int").alias("month"),
        F.col("day").cast("int").alias("day"),
        F.dayofweek(dep_date).alias("day_of_week"),
        "carrier",
        F.col("flight").cast("int").alias("flight"),
        "tailnum",
        "origin",
        "dest",
        F.col("hour").cast("int").alias("sched_dep_hour"),
        sched_utc.alias("sched_dep_utc"),
        dep_utc.alias("dep_utc"),
        F.col("dep_delay").cast("double").alias("dep_delay"),
        F.col("arr_delay").cast("double").alias("arr_delay"),
        F.col("air_time").cast("double").alias("air_time"),
        F.col("distance").cast("double").alias("distance"),
        cancelled.alias("cancelled"),
        F.when(~cancelled, (F.col("dep_delay") >= DELAY_THRESHOLD_MIN).cast("int")).alias("dep_delayed_15"),
    )


def add_plane_age(flights: DataFrame, planes: DataFrame, year: int = DATA_YEAR) -> DataFrame:
    """Left-join the plane's year of manufacture; ``plane_age = year - plane_year`` (null if unknown)."""
    p = planes.select(F.col("tailnum").alias("_tailnum"), F.col("year").cast("int").alias("plane_year"))
    joined = flights.join(p, flights["tailnum"] == p["_tailnum"], "left").drop("_tailnum")
    return joined.withColumn("plane_age", (F.lit(year) - F.col("plane_year")).cast("double"))


WEATHER_COLUMNS = ("temp", "humid", "wind_speed", "precip", "pressure", "visib")


def add_origin_weather(flights: DataFrame, weather: DataFrame) -> DataFrame:
    """Left-join the weather observed at the origin airport in the scheduled departure hour (UTC)."""
    w = weather.select(
        F.col("origin").alias("_w_origin"),
        F.col("time_hour").alias("_w_hour"),
        *[F.col(c).cast("double").alias(c) for c in WEATHER_COLUMNS],
    )
    hour = F.date_trunc("hour", F.col("sched_dep_utc"))
    joined = flights.join(w, (flights["origin"] == w["_w_origin"]) & (hour == w["_w_hour"]), "left")
    return joined.drop("_w_origin", "_w_hour")


def select_contract(df: DataFrame, contract: Contract) -> DataFrame:
    """The contract's columns, in order, cast to the contract types."""
    return df.select(*[F.col(c.name).cast(c.type).alias(c.name) for c in contract.columns])


def silver_flights(bronze_flights: DataFrame, planes: DataFrame, weather: DataFrame) -> DataFrame:
    """Bronze flights + planes + weather -> the silver flights table (contract ``silver_flights``)."""
    flights = conform_flights(bronze_flights)
    flights = add_plane_age(flights, planes)
    flights = add_origin_weather(flights, weather)
    return select_contract(flights, load_contract("silver_flights"))
