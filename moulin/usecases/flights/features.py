"""The training feature table (contract ``schemas/flight_features.yaml``) from silver flights.

Cancelled flights are excluded (no label).  The split is by departure date:
``train`` up to ``train_until``, ``validation`` up to ``validation_until``,
``test`` after.  ``route_delay_rate`` is the smoothed share of departures
delayed 15+ minutes on the route (origin, dest), computed from the TRAIN
period only, so validation and test rows carry no information from their own
period (routes never flown in the train period get null).  Train rows' rate
includes their own label (plain target encoding; the smoothing damps it).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from moulin.contracts import Contract, load_contract
from moulin.usecases.flights.transforms import select_contract

#: Pseudo-count of the route rate's smoothing towards the overall train rate.
ROUTE_SMOOTHING = 10.0


def assign_split(df: DataFrame, date_col: str, train_until: str, validation_until: str) -> DataFrame:
    """Add ``split`` (train / validation / test) from ``date_col`` and the two inclusive bounds."""
    d = F.col(date_col)
    split = (
        F.when(d <= F.to_date(F.lit(train_until)), "train")
        .when(d <= F.to_date(F.lit(validation_until)), "validation")
        .otherwise("test")
    )
    return df.withColumn("split", split)


def route_delay_rates(train: DataFrame, smoothing: float = ROUTE_SMOOTHING) -> DataFrame:
    """(origin, dest, route_delay_rate) from the given (train) departures.

    ``rate = (delayed + m * overall) / (departed + m)`` with ``m = smoothing``.
    """
    departed = train.filter(~F.col("cancelled") & F.col("dep_delayed_15").isNotNull())
    overall = departed.agg(F.coalesce(F.avg(F.col("dep_delayed_15").cast("double")), F.lit(0.0)).alias("_p"))
    per_route = departed.groupBy("origin", "dest").agg(
        F.sum("dep_delayed_15").alias("_delayed"), F.count(F.lit(1)).alias("_n")
    )
    rate = (F.col("_delayed") + F.lit(smoothing) * F.col("_p")) / (F.col("_n") + F.lit(smoothing))
    return per_route.crossJoin(overall).select("origin", "dest", rate.alias("route_delay_rate"))


def build_features(silver: DataFrame, contract: Contract | None = None) -> DataFrame:
    """Silver flights -> exactly the feature table's columns, in contract order."""
    contract = contract or load_contract("flight_features")
    split = contract.split
    flights = silver.filter(~F.col("cancelled") & F.col("dep_delayed_15").isNotNull())
    flights = assign_split(
        flights, split["column"], str(split["train_until"]), str(split["validation_until"])
    )
    rates = route_delay_rates(flights.filter(F.col("split") == "train"))
    out = flights.join(rates, ["origin", "dest"], "left")
    return select_contract(out, contract)
