"""What every moulin DAG shares: the retry policies and the ``default_args`` that attach
them, with the data-error rule and the failure alert, to each task; the Asset of a table,
named from its contract.

A DAG file writes ``default_args=default_args(TRANSIENT)`` (or another policy of
:mod:`moulin.airflow_kit.retries`), never retries, delays or callbacks by hand.
Importing this package is cheap (DAG files import it): Airflow is imported when
``default_args`` is called.
"""

from moulin.airflow_kit.assets import table_asset, table_asset_uri, table_path_asset
from moulin.airflow_kit.defaults import default_args
from moulin.airflow_kit.retries import OPERATOR, PIPELINE, TRANSIENT, RetryPolicy, data_errors_fail_at_once

__all__ = [
    "OPERATOR",
    "PIPELINE",
    "TRANSIENT",
    "RetryPolicy",
    "data_errors_fail_at_once",
    "default_args",
    "table_asset",
    "table_asset_uri",
    "table_path_asset",
]
