"""The SQL endpoint end to end: ``moulin sql-endpoint serve`` (Spark's Thrift JDBC/ODBC
server) over a local warehouse whose tables moulin's store writes, queried with Beeline
(JDBC) and PyHive (DB-API) and compared with ``moulin sql`` (DuckDB) on the same tables.

One endpoint serves the whole module (its start is most of the wall time); it looks for
commits every half second.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from platform_helpers import _free_block

from moulin.delta import DeltaTableStore, TableProperties
from moulin.settings import Settings, load_settings
from moulin.sql import run_query
from moulin.sql_endpoint.client import beeline_command, connect
from moulin.sql_endpoint.server import wait_until_answering
from moulin.sql_endpoint.sync import read_served

pytestmark = pytest.mark.integration

MOULIN = str(Path(sys.executable).with_name("moulin"))
FLIGHTS = "silver/flights"
STATS = "gold/carrier_delay_stats"
MAIL_VIEW = "views/bronze_mail"  # an analysts' view: pseudonyms, listed as personal data
HEADLINE = (
    "SELECT carrier, count(*) AS flights, round(avg(dep_delay), 4) AS mean_delay "
    "FROM silver.flights WHERE month IN (1, 2) GROUP BY carrier ORDER BY carrier"
)


@dataclass
class Endpoint:
    settings: Settings
    env: dict[str, str]
    log: Path
    store: DeltaTableStore


def _flights(spark, month: int, rows: int):
    data = [
        (
            ("AA", "B6", "DL", "UA")[i % 4],
            month,
            ("JFK", "LGA", "EWR")[i % 3],
            "BOS",
            float((i * 7 + month) % 45 - 5),
        )
        for i in range(rows)
    ]
    return spark.createDataFrame(
        data, "carrier string, month int, origin string, dest string, dep_delay double"
    )


def _stats(spark, rows: list[tuple[str, int, float]]):
    return spark.createDataFrame(rows, "carrier string, month int, mean_delay double")


@pytest.fixture(scope="module")
def endpoint(spark, moulin_env, tmp_path_factory: pytest.TempPathFactory):
    """The endpoint serving a warehouse of three tables: silver.flights (months 1-3),
    gold.carrier_delay_stats, whose month 1 an overwrite replaced (a removed file), and
    views.bronze_mail, whose pseudonyms its Delta metadata lists as personal data."""
    root = tmp_path_factory.mktemp("sql-endpoint")
    env = {
        **os.environ,
        "MOULIN_WAREHOUSE_URI": (root / "warehouse").as_uri(),
        # Below Linux's ephemeral ports and HDFS's block (see scheduled_year.py).
        "MOULIN_SQL_ENDPOINT_PORT": str(_free_block(1, start=random.randrange(12000, 18000, 20))[0]),
        "MOULIN_SQL_ENDPOINT_REFRESH_S": "0.5",
        "MOULIN_SQL_ENDPOINT_DRIVER_MEMORY": "1g",
    }
    settings = load_settings("local", env)
    store = DeltaTableStore(spark)
    flights = _flights(spark, 1, 40).unionByName(_flights(spark, 2, 80)).unionByName(_flights(spark, 3, 120))
    store.write(flights, settings.table_uri(FLIGHTS), partition_by=["month"])
    stats = settings.table_uri(STATS)
    store.write(
        _stats(spark, [("AA", 1, 10.0), ("B6", 1, 20.0), ("AA", 2, 5.0)]), stats, partition_by=["month"]
    )
    store.write(_stats(spark, [("AA", 1, 1.0)]), stats, mode="overwrite", replace_where={"month": 1})
    mail = spark.createDataFrame(
        [("p-1f3a", "[masked]"), ("p-9c2e", "hello")], "from_address string, body string"
    )
    store.write(
        mail, settings.table_uri(MAIL_VIEW), properties=TableProperties(personal_data=("from_address",))
    )
    log = root / "endpoint.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [MOULIN, "--profile", "local", "sql-endpoint", "serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        wait_until_answering(settings, lambda: proc.poll() is None, log)
        yield Endpoint(settings, env, log, store)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _rows(settings: Settings, user: str, sql: str) -> list[tuple]:
    with connect(settings, user) as conn:
        cursor = conn.cursor()
        cursor.execute(sql)
        return cursor.fetchall()


def _refusal(settings: Settings, user: str, sql: str) -> str:
    from pyhive.exc import OperationalError

    with pytest.raises(OperationalError) as caught:
        _rows(settings, user, sql)
    return caught.value.args[0].status.errorMessage


def _duckdb(settings: Settings, sql: str) -> list[tuple]:
    return [tuple(r.values()) for r in run_query(sql, settings=settings).table.to_pylist()]


def test_beeline_lists_gold_and_answers_the_headline_as_moulin_sql(endpoint: Endpoint) -> None:
    settings = endpoint.settings
    command = beeline_command(settings, "analyst", f"SHOW TABLES IN gold; {HEADLINE};")
    done = subprocess.run(command, env=endpoint.env, capture_output=True, text=True, timeout=120)
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\|\s*gold\s*\|\s*carrier_delay_stats\s*\|\s*false\s*\|", done.stdout)
    cells = [
        [c.strip() for c in line.strip("|").split("|")]
        for line in done.stdout.splitlines()
        if re.match(r"\|\s*(AA|B6|DL|UA)\s*\|", line)
    ]
    expected = _duckdb(settings, HEADLINE)
    assert [(c, int(n), float(m)) for c, n, m in cells] == [(c, n, pytest.approx(m)) for c, n, m in expected]


def test_dbapi_schemas_tables_describe_and_headline(endpoint: Endpoint) -> None:
    settings = endpoint.settings
    schemas = {r[0] for r in _rows(settings, "analyst", "SHOW SCHEMAS")}
    assert {"bronze", "silver", "gold", "views"} <= schemas
    gold = {r[1] for r in _rows(settings, "analyst", "SHOW TABLES IN gold")}
    assert {"carrier_delay_stats", "flight_features"} <= gold
    meta = endpoint.store.metadata(settings.table_uri(FLIGHTS))
    described = _rows(settings, "analyst", "DESCRIBE silver.flights")
    assert [(r[0], r[1]) for r in described] == [
        (f.name, f.dataType.simpleString()) for f in meta.schema.fields
    ]
    served = dict(_rows(settings, "analyst", "SHOW TBLPROPERTIES silver.flights"))
    assert served["moulin.version"] == str(meta.version) and served["moulin.uri"] == meta.table_uri
    got = _rows(settings, "engineer", HEADLINE)
    assert [(c, n, pytest.approx(m)) for c, n, m in got] == _duckdb(settings, HEADLINE)


def test_reads_the_snapshot_files_exactly(endpoint: Endpoint, spark) -> None:
    """An overwrite removed month 1's first file: the endpoint reads the snapshot's files,
    a plain read of the Parquet folder reads the removed file too."""
    settings = endpoint.settings
    sql = "SELECT count(*) AS n, sum(mean_delay) AS total FROM gold.carrier_delay_stats"
    assert _rows(settings, "analyst", sql) == _duckdb(settings, sql) == [(2, 6.0)]
    folder = spark.read.parquet(settings.table_uri(STATS)).count()
    assert folder > 2  # a plain read of the folder counts the removed rows too


def test_analyst_and_outsider_refusals(endpoint: Endpoint) -> None:
    settings = endpoint.settings
    personal = _refusal(settings, "analyst", "SELECT count(*) FROM bronze.mail")
    print("analyst, bronze.mail:", personal)
    assert "bronze.mail holds personal data" in personal and "query views.bronze_mail instead" in personal
    ops = _refusal(settings, "analyst", "SELECT * FROM quality.table_profiles")
    assert "in the ops zone" in ops and "analysts may not query it" in ops
    folder = settings.table_uri(STATS).removeprefix("file://")
    snapshot = read_served(settings)["tables"]["gold.carrier_delay_stats"]["tables"][0]
    for sql in (f"SELECT * FROM parquet.`{folder}`", f"SELECT * FROM {snapshot}"):
        assert "queries read the tables of moulin's catalog by name" in _refusal(settings, "analyst", sql)
    assert "DropTableCommand is refused" in _refusal(
        settings, "analyst", "DROP VIEW gold.carrier_delay_stats"
    )
    assert "call Java methods" in _refusal(
        settings, "analyst", "SELECT java_method('java.lang.System', 'exit', 0)"
    )
    outsider = _refusal(settings, "outsider", "SELECT 1")
    print("outsider:", outsider)
    assert "user outsider may not query moulin's SQL endpoint" in outsider
    assert "(analysts)" in outsider
    from pyhive.exc import OperationalError
    from thrift.transport.TTransport import TTransportException

    with pytest.raises((OperationalError, TTransportException)):
        connect(settings, "analyst", password="not-the-password")


def test_reads_of_a_view_of_personal_data_are_audited(endpoint: Endpoint) -> None:
    from moulin.privacy.audit import read_audit

    settings = endpoint.settings
    assert _rows(settings, "analyst", "SELECT count(DISTINCT from_address) FROM views.bronze_mail") == [(2,)]
    deadline = time.monotonic() + 30
    while True:
        rows = [r for r in read_audit(settings) if '"via": "sql endpoint"' in r["detail"]]
        if rows:
            break
        assert time.monotonic() < deadline, f"no audit row of the endpoint's read; see {endpoint.log}"
        time.sleep(0.5)
    assert rows[0]["action"] == "read" and rows[0]["columns"] == "from_address"
    assert rows[0]["table_uri"] == settings.table_uri(MAIL_VIEW) and '"user": "analyst"' in rows[0]["detail"]


def test_a_commit_during_a_query_leaves_its_answer_and_is_served_next(endpoint: Endpoint) -> None:
    """A query planned on one version keeps reading that version's files while another
    writer (deltalake) overwrites the table and the endpoint starts serving the new version;
    the next query reads the new version.

    The order is made by the client, not by timing: with Spark's incremental collect each
    file of the table is its own partition, computed only when the client fetches its row.
    The first row is fetched, the commit is made and served, then the rest is fetched."""
    import pyarrow as pa
    from deltalake import write_deltalake

    settings = endpoint.settings
    stats = settings.table_uri(STATS)
    planned_on = endpoint.store.version(stats)
    with connect(settings, "analyst") as conn:
        cursor = conn.cursor()
        cursor.execute("SET spark.sql.thriftServer.incrementalCollect=true")
        # One partition per file (a file's open cost fills a whole partition).
        cursor.execute("SET spark.sql.files.openCostInBytes=134217728")
        cursor.arraysize = 1
        cursor.execute("SELECT month, mean_delay FROM gold.carrier_delay_stats")
        first = cursor.fetchone()
        assert first is not None, "gold.carrier_delay_stats answered no row"

        new = pa.table(
            {"carrier": ["DL", "UA"], "month": pa.array([1, 1], pa.int32()), "mean_delay": [100.0, 200.0]}
        )
        write_deltalake(stats, new, mode="overwrite", partition_by=["month"])
        latest = endpoint.store.version(stats)
        assert latest > planned_on
        deadline = time.monotonic() + 60
        while read_served(settings)["tables"]["gold.carrier_delay_stats"]["version"] != latest:
            assert time.monotonic() < deadline, f"version {latest} not served in 60 s; see {endpoint.log}"
            time.sleep(0.2)
        answer = [tuple(first), *(tuple(r) for r in cursor.fetchall())]
    # The rows of the version it was planned on (month 1 rewritten to AA 1.0, month 2 AA 5.0).
    assert sorted(answer) == [(1, 1.0), (2, 5.0)]
    assert _rows(settings, "analyst", "SELECT count(*), sum(mean_delay) FROM gold.carrier_delay_stats") == [
        (2, 300.0)
    ]
