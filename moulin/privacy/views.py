"""Analysts' views of personal-data tables: the same rows with only the columns an
analyst may see — columns holding no personal data, keyed pseudonyms and masked
text; personal columns kept in clear (``treatment: keep``) are left out.

A view is a Delta table ``views/<layer>_<name>`` (readable by the ``analysts``
group, see :mod:`moulin.privacy.access`) rebuilt from the latest version of its
table; an erasure rebuilds the views and vacuums them, so they never keep an
erased subject.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moulin.contracts import Contract, load_all_contracts
from moulin.lineage import run_key
from moulin.settings import Settings

SHOWN = ("pseudonymise", "pseudonymised", "mask", "masked")


def analyst_columns(contract: Contract) -> list[str]:
    """The columns of ``contract`` an analyst's view shows (lineage columns included)."""
    personal = contract.personal_columns
    hidden = {n for n, p in personal.items() if p.treatment not in SHOWN}
    hidden |= {n for n in contract.personal_data if n not in personal}  # declared but not classified
    names = [
        *contract.column_names,
        *(["ds"] if "ds" in contract.partition_by and "ds" not in contract.column_names else []),
    ]
    return [n for n in names if n not in hidden]


def view_uri(settings: Settings, contract: Contract) -> str:
    """Where the analysts' view of ``contract``'s table lives."""
    return settings.table_uri("views", contract.table.replace("/", "_"))


def view_contracts() -> list[Contract]:
    """The contracts whose tables get an analysts' view."""
    return [c for _, c in sorted(load_all_contracts().items()) if c.personal_columns and "<" not in c.table]


def build_views(
    spark, settings: Settings, say: Callable[[str], None] = lambda line: None
) -> list[dict[str, Any]]:
    """Rebuild every analysts' view from its table's latest version (idempotent per version).

    Each view is written pinned to the view version read before its table was read
    (``expected_version``): a rebuild that lost a race to another one (e.g. the rebuild
    after an erasure, from a newer version of the table) reads the table again instead
    of putting older rows back."""
    from moulin.delta import DeltaTableStore, retry_on_conflict

    store = DeltaTableStore(spark)
    out = []
    for contract in view_contracts():
        uri = settings.table_uri(contract.table)
        if not store.exists(uri):
            continue
        target = view_uri(settings, contract)
        out.append(
            retry_on_conflict(
                target,
                "rebuild of the analysts' view",
                lambda attempt, c=contract, u=uri, t=target: _build_view(store, c, u, t, say),
            )
        )
    return out


def _build_view(
    store, contract: Contract, uri: str, target: str, say: Callable[[str], None]
) -> dict[str, Any]:
    """One rebuild of the view ``target`` of ``contract``'s table ``uri`` from its latest version."""
    from moulin.delta import AppTransaction, TableProperties

    view_version = store.version(target) if store.exists(target) else -1
    version = store.version(uri)
    columns = analyst_columns(contract)
    df = store.read(uri, version=version).select(*columns)
    shown = [n for n in columns if n in contract.personal_columns]
    res = store.write(
        df,
        target,
        mode="overwrite",
        partition_by=[c for c in contract.partition_by if c in columns] or None,
        schema_mode="overwrite",
        transaction=AppTransaction(f"moulin.privacy.view.{run_key(uri, version, columns)}", 1),
        properties=TableProperties(
            description=f"analysts' view of {contract.name}: pseudonyms and masked text only",
            owner=contract.owner or "moulin-platform",
            personal_data=tuple(shown),
        ),
        expected_version=view_version,
    )
    hidden = [n for n in contract.column_names if n not in columns]
    say(f"view {target}: from {uri} v{version}, v{res.version}; hidden: {', '.join(hidden) or 'none'}")
    return {"view": target, "table": uri, "version": res.version, "source_version": version, "hidden": hidden}


def refresh_views_after_erasure(spark, settings: Settings, say: Callable[[str], None]) -> int:
    """Rebuild the existing views and vacuum their old files; returns files vacuumed."""
    from moulin.delta import DeltaTableStore

    store = DeltaTableStore(spark)
    existing = [view_uri(settings, c) for c in view_contracts() if store.exists(view_uri(settings, c))]
    if not existing:
        return 0
    build_views(spark, settings, say)
    return sum(len(store.vacuum(uri, retention_hours=0, force=True)) for uri in existing)
