"""The model comparison section every training report shows: one row per model, the
chosen model first and highlighted, over the results' common protocol
(:class:`~moulin.training.compared_models.ComparedModels`, binary or multi-class).
A report gives the columns (:class:`Column`) and the words around the table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from moulin.reporting.html import NOT_AVAILABLE, Markup, para, section, table
from moulin.training.compared_models import ComparedModels, NamedModel

M = TypeVar("M", bound=NamedModel)

#: The section's anchor and heading.
ANCHOR, TITLE = "models", "Model comparison"


@dataclass(frozen=True)
class Column(Generic[M]):
    """One column of the table: its heading and what a model's cell shows."""

    header: str
    cell: Callable[[M], Any]
    #: Right-aligned (a figure).
    numeric: bool = True


def model_comparison_section(
    results: ComparedModels[M],
    columns: Sequence[Column[M]],
    intro: Any,
    *after: Any,
    order: Sequence[M] | None = None,
    numbered: bool = False,
) -> Markup:
    """The section: ``intro`` (a paragraph), the table of the models in ``order`` (the
    results' own, chosen model first, when not given), then ``after`` (notes, glossary,
    figures).  ``numbered`` adds a rank column ``#``.  Without models it says so."""
    models = list(results.in_order() if order is None else order)
    if not models:
        return section(ANCHOR, TITLE, para(f"Model results: {NOT_AVAILABLE}.", "na"))
    first = 1 if numbered else 0
    headers = (["#"] if numbered else []) + [c.header for c in columns]
    rows = [
        ([str(rank)] if numbered else []) + [c.cell(m) for c in columns]
        for rank, m in enumerate(models, start=1)
    ]
    numeric = ((0,) if numbered else ()) + tuple(first + i for i, c in enumerate(columns) if c.numeric)
    leaderboard = table(headers, rows, numeric=numeric, row_classes=["best"] + [None] * (len(rows) - 1))
    return section(ANCHOR, TITLE, para(intro), leaderboard, *after)
