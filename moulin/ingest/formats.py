"""The raw file formats moulin reads: one list, used by source specs, contracts,
the landing's counters and the quality gate's readers."""

from __future__ import annotations

from typing import Literal, get_args

RawFormat = Literal["csv", "jsonl", "parquet", "mbox", "idx"]
RAW_FORMATS: tuple[str, ...] = get_args(RawFormat)


def formats_text() -> str:
    """``csv, jsonl, parquet, mbox or idx`` for error messages."""
    return ", ".join(RAW_FORMATS[:-1]) + f" or {RAW_FORMATS[-1]}"


#: Formats of text lines, whose last line must end with a line end (a cut file
#: shows as a last line without one); binary formats detect cuts themselves.
LINE_FORMATS: tuple[str, ...] = ("csv", "jsonl", "mbox")
