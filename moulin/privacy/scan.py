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

Mailbox files (``*.mbox``, or files starting with an mbox ``From `` line) are also
searched decoded, message by message (:func:`mbox_decoded_text`): RFC 2047 header
words and base64 / quoted-printable parts in their declared charsets (UTF-16
included), so an encoded copy of an address is found too.

Text whose characters are not ASCII bytes (UTF-16 and UTF-32) is also searched
decoded (:func:`text_codec`): a file starting with such a byte-order mark, and a
raw file of a source whose spec declares such a ``file.encoding``.  A file is
read as Parquet when its name ends with ``.parquet`` or it starts and ends with
Parquet's magic bytes (a raw Parquet drop of any name); every text value is
searched, at any depth (lists, maps, structs, dictionaries, binary values read
as UTF-8).

Airflow's metadata database (the platform's PostgreSQL through ``pg_dump``, the
SQLite file of ``airflow dags test``) is searched too (:mod:`moulin.privacy.airflow_db`):
one that cannot be read fails the scan (:class:`~moulin.privacy.airflow_db.MetadataDatabaseError`).
"""

from __future__ import annotations

import codecs
import functools
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from moulin.errors import DataError
from moulin.ingest.mail import split_mbox
from moulin.orchestration import airflow_sqlite_path
from moulin.privacy.airflow_db import metadata_contents, sidecar_files
from moulin.settings import Settings
from moulin.sources.spec import load_spec
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


#: Headers that name people (decoded, they decide whose message it is).
ADDRESS_HEADERS = ("From", "Sender", "Reply-To", "To", "Cc", "Bcc", "Return-Path", "Delivered-To")


def decode_header_value(value: object) -> str:
    """A header's value with its RFC 2047 encoded words decoded (undecodable bytes replaced)."""
    from email.header import decode_header

    out = []
    for part, charset in decode_header(str(value)):
        if isinstance(part, bytes):
            try:
                out.append(part.decode(charset or "ascii", "replace"))
            except LookupError:  # an unknown charset name
                out.append(part.decode("utf-8", "replace"))
        else:
            out.append(part)
    return "".join(out)


def decoded_parts(message) -> list[str]:
    """The decoded text of every leaf part of an ``email`` message (base64 or
    quoted-printable undone, bytes decoded in the part's charset, UTF-16 included)."""
    texts = []
    for part in message.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        if not payload:
            continue
        charset = part.get_content_charset() or (
            "utf-16" if payload[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8"
        )
        try:
            texts.append(payload.decode(charset, "replace"))
        except LookupError:
            texts.append(payload.decode("utf-8", "replace"))
    return texts


def message_addresses(message) -> list[str]:
    """The addresses its people headers name, RFC 2047 words decoded, lower case."""
    from email.utils import getaddresses

    values = [decode_header_value(v) for h in ADDRESS_HEADERS for v in message.get_all(h, [])]
    return [a.strip().lower() for _, a in getaddresses(values) if "@" in a]


def mbox_decoded_text(data: bytes) -> bytes:
    """The decoded headers and parts of every message of an mbox file, as UTF-8 (see the module
    docstring); empty when it holds no message."""
    import email
    import email.policy

    out = []
    for raw in split_mbox(data):
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
        out.extend(f"{k}: {decode_header_value(v)}" for k, v in message.items())
        out.extend(decoded_parts(message))
    return "\n".join(out).encode("utf-8", "replace")


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


def is_parquet(data: bytes) -> bool:
    """Whether ``data`` is a whole Parquet file by its magic bytes (its name may say otherwise)."""
    return len(data) >= 12 and data[:4] == b"PAR1" and data[-4:] == b"PAR1"


def text_arrays(array) -> Iterator:
    """The text values inside pyarrow ``array`` at any depth, as string arrays: strings,
    binary values (read as UTF-8), and the values of lists, maps, structs and dictionaries."""
    import pyarrow as pa

    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        yield array
    elif pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        yield pa.array(
            [None if v is None else v.decode("utf-8", "replace") for v in array.to_pylist()], pa.string()
        )
    elif pa.types.is_dictionary(kind):
        yield from text_arrays(array.dictionary)
    elif pa.types.is_map(kind):
        yield from text_arrays(array.keys)
        yield from text_arrays(array.items)
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        yield from text_arrays(array.flatten())
    elif pa.types.is_struct(kind):
        for child in array.flatten():
            yield from text_arrays(child)


def _parquet_hits(data: bytes, needles: dict[str, bytes]) -> set[str]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    found: set[str] = set()
    table = pq.read_table(io.BytesIO(data))
    for column in table.columns:
        for chunk in column.chunks:
            for values in text_arrays(chunk):
                for name, needle in needles.items():
                    if name in found:
                        continue
                    matches = pc.match_substring(values, needle.decode(), ignore_case=True)
                    if not pc.any(matches).as_py():
                        continue
                    if not _is_address(needle):
                        found.add(name)
                        continue
                    # pyarrow's RE2 has no look-around: the candidates are checked as a whole address here
                    regex = re.compile(address_pattern(needle.decode()))
                    if any(v and regex.search(v) for v in pc.filter(values, matches).to_pylist()):
                        found.add(name)
    return found


def _text_hits(data: bytes, needles: dict[str, bytes]) -> set[str]:
    lowered = data.lower()
    return {
        name
        for name, needle in needles.items()
        if needle.lower() in lowered and (not _is_address(needle) or address_regex(needle).search(data))
    }


#: Byte-order marks of the text encodings whose ASCII characters are not ASCII bytes, longest first.
BYTE_ORDER_MARKS = (
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
#: What an address in text looks like, to tell whether an encoding writes it as ASCII bytes.
_PROBE = "From: <Bob.O-Neil_2+x@Example.org>, 'a!#$%&*/=?^`{|}~' 10.0.0.1\r\n"


@functools.lru_cache(maxsize=64)
def _ascii_bytes(codec: str) -> bool:
    """Whether ``codec`` writes ASCII text as its ASCII bytes (UTF-8, Latin-1, cp1252...)."""
    try:
        return _PROBE.encode("ascii").decode(codec) == _PROBE
    except (UnicodeDecodeError, LookupError):
        return False


def text_codec(data: bytes, encoding: str | None = None) -> tuple[bytes, str] | None:
    """How to read the characters of text file ``data`` when an address in it is not ASCII
    bytes: ``(byte-order mark, codec)`` from its UTF-16 or UTF-32 byte-order mark, else from
    ``encoding`` (a source spec's ``file.encoding``; UTF-16 and UTF-32 without a mark are
    big-endian, as Java reads them); None when its text is searched as bytes."""
    for bom, codec in BYTE_ORDER_MARKS:
        if data.startswith(bom):
            return bom, codec
    if not encoding:
        return None
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return None
    if _ascii_bytes(name):
        return None
    return b"", {"utf-16": "utf-16-be", "utf-32": "utf-32-be"}.get(name, name)


def scan_bytes(
    data: bytes, needles: dict[str, bytes], parquet: bool, mail: bool = False, encoding: str | None = None
) -> set[str]:
    """The names of the needles found in one file's bytes (decoded when Parquet, and
    message by message when ``mail``; also as text of its byte-order mark's encoding,
    or of ``encoding`` when that does not write ASCII as bytes: see :func:`text_codec`);
    an address is found as a whole address only (see the module docstring)."""
    found = _text_hits(data, needles)
    codec = text_codec(data, encoding)
    if codec is not None:
        bom, name = codec
        found |= _text_hits(data[len(bom) :].decode(name, "replace").encode("utf-8"), needles)
    if parquet and data[:4] == b"PAR1":
        found |= _parquet_hits(data, needles)
    if mail:
        found |= _text_hits(mbox_decoded_text(data), needles)
    return found


def is_mailbox(uri: str, data: bytes) -> bool:
    """Whether a file is read as an mbox mailbox by the scan."""
    return uri.endswith(".mbox") or data[:5] == b"From "


_SOURCE_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def raw_encoding(settings: Settings, uri: str, cache: dict[str, str | None] | None = None) -> str | None:
    """The text encoding a source's spec declares for raw file ``uri`` (under
    ``<warehouse>/raw/<source>/``), or None: not a raw file, no such spec, not a text format."""

    root = settings.table_uri("raw") + "/"
    if not uri.startswith(root):
        return None
    source = uri[len(root) :].split("/", 1)[0]
    if not _SOURCE_NAME.match(source):
        return None
    cache = {} if cache is None else cache
    if source not in cache:
        try:
            spec = load_spec(source)
        except DataError:  # a source whose spec was removed: its files are still searched, by BOM
            cache[source] = None
        else:
            text = spec.file is not None and spec.file_format.text_encoded
            cache[source] = spec.file.encoding if text and spec.file is not None else None
    return cache[source]


def scan(
    settings: Settings,
    needles: dict[str, str],
    local_dirs: list[Path] | None = None,
    airflow_metadata: bool = True,
) -> ScanResult:
    """Search every file under the warehouse and ``local_dirs``, and with ``airflow_metadata``
    Airflow's metadata database (:func:`moulin.privacy.airflow_db.metadata_contents`: it
    raises when that cannot be read), for ``needles`` (``{name: value}``; matching ignores
    case, addresses match whole)."""
    fs = WarehouseFS(settings)
    wanted = {name: value.encode() for name, value in needles.items() if value}
    result = ScanResult()
    encodings: dict[str, str | None] = {}
    seen: set[Path] = set()

    def look(uri: str, data: bytes, encoding: str | None = None) -> None:
        result.files += 1
        result.bytes += len(data)
        parquet = uri.endswith(".parquet") or is_parquet(data)
        for name in scan_bytes(data, wanted, parquet, is_mailbox(uri, data), encoding):
            result.hits.append((uri, name))

    if airflow_metadata:  # first: a database that cannot be read fails the scan at once
        for content in metadata_contents(settings):
            look(content.name, content.data)
        seen.add(airflow_sqlite_path(settings).resolve())
        for path in sidecar_files(settings):
            look(path.as_uri(), path.read_bytes())
            seen.add(path.resolve())
    for uri in walk(fs, settings.warehouse):
        look(uri, fs.read_bytes(uri), raw_encoding(settings, uri, encodings))
    for folder in local_dirs or []:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file() and path.resolve() not in seen:
                look(path.as_uri(), path.read_bytes())
    return result
