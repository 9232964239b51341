"""Checking a curated table (silver, gold, features) against its contract before it is written.

Rows are evaluated as in the bronze gate, but nothing is quarantined: more
failed rows than the contract's threshold fail the stage.  The contract's
Great Expectations suite runs on the same cached rows and its validation
result and Data Docs page are stored under ``quality/ge/<table>/``.
"""

from __future__ import annotations

from typing import Any

from moulin.contracts import Contract
from moulin.phases import phase
from moulin.settings import Settings


def check_table(
    df, contract: Contract, settings: Settings | None = None, key: str = "latest", run_ge: bool = True
) -> dict[str, Any]:
    """Evaluate ``df`` against ``contract``; returns ``{rows, failures}`` plus the Data Docs
    URIs (``data_docs_uri``, ``ge_result_uri``) when ``settings`` is given and GE ran.

    Raises :class:`~moulin.quality.QualityGateError` when the failed share is above
    the contract's ``quarantine_threshold``.
    """
    with phase("validate"):
        return _check_table(df, contract, settings, key, run_ge)


def _check_table(df, contract: Contract, settings: Settings | None, key: str, run_ge: bool) -> dict[str, Any]:
    from moulin.quality.gate import QualityGateError
    from moulin.quality.rules import evaluate, tally

    evaluated = evaluate(df, contract).cache()
    docs: dict[str, str] = {}
    try:
        counts = tally(evaluated, contract)
        rows, failed, failures = counts["rows"], counts["failed"], counts["failures"]
        if run_ge and settings is not None:
            from moulin.quality.ge import store_validation, validate

            validation = validate(
                evaluated.select(*contract.column_names),
                contract,
                f"{contract.name}.{key}",
                rows=rows,
                local_max_rows=settings.ge_local_max_rows,
            )
            docs = store_validation(settings, contract.name, key, validation)
    finally:
        evaluated.unpersist()
    if rows and failed / rows > contract.quarantine_threshold:
        raise QualityGateError(
            f"table {contract.name}: {failed} of {rows} rows break its contract ({contract.path}): {failures}"
        )
    return {"rows": rows, "failures": failures, **docs}
