"""Landing one drop of a source as its spec says: files by glob, a SQL table or query,
or the pages of an HTTP API, each as raw files with a manifest under
``raw/<source>/ds=<ds>/``."""

from __future__ import annotations

import glob
import hashlib
from collections.abc import Callable
from dataclasses import replace as with_changes
from pathlib import Path
from typing import Any

from moulin.errors import MoulinError
from moulin.ingest.database import extract_to_landing
from moulin.ingest.http import pull_to_landing
from moulin.ingest.landing import (
    Landing,
    RedeliveryError,
    land_file,
    landed_by_checksum,
    read_manifest,
    withdraw_files,
)
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
    redelivery: bool = False,
) -> dict[str, Any]:
    """Land the drop of ``spec`` for logical date ``ds``.

    ``replace`` lands changed files as a new landing version even when the spec
    says ``on_changed_file: refuse``, and withdraws the landed files no longer in
    the drop (the next bronze run replaces the date without them).  In partition
    mode, a file whose bytes already landed under another date raises
    :class:`~moulin.ingest.landing.RedeliveryError` naming that date (nothing is
    landed), unless ``redelivery`` says it is a deliberate redelivery (the
    manifest then records ``redelivery_of``).  Returns ``{source, ds, status,
    rows, files: [{file, status, rows}], version}``; ``status`` is ``landed``
    when any file was new, replaced or withdrawn, else ``unchanged``.
    """
    contract = validate_spec(spec)
    if replace:
        spec = with_changes(spec, on_changed_file="replace")
    fs = fs or WarehouseFS(settings)
    staging = settings.home / "staging" / spec.name
    landings: list[Landing] = []
    withdrawn: list[dict[str, Any]] = []
    if spec.file is not None:
        opts = spec.file
        pattern = opts.pattern(ds, spec.path.parent, settings.home)
        paths = sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_file())
        if not paths:
            raise DropNotFoundError(
                f"source {spec.name}: no file matches {pattern} for ds={ds}: the drop has not arrived "
                f"(or file.path in {spec.path} is wrong)"
            )
        # partition mode only: a snapshot or merge source given the same dump again has no change
        earlier = _landed_before(settings, spec, ds, paths, fs) if spec.mode == "partition" else {}
        if earlier and not redelivery:
            raise _redelivery_error(spec, ds, earlier)
        extra = {"redelivery_of": [f"ds={d}: {uri}" for d, uri in earlier.values()]} if earlier else None
        withdrawn = withdraw_files(settings, spec.name, ds, {p.name for p in paths}, fs) if replace else []
        for entry in withdrawn:
            say(f"withdrew {entry['file']}: no longer in the drop ({entry['rows']} records)")
        fmt = spec.file_format
        counter = fmt.counter(spec.format_options)
        for path in paths:
            landing = land_file(
                settings,
                spec.name,
                ds,
                path,
                fs=fs,
                count_rows=counter,
                encoding=opts.encoding if fmt.decoded_at_landing else None,
                on_changed=spec.on_changed_file,
                extra=extra,
            )
            landings.append(landing)
            say(f"landed {path.name}: {landing.status}")
            entry = next((f for f in landing.files if f["file"] == path.name), {})
            if entry.get("decode_error"):
                say(
                    f"warning: {path.name}: {entry['decode_error']}; rows holding such bytes are "
                    f"quarantined. If the file is not {opts.encoding}, set file.encoding in {spec.path}"
                )
    elif spec.sql is not None:
        sql = spec.sql
        url = sql.database_url(settings.home) or connection_uri(str(sql.connection))
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
    if spec.file is not None and withdrawn:
        manifest = read_manifest(settings, spec.name, ds, fs) or manifest
    files = [{"file": f["file"], "rows": int(f["rows"]), "uri": f["uri"]} for f in manifest.get("files", [])]
    changed = bool(withdrawn) or any(landing.status in ("landed", "replaced") for landing in landings)
    return {
        "source": spec.name,
        "ds": ds,
        "status": "landed" if changed else "unchanged",
        "rows": sum(f["rows"] for f in files),
        "files": files,
        "version": int(manifest.get("version", 1)),
    }


def _landed_before(
    settings: Settings, spec: SourceSpec, ds: str, paths: list[Path], fs: WarehouseFS
) -> dict[Path, tuple[str, str]]:
    """The files of ``paths`` whose bytes a landing of another date already reads:
    ``{path: (that ds, its landed uri)}``."""
    landed = landed_by_checksum(settings, spec.name, fs, except_ds=ds)
    if not landed:
        return {}
    out: dict[Path, tuple[str, str]] = {}
    for path in paths:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() in landed:
            out[path] = landed[digest.hexdigest()]
    return out


def _redelivery_error(spec: SourceSpec, ds: str, earlier: dict[Path, tuple[str, str]]) -> RedeliveryError:
    """The refusal of a drop holding files already landed under other dates."""
    shown = "; ".join(
        f"{path} has the same bytes as {uri} landed under ds={d}" for path, (d, uri) in earlier.items()
    )
    dates = ", ".join(sorted({d for d, _ in earlier.values()}))
    return RedeliveryError(
        f"source {spec.name} ds={ds}: {shown}. Landing it again would load the same rows under two "
        f"dates (ds={dates} and ds={ds}). If it belongs to ds={ds} and was landed under the wrong date "
        f"(file.path in {spec.path} should hold {{ds}}), take it back from there first: `moulin source "
        f"run {spec.name} --ds <that date> --replace` withdraws the files no longer in that date's drop, "
        f"`moulin source unland {spec.name} --ds <that date>` the whole landing. If the producer "
        f"deliberately redelivered it for ds={ds}, run `moulin source run {spec.name} --ds {ds} --redelivery` "
        f"(in Airflow: trigger {spec.dag_id} for {ds} with the parameter redelivery: true)."
    )
