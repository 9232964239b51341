"""Table contracts as data: one YAML file per table under ``schemas/``.

A contract names the table (``table``: path under the warehouse), its layer,
owner, keys, partitioning, personal-data columns, its columns (name, Spark
type, nullable, optional role and description; ``allow_non_finite: true`` lets a
``double``/``float`` column hold NaN and +-Infinity, which the bronze gate
quarantines otherwise), its expectations and its
``quarantine_threshold`` (the largest share of rows that may fail before a run
fails).  Where a bronze table's raw data comes from, and how it is read, is its
source spec's (:mod:`moulin.sources.spec`, whose ``contract`` names the table);
bronze tables carry two lineage columns added by the loader, ``_source_file`` and ``ds`` (see
:data:`LINEAGE_COLUMNS`).

Expectation types (``type`` field):

* ``not_null`` (``columns``) - one expectation per column, named ``not_null:<col>``;
* ``unique`` (``columns``) - the (compound) key is unique, named ``unique:<a>+<b>``;
  every row of a duplicated key fails;
* ``in_set`` (``column``, ``values``), ``between`` (``column``, ``min`` and/or
  ``max``, inclusive), ``regex`` (``column``, ``pattern``) - nulls pass;
* ``expression`` (``name``, ``sql``) - a Spark SQL boolean that holds for good
  rows (a null result fails); checked row by row only (no Great Expectations twin).

Any expectation may set ``name`` and ``description``.  Loading validates
everything and raises :class:`ContractError` naming the file and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from moulin.errors import DataError
from moulin.expectations import EXPECTATION_TYPES, Expectation
from moulin.settings import REPO_ROOT, load_settings

SCHEMAS_DIR = REPO_ROOT / "schemas"

#: Columns added to every bronze table by the loader (not present in raw files).
LINEAGE_COLUMNS: tuple[tuple[str, str], ...] = (("_source_file", "string"), ("ds", "string"))

SCALAR_TYPES = ("string", "int", "bigint", "double", "float", "boolean", "date", "timestamp", "binary")
LAYERS = ("bronze", "silver", "gold", "quality")
TOP_LEVEL_FIELDS = {
    "name",
    "layer",
    "table",
    "description",
    "owner",
    "source",
    "keys",
    "partition_by",
    "personal_data",
    "personal_data_note",
    "split",
    "columns",
    "expectations",
    "quarantine_threshold",
    "privacy",
}
REQUIRED_FIELDS = ("name", "layer", "table", "columns", "quarantine_threshold")


class ContractError(DataError, ValueError):
    """A contract file is missing, unreadable or invalid; the message names file and field."""


#: Kinds of personal data a column may hold (GDPR): a direct identifier (an address,
#: a name), a quasi-identifier (an IP address, a date of birth) or free text that may
#: hold identifiers.
PersonalCategory = Literal["direct_identifier", "quasi_identifier", "free_text"]
#: What moulin does with a personal column: ``pseudonymise`` at bronze (keyed
#: HMAC-SHA256 per purpose; each element of a ``", "``-separated list), ``mask`` e-mail
#: addresses and IP addresses in free text at bronze, ``pseudonymised`` / ``masked``
#: (a derived table holding values treated upstream), ``keep`` (stored as read).
Treatment = Literal["pseudonymise", "mask", "pseudonymised", "masked", "keep"]
PERSONAL_CATEGORIES: tuple[str, ...] = get_args(PersonalCategory)
TREATMENTS: tuple[str, ...] = get_args(Treatment)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PART = r"(?:[a-z0-9_]+|<[a-z_]+>)"  # <source>: a template filled per source
_TABLE_PATH = re.compile(rf"{_PART}(?:/{_PART})*")


@dataclass(frozen=True)
class PersonalColumn:
    """How a column holds personal data and what moulin does with it."""

    category: PersonalCategory
    treatment: Treatment
    purpose: str

    @property
    def pseudonymous(self) -> bool:
        """True when the stored values are keyed pseudonyms."""
        return self.treatment in ("pseudonymise", "pseudonymised")


@dataclass(frozen=True)
class PrivacyPolicy:
    """A table's record of processing: why it holds personal data, for how long, for whom."""

    purpose: str
    legal_basis: str
    retention_days: int | None = None
    retention_column: str = "ds"
    recipients: tuple[str, ...] = ()
    subject_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a contract."""

    name: str
    type: str
    nullable: bool
    role: str | None = None
    description: str = ""
    personal: PersonalColumn | None = None
    #: a double/float column that may hold NaN and +-Infinity (refused by the gate otherwise)
    allow_non_finite: bool = False


@dataclass(frozen=True)
class Contract:
    """A validated table contract."""

    name: str
    layer: str
    table: str
    columns: tuple[ColumnSpec, ...]
    expectations: tuple[Expectation, ...]
    quarantine_threshold: float
    path: Path
    description: str = ""
    owner: str = ""
    keys: tuple[str, ...] = ()
    partition_by: tuple[str, ...] = ()
    personal_data: tuple[str, ...] = ()
    personal_data_note: str = ""
    split: dict[str, Any] = field(default_factory=dict)
    privacy: PrivacyPolicy | None = None

    @property
    def personal_columns(self) -> dict[str, PersonalColumn]:
        """The columns that declare how they hold personal data, by name."""
        return {c.name: c.personal for c in self.columns if c.personal is not None}

    @property
    def treated_columns(self) -> dict[str, tuple[Treatment, str]]:
        """``{column: (treatment, purpose)}`` of the columns pseudonymised or masked at bronze."""
        return {
            name: (p.treatment, p.purpose)
            for name, p in self.personal_columns.items()
            if p.treatment in ("pseudonymise", "mask")
        }

    @property
    def column_names(self) -> list[str]:
        """Names of the contract's columns, in order (without lineage columns)."""
        return [c.name for c in self.columns]

    @property
    def delta_metadata(self) -> dict[str, Any]:
        """The table's description, owner and personal-data columns, as Delta writes take them."""
        return {
            "description": self.description,
            "owner": self.owner,
            "personal_data": list(self.personal_data),
        }

    def column(self, name: str) -> ColumnSpec:
        """The column called ``name`` (ContractError if absent)."""
        for col in self.columns:
            if col.name == name:
                return col
        raise ContractError(f"{self.path}: table {self.name} has no column {name!r}")

    def columns_with_role(self, role: str) -> list[str]:
        """Names of the columns whose ``role`` is ``role``."""
        return [c.name for c in self.columns if c.role == role]

    def spark_schema(self, lineage: bool | None = None):
        """The Spark ``StructType`` of the table.

        ``lineage`` adds :data:`LINEAGE_COLUMNS` (default: for bronze contracts).
        """
        from pyspark.sql.types import StructField, StructType

        fields = [StructField(c.name, spark_type(c.type), c.nullable) for c in self.columns]
        if lineage is None:
            lineage = self.layer == "bronze"
        if lineage:
            fields += [StructField(n, spark_type(t), False) for n, t in LINEAGE_COLUMNS]
        return StructType(fields)

    def ge_expectations(self) -> list[tuple[Expectation, Any]]:
        """Great Expectations objects for the contract's expectations.

        Returns ``(expectation, gx expectation)`` pairs; types without a GE
        counterpart (``expression``) are left out.
        """
        out: list[tuple[Expectation, Any]] = []
        for exp in self.expectations:
            ge = EXPECTATION_TYPES[exp.type].ge(exp, {"moulin_name": exp.name})
            if ge is not None:
                out.append((exp, ge))
        return out


def spark_type(name: str):
    """The Spark ``DataType`` of a contract type name (``int``, ``array<string>``...)."""
    from pyspark.sql import types as T

    scalars = {
        "string": T.StringType(),
        "int": T.IntegerType(),
        "bigint": T.LongType(),
        "double": T.DoubleType(),
        "float": T.FloatType(),
        "boolean": T.BooleanType(),
        "date": T.DateType(),
        "timestamp": T.TimestampType(),
        "binary": T.BinaryType(),
    }
    match = re.fullmatch(r"array<(\w+)>", name.strip())
    if match and match.group(1) in scalars:
        return T.ArrayType(scalars[match.group(1)], True)
    if name in scalars:
        return scalars[name]
    decimal = _DECIMAL.fullmatch(name.strip())
    if decimal:
        return T.DecimalType(int(decimal.group(1)), int(decimal.group(2)))
    raise ContractError(
        f"unknown Spark type {name!r}: use one of {', '.join(SCALAR_TYPES)}, decimal(p,s) or array<type>"
    )


_DECIMAL = re.compile(r"decimal\((\d+),\s*(\d+)\)")


def _valid_type(name: Any) -> bool:
    if not isinstance(name, str):
        return False
    decimal = _DECIMAL.fullmatch(name.strip())
    if decimal:
        return 1 <= int(decimal.group(1)) <= 38 and int(decimal.group(2)) <= int(decimal.group(1))
    match = re.fullmatch(r"array<(\w+)>", name.strip())
    return name in SCALAR_TYPES or bool(match and match.group(1) in SCALAR_TYPES)


class _Checker:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, what: str) -> ContractError:
        return ContractError(f"contract {self.path}: field {where}: {what}")

    def flag(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, f"expected true or false, got {value!r}")
        return value

    def str_list(self, value: Any, where: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(where, f"expected a list of column names, got {value!r}")
        return tuple(value)

    def known(self, names: tuple[str, ...], columns: set[str], where: str) -> None:
        for name in names:
            if name not in columns:
                raise self.fail(where, f"unknown column {name!r} (columns: {', '.join(sorted(columns))})")


def _expectations(check: _Checker, raw: Any, columns: set[str], all_columns: set[str]) -> list[Expectation]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise check.fail("expectations", "expected a list")
    out: list[Expectation] = []
    for i, item in enumerate(raw):
        where = f"expectations[{i}]"
        if not isinstance(item, dict):
            raise check.fail(where, f"expected a mapping, got {item!r}")
        kind = item.get("type")
        if kind not in EXPECTATION_TYPES:
            raise check.fail(
                f"{where}.type",
                f"unknown expectation type {kind!r}: use one of {', '.join(EXPECTATION_TYPES)}",
            )
        out += EXPECTATION_TYPES[kind].parse(item, where, check, columns)
    names = [e.name for e in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise check.fail("expectations", f"duplicate expectation names {dupes}: give them distinct names")
    return out


def _implied(
    declared: list[Expectation], columns: list[ColumnSpec], keys: tuple[str, ...]
) -> list[Expectation]:
    """``declared`` plus what the columns and keys imply: ``not_null`` for each column
    with ``nullable: false`` and ``unique`` for the keys, unless already declared."""
    out = list(declared)
    covered = {e.column for e in declared if e.type == "not_null"}
    out += [
        Expectation(f"not_null:{c.name}", "not_null", (c.name,), description="nullable: false")
        for c in columns
        if not c.nullable and c.name not in covered
    ]
    if keys and not any(e.type == "unique" and set(e.columns) == set(keys) for e in declared):
        out.append(Expectation(f"unique:{'+'.join(keys)}", "unique", keys, description="the table's keys"))
    return out


def parse_contract(data: Any, path: Path) -> Contract:
    """Validate the parsed YAML ``data`` of ``path`` and build a :class:`Contract`."""
    check = _Checker(path)
    if not isinstance(data, dict):
        raise ContractError(f"contract {path}: expected a mapping at the top level")
    unknown = sorted(set(data) - TOP_LEVEL_FIELDS)
    if unknown:
        raise check.fail(unknown[0], f"unknown field (allowed: {', '.join(sorted(TOP_LEVEL_FIELDS))})")
    for name in REQUIRED_FIELDS:
        if name not in data:
            raise check.fail(name, "missing required field")
    if data["layer"] not in LAYERS:
        raise check.fail("layer", f"{data['layer']!r} is not one of {', '.join(LAYERS)}")
    raw_cols = data["columns"]
    if not isinstance(raw_cols, list) or not raw_cols:
        raise check.fail("columns", "expected a non-empty list of columns")
    columns: list[ColumnSpec] = []
    for i, col in enumerate(raw_cols):
        where = f"columns[{i}]"
        if not isinstance(col, dict) or not isinstance(col.get("name"), str):
            raise check.fail(f"{where}.name", "each column needs a name")
        if not _valid_type(col.get("type")):
            raise check.fail(
                f"{where}.type",
                f"column {col['name']!r}: unknown Spark type {col.get('type')!r} "
                f"(use one of {', '.join(SCALAR_TYPES)}, decimal(p,s) or array<type>)",
            )
        if not isinstance(col.get("nullable"), bool):
            raise check.fail(f"{where}.nullable", f"column {col['name']!r}: nullable must be true or false")
        allow_non_finite = col.get("allow_non_finite", False)
        if not isinstance(allow_non_finite, bool):
            raise check.fail(
                f"{where}.allow_non_finite", f"column {col['name']!r}: allow_non_finite must be true or false"
            )
        if allow_non_finite and col["type"] not in ("double", "float"):
            raise check.fail(
                f"{where}.allow_non_finite",
                f"column {col['name']!r}: allow_non_finite applies to double and float columns only",
            )
        if allow_non_finite and not col["nullable"]:
            raise check.fail(
                f"{where}.allow_non_finite",
                f"column {col['name']!r}: allow_non_finite needs nullable: true (Great Expectations "
                "counts NaN as missing, the row rules as a value: they would disagree)",
            )
        if not _IDENTIFIER.fullmatch(col["name"]):
            raise check.fail(
                f"{where}.name",
                f"column name {col['name']!r} is not a plain identifier (letters, digits and _, "
                "not starting with a digit): it reaches SQL and paths",
            )
        columns.append(
            ColumnSpec(
                col["name"],
                col["type"],
                col["nullable"],
                col.get("role"),
                str(col.get("description", "")),
                _personal(check, col.get("personal"), f"{where}.personal"),
                allow_non_finite,
            )
        )
    names = [c.name for c in columns]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise check.fail("columns", f"duplicate column names {dupes}")
    colset = set(names)
    all_columns = colset | ({n for n, _ in LINEAGE_COLUMNS} if data["layer"] == "bronze" else set())
    keys = check.str_list(data.get("keys"), "keys")
    check.known(keys, colset, "keys")
    partition_by = check.str_list(data.get("partition_by"), "partition_by")
    check.known(partition_by, all_columns, "partition_by")
    personal = check.str_list(data.get("personal_data"), "personal_data")
    check.known(personal, colset, "personal_data")
    personal = personal + tuple(c.name for c in columns if c.personal is not None and c.name not in personal)
    if not _TABLE_PATH.fullmatch(str(data["table"])):
        raise check.fail(
            "table",
            f"{data['table']!r} is not a table path under the warehouse: lower-case letters, digits "
            "and _ in /-separated parts (no '..', no leading /)",
        )
    privacy = _privacy(check, data.get("privacy"), colset | {n for n, _ in LINEAGE_COLUMNS})
    if privacy is None and any(c.personal is not None for c in columns):
        raise check.fail("privacy", "columns declare personal data: give the table's purpose and legal_basis")
    threshold = data["quarantine_threshold"]
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
        raise check.fail("quarantine_threshold", f"expected a share between 0 and 1, got {threshold!r}")
    if "source" in data:
        raise check.fail(
            "source",
            "a bronze table's source is declared once, by its source spec (sources/<name>.yaml, whose "
            f"`contract: {data['name']}` names this table): delete the contract's source block",
        )
    split = data.get("split") or {}
    if split:
        if not isinstance(split, dict) or split.get("column") not in colset:
            raise check.fail("split.column", "split needs a column of the table")
        for bound in ("train_until", "validation_until"):
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(split.get(bound, ""))):
                raise check.fail(f"split.{bound}", "expected a date YYYY-MM-DD")
    expectations = tuple(
        _implied(_expectations(check, data.get("expectations"), colset, all_columns), columns, keys)
    )
    non_finite = {c.name for c in columns if c.allow_non_finite}
    for exp in expectations:
        if exp.type == "between" and exp.column in non_finite:
            raise check.fail(
                "expectations",
                f"{exp.name}: column {exp.column!r} has allow_non_finite: true; Great Expectations ignores "
                "NaN in a range check while the row rules fail it: drop the range or allow_non_finite",
            )
    return Contract(
        name=str(data["name"]),
        layer=data["layer"],
        table=str(data["table"]),
        columns=tuple(columns),
        expectations=expectations,
        quarantine_threshold=float(threshold),
        path=path,
        description=str(data.get("description", "")).strip(),
        owner=str(data.get("owner", "")),
        keys=keys,
        partition_by=partition_by,
        personal_data=personal,
        personal_data_note=str(data.get("personal_data_note", "")).strip(),
        split=dict(split),
        privacy=privacy,
    )


def _personal(check: _Checker, raw: Any, where: str) -> PersonalColumn | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise check.fail(where, "expected a mapping with category, treatment and purpose")
    unknown = sorted(set(raw) - {"category", "treatment", "purpose"})
    if unknown:
        raise check.fail(f"{where}.{unknown[0]}", "unknown field (allowed: category, treatment, purpose)")
    category = raw.get("category")
    if category not in PERSONAL_CATEGORIES:
        raise check.fail(f"{where}.category", f"{category!r} is not one of {', '.join(PERSONAL_CATEGORIES)}")
    treatment = raw.get("treatment", "keep")
    if treatment not in TREATMENTS:
        raise check.fail(f"{where}.treatment", f"{treatment!r} is not one of {', '.join(TREATMENTS)}")
    purpose = raw.get("purpose")
    if not isinstance(purpose, str) or not _IDENTIFIER.fullmatch(purpose):
        raise check.fail(
            f"{where}.purpose",
            f"{purpose!r}: name the purpose as an identifier (pseudonyms are derived per purpose)",
        )
    return PersonalColumn(category, treatment, purpose)


def _privacy(check: _Checker, raw: Any, columns: set[str]) -> PrivacyPolicy | None:
    if raw is None:
        return None
    allowed = {
        "purpose",
        "legal_basis",
        "retention_days",
        "retention_column",
        "recipients",
        "subject_columns",
    }
    if not isinstance(raw, dict):
        raise check.fail("privacy", f"expected a mapping ({', '.join(sorted(allowed))})")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise check.fail(f"privacy.{unknown[0]}", f"unknown field (allowed: {', '.join(sorted(allowed))})")
    for name in ("purpose", "legal_basis"):
        if not isinstance(raw.get(name), str) or not raw[name].strip():
            raise check.fail(f"privacy.{name}", "missing required text")
    days = raw.get("retention_days")
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 1):
        raise check.fail("privacy.retention_days", f"expected a whole number of days >= 1, got {days!r}")
    column = str(raw.get("retention_column", "ds"))
    check.known((column,), columns, "privacy.retention_column")
    subjects = check.str_list(raw.get("subject_columns"), "privacy.subject_columns")
    check.known(subjects, columns, "privacy.subject_columns")
    recipients = raw.get("recipients") or []
    if not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients):
        raise check.fail("privacy.recipients", "expected a list of texts")
    return PrivacyPolicy(
        purpose=raw["purpose"].strip(),
        legal_basis=raw["legal_basis"].strip(),
        retention_days=days,
        retention_column=column,
        recipients=tuple(recipients),
        subject_columns=subjects,
    )


def read_yaml_file(path: Path, what: str, error: type[Exception]) -> tuple[Any, str]:
    """``(data, text)`` of YAML file ``path``; ``error`` names ``what`` and the file on failure."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise error(f"{what} {path}: cannot read the file: {exc.strerror}") from None
    try:
        return yaml.safe_load(text), text
    except yaml.YAMLError as exc:
        raise error(f"{what} {path}: invalid YAML: {exc}") from None


def load_contract_file(path: Path) -> Contract:
    """Load and validate one contract file."""
    path = Path(path)
    data, _ = read_yaml_file(path, "contract", ContractError)
    return parse_contract(data, path)


@lru_cache(maxsize=64)
def _cached(path: str, mtime: float) -> Contract:
    return load_contract_file(Path(path))


def contract_dirs() -> tuple[Path, ...]:
    """Folders searched for contracts: ``$MOULIN_CONTRACTS_DIR`` (settings field
    ``contracts_dir``), then the contracts shipped with moulin (``schemas/``)."""

    return load_settings().contract_dirs


def find_contract_file(name: str, schemas_dir: Path | None = None) -> Path:
    """The file of contract ``name``: ``<dir>/<name>.yaml`` in the first folder that has it."""
    dirs = (Path(schemas_dir),) if schemas_dir is not None else contract_dirs()
    for folder in dirs:
        path = folder / f"{name}.yaml"
        if path.exists():
            return path
    available = sorted({p.stem for folder in dirs for p in folder.glob("*.yaml")})
    raise ContractError(
        f"no contract {name!r}: no {name}.yaml in {', '.join(str(d) for d in dirs)} "
        f"(available: {', '.join(available)}); set MOULIN_CONTRACTS_DIR to your contracts folder"
    )


def load_contract(name: str, schemas_dir: Path | None = None) -> Contract:
    """The contract called ``name`` (file ``<name>.yaml`` in ``schemas_dir``, or else in
    :func:`contract_dirs`)."""
    path = find_contract_file(name, schemas_dir)
    contract = _cached(str(path), path.stat().st_mtime)
    if contract.name != name:
        raise ContractError(
            f"contract {path}: field name: {contract.name!r} differs from the file name {name!r}"
        )
    return contract


def load_all_contracts(schemas_dir: Path | None = None) -> dict[str, Contract]:
    """Every contract of ``schemas_dir`` (default: all of :func:`contract_dirs`, the
    first folder winning) by name; validates them all."""
    dirs = (Path(schemas_dir),) if schemas_dir is not None else contract_dirs()
    out: dict[str, Contract] = {}
    for folder in reversed(dirs):
        for p in sorted(folder.glob("*.yaml")):
            out[p.stem] = load_contract(p.stem, folder)
    return dict(sorted(out.items()))
