"""Landing raw files on the warehouse file system, unchanged, with a manifest.

A landing puts files under ``<warehouse>/raw/<source>/ds=<logical date>/`` and
writes ``_manifest.json`` beside them::

    {"source": "flights", "ds": "2013-01-01", "landed_at": "...Z",
     "files": [{"file": "flights_2013_01.csv", "uri": "...", "size": 2890123,
                "sha256": "...", "rows": 27004}],
     ...extra fields (e.g. the SQL query and watermarks of an extraction)}

Landing the same bytes again is a no-op (status ``unchanged``, the manifest
is kept as it was), also under another file name (the entry names the file it
duplicates).  A different file under a name already landed is refused with
:class:`LandingError`, or with ``on_changed="replace"`` lands as a new landing
version: the corrected bytes go to ``v<N>/<file>``, the old file stays in raw
(listed under ``superseded``) but is no longer read.  Each entry also records
whether the file ends with a line end (``final_newline``) and where it does not
decode (``decode_error``), for the quality gate.

Concurrency and crashes: :func:`land_file` holds the lock of the manifest
(``_manifest.json.lock``, see :meth:`moulin.storage.WarehouseFS.lock`) from its
read of the manifest to its write, the raw file's upload included, so
concurrent landings into one folder (different files, or the same file) each
end up in the manifest and a name is never landed twice with different bytes.
Raw files and the manifest are written atomically (a reader sees a whole old or
new manifest); the raw file is written before the manifest names it, so a crash
in between leaves a raw file the manifest does not list yet, and landing it
again completes the manifest.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from moulin.errors import DataError
from moulin.ingest.counting import RowCounter, count_csv_rows, decode_error
from moulin.settings import Settings
from moulin.storage import WarehouseFS

MANIFEST = "_manifest.json"

OnChanged = Literal["refuse", "replace"]


class LandingError(DataError):
    """A landing was refused (changed file under a landed name) or is inconsistent."""


class RedeliveryError(LandingError):
    """A file of a drop has the bytes of a file already landed under another logical date
    (a redelivery, or a drop put under the wrong date): refused unless the operator says
    it is a deliberate redelivery."""


@dataclass(frozen=True)
class Landing:
    """The result of one landing."""

    source: str
    ds: str
    status: str  # "landed", "replaced" (new landing version) or "unchanged"
    manifest_uri: str
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def files(self) -> list[dict[str, Any]]:
        """The manifest's file entries."""
        return list(self.manifest.get("files", []))

    @property
    def rows(self) -> int:
        """Data rows (lines after the header) of all landed files."""
        return sum(int(f["rows"]) for f in self.files)


def landing_dir(settings: Settings, source: str, ds: str) -> str:
    """URI of the landing folder of ``source`` for logical date ``ds``."""
    return settings.table_uri("raw", source, f"ds={ds}")


def read_manifest(settings: Settings, source: str, ds: str, fs: WarehouseFS | None = None) -> dict | None:
    """The manifest of a landing, or None if nothing was landed."""
    fs = fs or WarehouseFS(settings)
    uri = f"{landing_dir(settings, source, ds)}/{MANIFEST}"
    if not fs.exists(uri):
        return None
    return json.loads(fs.read_bytes(uri))


def landed_by_checksum(
    settings: Settings, source: str, fs: WarehouseFS | None = None, except_ds: str | None = None
) -> dict[str, tuple[str, str]]:
    """The files read by the landings of ``source`` (those listed in each manifest's
    ``files``; superseded ones are not) by sha256: ``{sha256: (ds, uri)}``, the earliest
    date first; the landing of ``except_ds`` is left out."""
    fs = fs or WarehouseFS(settings)
    found: dict[str, tuple[str, str]] = {}
    for info in fs.list(settings.table_uri("raw", source)):
        name = info.uri.rstrip("/").rsplit("/", 1)[-1]
        if not info.is_dir or not name.startswith("ds="):
            continue
        ds = name[3:]
        if ds == except_ds:
            continue
        manifest = read_manifest(settings, source, ds, fs) or {}
        for f in manifest.get("files", []):
            if f.get("sha256"):
                found.setdefault(f["sha256"], (ds, f.get("uri", f["file"])))
    return found


def withdraw_files(
    settings: Settings, source: str, ds: str, keep: set[str] | None = None, fs: WarehouseFS | None = None
) -> list[dict[str, Any]]:
    """Take the files of the landing of ``ds`` whose names are not in ``keep`` (all of
    them when ``keep`` is None) out of its manifest: they move to ``superseded`` with
    ``withdrawn_at`` (the raw files stay, no longer read) and the landing version goes
    up, so the next bronze run replaces the date.  Returns the withdrawn entries."""
    fs = fs or WarehouseFS(settings)
    manifest_uri = f"{landing_dir(settings, source, ds)}/{MANIFEST}"
    with fs.lock(manifest_uri):
        manifest = read_manifest(settings, source, ds, fs)
        if manifest is None:
            return []
        files = list(manifest.get("files", []))
        gone = [f for f in files if keep is None or f["file"] not in keep]
        if not gone:
            return []
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        manifest["version"] = int(manifest.get("version", 1)) + 1
        manifest["superseded"] = [
            *manifest.get("superseded", []),
            *({**f, "withdrawn_at": now} for f in gone),
        ]
        manifest["files"] = [f for f in files if f not in gone]
        fs.write_bytes(manifest_uri, json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n")
    return gone


def land_file(
    settings: Settings,
    source: str,
    ds: str,
    local_path: Path,
    extra: dict[str, Any] | None = None,
    fs: WarehouseFS | None = None,
    count_rows: RowCounter = count_csv_rows,
    encoding: str | None = "utf-8",
    on_changed: OnChanged = "refuse",
) -> Landing:
    """Land ``local_path`` unchanged as ``raw/<source>/ds=<ds>/<file name>`` with its manifest.

    Returns status ``unchanged`` when the same bytes are already there (under
    this name or another).  A different file under a landed name raises
    :class:`LandingError` naming the file and both checksums, or with
    ``on_changed="replace"`` becomes a new landing version (status
    ``replaced``).  ``count_rows`` counts the file's records for the manifest;
    ``encoding`` (None for binary formats) is checked.  Holds the manifest's lock
    throughout (waits up to ``settings.lock_timeout_s``, then raises
    :class:`moulin.storage.LockTimeoutError`).
    """
    fs = fs or WarehouseFS(settings)
    local_path = Path(local_path)
    data = local_path.read_bytes()
    manifest_uri = f"{landing_dir(settings, source, ds)}/{MANIFEST}"
    entry = {
        "file": local_path.name,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "rows": count_rows(data),
    }
    if encoding is not None:
        entry["final_newline"] = not data or data.endswith(b"\n")
        entry["decode_error"] = decode_error(data, encoding)
    with fs.lock(manifest_uri):
        return _land_locked(settings, source, ds, local_path, entry, extra, fs, on_changed)


def _land_locked(
    settings: Settings,
    source: str,
    ds: str,
    local_path: Path,
    entry: dict[str, Any],
    extra: dict[str, Any] | None,
    fs: WarehouseFS,
    on_changed: OnChanged,
) -> Landing:
    """The body of :func:`land_file`, run under the manifest's lock."""
    sha = entry["sha256"]
    folder = landing_dir(settings, source, ds)
    target = f"{folder}/{local_path.name}"
    manifest_uri = f"{folder}/{MANIFEST}"
    manifest = read_manifest(settings, source, ds, fs)
    entries = {f["file"]: f for f in (manifest or {}).get("files", [])}
    version = int((manifest or {}).get("version", 1))
    status = "landed"
    current = entries.get(local_path.name)
    if current is None and fs.exists(target):
        current = {"file": local_path.name, "uri": target, "sha256": fs.sha256(target)}
    same = next((f for f in entries.values() if f["sha256"] == sha), None)
    if same is not None:
        return Landing(source, ds, "unchanged", manifest_uri, {**manifest, "duplicate_of": same["file"]})
    if current is not None and current["sha256"] != sha:
        if on_changed != "replace":
            raise LandingError(
                f"refusing to overwrite {current['uri']}: it was landed with sha256 {current['sha256']}, "
                f"but {local_path} now has sha256 {sha}. Landed files are never replaced in place: "
                f"land the corrected file with on_changed_file: replace (a new landing version; "
                f"`moulin source run --replace`), or under a new file name or logical date."
            )
        version += 1
        target = f"{folder}/v{version}/{local_path.name}"
        status = "replaced"
        fs.put_file(local_path, target)
    elif current is None:
        fs.put_file(local_path, target)
    # else: these bytes are on disk from a landing that stopped before its manifest write.
    new_entry = {**entry, "uri": target}
    new_manifest = dict(manifest or {"source": source, "ds": ds})
    new_manifest.update(extra or {})
    new_manifest["landed_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    new_manifest["version"] = version
    if status == "replaced":
        old = {**entries[local_path.name], "superseded_at": new_manifest["landed_at"]}
        new_manifest["superseded"] = [*new_manifest.get("superseded", []), old]
    new_manifest["files"] = [*(f for f in entries.values() if f["file"] != local_path.name), new_entry]
    fs.write_bytes(manifest_uri, json.dumps(new_manifest, indent=2, sort_keys=True).encode() + b"\n")
    return Landing(source, ds, status, manifest_uri, new_manifest)
