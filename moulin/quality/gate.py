"""The bronze quality gate: typed rows that pass the contract go to bronze, the others to quarantine.

Every run returns an accounting record (rows read, bronze, quarantined, per
failure); the counts come from one pass over the evaluated rows, so the check
that no row was lost compares them with independent counts (the landing's
manifest and the Delta commits, :mod:`moulin.sources.bronze`, which raises
:class:`AccountingError`).  The run fails (:class:`QualityGateError`, from
:meth:`GateResult.enforce`) only when the failed share exceeds the contract's
``quarantine_threshold``: callers write the quarantine first, then enforce.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from moulin.contracts import LINEAGE_COLUMNS, Contract
from moulin.phases import phase
from moulin.quality.rules import CORRUPT, QualityError, evaluate, parse_typed, tally

QUARANTINE_COLUMNS = ["table", "ds", "source_file", "row", "failed_expectations", "reason", "run_id"]


class QualityGateError(QualityError):
    """More rows failed than the contract's quarantine threshold allows."""


class AccountingError(QualityError):
    """Rows were lost or duplicated between raw, bronze and quarantine."""


@dataclass
class GateResult:
    """Bronze rows, quarantined rows and the run's accounting record."""

    bronze: DataFrame
    quarantine: DataFrame
    record: dict[str, Any] = field(default_factory=dict)
    evaluated: DataFrame | None = None
    ge_validation: Any = None  # moulin.quality.ge.GeValidation when GE ran

    @property
    def passed(self) -> bool:
        """Whether the failed share is within the contract's threshold."""
        return bool(self.record["passed"])

    def enforce(self) -> None:
        """Raise QualityGateError if the failed share exceeds the threshold."""
        rec = self.record
        if not rec["passed"]:
            top = ", ".join(
                f"{k} ({v})" for k, v in sorted(rec["failures"].items(), key=lambda kv: -kv[1])[:5]
            )
            raise QualityGateError(
                f"table {rec['table']} ds={rec['ds']}: {rec['rows_quarantined']} of {rec['rows_read']} rows "
                f"({rec['failed_share']:.2%}) failed the contract, above its quarantine_threshold "
                f"{rec['threshold']:.2%}; most failed: {top}. Inspect the quarantine table, fix the "
                f"source and land a corrected file, or raise the threshold in {rec['contract']}."
            )

    def release(self) -> None:
        """Free the cached evaluation."""
        if self.evaluated is not None:
            self.evaluated.unpersist()


def quality_gate(
    raw: DataFrame,
    contract: Contract,
    run_id: str,
    ds: str | None = None,
    run_ge: bool = True,
    null_values: tuple[str, ...] | None = None,
    threshold: float | None = None,
    extra: list[tuple[str, Column, Column]] | None = None,
    existing_keys: DataFrame | None = None,
    ge_local_max_rows: int = 0,
) -> GateResult:
    """Split raw string rows (from :func:`~moulin.quality.rules.read_raw_csv`) into bronze and quarantine.

    ``bronze`` has the contract's typed columns plus ``_source_file`` and ``ds``;
    ``quarantine`` has :data:`QUARANTINE_COLUMNS` (the row as a JSON object of
    raw strings, the failed expectation names, a reason text, ``run_id``).
    With ``run_ge`` the contract's Great Expectations suite also runs on the
    typed rows and its unexpected counts must equal the row-level ones
    (QualityError otherwise).  The record holds rows_read, rows_bronze,
    rows_quarantined, failed_share, threshold, passed, failures (per name)
    and ge (GE results).

    ``null_values`` overrides the contract's null markers, ``threshold`` its
    quarantine threshold; ``extra`` adds row failures ``(name, condition,
    reason)``; ``existing_keys`` (the table's keys already stored, with the
    ``ds`` that holds each) fails rows whose key is already in the table
    (``unique_in_table:<keys>``), so a file landed twice is caught across runs.
    GE runs on the driver with pandas up to ``ge_local_max_rows`` rows
    (:func:`moulin.quality.ge.validate`).
    """
    threshold = contract.quarantine_threshold if threshold is None else threshold
    for name, _ in LINEAGE_COLUMNS:
        if name not in raw.columns:
            raw = raw.withColumn(name, F.lit(ds if name == "ds" else "unknown"))
    ds = ds or "unknown"
    typed = parse_typed(raw, contract, null_values)
    extra = list(extra or [])
    if existing_keys is not None and contract.keys:
        keys = list(contract.keys)
        stored = existing_keys.groupBy(*keys).agg(F.min("ds").alias("_stored_ds"))
        typed = typed.join(stored, on=keys, how="left")
        extra.append(
            (
                f"unique_in_table:{'+'.join(keys)}",
                F.col("_stored_ds").isNotNull(),
                F.concat(
                    F.lit(f"key ({', '.join(keys)}) is already in {contract.table} at ds="),
                    F.col("_stored_ds"),
                ),
            )
        )
    evaluated = evaluate(typed, contract, extra).persist(StorageLevel.MEMORY_AND_DISK)
    good = F.size("_failed") == 0
    lineage = [n for n, _ in LINEAGE_COLUMNS]
    bronze = evaluated.filter(good).select(*contract.column_names, *lineage)
    raw_json = F.to_json(F.col("_raw"), {"ignoreNullFields": "false"})
    if CORRUPT in evaluated.columns:
        raw_json = F.when(
            F.col(CORRUPT).isNotNull(), F.to_json(F.struct(F.col(CORRUPT).alias("line")))
        ).otherwise(raw_json)
    quarantine = evaluated.filter(~good).select(
        F.lit(contract.name).alias("table"),
        F.col("ds"),
        F.col("_source_file").alias("source_file"),
        raw_json.alias("row"),
        F.col("_failed").alias("failed_expectations"),
        F.col("_reason").alias("reason"),
        F.lit(run_id).alias("run_id"),
    )
    with phase("validate"):
        return _validated(
            evaluated, bronze, quarantine, contract, extra, ds, run_id, threshold, run_ge, ge_local_max_rows
        )


def _suspects(evaluated: DataFrame, contract: Contract, name: str, limit: int = 5) -> str:
    """Rows where GE and the row rules may count expectation ``name`` differently: its
    column's null, NaN or infinite values, each with its file, raw value and whether
    the row rules failed it (empty text when the expectation has no single column)."""
    exp = next((e for e in contract.expectations if e.name == name), None)
    if exp is None or exp.column is None or exp.column not in contract.column_names:
        return ""
    column = contract.column(exp.column)
    col = F.col(column.name)
    odd = col.isNull()
    if column.type in ("double", "float"):
        odd = odd | F.isnan(col) | (F.abs(col) == F.lit(float("inf")))
    rows = (
        evaluated.filter(odd)
        .select(
            "_source_file",
            F.col("_raw").getField(column.name).alias("raw"),
            F.array_contains("_failed", name).alias("failed"),
        )
        .limit(limit)
        .collect()
    )
    if not rows:
        return f" (no null, NaN or infinite {column.name} among the rows)"
    shown = ", ".join(
        f"{r['_source_file']}: {column.name}={r['raw']!r} ({'failed' if r['failed'] else 'passed'} the row rule)"
        for r in rows
    )
    return f" (rows with a null, NaN or infinite {column.name}: {shown})"


def _validated(
    evaluated, bronze, quarantine, contract, extra, ds, run_id, threshold, run_ge, ge_local_max_rows
) -> GateResult:
    """The gate's counts (one pass over the cached rows) and, with ``run_ge``, GE's."""
    counts = tally(evaluated, contract, [name for name, _, _ in extra])
    rows_read, rows_quarantined, failures = counts["rows"], counts["failed"], counts["failures"]
    rows_bronze = rows_read - rows_quarantined
    share = rows_quarantined / rows_read if rows_read else 0.0
    record: dict[str, Any] = {
        "table": contract.name,
        "contract": str(contract.path),
        "ds": ds,
        "run_id": run_id,
        "rows_read": rows_read,
        "rows_bronze": rows_bronze,
        "rows_quarantined": rows_quarantined,
        "failed_share": share,
        "threshold": threshold,
        "passed": share <= threshold,
        "failures": failures,
        "ge": [],
    }
    ge_validation = None
    if run_ge:
        from moulin.quality.ge import validate

        ge_validation = validate(
            evaluated.select(*contract.column_names), contract, run_id, rows_read, ge_local_max_rows
        )
        record["ge"] = ge_validation.results
        mismatches = [
            f"{r['name']}: GE {r['unexpected_count']} vs rows {failures.get(r['name'], 0)}"
            + _suspects(evaluated, contract, r["name"])
            for r in record["ge"]
            if r["unexpected_count"] != failures.get(r["name"], 0)
        ]
        if mismatches:
            raise QualityError(
                f"table {contract.name} ds={ds}: Great Expectations and the row-level evaluation "
                f"disagree, nothing was written: {'; '.join(mismatches)}. The two count missing and "
                f"non-finite values differently; quarantine such values by the contract "
                f"({contract.path}: nullable, allow_non_finite) or report this with the rows named"
            )
    return GateResult(bronze, quarantine, record, evaluated, ge_validation)
