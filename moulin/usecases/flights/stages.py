"""Stages of the NY flights use case: read -> transform -> write, one function per stage.

Each stage takes the settings (and a Spark session when it needs one) and a
logical date or month, writes through :class:`~moulin.delta.DeltaTableStore`
with an ``app_id``/``app_version`` pair (a rerun of the same logical date
commits nothing and changes no table) and returns a small JSON-able dict of
counts (Airflow XCom, the run report).

Months are given as ``"2013-01"``, ``"2013-01-01"``, a ``date`` or an int
1-12 (year 2013); their logical date (``ds``) is the first day of the month.

The five sources are landed and gated into ``bronze/{flights,weather,planes,airports,
airlines}`` and ``quarantine/<source>`` by the source factory (their specs in
``schemas/sources/``, :mod:`moulin.sources`); the stages here start from bronze.

Tables (under the warehouse): ``silver/flights``,
``gold/{route,carrier,hour}_delay_stats``, ``gold/flight_features``,
``quality/table_profiles``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from moulin.contracts import Contract, load_contract
from moulin.errors import MoulinError
from moulin.lineage import run_key
from moulin.quality.tables import check_table
from moulin.settings import Settings
from moulin.usecases.flights.params import STATS_TABLES

PIPELINE = "moulin.usecases.flights"


class StageError(MoulinError):
    """A stage cannot run (missing landing or upstream table)."""


# ---------------------------------------------------------------- helpers
def month_of(month: Any) -> tuple[int, int]:
    """(year, month) of ``"2013-01"``, ``"2013-01-15"``, a date or an int 1-12 (2013)."""
    if isinstance(month, dt.date):
        return month.year, month.month
    if isinstance(month, int):
        if not 1 <= month <= 12:
            raise StageError(f"month {month} is not within 1..12")
        return 2013, month
    text = str(month).strip()
    try:
        parts = text.split("T")[0].split("-")
        year, mon = int(parts[0]), int(parts[1])
    except (ValueError, IndexError):
        raise StageError(f"month {month!r}: expected YYYY-MM, YYYY-MM-DD or 1..12") from None
    if not 1 <= mon <= 12:
        raise StageError(f"month {month!r}: month {mon} is not within 1..12")
    return year, mon


def month_ds(month: Any) -> str:
    """Logical date (first day) of a month, ``YYYY-MM-01``."""
    year, mon = month_of(month)
    return f"{year:04d}-{mon:02d}-01"


def ds_of(logical_date: Any) -> str:
    """``YYYY-MM-DD`` of a date, datetime or ISO string."""
    if isinstance(logical_date, dt.datetime):
        return logical_date.date().isoformat()
    if isinstance(logical_date, dt.date):
        return logical_date.isoformat()
    text = str(logical_date).strip()[:10]
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise StageError(f"logical date {logical_date!r}: expected YYYY-MM-DD") from None


def app_version(ds: str) -> int:
    """The Delta app-transaction version of a logical date (``20130101``)."""
    return int(ds.replace("-", ""))


def table_uri(settings: Settings, contract: Contract | str) -> str:
    """Warehouse URI of a contract's table."""
    contract = load_contract(contract) if isinstance(contract, str) else contract
    return settings.table_uri(contract.table)


def _store(spark):
    from moulin.delta import DeltaTableStore

    return DeltaTableStore(spark)


def _overwrite(
    store, df, settings: Settings, contract: Contract, app_id: str, ds: str, replace_where=None, inputs=None
):
    """Overwrite ``contract``'s table (only the partitions of ``replace_where`` when
    given) as the idempotent transaction ``app_id`` at the version of ``ds``; the app
    id carries :func:`moulin.lineage.run_key` of ``inputs`` (the Delta versions read)
    and the code, so a rerun after either changed writes again."""
    from moulin.delta import AppTransaction, TableProperties

    app_id = f"{app_id}.{run_key(app_id, inputs or {})}"
    return store.write(
        df,
        table_uri(settings, contract),
        mode="overwrite",
        partition_by=list(contract.partition_by) or None,
        replace_where=replace_where,
        transaction=AppTransaction(app_id, app_version(ds)),
        properties=TableProperties(**contract.delta_metadata),
    )


# ---------------------------------------------------------------- C3 silver / gold / features
def _read(store, settings: Settings, name: str, filters=None, inputs: dict | None = None):
    """Read table ``name`` at its latest version, noting that version in ``inputs``."""
    uri = table_uri(settings, name)
    if not store.exists(uri):
        raise StageError(f"table {name} ({uri}) does not exist: run its upstream stage first")
    version = store.version(uri)
    if inputs is not None:
        inputs[name] = version
    return store.read(uri, version=version, filters=filters)


def _months_key(months: list[int]) -> str:
    """The Data Docs key of a check over ``months`` (``month=03`` or ``months=01-12``)."""
    if len(months) == 1:
        return f"month={months[0]:02d}"
    return f"months={min(months):02d}-{max(months):02d}"


def _overwrite_months(store, df, settings, contract, name: str, days: list[str], mons: list[int], inputs):
    """Replace the month partitions ``mons`` of ``contract``'s table with ``df`` in one
    idempotent commit (the files are those that a write per month would make)."""
    from pyspark.sql import functions as F

    return _overwrite(
        store,
        df.filter(F.col("month").isin(mons)),
        settings,
        contract,
        f"{PIPELINE}.{name}.{_months_key(mons)}",
        max(days),
        [("month", "in", mons)],
        inputs,
    )


def silver_flights(spark, settings: Settings, months: list[Any]) -> list[dict]:
    """Bronze flights of each month + bronze planes and weather -> ``silver/flights``
    (partition ``month``): one pass, one contract check and one idempotent commit
    replacing the month partitions, for all ``months``.

    Returns per month ``{table, month, rows, cancelled, committed, version, data_docs_uri}``.
    """
    from pyspark.sql import functions as F

    from moulin.usecases.flights.transforms import silver_flights as transform

    days = [month_ds(m) for m in months]
    mons = [month_of(m)[1] for m in months]
    store = _store(spark)
    inputs: dict[str, int] = {}
    bronze = _read(store, settings, "bronze_flights", [("ds", "in", days)], inputs)
    # A drop's flights of another month are not that drop's (as when months ran one by one).
    bronze = bronze.filter(F.col("month") == F.month(F.to_date(F.col("ds"))))
    silver = transform(
        bronze,
        _read(store, settings, "bronze_planes", inputs=inputs),
        _read(store, settings, "bronze_weather", inputs=inputs),
    )
    silver = silver.filter(F.col("month").isin(mons)).cache()
    out = []
    try:
        contract = load_contract("silver_flights")
        check = check_table(silver, contract, settings, _months_key(mons))
        per_month = {
            r["month"]: (int(r["rows"]), int(r["cancelled"] or 0))
            for r in silver.groupBy("month")
            .agg(F.count(F.lit(1)).alias("rows"), F.sum(F.col("cancelled").cast("int")).alias("cancelled"))
            .collect()
        }
        res = _overwrite_months(store, silver, settings, contract, "silver_flights", days, mons, inputs)
        for mon in mons:
            rows, cancelled = per_month.get(mon, (0, 0))
            out.append(
                {
                    "table": "silver_flights",
                    "month": mon,
                    "rows": rows,
                    "cancelled": cancelled,
                    "committed": res.committed,
                    "version": res.version,
                    "data_docs_uri": check.get("data_docs_uri"),
                }
            )
    finally:
        silver.unpersist()
    return out


def gold_stats(spark, settings: Settings, months: list[Any]) -> list[dict]:
    """Route, carrier and hour delay statistics of ``months`` (an explicit MapReduce on Arrow batches,
    one pass, one contract check and one commit per statistics table for all months)
    into ``gold/<dim>_delay_stats`` (partition ``month``).

    Returns per month ``{month, tables: {dim: {rows, committed, version, data_docs_uri}}}``.
    """

    from moulin.usecases.flights.mapreduce import STAT_KEYS, delay_stats_mapreduce

    days = [month_ds(m) for m in months]
    mons = [month_of(m)[1] for m in months]
    store = _store(spark)
    inputs: dict[str, int] = {}
    silver = _read(store, settings, "silver_flights", [("month", "in", mons)], inputs).cache()
    out: dict[int, dict] = {mon: {"month": mon, "tables": {}} for mon in mons}
    try:
        for dim, name in STATS_TABLES.items():
            contract = load_contract(name)
            stats = delay_stats_mapreduce(silver, STAT_KEYS[dim]).select(*contract.column_names).cache()
            try:
                checked = check_table(stats, contract, settings, _months_key(mons))
                keys = {r["month"]: int(r["count"]) for r in stats.groupBy("month").count().collect()}
                res = _overwrite_months(store, stats, settings, contract, name, days, mons, inputs)
                for mon in mons:
                    out[mon]["tables"][dim] = {
                        "rows": keys.get(mon, 0),
                        "committed": res.committed,
                        "version": res.version,
                        "data_docs_uri": checked.get("data_docs_uri"),
                    }
            finally:
                stats.unpersist()
    finally:
        silver.unpersist()
    return [out[mon] for mon in mons]


def features(spark, settings: Settings, month: Any) -> dict:
    """The feature table from silver flights of all months up to ``month`` (full rewrite,
    partitioned by ``split``; route rates from the train period only).

    Returns ``{table, month, rows, splits: {split: rows}, committed, version}``.
    """
    from pyspark.sql import functions as F

    from moulin.usecases.flights.features import build_features

    ds = month_ds(month)
    _, mon = month_of(month)
    store = _store(spark)
    inputs: dict[str, int] = {}
    silver = _read(store, settings, "silver_flights", inputs=inputs).filter(F.col("month") <= mon)
    contract = load_contract("flight_features")
    feats = build_features(silver, contract).cache()
    try:
        check = check_table(feats, contract, settings, f"until_month={mon:02d}")
        splits = {r["split"]: int(r["count"]) for r in feats.groupBy("split").count().collect()}
        res = _overwrite(store, feats, settings, contract, f"{PIPELINE}.flight_features", ds, None, inputs)
    finally:
        feats.unpersist()
    return {
        "table": "flight_features",
        "month": mon,
        "rows": check["rows"],
        "splits": dict(sorted(splits.items())),
        "committed": res.committed,
        "version": res.version,
        "data_docs_uri": check.get("data_docs_uri"),
    }


def profile(
    spark, settings: Settings, month: Any, tables: tuple[str, ...] = ("silver_flights", "flight_features")
) -> dict:
    """Profile ``tables`` into ``quality/table_profiles`` (one partition per table).

    Returns ``{month, tables: {table: {rows (profile rows), committed, version}}}``.
    """
    from pyspark.sql import functions as F

    from moulin.profiling import profile_dataframe

    ds = month_ds(month)
    store = _store(spark)
    contract = load_contract("table_profiles")
    out = {}
    for name in tables:
        inputs: dict[str, int] = {}
        df = _read(store, settings, name, inputs=inputs)
        if name == "silver_flights":
            df = df.filter(F.col("month") <= month_of(month)[1])
        prof = profile_dataframe(df, name).withColumn("ds", F.lit(ds))
        rows = prof.count()
        res = _overwrite(
            store, prof, settings, contract, f"{PIPELINE}.profile.{name}", ds, {"table": name}, inputs
        )
        out[name] = {"rows": rows, "committed": res.committed, "version": res.version}
    return {"month": month_of(month)[1], "tables": out}
