"""Landing raw files on the warehouse file system, unchanged, with a manifest.

A landing puts files under ``<warehouse>/raw/<source>/ds=<logical date>/`` and
writes ``_manifest.json`` beside them::

    {"source": "flights", "ds": "2013-01-01", "landed_at": "...Z",
     "files": [{"file": "flights_2013_01.csv", "uri": "...", "size": 2890123,
                "sha256": "...", "rows": 27004}],
     ...extra fields (e.g. the SQL query and watermarks of an extraction)}

Landing the same bytes again is a no-op (status ``unchanged``, the manifest
is kept as it was); a different file under a name already landed is refused
with :class:`LandingError`, never overwritten.

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

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moulin.errors import MoulinError
from moulin.settings import Settings
from moulin.storage import WarehouseFS

MANIFEST = "_manifest.json"


class LandingError(MoulinError):
    """A landing was refused (changed file under a landed name) or is inconsistent."""


@dataclass(frozen=True)
class Landing:
    """The result of one landing."""

    source: str
    ds: str
    status: str  # "landed" or "unchanged"
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


def count_csv_rows(data: bytes) -> int:
    """Data records of a CSV file (header excluded; quoted newlines handled)."""
    reader = csv.reader(io.StringIO(data.decode("utf-8", errors="replace"), newline=""))
    return max(sum(1 for _ in reader) - 1, 0)


def read_manifest(settings: Settings, source: str, ds: str, fs: WarehouseFS | None = None) -> dict | None:
    """The manifest of a landing, or None if nothing was landed."""
    fs = fs or WarehouseFS(settings)
    uri = f"{landing_dir(settings, source, ds)}/{MANIFEST}"
    if not fs.exists(uri):
        return None
    return json.loads(fs.read_bytes(uri))


def land_file(
    settings: Settings,
    source: str,
    ds: str,
    local_path: Path,
    extra: dict[str, Any] | None = None,
    fs: WarehouseFS | None = None,
) -> Landing:
    """Land ``local_path`` unchanged as ``raw/<source>/ds=<ds>/<file name>`` with its manifest.

    Returns status ``unchanged`` when the same bytes are already there.  Raises
    :class:`LandingError` naming the file and both checksums when a different
    file was landed under that name.  Holds the manifest's lock throughout
    (waits up to ``settings.lock_timeout_s``, then raises
    :class:`moulin.storage.LockTimeoutError`).
    """
    fs = fs or WarehouseFS(settings)
    local_path = Path(local_path)
    data = local_path.read_bytes()
    manifest_uri = f"{landing_dir(settings, source, ds)}/{MANIFEST}"
    with fs.lock(manifest_uri):
        return _land_locked(settings, source, ds, local_path, data, extra, fs)


def _land_locked(
    settings: Settings,
    source: str,
    ds: str,
    local_path: Path,
    data: bytes,
    extra: dict[str, Any] | None,
    fs: WarehouseFS,
) -> Landing:
    """The body of :func:`land_file`, run under the manifest's lock."""
    sha = hashlib.sha256(data).hexdigest()
    folder = landing_dir(settings, source, ds)
    target = f"{folder}/{local_path.name}"
    manifest_uri = f"{folder}/{MANIFEST}"
    manifest = read_manifest(settings, source, ds, fs)
    entries = {f["file"]: f for f in (manifest or {}).get("files", [])}
    if fs.exists(target):
        landed_sha = entries[local_path.name]["sha256"] if local_path.name in entries else fs.sha256(target)
        if landed_sha != sha:
            raise LandingError(
                f"refusing to overwrite {target}: it was landed with sha256 {landed_sha}, "
                f"but {local_path} now has sha256 {sha}. A corrected drop must come under a "
                f"new file name or logical date; landed files are never replaced."
            )
        if manifest is not None and local_path.name in entries:
            return Landing(source, ds, "unchanged", manifest_uri, manifest)
    else:
        fs.put_file(local_path, target)
    entry = {
        "file": local_path.name,
        "uri": target,
        "size": len(data),
        "sha256": sha,
        "rows": count_csv_rows(data),
    }
    new_manifest = dict(manifest or {"source": source, "ds": ds})
    new_manifest.update(extra or {})
    new_manifest["landed_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    new_manifest["files"] = [*(f for f in entries.values() if f["file"] != local_path.name), entry]
    fs.write_bytes(manifest_uri, json.dumps(new_manifest, indent=2, sort_keys=True).encode() + b"\n")
    return Landing(source, ds, "landed", manifest_uri, new_manifest)
