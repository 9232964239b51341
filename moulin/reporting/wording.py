"""The nouns a use case gives its report's charts (what a row is, what the positive class is)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Wording:
    """Words of a binary-classification report, e.g. ``rows="flights", positive="late"``."""

    rows: str = "rows"
    positive: str = "positive"
    negative: str = "negative"


GENERIC = Wording()
