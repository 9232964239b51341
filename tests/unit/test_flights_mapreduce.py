"""Gold delay statistics: the MapReduce against hand-computed values and the DataFrame twin."""

from __future__ import annotations

import pytest

from moulin.usecases.flights.mapreduce import (
    STAT_KEYS,
    StatsMismatchError,
    compare_stats,
    delay_stats_df,
    delay_stats_mapreduce,
)

SILVER = "month int, origin string, dest string, carrier string, sched_dep_hour int, cancelled boolean, dep_delay double"


def _silver(spark):
    rows = [
        (1, "EWR", "IAH", "UA", 5, False, 20.0),
        (1, "EWR", "IAH", "UA", 5, False, -4.0),
        (1, "EWR", "IAH", "AA", 6, True, None),
        (1, "JFK", "LAX", "AA", 6, False, 15.0),
        (2, "EWR", "IAH", "UA", 5, False, 0.0),
        (2, "JFK", "LAX", "AA", 7, True, None),
    ]
    return spark.createDataFrame(rows, SILVER).repartition(3)


def test_route_stats_by_mapreduce(spark):
    stats = {
        (r["month"], r["origin"], r["dest"]): r
        for r in delay_stats_mapreduce(_silver(spark), STAT_KEYS["route"]).collect()
    }
    r = stats[(1, "EWR", "IAH")]
    assert (r["n_flights"], r["n_cancelled"], r["n_departed"], r["n_delayed_15"]) == (3, 1, 2, 1)
    assert r["delay_rate"] == 0.5 and r["mean_dep_delay"] == 8.0 and r["std_dep_delay"] == 12.0
    assert r["max_dep_delay"] == 20.0 and r["sum_dep_delay"] == 16.0
    only_cancelled = stats[(2, "JFK", "LAX")]
    assert only_cancelled["n_departed"] == 0 and only_cancelled["delay_rate"] is None
    assert only_cancelled["mean_dep_delay"] is None and only_cancelled["max_dep_delay"] is None
    assert stats[(1, "JFK", "LAX")]["n_delayed_15"] == 1  # 15 minutes counts as delayed
    assert len(stats) == 4


@pytest.mark.parametrize("dim", ["route", "carrier", "hour"])
def test_mapreduce_and_dataframe_agree(spark, dim):
    silver = _silver(spark)
    keys = STAT_KEYS[dim]
    assert compare_stats(delay_stats_mapreduce(silver, keys), delay_stats_df(silver, keys), keys) >= 3


def test_compare_raises_on_difference(spark):
    silver = _silver(spark)
    keys = STAT_KEYS["carrier"]
    wrong = delay_stats_df(silver.filter("dep_delay IS NULL OR dep_delay < 20"), keys)
    with pytest.raises(StatsMismatchError, match="carrier.*MapReduce .* vs DataFrame"):
        compare_stats(delay_stats_mapreduce(silver, keys), wrong, keys)
