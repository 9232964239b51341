"""The SQL endpoint's pure parts: the SQL that serves a snapshot (exact file globs, partition
columns, stubs), its users and passwords, its settings and Spark options (no Spark, no JVM)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pyspark.sql.types import DoubleType, IntegerType, StringType, StructField, StructType

from moulin.catalog import CatalogColumn, CatalogEntry
from moulin.delta.log import FileEntry
from moulin.settings import load_settings
from moulin.sql_endpoint import ddl, users
from moulin.sql_endpoint.server import hive_conf, spark_conf

URI = "hdfs://nn:9820/moulin/gold/carrier_delay_stats"
SCHEMA = StructType(
    [
        StructField("carrier", StringType()),
        StructField("month", IntegerType()),
        StructField("mean_delay", DoubleType()),
    ]
)


@dataclass
class FakeSnapshot:
    """What ddl.serve_snapshot reads of a moulin.delta.log.Snapshot."""

    entries: list[FileEntry]
    partition_by: list[str] = field(default_factory=lambda: ["month"])
    version: int = 7
    uri: str = URI
    schema: StructType = SCHEMA
    column_mapping: str = "none"

    def files(self) -> list[FileEntry]:
        return self.entries


def _file(path: str, month: int | None = 1) -> FileEntry:
    return FileEntry(path, 10, {"month": month}, 1, {}, {}, {})


def _entry(refusal: str | None = None) -> CatalogEntry:
    return CatalogEntry(
        name="gold.carrier_delay_stats",
        kind="table",
        path="gold/carrier_delay_stats",
        uri=URI,
        contract="gold_carrier_delay_stats",
        description="Mean delay per carrier and month.",
        owner="flights",
        columns=(CatalogColumn("carrier", "string"), CatalogColumn("month", "int", "personal")),
        personal=False,
        zone="curated",
        refusal=refusal,
    )


def test_a_glob_names_exactly_the_snapshot_files() -> None:
    assert ddl.files_glob("file:///t", ["a.parquet"]) == "file:///t/a.parquet"
    glob = ddl.files_glob("file:///t", ["m=1/a.parquet", "m=2/b{x},c[1]*.parquet"])
    assert glob == r"file:///t/{m=1/a.parquet,m=2/b\{x\}\,c\[1\]\*.parquet}"
    with pytest.raises(ddl.SnapshotSqlError, match="no file to serve"):
        ddl.files_glob("file:///t", [])


def test_a_partitioned_snapshot_is_one_table_whose_partitions_come_from_its_folders() -> None:
    snap = FakeSnapshot([_file("month=1/a.parquet"), _file("month=2/b.parquet", 2)])
    served = ddl.serve_snapshot(_entry(), snap, personal=[])
    create, view = served.statements
    assert served.snapshot_tables == ("_snapshots.gold__carrier_delay_stats__v7",)
    assert create == (
        "CREATE TABLE `_snapshots`.`gold__carrier_delay_stats__v7` (`carrier` STRING, `mean_delay` DOUBLE, "
        "`month` INT) USING parquet PARTITIONED BY (`month`) OPTIONS (path "
        f"'{URI}/{{month=1/a.parquet,month=2/b.parquet}}', basePath '{URI}')"
    )
    assert view.startswith("CREATE OR REPLACE VIEW `gold`.`carrier_delay_stats` (`carrier`, ")
    assert "`month` COMMENT 'personal data: personal'" in view
    assert "'moulin.version'='7'" in view and "'moulin.table'='gold.carrier_delay_stats'" in view
    assert view.endswith(
        "AS SELECT `carrier`, `month`, `mean_delay` FROM `_snapshots`.`gold__carrier_delay_stats__v7`"
    )


def test_files_outside_their_partition_folders_get_their_values_as_literals() -> None:
    snap = FakeSnapshot([_file("x/a.parquet", 1), _file("y/b.parquet", None), _file("z/c.parquet", 1)])
    served = ddl.serve_snapshot(_entry(), snap, personal=["carrier"])
    assert len(served.snapshot_tables) == 2  # one per partition value
    first, second, view = served.statements
    assert f"path '{URI}/{{x/a.parquet,z/c.parquet}}'" in first and "PARTITIONED" not in first
    assert f"path '{URI}/y/b.parquet'" in second
    assert "CAST('1' AS INT) AS `month`" in view and "CAST(NULL AS INT) AS `month`" in view
    assert " UNION ALL " in view and "'moulin.personal'='carrier'" in view


def test_an_empty_snapshot_and_a_refused_name_read_no_file() -> None:
    empty = ddl.serve_snapshot(_entry(), FakeSnapshot([]), personal=[])
    assert empty.snapshot_tables == () and "WHERE false" in empty.statements[0]
    stub = ddl.stub_view(_entry(), "gold.x holds personal data: query views.x instead")
    assert "CAST(NULL AS string) AS `carrier`" in stub and "FROM" not in stub.split(" AS ", 1)[1]
    assert "'moulin.refusal'='gold.x holds personal data: query views.x instead'" in stub
    with pytest.raises(ddl.SnapshotSqlError, match="outside its table folder"):
        ddl.serve_snapshot(_entry(), FakeSnapshot([_file("hdfs://other/a.parquet")]), personal=[])


def test_quoting() -> None:
    assert ddl.quote("we`ird") == "`we``ird`"
    assert ddl.sql_string("it's a\\b") == "'it\\'s a\\\\b'"
    nested = StructType([StructField("a b", StructType([StructField("x", IntegerType())]))])
    assert ddl.type_sql(nested) == "STRUCT<`a b`: STRUCT<`x`: INT>>"


def test_readers_are_the_curated_zone_group_and_passwords_are_hashed(
    moulin_env: dict[str, str], tmp_path: Path
) -> None:
    settings = load_settings("local", {**moulin_env, "MOULIN_HOME": str(tmp_path)})
    assert users.reader_group() == "analysts"
    assert users.readers(settings) == ["analyst", "dpo", "engineer", "moulin"]
    with pytest.raises(users.UnknownUserError, match="no user 'mallory'.*analyst"):
        users.password(settings, "mallory")
    path = users.write_users_file(settings)
    assert path.stat().st_mode & 0o777 == 0o600
    lines = {line.split(":")[0]: line.split(":") for line in path.read_text().splitlines()}
    assert set(lines) == {"moulin", "engineer", "analyst", "dpo", "outsider"}
    _, rounds, salt, digest = lines["analyst"]
    secret = users.password(settings, "analyst")
    assert secret not in path.read_text()
    expected = hashlib.pbkdf2_hmac("sha256", secret.encode(), bytes.fromhex(salt), int(rounds), dklen=32)
    assert expected.hex() == digest


def test_settings_and_spark_options(moulin_env: dict[str, str], tmp_path: Path) -> None:
    env = {**moulin_env, "MOULIN_HOME": str(tmp_path), "MOULIN_SQL_ENDPOINT_PORT": "10123"}
    settings = load_settings("local", {**env, "MOULIN_SQL_ENDPOINT_ENABLED": "false"})
    assert not settings.sql_endpoint.enabled
    assert settings.sql_endpoint.jdbc_url == "jdbc:hive2://127.0.0.1:10123/"
    conf = spark_conf(settings, tmp_path / "x.jar")
    assert conf["spark.sql.extensions"] == "moulin.sqlendpoint.Extensions"
    assert conf["spark.sql.catalogImplementation"] == "in-memory"
    assert conf["spark.driver.extraClassPath"] == str(tmp_path / "x.jar")
    hive = hive_conf(settings)
    assert hive["hive.server2.thrift.port"] == "10123" and hive["hive.server2.authentication"] == "CUSTOM"
    assert hive["moulin.sql.endpoint.users"] == str(users.users_file(settings))


def test_platform_up_runs_the_endpoint_unless_turned_off(moulin_env: dict[str, str], tmp_path: Path) -> None:
    from moulin.platform.services import Platform, sql_endpoint_daemon

    env = {**moulin_env, "MOULIN_HOME": str(tmp_path)}
    settings = load_settings("hdfs-local", env)
    daemon = sql_endpoint_daemon(settings)
    assert daemon.command()[1:] == ["--profile", "hdfs-local", "sql-endpoint", "serve"]
    assert daemon.ports == (("jdbc", settings.sql_endpoint.port),)
    assert "sql-endpoint" in [d.name for d in Platform(settings)._all_daemons()]
    off = load_settings("hdfs-local", {**env, "MOULIN_SQL_ENDPOINT_ENABLED": "false"})
    assert "sql-endpoint" not in [d.name for d in Platform(off)._all_daemons()]
