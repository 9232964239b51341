"""Erasure of a data subject (GDPR art. 17), proven on disk.

``erase_subject`` finds the subject's rows in every table whose contract
declares personal data (through the contract's ``privacy.subject_columns``:
pseudonymised columns are matched by the subject's pseudonym of their purpose,
clear ones by the address) and in the quarantine of every personal-data source
(its raw-row JSON, by the address); it rewrites the partitions holding them
without those rows (one Delta commit per table) and vacuums the table with a
zero retention, so no older version keeps them.  Raw files holding the address
are rewritten as a new landing version (mailbox files lose the subject's
messages; any other mention is replaced by ``<erased>``, in the file's own
encoding: UTF-16 and UTF-32 text is masked decoded and written back in it,
Parquet values are masked and the file written again) and every older copy
is deleted.  Then every file under the warehouse and moulin's local logs, and
Airflow's metadata database, are scanned for the address and the pseudonyms
(:mod:`moulin.privacy.scan`); a database the scan cannot read fails the erasure.

The address is matched as a whole address everywhere (raw files, quarantine
rows, the proof: :func:`moulin.privacy.scan.address_pattern`): erasing
``bob@example.com`` leaves ``jimbob@example.com`` and ``bob@example.com.au``
byte for byte.  A rewritten mailbox keeps the other messages as they were, their
``From `` envelope lines included; a mailbox that held only the subject's
messages becomes one line naming it, no message (the bronze gate refuses a
0-byte file as a cut drop), and its manifest entry says so (``erasure``).

The request, the tables and files touched and the proof's figures go to the
Delta table ``ops/privacy_requests``, which names the subject by a pseudonym of
its own purpose (``privacy_requests``), never by the address.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from moulin.contracts import Contract, load_all_contracts
from moulin.delta.rows import append_row, read_rows
from moulin.errors import MoulinError
from moulin.ingest.landing import MANIFEST, land_file, landing_dir
from moulin.ingest.mail import parse_message, split_mbox
from moulin.privacy.keys import PseudonymKey, load_key
from moulin.privacy.pseudonyms import normalise, pseudonym
from moulin.privacy.rotation import check_rotation_finished
from moulin.privacy.scan import (
    address_pattern,
    address_regex,
    decode_header_value,
    is_parquet,
    mbox_decoded_text,
    message_addresses,
    scan,
    scan_bytes,
    text_codec,
)
from moulin.privacy.views import refresh_views_after_erasure
from moulin.settings import Settings
from moulin.sources.spec import load_spec, sources_by_contract
from moulin.storage import WarehouseFS

REQUESTS_TABLE = ("ops", "privacy_requests")
REQUEST_PURPOSE = "privacy_requests"
ERASED = b"<erased>"


class ErasureIncompleteError(MoulinError):
    """The scan after an erasure still found the subject: the message names the files."""


@dataclass
class TableErasure:
    """What the erasure did to one table."""

    table: str
    uri: str
    rows_before: int
    rows_erased: int
    version_before: int
    version_after: int
    partitions: list[str] = field(default_factory=list)
    files_vacuumed: int = 0


@dataclass
class ErasureReport:
    """One erasure request and its proof."""

    request_id: str
    subject: str  # the pseudonym of the request's purpose, never the address
    tables: list[TableErasure]
    raw_files: list[dict[str, Any]]
    proof_before: dict[str, Any]
    proof_after: dict[str, Any]
    noop: bool
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ErasureReport:
        """The report :meth:`as_dict` wrote."""
        fields = dict(data)
        fields["tables"] = [TableErasure(**t) for t in data["tables"]]
        return cls(**fields)


@dataclass(frozen=True)
class PersonalTable:
    """A table that may hold a subject: its URI and how to find the subject's rows."""

    name: str
    uri: str
    contract: Contract | None  # None: a quarantine table (raw-row JSON)
    source: str = ""


def personal_tables(settings: Settings) -> list[PersonalTable]:
    """Every table declared to hold personal data with subject columns, and the
    quarantine of every source whose bronze contract does."""

    out = []
    sources = sources_by_contract()
    for name, contract in sorted(load_all_contracts().items()):
        if contract.privacy is None or not contract.privacy.subject_columns or "<" in contract.table:
            continue
        out.append(PersonalTable(name, settings.table_uri(contract.table), contract))
        src = sources.get(name)
        if contract.layer == "bronze" and src is not None:
            out.append(PersonalTable(f"quarantine_{src}", settings.table_uri("quarantine", src), None, src))
    return out


def subject_needles(address: str, key: PseudonymKey) -> dict[str, str]:
    """What identifies the subject on disk: the address and its pseudonym for every
    purpose of a pseudonymised column."""
    purposes = {
        p.purpose
        for c in load_all_contracts().values()
        for p in c.personal_columns.values()
        if p.pseudonymous
    }
    needles = {"address": normalise(address)}
    needles.update({f"pseudonym:{purpose}": pseudonym(address, purpose, key) for purpose in sorted(purposes)})
    return needles


def _condition(table: PersonalTable, address: str, key: PseudonymKey):
    """The Spark condition selecting the subject's rows of ``table``."""
    from pyspark.sql import functions as F

    clear = normalise(address)
    if table.contract is None:  # the raw row as JSON text: the address as a whole address
        return F.col("row").rlike(address_pattern(clear))
    assert table.contract.privacy is not None
    conds = []
    for name in table.contract.privacy.subject_columns:
        spec = table.contract.personal_columns.get(name)
        value = pseudonym(address, spec.purpose, key) if spec is not None and spec.pseudonymous else clear
        values = F.split(F.lower(F.coalesce(F.col(name), F.lit(""))), ", ")
        conds.append(F.array_contains(values, value.lower()))
    out = conds[0]
    for cond in conds[1:]:
        out = out | cond
    return out


def _erase_table(spark, table: PersonalTable, address: str, key: PseudonymKey, say) -> TableErasure | None:
    """Rewrite the partitions of ``table`` holding the subject without the subject's rows,
    in one commit pinned to the version read (a commit landing in between makes it read
    again: its rows are never undone), check the count from the log, vacuum."""
    from moulin.delta import DeltaTableStore, retry_on_conflict

    store = DeltaTableStore(spark)
    if not store.exists(table.uri):
        return None
    return retry_on_conflict(
        table.uri, "erasure", lambda attempt: _erase_table_once(store, table, address, key, say)
    )


def _erase_table_once(store, table: PersonalTable, address: str, key: PseudonymKey, say) -> TableErasure:
    """One read of ``table`` and one write pinned to the version read (see :func:`_erase_table`)."""
    from pyspark.sql import functions as F

    before = store.version(table.uri)
    df = store.read(table.uri, version=before)
    cond = _condition(table, address, key)
    snap_parts = store.metadata(table.uri).partition_by
    hits = df.filter(cond)
    if snap_parts:
        parts = sorted({r[0] for r in hits.select(snap_parts[0]).distinct().collect()})
        found = hits.count()
    else:
        parts, found = [], hits.count()
    rows_before = store.count(table.uri, before)
    if not found:
        return TableErasure(table.name, table.uri, rows_before, 0, before, before)
    keep = df.filter(~F.coalesce(cond, F.lit(False)))
    if snap_parts:
        keep = keep.filter(F.col(snap_parts[0]).isin(parts))
        where: Any = [(snap_parts[0], "in", parts)]
    else:
        where = None
    res = store.write(
        keep,
        table.uri,
        mode="overwrite",
        replace_where=where,
        commit_info={"moulin.operation": "erasure"},
        expected_version=before,
    )
    rows_after = store.count(table.uri, res.version)  # from the Delta log, not from the frames above
    if rows_after != rows_before - found:
        raise ErasureIncompleteError(
            f"{table.uri}: v{before} held {rows_before} rows and {found} were the subject's, but v{res.version} "
            f"holds {rows_after}: not vacuumed (both versions kept); report it and do not use v{res.version}"
        )
    vacuumed = store.vacuum(table.uri, retention_hours=0, force=True)
    say(f"{table.name}: {found} row(s) erased in {len(parts) or 'all'} partition(s), v{before} -> v{res.version}, "
        f"{len(vacuumed)} file(s) vacuumed")  # fmt: skip
    return TableErasure(table.name, table.uri, rows_before, found, before, res.version, parts, len(vacuumed))


_MBOX_FROM_LINE = re.compile(rb"^From ", re.MULTILINE)


def _mbox_chunks(data: bytes) -> tuple[bytes, list[bytes]]:
    """The bytes before the first message, and each message as it stands in the file
    (its ``From `` envelope line and the blank line after it included), split where
    :func:`moulin.ingest.mail.split_mbox` splits."""
    starts = [
        m.start()
        for m in _MBOX_FROM_LINE.finditer(data)
        if m.start() == 0 or data[m.start() - 2 : m.start()] == b"\n\n"
    ]
    if not starts:
        return data, []
    ends = [*starts[1:], len(data)]
    return data[: starts[0]], [data[a:b] for a, b in zip(starts, ends, strict=True)]


def _rewrite_mbox(data: bytes, address: bytes) -> tuple[bytes, int, int]:
    """A mailbox without the subject's messages (sender, recipient or envelope sender, RFC 2047
    encoded headers decoded), the others kept byte for byte (other mentions of the subject
    replaced, encoded ones too: see :func:`_mask_encoded`); returns (bytes, messages removed,
    messages kept)."""
    import email
    import email.policy

    subject = address.decode().strip().lower()
    pattern = address_regex(address)
    prefix, chunks = _mbox_chunks(data)
    kept, removed = [], 0
    for chunk in chunks:
        (raw,) = split_mbox(chunk)  # one message: the chunk starts at its envelope, the next one's is cut
        try:
            fields = parse_message(raw)
        except Exception:  # noqa: BLE001 - not parseable: it went to quarantine; keep it masked
            fields = {}
        people = [fields.get("from_address") or "", *(fields.get("to_addresses") or "").split(", ")]
        people += message_addresses(email.message_from_bytes(raw, policy=email.policy.compat32))
        envelope = chunk.split(b"\n", 1)[0]
        if subject in (p.strip().lower() for p in people) or pattern.search(envelope):
            removed += 1
            continue
        kept.append(_mask_encoded(chunk, address))
    return _mask(prefix + b"".join(kept), address), removed, len(kept)


def _mask_encoded(chunk: bytes, address: bytes) -> bytes:
    """A kept message (``chunk``, its envelope line first) with the subject's address replaced by
    ``<erased>`` where it is encoded (RFC 2047 header words, base64 or quoted-printable parts):
    those headers and parts are written again, encoded as before where possible; a message
    without encoded mentions comes back as it was, byte for byte."""
    import email
    import email.charset
    import email.generator
    import email.header
    import email.policy
    import io

    pattern = address_regex(address)
    if not pattern.search(mbox_decoded_text(_mask(chunk, address))):
        return chunk  # no mention, or plain ones only (masked in place by _mask)
    chunk = _mask(chunk, address)
    envelope, _, _ = chunk.partition(b"\n")
    (raw,) = split_mbox(chunk)
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    text = address_pattern(address.decode())
    for name, value in list(message.items()):
        decoded = decode_header_value(value)
        if "=?" in str(value) and re.search(text, decoded):
            masked = re.sub(text, ERASED.decode(), decoded)
            message.replace_header(name, email.header.Header(masked, "utf-8").encode())
    for part in message.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        if not payload:
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            content = payload.decode(charset, "replace")
        except LookupError:
            charset, content = "utf-8", payload.decode("utf-8", "replace")
        if not re.search(text, content):
            continue
        encoding = (part.get("Content-Transfer-Encoding") or "7bit").strip().lower()
        if encoding not in ("base64", "quoted-printable") and charset.lower().replace("-", "") not in (
            "utf16",
            "utf16le",
            "utf16be",
            "utf32",
        ):
            continue  # plain text: masked in place already
        masked = re.sub(text, ERASED.decode(), content).encode(charset, "replace")
        if encoding == "base64":
            import base64

            body = base64.encodebytes(masked).decode("ascii")
        elif encoding == "quoted-printable":
            import quopri

            body = quopri.encodestring(masked).decode("ascii")
        else:
            body = masked.decode("ascii", "surrogateescape")  # 8bit bytes, written back as they are
        part.set_payload(body)
    out = io.BytesIO()
    email.generator.BytesGenerator(out, mangle_from_=False, policy=email.policy.compat32).flatten(message)
    body = re.sub(rb"(?m)^(>*From )", rb">\1", out.getvalue())  # mboxrd, as split_mbox reads it
    return envelope + b"\n" + body + (b"\n" if not body.endswith(b"\n") else b"") + b"\n"


def _mask(data: bytes, address: bytes) -> bytes:
    """``data`` with every mention of ``address`` (as a whole address, any case) replaced by ``<erased>``."""
    return address_regex(address).sub(ERASED, data)


def _mask_text(data: bytes, address: bytes, encoding: str | None = None, where: str = "the file") -> bytes:
    """Text file ``data`` with every mention of ``address`` replaced by ``<erased>``, in the
    file's own encoding: as bytes where ASCII text stands as its bytes, else (UTF-16, UTF-32:
    its byte-order mark, or ``encoding``; see :func:`moulin.privacy.scan.text_codec`) on the
    decoded text, written back in the same encoding after the same byte-order mark.  Text that
    does not decode is refused (:class:`MoulinError` naming ``where``), never half rewritten."""
    codec = text_codec(data, encoding)
    if codec is None:
        return _mask(data, address)
    bom, name = codec
    try:
        text = data[len(bom) :].decode(name)
    except UnicodeDecodeError as exc:
        raise MoulinError(
            f"{where} is not valid {name} (byte {exc.start + len(bom)}: {exc.reason}), so the subject's address "
            "cannot be masked in it without changing other bytes; the file was left as it was: correct its "
            "encoding (the source spec's file.encoding) or remove the file, then rerun the erasure"
        ) from None
    masked = re.sub(address_pattern(address.decode()), ERASED.decode(), text)
    return data if masked == text else bom + masked.encode(name)


def _mask_values(value: Any, address: bytes) -> Any:
    """``value`` (a Python value of a pyarrow column: nested lists, dicts, tuples) with
    every mention of ``address`` in its strings and bytes replaced by ``<erased>``."""
    if isinstance(value, str):
        return re.sub(address_pattern(address.decode()), ERASED.decode(), value)
    if isinstance(value, bytes):
        return _mask(value, address)
    if isinstance(value, list):
        return [_mask_values(v, address) for v in value]
    if isinstance(value, tuple):
        return tuple(_mask_values(v, address) for v in value)
    if isinstance(value, dict):
        return {k: _mask_values(v, address) for k, v in value.items()}
    return value


def _mask_parquet(data: bytes, address: bytes) -> bytes:
    """Parquet file ``data`` with every mention of ``address`` in its text and binary values
    (at any depth) replaced by ``<erased>``, written again with the same schema, key-value
    metadata and compression; its other columns are copied as they were."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    source = pq.ParquetFile(io.BytesIO(data))
    meta = source.metadata
    codec = meta.row_group(0).column(0).compression.lower() if meta.num_row_groups else "snappy"
    codec = {"uncompressed": "none", "lz4_raw": "lz4"}.get(codec, codec)
    table = source.read()
    columns = []
    for column in table.columns:
        chunks = []
        for chunk in column.chunks:
            values = chunk.to_pylist()
            masked = _mask_values(values, address)
            chunks.append(chunk if masked == values else pa.array(masked, chunk.type))
        columns.append(pa.chunked_array(chunks, column.type))
    rows_per_group = max((meta.row_group(i).num_rows for i in range(meta.num_row_groups)), default=0)
    out = io.BytesIO()
    pq.write_table(
        pa.Table.from_arrays(columns, schema=table.schema),
        out,
        compression=codec if codec in ("none", "snappy", "gzip", "brotli", "zstd", "lz4") else "snappy",
        row_group_size=rows_per_group or None,
    )
    return out.getvalue()


def emptied_mailbox(name: str) -> bytes:
    """What mailbox file ``name`` becomes when every message in it was the subject's: no
    message (both mailbox readers skip a line before the first ``From ``), but not 0
    bytes (the bronze gate refuses an empty file as a cut drop) and not the bytes of
    another emptied file of the landing (a landing holds each content once)."""
    return f"moulin: every message of {name} was erased; this mailbox holds no message\n".encode()


def _erase_raw(
    settings: Settings, source: str, address: str, say, request_id: str = ""
) -> list[dict[str, Any]]:
    """Rewrite the landed files of ``source`` holding ``address``; delete older copies."""

    fs = WarehouseFS(settings)
    spec = load_spec(source)
    needle = normalise(address).encode()
    fmt = spec.file_format
    encoding = spec.format_options.encoding
    counter = fmt.counter(spec.format_options)
    done: list[dict[str, Any]] = []
    root = settings.table_uri("raw", source)
    for folder in fs.list(root):
        if not folder.is_dir or not folder.uri.rsplit("/", 1)[-1].startswith("ds="):
            continue
        ds = folder.uri.rsplit("/", 1)[-1][3:]
        manifest_uri = f"{landing_dir(settings, source, ds)}/{MANIFEST}"
        if not fs.exists(manifest_uri):
            continue
        manifest = json.loads(fs.read_bytes(manifest_uri))
        erased: dict[str, dict[str, Any]] = {}
        for entry in list(manifest.get("files", [])):
            data = fs.read_bytes(entry["uri"])
            parquet = fmt.erased_as == "parquet" or is_parquet(data)
            mailbox = fmt.erased_as == "mailbox"
            if not scan_bytes(data, {"address": needle}, parquet, mail=mailbox, encoding=encoding):
                continue
            emptied = False
            if mailbox:
                new, removed, kept = _rewrite_mbox(data, needle)
                if not kept and not new.strip():
                    new, emptied = emptied_mailbox(entry["file"]), True
            elif parquet:
                new, removed = _mask_parquet(data, needle), 0
            else:
                new, removed = _mask_text(data, needle, encoding, entry["uri"]), 0
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / entry["file"]
                path.write_bytes(new)
                landing = land_file(settings, source, ds, path, fs=fs, count_rows=counter,
                                    encoding=encoding if fmt.decoded_at_landing else None,
                                    on_changed="replace")  # fmt: skip
            if landing.status != "replaced":  # the rewrite has another file's bytes: not landed
                raise MoulinError(
                    f"erasure {request_id}: {entry['uri']} without the subject has the bytes of "
                    f"{landing.manifest.get('duplicate_of')!r} in the same landing, which holds each content "
                    "once; the file was left as it was (the subject is still in it): report it"
                )
            fs.delete(entry["uri"])
            erased[entry["file"]] = {"request_id": request_id, "records_removed": removed, "emptied": emptied}
            done.append({"ds": ds, "file": entry["file"], "old_uri": entry["uri"],
                         "new_uri": landing.files[-1]["uri"] if landing.files else "",
                         "landing_version": landing.manifest.get("version"), "records_removed": removed,
                         "emptied": emptied})  # fmt: skip
            say(f"raw {entry['uri']}: rewritten as landing v{landing.manifest.get('version')}, "
                f"{removed} record(s) removed{', no message left' if emptied else ''}, old file deleted")  # fmt: skip
        # older copies (superseded landings) that still hold the subject: deleted, marked in the manifest
        with fs.lock(manifest_uri):
            manifest = json.loads(fs.read_bytes(manifest_uri))
            changed = False
            for f in manifest.get("files", []):  # what the erasure did to each rewritten file
                if f["file"] in erased:
                    f["erasure"], changed = erased[f["file"]], True
            for old in manifest.get("superseded", []):
                if old.get("removed"):
                    continue
                if fs.exists(old["uri"]):
                    fs.delete(old["uri"])
                old["removed"], changed = "erasure", True
            if changed:
                fs.write_bytes(manifest_uri, json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n")
    return done


def local_log_dirs(settings: Settings) -> list[Path]:
    """moulin's local log folders searched by the proof: job servers, DAG runs, Airflow's task logs."""
    folders = (settings.home / "run", settings.home / "logs", settings.home / "airflow" / "logs")
    return [d for d in folders if d.is_dir()]


def check_address(address: str) -> None:
    """Refuse what is not an e-mail address (the message does not repeat it)."""
    if "@" not in address or len(address) > 320 or any(c.isspace() for c in address.strip()):
        raise MoulinError("the subject given is not an e-mail address: give the subject's address")


def erase_subject(
    spark,
    settings: Settings,
    address: str,
    say: Callable[[str], None] = lambda line: None,
    request_id: str | None = None,
) -> ErasureReport:
    """Erase ``address`` everywhere (see the module docstring); raises
    :class:`ErasureIncompleteError` when the scan afterwards still finds it.
    ``request_id`` names the request (one registered by
    :func:`moulin.privacy.requests.register_erasure`); by default a new one."""
    from moulin.privacy import audit

    check_address(address)
    start = time.monotonic()
    # during a key rotation, tables still hold the previous key's pseudonyms, which the
    # current key's cannot find: refuse, naming them (and clear what is rebuilt already)
    check_rotation_finished(spark, settings, say)
    key = load_key(settings)
    needles = subject_needles(address, key)
    request_id = request_id or (
        f"erase-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{pseudonym(address, REQUEST_PURPOSE, key)[3:11]}"
    )
    before = scan(settings, needles, local_log_dirs(settings))
    say(f"before: {before.files} files, {before.bytes} bytes scanned, {len(before.hits)} hit(s)")
    tables: list[TableErasure] = []
    raw: list[dict[str, Any]] = []
    for table in personal_tables(settings):
        done = _erase_table(spark, table, address, key, say)
        if done is None:
            continue
        tables.append(done)
        if done.rows_erased:
            audit.record("erase", done.uri, done.version_after, detail={"request_id": request_id,
                         "rows": done.rows_erased, "from_version": done.version_before}, settings=settings)  # fmt: skip
    if tables and any(t.rows_erased for t in tables):
        vacuumed = refresh_views_after_erasure(spark, settings, say)
        say(f"analysts' views rebuilt, {vacuumed} old file(s) vacuumed")
    sources = sorted({t.source for t in personal_tables(settings) if t.source})
    for source in sources:
        raw.extend(_erase_raw(settings, source, address, say, request_id))
    after = scan(settings, needles, local_log_dirs(settings))
    say(f"after: {after.files} files, {after.bytes} bytes scanned, {len(after.hits)} hit(s)")
    noop = not raw and not any(t.rows_erased for t in tables)
    report = ErasureReport(
        request_id=request_id,
        subject=pseudonym(address, REQUEST_PURPOSE, key),
        tables=tables,
        raw_files=raw,
        proof_before=before.as_dict(),
        proof_after=after.as_dict(),
        noop=noop,
        seconds=round(time.monotonic() - start, 2),
    )
    _record_request(settings, report)
    if after.hits:
        raise ErasureIncompleteError(
            f"erasure {request_id}: the subject is still found in {len(after.hits)} place(s), e.g. "
            f"{sorted({u for u, _ in after.hits})[:3]}: those files are outside the tables and raw "
            "landings moulin erases; remove them (in Airflow's metadata database: the DAG-run confs, XCom "
            "or log rows that hold the subject) and rerun the erasure"
        )
    return report


def _record_request(settings: Settings, report: ErasureReport) -> None:
    row = {
        "request_id": report.request_id,
        "kind": "erasure",
        "subject_pseudonym": report.subject,
        "finished_at": dt.datetime.now(dt.UTC),
        "noop": report.noop,
        "rows_erased": sum(t.rows_erased for t in report.tables),
        "tables": json.dumps([asdict(t) for t in report.tables], default=str),
        "raw_files": json.dumps(report.raw_files, default=str),
        "files_scanned": report.proof_after["files_scanned"],
        "bytes_scanned": report.proof_after["bytes_scanned"],
        "hits_before": report.proof_before["hits"],
        "hits_after": report.proof_after["hits"],
        "seconds": report.seconds,
    }
    append_row(settings.table_uri(*REQUESTS_TABLE), row, f"the privacy request {report.request_id}")


def read_requests(settings: Settings) -> list[dict]:
    """The recorded privacy requests, oldest first."""
    return read_rows(settings.table_uri(*REQUESTS_TABLE), "finished_at")
