"""Taking a date's landing back (``moulin source unland <name> --ds D``): the files a
landing put under the wrong date, or that should never have been loaded, leave the
manifest and the date's rows leave bronze and quarantine, with the rows removed
counted from the Delta tables themselves."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from moulin.errors import DataError
from moulin.ingest.landing import read_manifest, withdraw_files
from moulin.settings import Settings
from moulin.sources.bronze import quarantine_uri, record_uri
from moulin.sources.spec import SourceSpec, validate_spec
from moulin.storage import WarehouseFS


class UnlandError(DataError):
    """A landing cannot be taken back as asked (nothing landed, or a mode without partitions)."""


@dataclass(frozen=True)
class Unlanded:
    """What ``unland`` took back: the files, and the rows removed from each table."""

    source: str
    ds: str
    files: list[str]
    records: int
    landing_version: int
    rows_removed_bronze: int
    rows_removed_quarantine: int
    bronze_version: int | None
    quarantine_version: int | None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return asdict(self)

    def line(self) -> str:
        """One line of accounting."""
        return (
            f"{self.source} ds={self.ds}: withdrew {len(self.files)} file(s) with {self.records} records "
            f"(manifest v{self.landing_version}); removed {self.rows_removed_bronze} rows from bronze"
            f"{f' (v{self.bronze_version})' if self.bronze_version is not None else ''} + "
            f"{self.rows_removed_quarantine} from quarantine"
            f"{f' (v{self.quarantine_version})' if self.quarantine_version is not None else ''}"
        )


def _clear_partition(spark, store, uri: str, ds: str) -> tuple[int, int | None]:
    """Remove the ``ds`` partition of table ``uri`` in one commit: ``(rows removed, version)``."""
    if not store.exists(uri):
        return 0, None
    before = store.count(uri, None, {"ds": ds})
    if before == 0:
        return 0, None
    empty = store.read(uri).limit(0)
    result = store.write(empty, uri, mode="overwrite", replace_where={"ds": ds})
    return before - store.count(uri, result.version, {"ds": ds}), result.version


def unland_source(
    spark, settings: Settings, spec: SourceSpec, ds: str, fs: WarehouseFS | None = None
) -> Unlanded:
    """Take the landing of ``spec`` at ``ds`` back: its files leave the manifest (they stay
    in raw as ``superseded``, no longer read, and are no longer seen as landed by the
    redelivery check) and the ``ds`` partitions of bronze and quarantine are removed.
    Only for ``partition`` mode, where a date's rows are a partition of their own."""
    from moulin.delta import DeltaTableStore

    contract = validate_spec(spec)
    if spec.mode != "partition":
        raise UnlandError(
            f"source {spec.name} writes in mode {spec.mode}: its rows of ds={ds} are not a partition of "
            f"their own, so unland cannot take them out; land a corrected drop instead (--replace)"
        )
    fs = fs or WarehouseFS(settings)
    manifest = read_manifest(settings, spec.name, ds, fs)
    if manifest is None or not manifest.get("files"):
        raise UnlandError(
            f"nothing is landed for source {spec.name} at ds={ds} "
            f"({settings.table_uri('raw', spec.name, f'ds={ds}')}): nothing to take back"
        )
    gone = withdraw_files(settings, spec.name, ds, None, fs)
    store = DeltaTableStore(spark)
    removed_b, version_b = _clear_partition(spark, store, settings.table_uri(contract.table), ds)
    removed_q, version_q = _clear_partition(spark, store, quarantine_uri(settings, spec.name), ds)
    done = Unlanded(
        source=spec.name,
        ds=ds,
        files=[f["file"] for f in gone],
        records=sum(int(f["rows"]) for f in gone),
        landing_version=int((read_manifest(settings, spec.name, ds, fs) or {}).get("version", 1)),
        rows_removed_bronze=removed_b,
        rows_removed_quarantine=removed_q,
        bronze_version=version_b,
        quarantine_version=version_q,
    )
    uri = record_uri(settings, spec.name, ds)
    record = json.loads(fs.read_bytes(uri)) if fs.exists(uri) else {}
    record["unlanded"] = {**done.as_dict(), "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    fs.write_bytes(uri, json.dumps(record, indent=2, sort_keys=True, default=str).encode() + b"\n")
    return done
