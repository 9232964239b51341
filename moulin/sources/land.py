"""Landing one drop of a source as its spec says: files by glob, a SQL table or query,
or the pages of an HTTP API, each as raw files with a manifest under
``raw/<source>/ds=<ds>/``."""

from __future__ import annotations

import glob
from collections.abc import Callable
from dataclasses import replace as with_changes
from pathlib import Path
from typing import Any

from moulin.errors import MoulinError
from moulin.ingest.counting import row_counter
from moulin.ingest.landing import Landing, land_file
from moulin.settings import Settings
from moulin.sources.spec import SourceSpec, validate_spec
from moulin.storage import WarehouseFS


class DropNotFoundError(MoulinError):
    """No file of the source's drop is there yet (it may still arrive: the task retries)."""


def connection_uri(conn_id: str) -> str:
    """The URI of Airflow Connection ``conn_id`` (from the metadata database or ``AIRFLOW_CONN_<ID>``)."""
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id).get_uri()


def land_source(
    settings: Settings,
    spec: SourceSpec,
    ds: str,
    replace: bool = False,
    say: Callable[[str], None] = lambda line: None,
    fs: WarehouseFS | None = None,
) -> dict[str, Any]:
    """Land the drop of ``spec`` for logical date ``ds``.

    ``replace`` lands changed files as a new landing version even when the spec
    says ``on_changed_file: refuse``.  Returns ``{source, ds, status, rows,
    files: [{file, status, rows}], version}``; ``status`` is ``landed`` when any
    file was new or replaced, else ``unchanged``.
    """
    contract = validate_spec(spec)
    if replace:
        spec = with_changes(spec, on_changed_file="replace")
    fs = fs or WarehouseFS(settings)
    staging = settings.home / "staging" / spec.name
    landings: list[Landing] = []
    if spec.file is not None:
        opts = spec.file
        pattern = opts.pattern(ds, spec.path.parent, settings.home)
        paths = sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_file())
        if not paths:
            raise DropNotFoundError(
                f"source {spec.name}: no file matches {pattern} for ds={ds}: the drop has not arrived "
                f"(or file.path in {spec.path} is wrong)"
            )
        counter = row_counter(opts.format, opts.encoding, opts.delimiter, opts.header)
        for path in paths:
            landing = land_file(
                settings,
                spec.name,
                ds,
                path,
                fs=fs,
                count_rows=counter,
                encoding=None if opts.format == "parquet" else opts.encoding,
                on_changed=spec.on_changed_file,
            )
            landings.append(landing)
            say(f"landed {path.name}: {landing.status}")
    elif spec.sql is not None:
        from moulin.ingest.database import extract_to_landing

        sql = spec.sql
        url = sql.url or connection_uri(str(sql.connection))
        landings.append(
            extract_to_landing(
                settings,
                spec.name,
                ds,
                url,
                contract.column_names,
                staging,
                table=sql.table,
                query=sql.query,
                watermark=sql.watermark,
                fs=fs,
            )  # fmt: skip
        )
    else:
        from moulin.ingest.http import pull_to_landing

        http = spec.http
        assert http is not None
        landings.append(
            pull_to_landing(
                settings,
                spec.name,
                ds,
                staging,
                fs=fs,
                log=say,
                connection=http.connection,
                endpoint=http.endpoint,
                records_key=http.records,
                page_param=http.page_param,
                start_page=http.start_page,
                page_size_param=http.page_size_param,
                page_size=http.page_size,
                params=http.params,
                max_pages=http.max_pages,
                retries=http.retries,
                backoff_s=http.backoff_s,
                timeout_s=http.timeout_s,
            )  # fmt: skip
        )
    manifest = landings[-1].manifest
    files = [{"file": f["file"], "rows": int(f["rows"]), "uri": f["uri"]} for f in manifest.get("files", [])]
    changed = any(landing.status in ("landed", "replaced") for landing in landings)
    return {
        "source": spec.name,
        "ds": ds,
        "status": "landed" if changed else "unchanged",
        "rows": sum(f["rows"] for f in files),
        "files": files,
        "version": int(manifest.get("version", 1)),
    }
