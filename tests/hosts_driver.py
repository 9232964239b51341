"""moulin's driver on its own host of a cluster on hosts (run by ``ip netns exec``).

Run with the client settings of :meth:`MultiHostCluster.client_env`; prints one JSON
line: where Spark's tasks ran, what the Delta table holds when read back by
deltalake and by Spark, and what WebHDFS gave back.  Used by
``tests/integration/test_cluster_hosts.py`` and ``benchmarks/cluster_faults.py``.

    python tests/hosts_driver.py roundtrip TABLE_PATH ROWS
"""

from __future__ import annotations

import gc
import json
import os
import socket
import sys
import time


def own_address(peer: str) -> str:
    """This host's address on the way to ``peer`` (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((peer, 9))
        return sock.getsockname()[0]


def roundtrip(table_path: str, rows: int) -> dict:
    """Spark on the workers, a Delta table through moulin's store, a file through WebHDFS."""
    from moulin.delta.log import open_delta
    from moulin.delta.store import DeltaTableStore
    from moulin.settings import load_settings
    from moulin.spark import build_spark_session
    from moulin.storage import WarehouseFS

    settings = load_settings()
    started = time.monotonic()
    spark = build_spark_session(settings, app_name="hosts-driver")
    namenode = socket.gethostbyname(settings.hdfs.host)
    sc = spark.sparkContext
    task_hosts = sorted(set(sc.parallelize(range(8), 8).map(lambda _: own_address(namenode)).collect()))
    uri = settings.table_uri(table_path)
    df = spark.range(rows).selectExpr("id", "id * 3 AS tripled", "concat('row-', id) AS label")
    result = DeltaTableStore(spark).write(df, uri, mode="overwrite")
    table = open_delta(uri).to_pyarrow_table()
    delta_rows = sorted(zip(*(table.column(c).to_pylist() for c in ("id", "tripled", "label")), strict=True))
    expected = sorted((i, i * 3, f"row-{i}") for i in range(rows))
    spark_count = spark.read.parquet(*open_delta(uri).file_uris()).count()
    fs = WarehouseFS(settings)
    payload = os.urandom(256 * 1024)
    fs.write_bytes(settings.table_uri(table_path + "-file.bin"), payload)
    webhdfs_ok = fs.read_bytes(settings.table_uri(table_path + "-file.bin")) == payload
    out = {
        "driver": own_address(namenode),
        "task_hosts": task_hosts,
        "version": result.version,
        "delta_exact": delta_rows == expected,
        "delta_rows": len(delta_rows),
        "spark_count": spark_count,
        "webhdfs_exact": webhdfs_ok,
        "seconds": round(time.monotonic() - started, 1),
    }
    del table
    gc.collect()
    spark.stop()
    return out


def main(argv: list[str]) -> None:
    if argv[:1] != ["roundtrip"] or len(argv) != 3:
        sys.exit(__doc__)
    print(json.dumps(roundtrip(argv[1], int(argv[2]))), flush=True)
    # deltalake's thread pools can abort the interpreter's exit (delta-rs#2184).
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
