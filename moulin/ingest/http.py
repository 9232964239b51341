"""Pulling a paginated JSON API into a JSON-lines landing, through Airflow's HTTP hook.

The API's address and credentials come from an Airflow Connection (the spec
names its id; outside a scheduler, ``AIRFLOW_CONN_<ID>`` works too).  Pages are
requested with ``<page_param>=n`` (and ``<page_size_param>=size``) until a page
holds no records.  429 and 5xx answers and lost connections are retried with
exponential back-off (``Retry-After`` honoured); other 4xx answers are
deterministic errors.  A logical date already landed is a no-op.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moulin.errors import DataError, MoulinError
from moulin.ingest.counting import count_jsonl_rows
from moulin.ingest.database import records_to_jsonl
from moulin.ingest.landing import Landing, land_file, landing_dir, read_manifest
from moulin.settings import Settings
from moulin.storage import WarehouseFS

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class HttpSourceError(DataError):
    """The API refused the request (4xx other than 429) or answered something that is not records."""


class HttpUnavailableError(MoulinError):
    """The API kept failing (429/5xx/connection) through all retries: transient, retry later."""


def _records(body: Any, key: str, where: str) -> list[dict]:
    records = body.get(key) if key and isinstance(body, dict) else body
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise HttpSourceError(
            f"{where}: expected a list of JSON objects{f' under {key!r}' if key else ''}, "
            f"got {type(records).__name__}: set http.records to the key of the records"
        )
    return records


def fetch_pages(
    connection: str,
    endpoint: str,
    records_key: str = "data",
    page_param: str = "page",
    start_page: int = 1,
    page_size_param: str | None = None,
    page_size: int | None = None,
    params: dict[str, Any] | None = None,
    max_pages: int = 100_000,
    retries: int = 5,
    backoff_s: float = 1.0,
    timeout_s: float = 60.0,
    log: Callable[[str], None] = lambda line: None,
) -> tuple[list[dict], dict[str, int]]:
    """All records of the API, page by page; returns ``(records, stats)`` with the
    number of pages and of retried answers."""
    import requests
    from airflow.providers.http.hooks.http import HttpHook

    hook = HttpHook(method="GET", http_conn_id=connection)
    out: list[dict] = []
    stats = {"pages": 0, "retried": 0}
    for page in range(start_page, start_page + max_pages):
        query = {**(params or {}), page_param: page}
        if page_size_param and page_size:
            query[page_size_param] = page_size
        where = f"GET {endpoint} {page_param}={page} (connection {connection})"
        for attempt in range(retries + 1):
            try:
                response = hook.run(
                    endpoint, data=query, extra_options={"check_response": False, "timeout": timeout_s}
                )
            except requests.ConnectionError as exc:
                status, wait, reason = (
                    None,
                    backoff_s * 2**attempt,
                    f"connection failed ({exc.__class__.__name__})",
                )
            else:
                status = response.status_code
                if status < 400:
                    break
                if status not in RETRY_STATUSES:
                    raise HttpSourceError(
                        f"{where}: HTTP {status} {response.reason}: {response.text[:200]!r}; "
                        f"check the endpoint, parameters and credentials of the connection"
                    )
                retry_after = response.headers.get("Retry-After", "")
                wait = float(retry_after) if retry_after.isdigit() else backoff_s * 2**attempt
                reason = f"HTTP {status}"
            if attempt == retries:
                raise HttpUnavailableError(f"{where}: {reason} after {retries} retries; try again later")
            stats["retried"] += 1
            log(f"{where}: {reason}, retry {attempt + 1}/{retries} in {wait:.1f}s")
            time.sleep(wait)
        try:
            body = response.json()
        except json.JSONDecodeError:
            raise HttpSourceError(f"{where}: the answer is not JSON: {response.text[:200]!r}") from None
        records = _records(body, records_key, where)
        stats["pages"] += 1
        if not records:
            return out, stats
        out.extend(records)
    raise HttpSourceError(f"GET {endpoint}: still records after {max_pages} pages: raise http.max_pages")


def pull_to_landing(
    settings: Settings,
    source: str,
    ds: str,
    staging_dir: Path,
    fs: WarehouseFS | None = None,
    log: Callable[[str], None] = lambda line: None,
    **fetch: Any,
) -> Landing:
    """Fetch every page (see :func:`fetch_pages`) and land the records for ``ds`` as JSON lines."""
    fs = fs or WarehouseFS(settings)
    manifest = read_manifest(settings, source, ds, fs)
    if manifest is not None:
        return Landing(
            source, ds, "unchanged", f"{landing_dir(settings, source, ds)}/_manifest.json", manifest
        )
    records, stats = fetch_pages(log=log, **fetch)
    staging_dir.mkdir(parents=True, exist_ok=True)
    local = staging_dir / f"{source}_{ds}.jsonl"
    local.write_bytes(records_to_jsonl(records))
    extra = {"endpoint": fetch["endpoint"], "connection": fetch["connection"], **stats}
    return land_file(settings, source, ds, local, extra=extra, fs=fs, count_rows=count_jsonl_rows)
