"""Platform health checks, run by the `platform_health` DAG and usable from a shell."""

from __future__ import annotations

import time
import uuid

from moulin.settings import Settings, load_settings
from moulin.storage import StorageError, WarehouseFS


def check_warehouse(settings: Settings | None = None) -> dict[str, object]:
    """Write, read back and delete a probe file under the warehouse; return timings.

    Raises :class:`moulin.storage.StorageError` naming the URI when the
    warehouse is unreachable or returns other bytes than written.
    """
    settings = settings or load_settings()
    fs = WarehouseFS(settings)
    probe = settings.table_uri("_health", f"probe-{uuid.uuid4().hex}")
    payload = uuid.uuid4().bytes * 64
    start = time.perf_counter()
    fs.write_bytes(probe, payload)
    back = fs.read_bytes(probe)
    fs.delete(probe)
    elapsed = time.perf_counter() - start
    if back != payload:
        raise StorageError(f"warehouse probe {probe} read back other bytes than written")
    return {"warehouse": settings.warehouse, "profile": settings.profile, "round_trip_s": round(elapsed, 4)}
