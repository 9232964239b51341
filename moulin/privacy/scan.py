"""The proof of an erasure: every file under the warehouse (and moulin's local logs)
searched for a subject's address and pseudonyms.

Text files (raw drops, JSON, the Delta logs, HTML, logs) are searched as bytes,
case-insensitively.  Parquet files are compressed, so a byte search would miss
their values: each is decoded with pyarrow and every text column searched,
besides its raw bytes (the footer's statistics are uncompressed).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from moulin.settings import Settings
from moulin.storage import WarehouseFS


@dataclass
class ScanResult:
    """What a scan looked at and where it found a needle."""

    files: int = 0
    bytes: int = 0
    hits: list[tuple[str, str]] = field(default_factory=list)  # (file URI, which needle)

    def as_dict(self) -> dict:
        """A JSON-able summary (the needles' names, never their values)."""
        return {"files_scanned": self.files, "bytes_scanned": self.bytes, "hits": len(self.hits),
                "hit_files": sorted({uri for uri, _ in self.hits})[:50]}  # fmt: skip


def walk(fs: WarehouseFS, uri: str) -> Iterator[str]:
    """Every file under folder ``uri``, depth first."""
    for entry in fs.list(uri):
        if entry.is_dir:
            yield from walk(fs, entry.uri)
        else:
            yield entry.uri


def _parquet_hits(data: bytes, needles: dict[str, bytes]) -> set[str]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    found: set[str] = set()
    table = pq.read_table(io.BytesIO(data))
    for column in table.columns:
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            if pa.types.is_list(column.type) and pa.types.is_string(column.type.value_type):
                column = pc.list_flatten(column)
            else:
                continue
        for name, needle in needles.items():
            if pc.any(pc.match_substring(column, needle.decode(), ignore_case=True)).as_py():
                found.add(name)
    return found


def scan_bytes(data: bytes, needles: dict[str, bytes], parquet: bool) -> set[str]:
    """The names of the needles found in one file's bytes (decoded when Parquet)."""
    lowered = data.lower()
    found = {name for name, needle in needles.items() if needle.lower() in lowered}
    if parquet and data[:4] == b"PAR1":
        found |= _parquet_hits(data, needles)
    return found


def scan(settings: Settings, needles: dict[str, str], local_dirs: list[Path] | None = None) -> ScanResult:
    """Search every file under the warehouse and ``local_dirs`` for ``needles``
    (``{name: value}``; matching ignores case)."""
    fs = WarehouseFS(settings)
    wanted = {name: value.encode() for name, value in needles.items() if value}
    result = ScanResult()

    def look(uri: str, data: bytes) -> None:
        result.files += 1
        result.bytes += len(data)
        for name in scan_bytes(data, wanted, uri.endswith(".parquet")):
            result.hits.append((uri, name))

    for uri in walk(fs, settings.warehouse):
        look(uri, fs.read_bytes(uri))
    for folder in local_dirs or []:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                look(path.as_uri(), path.read_bytes())
    return result
