"""HDFS health from the NameNode's JMX: live DataNodes, missing and under-replicated
blocks, capacity.  Each check appends one row to ``ops/hdfs_health`` and, when a
figure crosses its limit (``platform.health_*`` settings), an ``hdfs_health`` alert.

The NameNode's HTTP address comes from the Airflow Connection ``webhdfs_default``
when one is stored (operators repoint it in the UI), else from the settings.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass

from moulin.errors import MoulinError
from moulin.ops.alerts import Alert, record_alert
from moulin.settings import Settings, load_settings

HEALTH_TABLE = ("ops", "hdfs_health")
CONNECTION_ID = "webhdfs_default"


class HdfsUnreachable(MoulinError):
    """The NameNode's HTTP address does not answer (transient: the task retries)."""


@dataclass(frozen=True)
class HdfsHealth:
    """One reading of the NameNode's state."""

    namenode: str
    live_datanodes: int
    dead_datanodes: int
    missing_blocks: int
    under_replicated_blocks: int
    capacity_total: int
    capacity_remaining: int
    at: dt.datetime

    @property
    def free_fraction(self) -> float:
        return self.capacity_remaining / self.capacity_total if self.capacity_total else 0.0

    def problems(self, settings: Settings) -> list[str]:
        """What is wrong by the settings' limits (empty: healthy)."""
        pf = settings.platform
        found = []
        if self.live_datanodes < pf.health_min_live_datanodes:
            found.append(f"{self.live_datanodes} live DataNodes (< {pf.health_min_live_datanodes})")
        if self.missing_blocks > pf.health_max_missing_blocks:
            found.append(f"{self.missing_blocks} missing blocks (> {pf.health_max_missing_blocks})")
        if self.under_replicated_blocks > pf.health_max_under_replicated_blocks:
            found.append(
                f"{self.under_replicated_blocks} under-replicated blocks (> {pf.health_max_under_replicated_blocks})"
            )
        if self.free_fraction < pf.health_min_free_fraction:
            found.append(f"{self.free_fraction:.1%} capacity free (< {pf.health_min_free_fraction:.0%})")
        return found


def namenode_http_url(settings: Settings) -> str:
    """``http://host:port`` of the NameNode: the ``webhdfs_default`` connection, else the settings."""
    try:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(CONNECTION_ID)
    except Exception:  # noqa: BLE001 - outside Airflow, or no such connection: the settings
        return settings.hdfs.webhdfs_url
    scheme = "https" if (conn.extra_dejson or {}).get("use_ssl") else "http"
    return f"{scheme}://{conn.host}:{conn.port}"


def _bean(url: str, name: str) -> dict:
    query = f"{url}/jmx?qry=Hadoop:service=NameNode,name={name}"
    try:
        with urllib.request.urlopen(query, timeout=10) as response:
            beans = json.loads(response.read().decode()).get("beans", [])
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise HdfsUnreachable(f"the NameNode at {url} does not answer ({exc}): is HDFS up?") from None
    if not beans:
        raise HdfsUnreachable(f"the NameNode at {url} has no JMX bean {name}")
    return beans[0]


def read_health(url: str) -> HdfsHealth:
    """Read the NameNode at ``url`` now."""
    state = _bean(url, "FSNamesystemState")
    system = _bean(url, "FSNamesystem")
    return HdfsHealth(
        namenode=url,
        live_datanodes=int(state.get("NumLiveDataNodes", 0)),
        dead_datanodes=int(state.get("NumDeadDataNodes", 0)),
        missing_blocks=int(system.get("MissingBlocks", 0)),
        under_replicated_blocks=int(system.get("UnderReplicatedBlocks", 0)),
        capacity_total=int(system.get("CapacityTotal", state.get("CapacityTotal", 0))),
        capacity_remaining=int(system.get("CapacityRemaining", state.get("CapacityRemaining", 0))),
        at=dt.datetime.now(dt.UTC),
    )


def check_hdfs(settings: Settings | None = None, run_id: str = "", dag_id: str = "ops_hdfs_health") -> dict:
    """Read the NameNode, append the reading to ``ops/hdfs_health`` and alert on problems.

    Returns the reading and its problems; a problem is an alert, not a task failure
    (the check itself worked).
    """
    import pyarrow as pa

    from moulin.delta.rows import append_row

    settings = settings or load_settings()
    health = read_health(namenode_http_url(settings))
    problems = health.problems(settings)
    row = {**asdict(health), "free_fraction": health.free_fraction, "problems": "; ".join(problems)}
    schema = pa.schema(
        [
            ("namenode", pa.string()),
            ("live_datanodes", pa.int64()),
            ("dead_datanodes", pa.int64()),
            ("missing_blocks", pa.int64()),
            ("under_replicated_blocks", pa.int64()),
            ("capacity_total", pa.int64()),
            ("capacity_remaining", pa.int64()),
            ("at", pa.timestamp("us", tz="UTC")),
            ("free_fraction", pa.float64()),
            ("problems", pa.string()),
        ]
    )
    append_row(settings.table_uri(*HEALTH_TABLE), row, "the HDFS health reading", schema)
    if problems:
        record_alert(
            Alert(
                kind="hdfs_health",
                dag_id=dag_id,
                task_id="check_hdfs",
                run_id=run_id,
                error="HDFS is unhealthy: " + "; ".join(problems),
                log_url=f"{health.namenode}/dfshealth.html",
                details={k: v for k, v in row.items() if k not in ("at", "problems")},
            ),
            settings,
        )
    return {k: (str(v) if isinstance(v, dt.datetime) else v) for k, v in row.items()} | {"problems": problems}
