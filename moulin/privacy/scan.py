"""The proof of an erasure: every file under the warehouse (and moulin's local logs)
searched for a subject's address and pseudonyms.

Text files (raw drops, JSON, the Delta logs, HTML, logs) are searched as bytes,
case-insensitively.  Parquet files are compressed, so a byte search would miss
their values: each is decoded with pyarrow and every text column searched,
besides its raw bytes (the footer's statistics are uncompressed).

A needle holding ``@`` is an e-mail address and is found only as a whole address
(:func:`address_regex`): ``bob@example.com`` is not found in
``jimbob@example.com`` nor in ``bob@example.com.au``, which are other people's.
Other needles (pseudonyms) are found as substrings.  The erasure masks with the
same pattern, so what it leaves is what the proof looks for.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from moulin.settings import Settings
from moulin.storage import WarehouseFS

#: Characters that continue an address's local part on its left: RFC 5322 atext and the dot,
#: but not the single quote and the backquote, which in text and logs enclose an address.
_LOCAL_CHARS = r"A-Za-z0-9!#$%&*+/=?^_{|}~.\-"
#: Characters that continue its domain on its right (a dot does when a label follows it;
#: a dot that ends a sentence does not).
_DOMAIN_CHARS = r"A-Za-z0-9_\-"


def address_pattern(address: str) -> str:
    """A regular expression (valid for Python's ``re`` and Java's, so for Spark's
    ``rlike``) that finds ``address`` as a whole address, ignoring case: not when
    the characters around it make it part of a longer address (``jimbob@x.com``,
    ``bob@x.com.au``), but in ``<bob@x.com>``, ``"Bob" <BOB@X.COM>`` or ``mailto:bob@x.com.``."""
    escaped = re.escape(address.strip().lower())
    return rf"(?i)(?<![{_LOCAL_CHARS}]){escaped}(?![{_DOMAIN_CHARS}]|\.[{_DOMAIN_CHARS}])"


@functools.lru_cache(maxsize=64)
def address_regex(address: bytes) -> re.Pattern[bytes]:
    """:func:`address_pattern` compiled for bytes (ASCII case folding)."""
    return re.compile(address_pattern(address.decode()).encode())


def _is_address(needle: bytes) -> bool:
    return b"@" in needle


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
            matches = pc.match_substring(column, needle.decode(), ignore_case=True)
            if not pc.any(matches).as_py():
                continue
            if not _is_address(needle):
                found.add(name)
                continue
            # pyarrow's RE2 has no look-around: the candidates are checked as a whole address here
            regex = re.compile(address_pattern(needle.decode()))
            if any(v and regex.search(v) for v in pc.filter(column, matches).to_pylist()):
                found.add(name)
    return found


def scan_bytes(data: bytes, needles: dict[str, bytes], parquet: bool) -> set[str]:
    """The names of the needles found in one file's bytes (decoded when Parquet); an
    address is found as a whole address only (see the module docstring)."""
    lowered = data.lower()
    found = {
        name
        for name, needle in needles.items()
        if needle.lower() in lowered and (not _is_address(needle) or address_regex(needle).search(data))
    }
    if parquet and data[:4] == b"PAR1":
        found |= _parquet_hits(data, needles)
    return found


def scan(settings: Settings, needles: dict[str, str], local_dirs: list[Path] | None = None) -> ScanResult:
    """Search every file under the warehouse and ``local_dirs`` for ``needles``
    (``{name: value}``; matching ignores case, addresses match whole)."""
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
