"""Bronze and the quality gate (C2): typed parsing, expectations, quarantine, accounting."""

from moulin.quality.gate import (
    QUARANTINE_COLUMNS,
    AccountingError,
    GateResult,
    QualityGateError,
    quality_gate,
)
from moulin.quality.rules import QualityError, check_header, evaluate, parse_typed, read_raw_csv

__all__ = [
    "QUARANTINE_COLUMNS",
    "AccountingError",
    "GateResult",
    "QualityError",
    "QualityGateError",
    "check_header",
    "evaluate",
    "parse_typed",
    "quality_gate",
    "read_raw_csv",
]
