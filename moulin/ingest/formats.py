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


#: Text encodings the Spark readers of csv and jsonl read, by Python codec name -> Spark's
#: name; ``utf-8-sig`` (UTF-8 after a byte-order mark) only for CSV with a header line,
#: whose first line Spark skips (the header check drops the mark).
READER_CHARSETS: dict[str, str] = {
    "iso8859-1": "iso-8859-1",
    "ascii": "us-ascii",
    "utf-8": "utf-8",
    "utf-8-sig": "utf-8",
    "utf-16": "utf-16",
    "utf-16-be": "utf-16be",
    "utf-16-le": "utf-16le",
    "utf-32": "utf-32",
}


class UnreadableEncodingError(ValueError):
    """A text encoding Python does not know, or Spark's readers cannot read."""


def reader_charset(encoding: str, fmt: str = "csv", header: bool = True) -> str:
    """The name Spark's CSV and JSON readers use for ``encoding`` (``latin-1`` ->
    ``iso-8859-1``); raises :class:`UnreadableEncodingError` saying which to use."""
    import codecs

    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise UnreadableEncodingError(f"unknown text encoding {encoding!r}") from None
    if name == "utf-8-sig" and not (fmt == "csv" and header):
        raise UnreadableEncodingError(
            f"encoding {encoding!r} (UTF-8 after a byte-order mark) is read for CSV files with a header "
            f"line only: have the producer write {fmt} without the mark and use utf-8"
        )
    if name not in READER_CHARSETS:
        shown = ", ".join(sorted({*READER_CHARSETS, "latin-1"} - {"iso8859-1"}))
        raise UnreadableEncodingError(
            f"Spark's CSV and JSON readers cannot read {encoding!r}: use one of {shown} "
            f"(or have the producer write one of them)"
        )
    return READER_CHARSETS[name]
