"""Source specs: one YAML file per source says where its raw data comes from.

A spec lives in ``<contracts folder>/sources/<name>.yaml`` (see
:attr:`moulin.settings.Settings.contract_dirs`) beside the bronze contract it
names::

    name: customers
    kind: file                 # file | sql | http
    contract: bronze_customers # the bronze table's contract
    schedule: "@daily"         # cron or preset; null: triggered by hand
    start_date: 2024-01-01
    end_date: 2024-12-31       # optional: the logical date of the last drop (a feed that ends)
    catchup: false
    mode: partition            # partition: one ds partition per drop | snapshot | merge (by keys)
    null_values: ["", "NA"]
    quarantine_threshold: 0.05 # optional; default: the contract's
    allow_empty: false         # a drop without rows is an error unless true
    on_changed_file: refuse    # refuse | replace (a corrected file gets a new landing version)
    file:
      path: /data/drops/customers_{ds}.csv   # glob; {ds} {ds_nodash} {home}; relative to this file
      format: csv              # csv | jsonl | parquet | mbox (e-mail, moulin.ingest.mail) | idx (images, moulin.ingest.idx)
      encoding: utf-8
      delimiter: ","
      header: true
      require_final_newline: true
      columns_from_header: false   # true: read each CSV column by its header name (any order)
    sql:                       # kind sql: a table or a query, optional watermark column
      url: sqlite:////srv/shop.db          # SQLAlchemy URL ({home}: moulin's home folder), or
      connection: shop_db                  # an Airflow Connection id
      table: customers                     # or query: SELECT ...
      watermark: id
    http:                      # kind http: a paginated JSON API through Airflow's HttpHook
      connection: shop_api
      endpoint: /v1/customers
      records: data            # key of the list of records in a page (empty: the page is the list)
      page_param: page
      start_page: 1
      page_size_param: per_page
      page_size: 100
      retries: 5
      backoff_s: 1.0

Loading validates everything and raises :class:`SourceSpecError` naming the
file, the line and the field.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from moulin.contracts import ContractError, contract_dirs, load_contract, read_yaml_file
from moulin.errors import DataError
from moulin.identifiers import UnsafeNameError, check_identifier
from moulin.ingest.formats import (
    FormatOptions,
    RawFileFormat,
    RawFormat,
    UnknownFormatError,
    UnreadableEncodingError,
    raw_format,
)

SourceKind = Literal["file", "sql", "http"]
WriteMode = Literal["partition", "snapshot", "merge"]
OnChangedFile = Literal["refuse", "replace"]

SPECS_FOLDER = "sources"


class SourceSpecError(DataError, ValueError):
    """A source spec is missing or invalid; the message names file, line and field."""


@dataclass(frozen=True)
class FileOptions:
    """Where the files of a ``file`` source are and how they are written."""

    path: str
    format: RawFormat = "csv"
    encoding: str = "utf-8"
    delimiter: str = ","
    header: bool = True
    require_final_newline: bool = True
    columns_from_header: bool = False

    def pattern(self, ds: str, base: Path, home: Path | None = None) -> str:
        """The glob of the drop of logical date ``ds`` (relative paths from ``base``;
        ``{home}`` is moulin's home folder)."""
        text = self.path.replace("{ds}", ds).replace("{ds_nodash}", ds.replace("-", ""))
        if home is not None:
            text = text.replace("{home}", str(home))
        path = Path(text).expanduser()
        return str(path if path.is_absolute() else base / path)


@dataclass(frozen=True)
class SqlOptions:
    """The table or query of a ``sql`` source."""

    url: str | None = None
    connection: str | None = None
    table: str | None = None
    query: str | None = None
    watermark: str | None = None

    def database_url(self, home: Path | None = None) -> str | None:
        """``url`` with ``{home}`` replaced by moulin's home folder (None for a Connection)."""
        if self.url is None or home is None:
            return self.url
        return self.url.replace("{home}", str(home))


@dataclass(frozen=True)
class HttpOptions:
    """The paginated JSON API of an ``http`` source."""

    connection: str
    endpoint: str
    records: str = "data"
    page_param: str = "page"
    start_page: int = 1
    page_size_param: str | None = None
    page_size: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    max_pages: int = 100_000
    retries: int = 5
    backoff_s: float = 1.0
    timeout_s: float = 60.0


@dataclass(frozen=True)
class SourceSpec:
    """A validated source spec."""

    name: str
    kind: SourceKind
    contract: str
    path: Path
    schedule: str | None = None
    start_date: dt.date = dt.date(2024, 1, 1)
    end_date: dt.date | None = None
    catchup: bool = False
    mode: WriteMode = "partition"
    null_values: tuple[str, ...] = ("", "NA")
    quarantine_threshold: float | None = None
    allow_empty: bool = False
    on_changed_file: OnChangedFile = "refuse"
    description: str = ""
    file: FileOptions | None = None
    sql: SqlOptions | None = None
    http: HttpOptions | None = None

    @property
    def raw_format(self) -> RawFormat:
        """The format of the landed raw files (SQL and HTTP sources land JSON lines)."""
        return self.file.format if self.file is not None else "jsonl"

    @property
    def file_format(self) -> RawFileFormat:
        """The format of the landed raw files, as its class in :mod:`moulin.ingest.formats`."""
        return raw_format(self.raw_format)

    @property
    def format_options(self) -> FormatOptions:
        """How the landed raw files are written (the defaults for SQL and HTTP sources)."""
        opts = self.file
        return FormatOptions(opts.encoding, opts.delimiter, opts.header) if opts else FormatOptions()

    @property
    def dag_id(self) -> str:
        """The id of the source's ingest DAG."""
        return f"source_{self.name}"


_TOP = {
    "name", "kind", "contract", "schedule", "start_date", "end_date", "catchup", "mode", "null_values",
    "quarantine_threshold", "allow_empty", "on_changed_file", "description", "file", "sql", "http",
}  # fmt: skip
_OPTIONS: dict[str, type] = {"file": FileOptions, "sql": SqlOptions, "http": HttpOptions}


class _Lines:
    """Line numbers of the fields of a YAML document (``a.b`` -> line)."""

    def __init__(self, text: str) -> None:
        self.lines: dict[str, int] = {}
        try:
            node = yaml.compose(text)
        except yaml.YAMLError:
            return
        if node is not None:
            self._walk(node, "")

    def _walk(self, node: Any, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                where = f"{prefix}{key.value}"
                self.lines[where] = key.start_mark.line + 1
                self._walk(value, where + ".")

    def of(self, where: str) -> int | None:
        while where:
            if where in self.lines:
                return self.lines[where]
            where = where.rpartition(".")[0]
        return None


class _Check:
    def __init__(self, path: Path, lines: _Lines) -> None:
        self.path, self.lines = path, lines

    def fail(self, where: str, what: str) -> SourceSpecError:
        line = self.lines.of(where)
        at = f"{self.path}:{line}" if line else str(self.path)
        return SourceSpecError(f"source spec {at}: field {where}: {what}")

    def choice(self, value: Any, allowed: Any, where: str) -> Any:
        options = get_args(allowed)
        if value not in options:
            raise self.fail(where, f"{value!r} is not one of {', '.join(options)}")
        return value

    def typed(self, value: Any, kind: type | tuple[type, ...], where: str, what: str) -> Any:
        if (
            isinstance(value, bool)
            and kind is not bool
            and bool not in (kind if isinstance(kind, tuple) else (kind,))
        ):
            raise self.fail(where, f"expected {what}, got {value!r}")
        if not isinstance(value, kind):
            raise self.fail(where, f"expected {what}, got {value!r}")
        return value


def _options(check: _Check, data: Any, kind: str) -> Any:
    cls = _OPTIONS[kind]
    if not isinstance(data, dict):
        raise check.fail(kind, f"kind {kind} needs a {kind}: mapping")
    allowed = set(cls.__dataclass_fields__)
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise check.fail(f"{kind}.{unknown[0]}", f"unknown field (allowed: {', '.join(sorted(allowed))})")
    values: dict[str, Any] = {}
    for name, spec_field in cls.__dataclass_fields__.items():
        if name not in data:
            continue
        value, where = data[name], f"{kind}.{name}"
        hint = str(spec_field.type)
        if hint == "bool":
            value = check.typed(value, bool, where, "true or false")
        elif hint in ("int", "int | None"):
            value = check.typed(value, int, where, "a whole number")
        elif hint == "float":
            value = float(check.typed(value, (int, float), where, "a number"))
        elif hint.startswith("dict"):
            value = dict(check.typed(value, dict, where, "a mapping"))
        elif name == "format":
            try:
                value = raw_format(str(check.typed(value, str, where, "a text"))).name
            except UnknownFormatError as exc:
                raise check.fail(where, str(exc)) from None
        else:
            value = str(check.typed(value, (str, int, float), where, "a text"))
        values[name] = value
    if kind == "file":
        if not values.get("path"):
            raise check.fail("file.path", "needs the glob of the source's files")
        if len(values.get("delimiter", ",")) != 1:
            raise check.fail("file.delimiter", "expected one character")
        try:
            raw_format(values.get("format", "csv")).check_encoding(
                values.get("encoding", "utf-8"), values.get("header", True)
            )
        except UnreadableEncodingError as exc:
            raise check.fail("file.encoding", str(exc)) from None
    elif kind == "sql":
        if bool(values.get("url")) == bool(values.get("connection")):
            raise check.fail(
                "sql", "give either url (a SQLAlchemy URL) or connection (an Airflow Connection id)"
            )
        if bool(values.get("table")) == bool(values.get("query")):
            raise check.fail("sql", "give either table or query")
        for name, qualified in (("table", True), ("watermark", False)):
            if values.get(name):
                try:
                    check_identifier(values[name], f"sql.{name}", qualified=qualified)
                except UnsafeNameError as exc:
                    raise check.fail(f"sql.{name}", str(exc)) from None
    else:
        for name in ("connection", "endpoint"):
            if not values.get(name):
                raise check.fail(f"http.{name}", "missing required field")
        if values.get("retries", 0) < 0:
            raise check.fail("http.retries", "must be 0 or more")
    return cls(**values)


def _date(check: _Check, value: Any, where: str) -> dt.date:
    """A YAML date or ``YYYY-MM-DD`` text as a date (an error names the field)."""
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError:
            raise check.fail(where, f"expected a date YYYY-MM-DD, got {value!r}") from None
    if isinstance(value, dt.datetime):
        value = value.date()
    if not isinstance(value, dt.date):
        raise check.fail(where, f"expected a date YYYY-MM-DD, got {value!r}")
    return value


def parse_spec(data: Any, path: Path, text: str = "") -> SourceSpec:
    """Validate the parsed YAML ``data`` of ``path`` and build a :class:`SourceSpec`."""
    check = _Check(path, _Lines(text))
    if not isinstance(data, dict):
        raise SourceSpecError(f"source spec {path}: expected a mapping at the top level")
    unknown = sorted(set(data) - _TOP)
    if unknown:
        raise check.fail(unknown[0], f"unknown field (allowed: {', '.join(sorted(_TOP))})")
    for name in ("name", "kind", "contract"):
        if not data.get(name):
            raise check.fail(name, "missing required field")
    name = str(data["name"])
    if not name.replace("_", "").isalnum() or not name[0].isalpha() or name != name.lower():
        raise check.fail(
            "name", f"{name!r}: use lower-case letters, digits and _ (it names tables and folders)"
        )
    if path.stem != name:
        raise check.fail("name", f"{name!r} differs from the file name {path.stem!r}")
    kind = check.choice(data["kind"], SourceKind, "kind")
    for other in _OPTIONS:
        if other != kind and other in data:
            raise check.fail(other, f"a {kind} source takes no {other}: section")
    options = _options(check, data.get(kind), kind)
    start = data.get("start_date", dt.date(2024, 1, 1))
    if start == "YYYY-MM-DD":
        raise check.fail(
            "start_date",
            "set the logical date of the first drop to load (YYYY-MM-DD; `moulin source infer` leaves "
            "this placeholder, or give it --start-date)",
        )
    start = _date(check, start, "start_date")
    end = None if data.get("end_date") is None else _date(check, data["end_date"], "end_date")
    if end is not None and end < start:
        raise check.fail(
            "end_date", f"{end} is before start_date {start}: the last drop comes after the first"
        )
    threshold = data.get("quarantine_threshold")
    if threshold is not None:
        check.typed(threshold, (int, float), "quarantine_threshold", "a share between 0 and 1")
        if not 0 <= threshold <= 1:
            raise check.fail("quarantine_threshold", f"expected a share between 0 and 1, got {threshold!r}")
    nulls = data.get("null_values", ["", "NA"])
    if not isinstance(nulls, list):
        raise check.fail("null_values", f"expected a list of texts, got {nulls!r}")
    schedule = data.get("schedule")
    if schedule is not None and not isinstance(schedule, str):
        raise check.fail("schedule", f"expected a cron expression or preset such as @daily, got {schedule!r}")
    return SourceSpec(
        name=name,
        kind=kind,
        contract=str(data["contract"]),
        path=path,
        schedule=schedule,
        start_date=start,
        end_date=end,
        catchup=bool(check.typed(data.get("catchup", False), bool, "catchup", "true or false")),
        mode=check.choice(data.get("mode", "partition"), WriteMode, "mode"),
        null_values=tuple(str(v) for v in nulls),
        quarantine_threshold=None if threshold is None else float(threshold),
        allow_empty=bool(check.typed(data.get("allow_empty", False), bool, "allow_empty", "true or false")),
        on_changed_file=check.choice(data.get("on_changed_file", "refuse"), OnChangedFile, "on_changed_file"),
        description=str(data.get("description", "")).strip(),
        **{kind: options},
    )


def load_spec_file(path: Path) -> SourceSpec:
    """Load and validate one spec file (the bronze contract is checked by :func:`validate_spec`)."""

    path = Path(path)
    data, text = read_yaml_file(path, "source spec", SourceSpecError)
    return parse_spec(data, path, text)


def spec_dirs() -> tuple[Path, ...]:
    """Folders searched for source specs: ``sources/`` under each contracts folder."""

    return tuple(d / SPECS_FOLDER for d in contract_dirs())


def find_spec_file(name: str) -> Path:
    """The spec file of source ``name`` (the first folder of :func:`spec_dirs` that has it)."""
    for folder in spec_dirs():
        path = folder / f"{name}.yaml"
        if path.exists():
            return path
    raise SourceSpecError(
        f"no source spec {name!r}: no {name}.yaml in {', '.join(str(d) for d in spec_dirs())} "
        f"(available: {', '.join(all_spec_files()) or 'none'}); set MOULIN_CONTRACTS_DIR to your folder"
    )


def all_spec_files() -> dict[str, Path]:
    """Every spec file by source name (the first folder wins)."""
    out: dict[str, Path] = {}
    for folder in reversed(spec_dirs()):
        for path in sorted(folder.glob("*.yaml")):
            out[path.stem] = path
    return dict(sorted(out.items()))


def sources_by_contract() -> dict[str, str]:
    """The source writing each bronze contract, by contract name (each spec's ``contract``).

    Two specs naming one contract is an error: a bronze table has one source."""
    out: dict[str, str] = {}
    for name, path in all_spec_files().items():
        contract = load_spec_file(path).contract
        if contract in out:
            raise SourceSpecError(
                f"sources {out[contract]!r} and {name!r} both write contract {contract!r} ({path}): a bronze "
                "table has one source; give one of them its own contract"
            )
        out[contract] = name
    return out


def load_spec(name_or_path: str | Path) -> SourceSpec:
    """The spec of a source name, or of a spec file path."""
    text = str(name_or_path)
    path = Path(text) if text.endswith((".yaml", ".yml")) else find_spec_file(text)
    return load_spec_file(path)


def spec_warnings(spec: SourceSpec) -> list[str]:
    """What in a valid spec is likely a mistake, one sentence each (``moulin source validate``
    prints them): in partition mode, a file glob without the logical date lands every
    file it matches under every run's date (a snapshot's drop replaces the folder)."""
    out: list[str] = []
    undated = spec.file is not None and "{ds}" not in spec.file.path and "{ds_nodash}" not in spec.file.path
    if undated and spec.mode == "partition":
        out.append(
            f"{spec.path}: file.path {spec.file.path!r} has no {{ds}} or {{ds_nodash}}: each run lands every "
            f"file it matches under the run's date, so one date gets the files of other dates (and the "
            f"next date's run is refused as a redelivery). Put the date into the glob, e.g. "
            f"orders_{{ds}}*.csv, unless each drop really replaces the folder (then mode: snapshot)."
        )
    return out


def validate_spec(spec: SourceSpec):
    """Check the spec against its bronze contract; returns the contract.

    The contract must exist and be a bronze contract; ``partition`` mode needs
    the table partitioned by ``ds``; ``merge`` needs keys.
    """

    check = _Check(spec.path, _Lines(spec.path.read_text() if spec.path.exists() else ""))
    try:
        contract = load_contract(spec.contract)
    except ContractError as exc:
        raise check.fail("contract", str(exc)) from None
    if contract.layer != "bronze":
        raise check.fail("contract", f"{contract.name} is a {contract.layer} contract: a source fills bronze")
    if spec.mode == "partition" and "ds" not in contract.partition_by:
        raise check.fail(
            "mode",
            f"partition mode writes one ds partition per drop: add partition_by: [ds] to {contract.path}",
        )
    if spec.mode == "merge" and not contract.keys:
        raise check.fail("mode", f"merge needs keys: add keys: [...] to {contract.path}")
    if spec.sql is not None and spec.sql.watermark and spec.sql.query:
        raise check.fail("sql.watermark", "a watermark needs table (moulin adds the WHERE clause)")
    return contract
