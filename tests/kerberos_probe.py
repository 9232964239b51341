"""What one process, with whatever ticket its environment holds, gets from a secure HDFS
(run on a host of a cluster on hosts by ``tests/integration/test_cluster_kerberos.py``).

    python tests/kerberos_probe.py write PATH[,PATH...] ROWS   as moulin (its keytab): write, zone them
    python tests/kerberos_probe.py read PATH [USER]            try to read it, also claiming USER
    python tests/kerberos_probe.py token                       as moulin: write its HDFS token file

``read`` tries WebHDFS with SPNEGO (when a ticket is there), once plain and once
with ``user.name=USER``, and deltalake's HDFS client (``HADOOP_USER_NAME`` is set to
USER by the caller), and prints one JSON line: each client's outcome, rows or the
error's text.
"""

from __future__ import annotations

import gc
import json
import os
import socket
import sys


def write(table_paths: list[str], rows: int) -> dict:
    """moulin writes the tables with Spark (its driver on this host with moulin's ticket,
    executors where the settings' master puts them, with moulin's HDFS token) and
    deltalake, then gives the zones their owner, group and mode."""
    from moulin.delta.log import open_delta
    from moulin.delta.store import DeltaTableStore
    from moulin.privacy.access import apply_permissions
    from moulin.settings import load_settings
    from moulin.spark import build_spark_session

    settings = load_settings()
    spark = build_spark_session(settings, app_name="kerberos-probe")
    namenode = socket.gethostbyname(settings.hdfs.host)

    def own_address(_) -> str:
        import socket

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect((namenode, 9))
            return sock.getsockname()[0]

    task_hosts = sorted(set(spark.sparkContext.parallelize(range(4), 4).map(own_address).collect()))
    store = DeltaTableStore(spark)
    counts = {}
    for path in table_paths:
        uri = settings.table_uri(path)
        df = spark.range(rows).selectExpr("id", "concat('secret-', id) AS payload")
        store.write(df, uri, mode="overwrite")
        counts[path] = open_delta(uri).to_pyarrow_table().num_rows
    applied = apply_permissions(settings, [], say=lambda line: None)
    spark.stop()
    return {
        "task_hosts": task_hosts,
        "rows": counts,
        "spark_user": settings.hdfs_user,
        "zones": {a.zone: f"{a.group} {a.mode}" for a in applied},
    }


def read(table_path: str, claim: str) -> dict:
    """Try WebHDFS and deltalake on the table, claiming to be ``claim``."""
    import requests
    from requests_kerberos import OPTIONAL, HTTPKerberosAuth

    from moulin.settings import load_settings

    settings = load_settings()
    path = "/" + settings.table_uri(table_path).split("://", 1)[1].split("/", 1)[1]
    out: dict = {}
    url = f"{settings.hdfs.webhdfs_url}/webhdfs/v1{path}/_delta_log?op=LISTSTATUS"
    for key, query in (("webhdfs", ""), ("webhdfs_claim", f"&user.name={claim}")):
        try:
            auth = HTTPKerberosAuth(mutual_authentication=OPTIONAL)
            response = requests.get(url + query, auth=auth, timeout=30)
            out[key] = {"status": response.status_code, "text": response.text[:600]}
        except Exception as exc:  # noqa: BLE001 - reported to the test
            out[key] = {"status": None, "text": f"{type(exc).__name__}: {exc}"[:600]}
    try:
        from deltalake import DeltaTable

        table = DeltaTable(settings.table_uri(table_path)).to_pyarrow_table()
        out["deltalake"] = {"ok": True, "rows": table.num_rows}
        del table
    except Exception as exc:  # noqa: BLE001 - reported to the test
        out["deltalake"] = {"ok": False, "text": f"{type(exc).__name__}: {exc}"[:1500]}
    gc.collect()
    return out


def token() -> dict:
    """moulin's HDFS delegation token file (what executors of a standalone master get),
    written from the NameNode's answer, and what it holds."""
    from moulin import kerberos
    from moulin.settings import load_settings

    path = kerberos.hdfs_token_file(load_settings())
    data = path.read_bytes()
    count, at = kerberos._read_vint(data, 5)
    fields = []
    for _ in range(5):  # alias, identifier, password, kind, service
        size, at = kerberos._read_vint(data, at)
        fields.append(data[at : at + size])
        at += size
    # The identifier (a DelegationTokenIdentifier) starts with its owner as Text.
    size, start = kerberos._read_vint(fields[1], 1)
    return {
        "mode": f"{path.stat().st_mode & 0o777:o}",
        "magic": data[:4].decode(),
        "count": count,
        "alias": fields[0].decode(),
        "identifier_bytes": len(fields[1]),
        "owner": fields[1][start : start + size].decode(errors="replace"),
        "kind": fields[3].decode(),
        "service": fields[4].decode(),
    }


def main(argv: list[str]) -> None:
    if argv[:1] == ["write"] and len(argv) == 3:
        result = write(argv[1].split(","), int(argv[2]))
    elif argv == ["token"]:
        result = token()
    elif argv[:1] == ["read"] and len(argv) in (2, 3):
        result = read(argv[1], argv[2] if len(argv) == 3 else "moulin")
    else:
        sys.exit(__doc__)
    print(json.dumps(result), flush=True)
    # deltalake's thread pools can abort the interpreter's exit (delta-rs#2184).
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
