"""The catalog of tables analysts query by name (``moulin sql``).

Every table with a contract (:func:`moulin.contracts.load_all_contracts`: the
contracts folder of the settings, then moulin's ``schemas/``) is named
``<layer>.<table>`` after its path under the warehouse (``bronze/flights`` is
``bronze.flights``, ``gold/flight_features`` is ``gold.flight_features``); every
analysts' view of a personal-data table (:func:`moulin.privacy.views.view_contracts`)
is ``views.<layer>_<table>`` (``views.bronze_mail``).  Tables whose path is a
template (``quarantine/<source>``) have no single name and are left out.

Who may query what follows the access zones of :mod:`moulin.privacy.access`:
analysts read the curated zone only, and never a table holding personal data
(:func:`moulin.privacy.access.personal_table_uris`), which they query through
its view instead.  The catalog is built from the contracts on each call and the
tables' Delta versions are read when asked: nothing is synchronised, a commit is
visible by name at once.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from moulin.contracts import LINEAGE_COLUMNS, Contract, load_all_contracts
from moulin.errors import MoulinError
from moulin.privacy.access import ZONES, Zone, personal_table_uris
from moulin.privacy.views import analyst_columns, view_contracts, view_uri
from moulin.settings import Settings, load_settings

#: The access zone whose folders analysts read (see moulin.privacy.access).
ANALYST_ZONE = "curated"
#: DuckDB's own schemas: left to DuckDB, never looked up in the catalog.
SYSTEM_SCHEMAS = frozenset({"information_schema", "pg_catalog"})


class SqlError(MoulinError):
    """A query by table name cannot run; the message names the table, column or version."""


class UnknownTableError(SqlError):
    """The query names a table the catalog does not know (the message lists close names)."""


class RefusedTableError(SqlError):
    """The query names a table analysts may not read (personal data, raw, quarantine, ops)."""


class TableNotWrittenError(SqlError):
    """The query names a table of the catalog that no stage has written yet."""


@dataclass(frozen=True)
class CatalogColumn:
    """A column as its contract describes it; ``personal`` says how it holds personal
    data (``"direct_identifier, pseudonymise"``, ``"personal"``), None when it holds none."""

    name: str
    type: str
    personal: str | None = None


@dataclass(frozen=True)
class CatalogEntry:
    """A table or analysts' view known by name; ``refusal`` says why analysts may not
    query it (None when they may), ``view`` names the analysts' view of a personal table."""

    name: str
    kind: Literal["table", "view"]
    path: str
    uri: str
    contract: str
    description: str
    owner: str
    columns: tuple[CatalogColumn, ...]
    personal: bool
    zone: str
    refusal: str | None = None
    view: str | None = None

    @property
    def queryable(self) -> bool:
        """Whether analysts may query it."""
        return self.refusal is None

    def version(self) -> int | None:
        """The table's current Delta version, read now; None when it is not written yet."""
        from moulin.delta import DeltaTableStore

        store = DeltaTableStore(None)
        return store.version(self.uri) if store.exists(self.uri) else None


def table_name(path: str) -> str:
    """The catalog name of a warehouse path: ``bronze/flights`` -> ``bronze.flights``
    (parts below the second are joined with ``_``)."""
    schema, _, rest = path.strip("/").partition("/")
    return f"{schema}.{rest.replace('/', '_')}" if rest else schema


def zone_of(folder: str) -> Zone | None:
    """The access zone of a top-level warehouse folder (None: no zone)."""
    return next((z for z in ZONES if folder in z.folders), None)


def _marking(contract: Contract, column: str) -> str | None:
    personal = contract.personal_columns.get(column)
    if personal is not None:
        return f"{personal.category}, {personal.treatment}"
    return "personal" if column in contract.personal_data else None


def _columns(contract: Contract, names: list[str] | None = None) -> tuple[CatalogColumn, ...]:
    types = {c.name: c.type for c in contract.columns}
    lineage = dict(LINEAGE_COLUMNS)
    if names is None:
        names = contract.column_names + (list(lineage) if contract.layer == "bronze" else [])
    return tuple(
        CatalogColumn(n, types.get(n, lineage.get(n, "string")), _marking(contract, n)) for n in names
    )


def _zone_refusal(name: str, zone: Zone | None) -> str:
    if zone is None:
        return f"{name} is in no access zone of the warehouse: analysts may not query it"
    return (
        f"{name} is in the {zone.name} zone ({zone.description}; group {zone.group}): "
        "analysts may not query it"
    )


class Catalog:
    """Tables and views by name, as of the contracts read when it was built."""

    def __init__(self, entries: list[CatalogEntry]) -> None:
        self.entries: dict[str, CatalogEntry] = {}
        for entry in entries:
            self.entries.setdefault(entry.name, entry)

    def names(self) -> list[str]:
        """Every name of the catalog, sorted."""
        return sorted(self.entries)

    def close_names(self, name: str) -> list[str]:
        """Queryable names that look like ``name``: the same table in another layer, a
        table whose name holds it, a typo."""
        wanted = name.lower()
        table = wanted.rpartition(".")[2]
        names = [n for n in self.names() if self.entries[n].queryable]
        tables = {n.rpartition(".")[2] for n in names}
        near = set(difflib.get_close_matches(table, tables, n=3, cutoff=0.8))
        same = [
            n
            for n in names
            if n.rpartition(".")[2] in near or (len(table) > 2 and table in n.rpartition(".")[2])
        ]
        similar = difflib.get_close_matches(wanted, names, n=3, cutoff=0.8)
        return list(dict.fromkeys(similar + same))[:5]

    def resolve(self, name: str) -> CatalogEntry:
        """The queryable entry called ``name`` (``schema.table``, any case).

        Raises :class:`RefusedTableError` for a table analysts may not read (naming
        its view when it has one) and :class:`UnknownTableError` otherwise."""
        key = name.lower()
        entry = self.entries.get(key)
        if entry is not None:
            if entry.refusal is not None:
                raise RefusedTableError(entry.refusal)
            return entry
        schema = key.partition(".")[0]
        zone = zone_of(schema)
        if zone is not None and zone.name != ANALYST_ZONE:
            raise RefusedTableError(_zone_refusal(key, zone))
        raise self.unknown(name)

    def unknown(self, name: str) -> UnknownTableError:
        """The error for a table called ``name`` that the catalog does not know."""
        close = self.close_names(name)
        hint = f"did you mean {', '.join(close)}?" if close else "tables are named <layer>.<table>"
        return UnknownTableError(f"unknown table {name}: {hint} (`moulin sql --tables` lists them)")


def _table_entry(
    settings: Settings, contract: Contract, personal: set[str], view: str | None
) -> CatalogEntry:
    name = table_name(contract.table)
    uri = settings.table_uri(contract.table)
    zone = zone_of(contract.table.partition("/")[0])
    refusal = None
    if zone is None or zone.name != ANALYST_ZONE:
        refusal = _zone_refusal(name, zone)
    elif uri in personal:
        columns = ", ".join(contract.personal_data)
        instead = (
            f"query {view} instead, its analysts' view (pseudonyms and masked text only)"
            if view
            else f"it has no analysts' view: ask its owner ({contract.owner or 'unknown'})"
        )
        refusal = f"{name} holds personal data ({columns}): analysts may not query it; {instead}"
    return CatalogEntry(
        name=name,
        kind="table",
        path=contract.table,
        uri=uri,
        contract=contract.name,
        description=contract.description,
        owner=contract.owner,
        columns=_columns(contract),
        personal=bool(contract.personal_data),
        zone=zone.name if zone else "none",
        refusal=refusal,
        view=view,
    )


def _view_entry(settings: Settings, contract: Contract) -> CatalogEntry:
    uri = view_uri(settings, contract)
    path = uri[len(settings.warehouse) + 1 :]
    columns = _columns(contract, analyst_columns(contract))
    return CatalogEntry(
        name=table_name(path),
        kind="view",
        path=path,
        uri=uri,
        contract=contract.name,
        description=f"Analysts' view of {table_name(contract.table)}: pseudonyms and masked text only. "
        + contract.description,
        owner=contract.owner,
        columns=columns,
        personal=any(c.personal for c in columns),
        zone=ANALYST_ZONE,
    )


def load_catalog(settings: Settings | None = None) -> Catalog:
    """The catalog of every contract's table and every analysts' view, under the
    warehouse of ``settings`` (default: the environment's)."""
    settings = settings or load_settings()
    contracts = [c for c in load_all_contracts().values() if "<" not in c.table]
    personal = set(personal_table_uris(settings, contracts))
    views = {c.name: _view_entry(settings, c) for c in view_contracts()}
    entries = [
        _table_entry(settings, c, personal, views[c.name].name if c.name in views else None)
        for c in contracts
    ]
    return Catalog(entries + list(views.values()))
