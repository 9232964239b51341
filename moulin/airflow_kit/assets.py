"""The Airflow Asset of a table, named from its contract: ``moulin://<table>``, the table's
path under the warehouse.  Every DAG that writes or waits on a table names it this way,
so a producer's outlet and a consumer's schedule cannot disagree."""

from __future__ import annotations

from typing import TYPE_CHECKING

from moulin.contracts import load_contract

if TYPE_CHECKING:
    from airflow.sdk import Asset

#: The scheme of moulin's Asset URIs.
SCHEME = "moulin://"


def table_asset_uri(contract: str) -> str:
    """The Asset URI of the table of contract ``contract``."""

    return f"{SCHEME}{load_contract(contract).table}"


def table_asset(contract: str) -> Asset:
    """The Asset of the table of contract ``contract``."""
    from airflow.sdk import Asset

    return Asset(table_asset_uri(contract))


def table_path_asset(table: str) -> Asset:
    """The Asset of a table that has no contract (its schema lives with the code writing it,
    as the model leaderboard's), by its path under the warehouse."""
    from airflow.sdk import Asset

    return Asset(f"{SCHEME}{table}")
