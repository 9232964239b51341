"""The bronze step of any source: the landed raw files of one logical date, through the
quality gate, into the bronze table and the source's quarantine.

Row accounting compares three counts from independent places: the records in
the landing's manifest (counted at landing by Python's readers), the rows Spark
read, and the rows committed to bronze plus quarantine (from the Delta log's
file statistics of the commits).  Any difference fails the run with an
:class:`~moulin.quality.AccountingError`.

Writes are idempotent on what they are computed from (:func:`moulin.lineage.run_key`
of the landed files' checksums, the landing version, the contract and the
code): a retry commits nothing, a changed landing (a corrected or added file)
replaces the ``ds`` partition of bronze and quarantine.  In ``partition`` mode
keys are checked against the rows already in bronze (other logical dates),
so the same file landed under a new date is quarantined, not appended twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from moulin.contracts import Contract
from moulin.errors import MoulinError
from moulin.ingest.landing import read_manifest
from moulin.lineage import run_key
from moulin.quality.rules import QualityError
from moulin.settings import Settings
from moulin.sources.spec import SourceSpec, validate_spec
from moulin.sources.treatments import prepare_treatment
from moulin.storage import WarehouseFS


class NothingLandedError(MoulinError):
    """No landing for the logical date yet (the ingest step has not run): retry later."""


@dataclass(frozen=True)
class BronzeOutcome:
    """What one bronze run of a source did, with its accounting."""

    source: str
    ds: str
    table: str
    rows_manifest: int
    rows_read: int
    rows_bronze: int
    rows_quarantined: int
    bronze_committed: bool
    quarantine_committed: bool
    bronze_version: int
    quarantine_version: int
    run_key: str
    failures: dict[str, int] = field(default_factory=dict)
    passed: bool = True
    record_uri: str = ""
    data_docs_uri: str = ""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict (Airflow XCom, job result)."""
        return asdict(self)

    def line(self) -> str:
        """One progress line: the counts and whether each write committed or was already done."""

        def said(done: bool, version: int) -> str:
            return f"committed v{version}" if done else f"skipped, already done (v{version})"

        return (
            f"{self.source} ds={self.ds}: manifest {self.rows_manifest} = read {self.rows_read} = "
            f"bronze {self.rows_bronze} + quarantined {self.rows_quarantined}; "
            f"bronze {said(self.bronze_committed, self.bronze_version)}, "
            f"quarantine {said(self.quarantine_committed, self.quarantine_version)}"
        )


def quarantine_uri(settings: Settings, source: str) -> str:
    """URI of the quarantine table of ``source``."""
    return settings.table_uri("quarantine", source)


def record_uri(settings: Settings, source: str, ds: str) -> str:
    """URI of the accounting record of one bronze run."""
    return settings.table_uri("quality", "runs", source, f"ds={ds}.json")


def _check_files(
    spec: SourceSpec, contract: Contract, files: list[dict], fs: WarehouseFS
) -> dict[str, list[str]]:
    """File-level checks before Spark reads anything; each raises naming the file.
    Returns the column order of each CSV file with a header, by uri."""
    from moulin.quality.rules import check_header

    opts = spec.file
    fmt = spec.file_format
    options = spec.format_options
    orders: dict[str, list[str]] = {}
    for f in files:
        uri = f["uri"]
        if f["size"] == 0 and not fmt.empty_file_valid:
            raise QualityError(
                f"{uri} is empty (0 bytes){' and has no header' if fmt.has_header(options) else ''}: the "
                f"drop was cut or not written; land the complete file (on_changed_file: replace)"
            )
        if fmt.has_header(options):
            head = fs.read_bytes(uri)[:65536].split(b"\n", 1)[0].decode(options.encoding, "replace")
            orders[uri] = check_header(
                head,
                contract,
                uri,
                options.delimiter,
                by_name=bool(opts and opts.columns_from_header),
                spec_path=str(spec.path),
            )
        needs_newline = opts.require_final_newline if opts else True
        if fmt.line_format and needs_newline and f.get("final_newline") is False:
            raise QualityError(
                f"{uri} does not end with a line end: its last line may have been cut in transfer "
                f"(a cut number such as 47.0 -> 4 would load as a wrong value). Land the complete "
                f"file (on_changed_file: replace), or set file.require_final_newline: false in "
                f"{spec.path} if this producer never ends files with one."
            )
    if not any(int(f["rows"]) for f in files) and not spec.allow_empty:
        names = ", ".join(f["uri"] for f in files)
        raise QualityError(
            f"source {spec.name}: the drop has no data rows ({names}): if an empty drop is normal "
            f"for this source, set allow_empty: true in {spec.path}; else land the complete file"
        )
    return orders


def decode_hint(spec: SourceSpec, files: list[dict], encoding: str) -> str:
    """Where the landed ``files`` first fail to decode as ``encoding`` (from the manifest)
    and what to set, or empty text when they all decode."""
    errors = [f"{f['uri']}: {f['decode_error']}" for f in files if f.get("decode_error")]
    if not errors:
        return ""
    return (
        f"{'; '.join(errors)}. If the files are written in another encoding (latin-1, cp1252, "
        f"utf-16...), set file.encoding in {spec.path} and run again."
    )


def _enforce(result, spec: SourceSpec, files: list[dict], encoding: str) -> None:
    """:meth:`GateResult.enforce`, naming the encoding and the first undecodable byte of
    each file when text did not decode."""
    from moulin.quality.gate import QualityGateError

    try:
        result.enforce()
    except QualityGateError as exc:
        hint = decode_hint(spec, files, encoding)
        if not hint:
            raise
        raise QualityGateError(f"{exc} Bytes that are not valid {encoding}: {hint}") from None


def landing_key(spec: SourceSpec, contract: Contract, manifest: dict, key_id: str = "") -> str:
    """The idempotency key of the bronze run of a landing (see the module docstring);
    ``key_id`` names the pseudonym key, so a rotated key pseudonymises again."""
    spec_bytes = spec.path.read_bytes() if spec.path.exists() else repr(spec).encode()
    parts = [
        sorted(f["sha256"] for f in manifest["files"]),
        manifest.get("version", 1),
        hashlib.sha256(contract.path.read_bytes()).hexdigest(),
        hashlib.sha256(spec_bytes).hexdigest(),
    ]
    return run_key(*parts, key_id) if key_id else run_key(*parts)


def gate_landing(
    spark,
    settings: Settings,
    spec: SourceSpec,
    ds: str,
    run_ge: bool = True,
    fs: WarehouseFS | None = None,
    pipeline: str = "moulin.source",
) -> BronzeOutcome:
    """Gate the landing of ``spec`` at ``ds`` into bronze and quarantine (see the module docstring).

    Raises :class:`NothingLandedError` when nothing was landed, a
    :class:`~moulin.quality.QualityError` naming the file for a file that cannot
    be read as the contract says, :class:`~moulin.quality.QualityGateError` when
    more rows failed than the threshold allows (the quarantine and the record
    are written first), :class:`~moulin.quality.AccountingError` when the
    three counts differ, and :class:`~moulin.sources.treatments.NoColumnTreatmentError`
    (before any write) when the contract asks for columns to be pseudonymised or
    masked and no column treatment is registered.
    """
    from pyspark.sql import functions as F

    from moulin.delta import AppTransaction, DeltaTableStore, TableProperties, WriteResult
    from moulin.quality.gate import AccountingError, quality_gate
    from moulin.quality.ge import store_validation
    from moulin.quality.rules import invalid_text, read_raw

    contract = validate_spec(spec)
    fs = fs or WarehouseFS(settings)
    manifest = read_manifest(settings, spec.name, ds, fs)
    if manifest is None or not manifest.get("files"):
        raise NothingLandedError(
            f"nothing landed for source {spec.name} at ds={ds} "
            f"({settings.table_uri('raw', spec.name, f'ds={ds}')}): run its landing first"
        )
    files = list(manifest["files"])
    file_columns = _check_files(spec, contract, files, fs)
    # pseudonyms and masks by the registered treatment (a changed key stops the gate); none
    # registered for a contract that asks for one stops it too, before anything is written
    treatment = prepare_treatment(settings, contract, fs)
    key = landing_key(spec, contract, manifest, treatment.key_id if treatment else "")
    store = DeltaTableStore(spark)
    bronze_uri = settings.table_uri(contract.table)
    existing = None
    if spec.mode == "partition" and contract.keys and store.exists(bronze_uri):
        existing = store.read(bronze_uri).filter(F.col("ds") != ds).select(*contract.keys, "ds")
    options = spec.format_options
    encoding = options.encoding
    raw = read_raw(
        spark,
        [f["uri"] for f in files],
        contract,
        ds,
        spec.raw_format,
        encoding=encoding,
        delimiter=options.delimiter,
        header=options.header,
        file_columns=file_columns,
    )
    result = quality_gate(
        raw,
        contract,
        run_id=f"{pipeline}.{spec.name}.{ds}.{key}",
        ds=ds,
        run_ge=run_ge,
        null_values=spec.null_values,
        threshold=spec.quarantine_threshold,
        # mail declares its charsets per part (bytes that lie about theirs are replaced)
        extra=[
            invalid_text(
                contract, encoding, f" (if the file is not {encoding}, set file.encoding in {spec.path})"
            )
        ]
        if spec.file_format.text_encoded
        else [],
        existing_keys=existing,
        ge_local_max_rows=settings.ge_local_max_rows,
    )
    try:
        record = dict(result.record)
        rows_manifest = sum(int(f["rows"]) for f in files)
        record.update(rows_manifest=rows_manifest, landing_version=manifest.get("version", 1), run_key=key)
        if rows_manifest != record["rows_read"]:
            raise AccountingError(
                f"source {spec.name} ds={ds}: the landing's manifest counts {rows_manifest} records in "
                f"{[f['uri'] for f in files]} but Spark read {record['rows_read']}: a record was split "
                f"or lost by the reader; check the file's quoting, delimiter and encoding in {spec.path}"
            )
        q_uri = quarantine_uri(settings, spec.name)
        q = store.write(
            result.quarantine,
            q_uri,
            mode="overwrite",
            partition_by=["ds"],
            replace_where={"ds": ds},
            transaction=AppTransaction(f"{pipeline}.quarantine.{spec.name}.{ds}.{key}", 1),
            properties=TableProperties(
                description=f"rows of raw {spec.name} files that failed contract {contract.name}",
                owner=contract.owner or "moulin-platform",
                # the reason quotes values of the row: no min/max statistics of it either
                personal_data=("row", "reason") if contract.personal_data else (),
            ),
        )
        record["quarantine_version"] = q.version
        record.update(store_validation(settings, spec.name, f"ds={ds}", result.ge_validation, fs))
        uri = record_uri(settings, spec.name, ds)
        fs.write_bytes(uri, json.dumps(record, indent=2, sort_keys=True, default=str).encode() + b"\n")
        _enforce(result, spec, files, encoding)
        bronze_df = result.bronze
        if treatment is not None:
            bronze_df = treatment.apply(bronze_df)
            record["pseudonym_key_id"] = treatment.key_id
        superseded_by = _newer_snapshot(store, bronze_uri, ds) if spec.mode == "snapshot" else None
        if superseded_by is not None:
            # A backfill of an older date: the table keeps the newer snapshot it holds.
            res = WriteResult(bronze_uri, store.version(bronze_uri), False, 0, 0)
            rows_b = int(record["rows_bronze"])
            record["superseded_by"] = superseded_by
            print(
                f"{spec.name} ds={ds}: {bronze_uri} holds the newer snapshot of ds={superseded_by}; "
                f"left as is (this landing is checked and its rejected rows quarantined)",
                flush=True,
            )
        else:
            res = _write_bronze(
                store, spec, contract, bronze_df, bronze_uri, ds, f"{pipeline}.bronze.{spec.name}.{ds}.{key}"
            )
        if spec.mode == "merge":
            rows_b = _rows_holding_batch_keys(store, bronze_uri, res.version, bronze_df, list(contract.keys))
    finally:
        result.release()
    rows_q = store.count(q_uri, q.version, {"ds": ds})
    if spec.mode == "partition" or (spec.mode == "snapshot" and superseded_by is None):
        rows_b = store.count(bronze_uri, res.version, {"ds": ds} if spec.mode == "partition" else None)
    if not rows_manifest == record["rows_read"] == rows_b + rows_q:
        raise AccountingError(
            f"source {spec.name} ds={ds}: manifest {rows_manifest} records, Spark read {record['rows_read']}, "
            f"but the commits hold {rows_b} in {bronze_uri} (v{res.version}) + {rows_q} in {q_uri} "
            f"(v{q.version}): rows were lost or duplicated; do not use this partition, report it"
        )
    record.update(
        rows_committed_bronze=rows_b,
        rows_committed_quarantine=rows_q,
        bronze_version=res.version,
        bronze_committed=res.committed,
        quarantine_committed=q.committed,
    )
    fs.write_bytes(uri, json.dumps(record, indent=2, sort_keys=True, default=str).encode() + b"\n")
    return BronzeOutcome(
        source=spec.name,
        ds=ds,
        table=contract.name,
        rows_manifest=rows_manifest,
        rows_read=record["rows_read"],
        rows_bronze=rows_b,
        rows_quarantined=rows_q,
        bronze_committed=res.committed,
        quarantine_committed=q.committed,
        bronze_version=res.version,
        quarantine_version=q.version,
        run_key=key,
        failures=record["failures"],
        passed=record["passed"],
        record_uri=uri,
        data_docs_uri=record.get("data_docs_uri", ""),
    )


def _newer_snapshot(store, uri: str, ds: str) -> str | None:
    """The ``ds`` of the snapshot table ``uri`` when it is newer than ``ds``, else None."""
    if not store.exists(uri):
        return None
    table = store.read(uri)
    if "ds" not in table.columns:
        return None
    newest = table.agg({"ds": "max"}).first()[0]
    return str(newest) if newest is not None and str(newest) > ds else None


def _rows_holding_batch_keys(store, uri: str, version: int, batch, keys: list[str]) -> int:
    """Rows of ``uri`` at ``version`` whose key is a key of ``batch``, read back from the
    table (not from the merge's own metrics): a merge that lost a row counts fewer, one
    that duplicated a key (NULL keys never match) counts more, and a duplicated key is
    refused outright."""
    from moulin.quality.gate import AccountingError

    if not keys:
        raise AccountingError(f"{uri}: merge mode needs the contract's keys to account for its rows")
    table = store.read(uri, version=version)
    duplicated = table.groupBy(*keys).count().filter("count > 1").limit(5).collect()
    if duplicated:
        shown = ", ".join(str({k: r[k] for k in keys}) for r in duplicated)
        raise AccountingError(
            f"{uri} (v{version}) holds keys {keys} more than once after the merge ({shown}): "
            f"do not use this table; report it"
        )
    return table.join(batch.select(*keys).distinct(), on=keys, how="left_semi").count()


def _write_bronze(store, spec: SourceSpec, contract: Contract, df, uri: str, ds: str, app_id: str):
    """Write the gated rows as the spec's mode says (one idempotent transaction)."""
    from moulin.delta import AppTransaction, TableProperties

    if spec.mode == "merge":
        keep_newer = "ds" if "ds" in df.columns else None
        return store.merge(
            df, uri, keys=list(contract.keys), transaction=AppTransaction(app_id, 1), keep_newer=keep_newer
        )
    return store.write(
        df,
        uri,
        mode="overwrite",
        partition_by=list(contract.partition_by) or None,
        replace_where={"ds": ds} if spec.mode == "partition" else None,
        transaction=AppTransaction(app_id, 1),
        properties=TableProperties(**contract.delta_metadata),
    )
