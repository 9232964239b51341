"""Reading a table's Delta log through deltalake: snapshots, files, features, errors.

Every failure to open a table becomes a :class:`DeltaStoreError` naming the table
and what to do; tables using features this layer cannot honour are refused.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from pyspark.sql.types import StructType

from moulin import kerberos
from moulin.delta.column_mapping import READABLE_MODES, logical_partition_keys, logical_paths, mapping_mode
from moulin.delta.errors import DeltaStoreError, UnsupportedTableError, VacuumedVersionError
from moulin.delta.predicates import (
    Predicate,
    format_partition_value,
    partition_value,
    range_may_match,
    value_matches,
)
from moulin.delta.schema import delta_to_spark

# Reader features whose tables read correctly as "the add actions' Parquet files"
# (columnMapping: in mode name only, see moulin.delta.column_mapping).
SUPPORTED_READER_FEATURES = {
    "timestampNtz",
    "v2Checkpoint",
    "vacuumProtocolCheck",
    "columnMapping",
    "variantType",
    "variantType-preview",
}
# Writer features whose rules a commit of "add/remove these Parquet files" honours
# (invariants and CHECK constraints only while the table declares none).
SUPPORTED_WRITER_FEATURES = {
    "appendOnly",
    "invariants",
    "checkConstraints",
    "changeDataFeed",
    "timestampNtz",
    "domainMetadata",
    "vacuumProtocolCheck",
}
# Features implied by a legacy writer version (before table features, version 7).
_LEGACY_WRITER_FEATURES = {
    2: {"appendOnly", "invariants"},
    3: {"checkConstraints"},
    4: {"changeDataFeed", "generatedColumns"},
    5: {"columnMapping"},
    6: {"identityColumns"},
}
OWNER_KEY = "moulin.owner"
VACUUMED_THROUGH_KEY = "moulin.vacuumedThroughVersion"  # set by VACUUM (see maintenance)
PERSONAL_DATA_KEY = "moulin.personalData"
#: Delta table properties naming the columns whose min/max the writers record (personal ones never).
STATS_COLUMNS_KEY = "delta.dataSkippingStatsColumns"
STATS_NUM_COLS_KEY = "delta.dataSkippingNumIndexedCols"


def normalize_uri(uri: str) -> str:
    """A table URI without trailing slash; plain paths become file:// URIs."""
    if not isinstance(uri, str) or not uri.strip():
        raise DeltaStoreError(f"table URI {uri!r} is empty: pass file:///path or hdfs://host:port/path")
    uri = uri.strip()
    if "://" not in uri:
        if not uri.startswith("/"):
            raise DeltaStoreError(f"table path {uri!r} is relative: pass an absolute path or a URI")
        uri = "file://" + uri
    scheme = uri.split("://", 1)[0].lower()
    if scheme not in ("file", "hdfs"):
        raise DeltaStoreError(f"unsupported scheme {scheme!r} in table URI {uri}: use file:// or hdfs://")
    return uri.rstrip("/")


def _describe(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:500]


def _unsupported(uri: str, exc: BaseException) -> UnsupportedTableError | None:
    """The error for a table deltalake refuses to load for a feature it lacks, else None.

    deltalake 1.6 raises a plain ``DeltaError`` ("Kernel error: Unsupported:
    Feature 'x' is not supported"), no subclass: its text is all there is to go by.
    """
    text = _describe(exc)
    if "unsupported" not in text.lower():
        return None
    names = sorted(set(re.findall(r"[Ff]eatures? '([^']+)'", text)))
    what = f"the Delta feature(s) {', '.join(names)}" if names else "a Delta feature"
    return UnsupportedTableError(
        f"table {uri} uses {what}, which moulin.delta (deltalake) cannot read ({text}): "
        "no retry will help; read it with Delta Lake on Spark"
    )


def open_delta(uri: str, version: int | None = None, timestamp: str | dt.datetime | None = None):
    """The deltalake ``DeltaTable`` of ``uri`` (at a version or timestamp), checked."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    kerberos.refresh()  # under Kerberos, a ticket for the HDFS connections this opens
    if version is not None and timestamp is not None:
        raise DeltaStoreError(f"pass a version or a timestamp to read {uri}, not both")
    try:
        table = DeltaTable(uri)
    except TableNotFoundError:
        raise DeltaStoreError(
            f"no Delta table at {uri}: the folder does not exist or has no _delta_log; "
            "check the path (tables are written with DeltaTableStore.write)"
        ) from None
    except Exception as exc:  # DeltaError, OSError, protocol errors
        unsupported = _unsupported(uri, exc)
        if unsupported is not None:
            raise unsupported from None
        raise DeltaStoreError(
            f"cannot read the Delta log of {uri}: {_describe(exc)}. A log entry is corrupt or missing: "
            "restore _delta_log from a backup or a replica; nothing was changed"
        ) from None
    if version is not None or timestamp is not None:
        latest = table.version()
        vacuumed = int(dict(table.metadata().configuration or {}).get(VACUUMED_THROUGH_KEY, -1))
        try:
            if timestamp is not None:
                if isinstance(timestamp, dt.datetime) and timestamp.tzinfo is None:
                    timestamp = timestamp.replace(tzinfo=dt.UTC)
                table.load_as_version(timestamp)
            else:
                if not isinstance(version, int) or version < 0 or version > latest:
                    raise DeltaStoreError(
                        f"table {uri} has no version {version!r}: its versions go from 0 to {latest}"
                    )
                table.load_as_version(version)
            if table.version() <= vacuumed:
                raise VacuumedVersionError(
                    f"version {table.version()} of table {uri} was vacuumed: VACUUM removed data files it "
                    f"needs (versions up to {vacuumed} are gone); read version {vacuumed + 1} or later"
                )
        except DeltaStoreError:
            raise
        except Exception as exc:
            unsupported = _unsupported(uri, exc)
            if unsupported is not None:
                raise unsupported from None
            what = f"timestamp {timestamp}" if timestamp is not None else f"version {version}"
            raise DeltaStoreError(
                f"cannot load {what} of table {uri} (latest version {latest}): {_describe(exc)}; "
                "an older version may have been cleaned from the log, or the timestamp precedes the table"
            ) from None
    check_supported(uri, table)
    return table


def check_supported(uri: str, table) -> None:
    """Refuse tables using deletion vectors, column mapping by id or unknown reader features."""
    proto = table.protocol()
    conf = dict(table.metadata().configuration or {})
    reader_features = set(proto.reader_features or [])
    mapping = mapping_mode(conf)
    if mapping not in READABLE_MODES:
        raise UnsupportedTableError(
            f"table {uri} uses the Delta reader feature columnMapping mode {mapping} "
            f"(delta.columnMapping.mode={mapping}), which moulin.delta cannot read (it reads column "
            "mapping mode name only): no retry will help; read it with Delta Lake on Spark"
        )
    if "deletionVectors" in reader_features:
        raise UnsupportedTableError(
            f"table {uri} uses the Delta reader feature deletionVectors, which moulin.delta cannot read: "
            "no retry will help; purge them (REORG TABLE ... APPLY (PURGE)) and disable "
            "delta.enableDeletionVectors with Delta Lake on Spark"
        )
    unknown = sorted(reader_features - SUPPORTED_READER_FEATURES)
    if unknown or proto.min_reader_version > 3:
        what = (
            f"the Delta reader feature(s) {', '.join(unknown)}"
            if unknown
            else f"Delta reader version {proto.min_reader_version}"
        )
        raise UnsupportedTableError(
            f"table {uri} needs {what}, which moulin.delta cannot read: no retry will help; "
            "read it with Delta Lake on Spark"
        )


def _fields_metadata(table) -> list[dict]:
    """Metadata of every field of the table's schema, nested fields included."""

    out: list[dict] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            if "metadata" in node and isinstance(node["metadata"], dict):
                out.append(node["metadata"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(table.schema().to_json()))
    return out


def features_in_use(table) -> set[str]:
    """The writer features a table declares (table features) or uses (legacy protocol)."""
    proto = table.protocol()
    conf = dict(table.metadata().configuration or {})
    metas = _fields_metadata(table)
    if proto.writer_features:
        declared = set(proto.writer_features)
    else:
        declared = set()
        for version, names in _LEGACY_WRITER_FEATURES.items():
            if proto.min_writer_version >= version:
                declared |= names
        # Under a legacy protocol a feature binds writers only where the table uses it.
        uses = {
            "appendOnly": conf.get("delta.appendOnly", "false").lower() == "true",
            "changeDataFeed": conf.get("delta.enableChangeDataFeed", "false").lower() == "true",
            "generatedColumns": any("delta.generationExpression" in m for m in metas),
            "columnMapping": conf.get("delta.columnMapping.mode", "none") not in ("none", ""),
            "identityColumns": any(any(k.startswith("delta.identity.") for k in m) for m in metas),
        }
        declared = {f for f in declared if uses.get(f, True)}
    if "invariants" in declared and not any("delta.invariants" in m for m in metas):
        declared.discard("invariants")
    if "checkConstraints" in declared and not any(k.startswith("delta.constraints.") for k in conf):
        declared.discard("checkConstraints")
    return declared


def check_writer_features(uri: str, table, mode: str) -> None:
    """Refuse a write that would break a writer feature of the table (no retry can help)."""
    in_use = features_in_use(table)
    conf = dict(table.metadata().configuration or {})
    enforced = {"invariants", "checkConstraints"} & in_use
    unknown = sorted((in_use - SUPPORTED_WRITER_FEATURES) | enforced)
    if unknown:
        raise UnsupportedTableError(
            f"table {uri} uses the Delta writer feature(s) {', '.join(unknown)}, which moulin.delta "
            "cannot honour when it commits: no retry will help. Write this table with Delta Lake on "
            "Spark, or drop the feature from the table (ALTER TABLE ... DROP FEATURE) first"
        )
    if mode == "overwrite" and conf.get("delta.appendOnly", "false").lower() == "true":
        raise UnsupportedTableError(
            f"table {uri} is append-only (delta.appendOnly=true): an overwrite would remove rows; "
            "no retry will help. Append instead, or unset delta.appendOnly"
        )


@dataclass(frozen=True)
class FileEntry:
    """One data file of a snapshot."""

    path: str  # relative to the table, decoded (as on disk)
    size: int
    partition_values: dict[str, Any]  # typed Python values
    num_records: int | None
    mins: dict[str, Any]
    maxs: dict[str, Any]
    null_counts: dict[str, int | None]

    def may_match(self, preds: list[Predicate], partition_by: list[str]) -> bool:
        """False only when partition values or statistics prove that no row matches."""
        for col, op, target in preds:
            if col in partition_by:
                if not value_matches(op, self.partition_values.get(col), target):
                    return False
                continue
            nulls = self.null_counts.get(col)
            known = self.num_records is not None and nulls is not None
            if op == "is null":
                if known and nulls == 0:
                    return False
                continue
            if known and nulls == self.num_records:
                return False  # only nulls: no comparison matches
            if not range_may_match(op, self.mins.get(col), self.maxs.get(col), target):
                return False
        return True


class Snapshot:
    """A loaded version of a table: schema, partitioning, metadata and files."""

    def __init__(self, uri: str, table) -> None:
        self.uri = uri
        self.table = table
        self.version: int = table.version()
        meta = table.metadata()
        self.metadata = meta
        self.partition_by: list[str] = list(meta.partition_columns)
        self.schema: StructType = delta_to_spark(table.schema())
        self.configuration: dict[str, str] = dict(meta.configuration or {})
        self.column_mapping: str = mapping_mode(self.configuration)  # "none" or "name"
        self._files: list[FileEntry] | None = None

    @property
    def type_names(self) -> dict[str, str]:
        return {f.name: f.dataType.typeName() for f in self.schema.fields}

    def files(self) -> list[FileEntry]:
        """All data files of the snapshot, with typed partition values and stats."""
        if self._files is None:
            import pyarrow as pa

            rows = pa.table(self.table.get_add_actions(flatten=True)).to_pylist()
            types = self.type_names
            # Column mapping: statistics are keyed by physical names (partition values by logical).
            stat_names: dict[str, str] = {}
            part_names: dict[str, str] = {}
            if self.column_mapping != "none" and rows:
                stat_names = logical_paths(self.schema)
                part_names = logical_partition_keys(
                    [k.partition(".")[2] for k in rows[0] if k.startswith("partition.")],
                    self.schema,
                    self.partition_by,
                )
            out = []
            for row in rows:
                pvs, mins, maxs, nulls = {}, {}, {}, {}
                for key, value in row.items():
                    kind, _, col = key.partition(".")
                    col = (part_names if kind == "partition" else stat_names).get(col, col)
                    if kind == "partition":
                        pvs[col] = (
                            partition_value(types[col], value)
                            if isinstance(value, str)
                            else _as_python(value)
                        )
                    elif kind == "min":
                        mins[col] = _safe_bound(types.get(col), _as_python(value), False)
                    elif kind == "max":
                        maxs[col] = _safe_bound(types.get(col), _as_python(value), True)
                    elif kind == "null_count":
                        nulls[col] = value
                out.append(
                    FileEntry(
                        path=unquote(row["path"]),
                        size=int(row["size_bytes"]),
                        partition_values=pvs,
                        num_records=row.get("num_records"),
                        mins=mins,
                        maxs=maxs,
                        null_counts=nulls,
                    )
                )
            self._files = out
        return self._files

    def file_uri(self, entry: FileEntry) -> str:
        if "://" in entry.path:
            return entry.path
        return f"{self.uri}/{entry.path}"

    def select(self, preds: list[Predicate]) -> list[FileEntry]:
        """The files that may hold rows matching all of ``preds``."""
        return [f for f in self.files() if f.may_match(preds, self.partition_by)]


def _safe_bound(type_name: str | None, value: Any, is_max: bool) -> Any:
    """A statistic of any writer as a bound that is safe to skip files on (None: unknown).

    Delta statistics hold timestamps at millisecond precision, and writers
    truncate rather than round (delta-io/delta#2462): widen by 1 ms.  Parquet
    writers leave NaN out of float maxima, while Spark orders NaN above every
    number: a float maximum is never trusted.  A string maximum of 32 characters
    or more may be a truncated prefix (Delta Lake on Spark): not trusted, nor a
    string bound holding characters beyond the BMP (see below).
    """
    if value is None:
        return None
    if type_name in ("timestamp", "timestamp_ntz") and isinstance(value, dt.datetime):
        step = dt.timedelta(milliseconds=1)
        return value + step if is_max else value - step
    if type_name in ("float", "double"):
        if is_max or not isinstance(value, (int, float)) or value != value:
            return None
        return value
    if type_name == "string" and isinstance(value, str):
        if is_max and len(value) >= 32:
            return None
        if any(ord(ch) > 0xFFFF for ch in value):
            return None  # written as \\u surrogate pairs, which deltalake 1.6 decodes wrongly
    return value


def _as_python(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC)
    return value


def personal_columns(snap: Snapshot) -> list[str]:
    """The personal-data columns recorded in a table's Delta metadata."""
    raw = snap.configuration.get(PERSONAL_DATA_KEY, "[]")
    try:
        return list(json.loads(raw))
    except ValueError:
        return [c for c in raw.split(",") if c]


def raw_partition_values(entry: FileEntry) -> dict[str, str | None]:
    """A file's partition values as the strings the Delta log stores."""
    return {k: format_partition_value(v) for k, v in entry.partition_values.items()}
