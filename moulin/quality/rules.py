"""Row-level evaluation of a contract: typed parsing and failed-expectation names per row.

Raw CSV is read as strings (:func:`read_raw_csv`); :func:`parse_typed` casts each
column to its contract type while keeping the raw strings in the ``_raw``
struct, so that a value that does not parse is a failure (``parses:<column>``),
never a silent null.  :func:`evaluate` adds ``_failed`` (the names of the
failed expectations, empty for good rows) and ``_reason`` (readable text).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from moulin.contracts import Contract
from moulin.errors import DataError
from moulin.expectations import Expectation, expectation_type
from moulin.ingest.formats import (
    CORRUPT,
    CORRUPT_REASON,
    FormatOptions,
    RawFileError,
    RawFiles,
    UnknownFormatError,
    UnreadableEncodingError,
    raw_format,
)

MALFORMED = "well_formed_row"


class QualityError(DataError):
    """A raw file or a quality check does not match its contract."""


def check_header(
    header_line: str,
    contract: Contract,
    file: str,
    delimiter: str = ",",
    by_name: bool = False,
    spec_path: str = "the source spec",
) -> list[str]:
    """The CSV header's column names; raises QualityError unless they are the contract's
    columns in its order, or, with ``by_name`` (``file.columns_from_header``), in any order.

    A header with the contract's names in another order is refused: the columns
    are read by position, so loading it would put values under another column's
    name.  The message offers the producer's fix or ``file.columns_from_header``.
    """
    import csv

    row = next(csv.reader([header_line.rstrip("\r\n")], delimiter=delimiter), [])
    found = [h.strip() for h in row]
    expected = contract.column_names
    if found and found[0].startswith("\ufeff"):
        raise QualityError(
            f"{file}: the file starts with a UTF-8 byte-order mark (bytes ef bb bf) before its header "
            f"{found[0][1:]!r}: set file.encoding: utf-8-sig in {spec_path}"
        )
    if found == expected:
        return found
    if sorted(found) == sorted(expected):
        if by_name:
            return found
        moved = [c for c, e in zip(found, expected, strict=True) if c != e]
        raise QualityError(
            f"{file}: the header has the columns of contract {contract.name} ({contract.path}) in "
            f"another order: found {found}, expected {expected} (moved: {moved}). Columns are read by "
            f"position, so this file is refused rather than loaded with values under another column's "
            f"name. Either have the producer write the columns in the contract's order and land the "
            f"file again, or, if this order is the agreed one, set file.columns_from_header: true in "
            f"{spec_path} so that each column is read by its header name."
        )
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    hint = (
        f"; renamed? {list(zip(missing, extra, strict=False))}"
        if missing and len(missing) == len(extra)
        else ""
    )
    raise QualityError(
        f"{file}: header does not match contract {contract.name} ({contract.path}): "
        f"missing {missing}, unexpected {extra}{hint}; expected {expected}. Fix the file and land it "
        f"again, or change the contract if the source's columns changed."
    )


def read_raw_csv(spark: SparkSession, uris: str | list[str], contract: Contract, ds: str) -> DataFrame:
    """Raw CSV files as string columns, plus ``_corrupt_record`` (malformed lines),
    ``_source_file`` and ``ds``."""
    return read_raw(spark, uris if isinstance(uris, list) else [uris], contract, ds)


def read_raw(
    spark: SparkSession,
    uris: list[str],
    contract: Contract,
    ds: str,
    fmt: str = "csv",
    encoding: str = "utf-8",
    delimiter: str = ",",
    header: bool = True,
    file_columns: dict[str, list[str]] | None = None,
) -> DataFrame:
    """Raw files of format ``fmt`` (:mod:`moulin.ingest.formats`) as string columns named
    as the contract's, plus ``_corrupt_record`` (malformed records), ``_source_file`` and
    ``ds``; ``file_columns`` is the column order of each CSV file, by uri (see
    :func:`moulin.ingest.formats.csv.read_csv_columns`).  A file or an encoding the
    format's reader cannot read, or an unknown format, is a :class:`QualityError`."""
    try:
        files = RawFiles(uris, contract, FormatOptions(encoding, delimiter, header), file_columns)
        df = raw_format(fmt).read(spark, files)
    except UnreadableEncodingError as exc:
        raise QualityError(f"{exc}; set file.encoding in the source spec") from None
    except (RawFileError, UnknownFormatError) as exc:
        raise QualityError(str(exc)) from None
    return df.select(
        *[c for c in df.columns if c != "_source_file"], F.col("_source_file"), F.lit(ds).alias("ds")
    )


def invalid_text(contract: Contract, encoding: str, hint: str = "") -> tuple[str, Column, Column]:
    """The failure of rows holding bytes that did not decode as ``encoding`` (the reader
    turned them into U+FFFD): ``(name, condition, reason)`` for :func:`evaluate`;
    ``hint`` ends the reason (e.g. where to set the encoding)."""
    cols = [F.col("_raw").getField(c) for c in contract.column_names]
    bad = [
        F.when(c.contains("\ufffd"), F.lit(name)) for c, name in zip(cols, contract.column_names, strict=True)
    ]
    names = F.array_compact(F.array(*bad))
    return (
        f"valid_{encoding.lower().replace('-', '')}",
        F.size(names) > 0,
        F.concat(F.lit(f"bytes that are not valid {encoding} in "), F.array_join(names, ", "), F.lit(hint)),
    )


FLOATING_TYPES = ("double", "float")
#: a plain decimal number (what Python's float() and GE read alike): no NaN, Infinity, 0x or 1.5d
_DECIMAL_NUMBER = r"^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$"
_NON_FINITE = r"^\s*[+-]?(?i)(nan|inf|infinity)\s*$"


def floating_value(raw: Column, spark_type: str, allow_non_finite: bool = False) -> Column:
    """``raw`` text as a ``double`` or ``float``, null where it does not parse: only plain
    decimal numbers parse (Spark's cast would also take ``1.5d`` and ``0x1p3``), and
    NaN, Infinity and numbers beyond the type's range (``1e400``) only with
    ``allow_non_finite``."""
    number = raw.try_cast(spark_type)
    if allow_non_finite:
        return F.when(raw.rlike(_DECIMAL_NUMBER) | raw.rlike(_NON_FINITE), number)
    finite = ~F.isnan(number) & (F.abs(number) != F.lit(float("inf")))
    return F.when(raw.rlike(_DECIMAL_NUMBER) & finite, number)


def parse_typed(raw: DataFrame, contract: Contract, null_values: tuple[str, ...] | None = None) -> DataFrame:
    """Cast the string columns of ``raw`` to the contract types.

    Null markers of the source (``null_values``, its spec's; default ``NA`` and empty) become nulls; the raw
    strings move into the struct column ``_raw``; ``_unparsed`` lists the
    columns whose non-null raw value did not parse.  Other columns of ``raw``
    (lineage, ``_corrupt_record``) are kept.
    """
    nulls = list(null_values) if null_values is not None else ["NA", ""]
    typed, unparsed = [], []
    for col in contract.columns:
        raw_col = F.col(col.name)
        is_null = raw_col.isNull() | raw_col.isin(nulls)
        if col.type == "string":
            value = raw_col
        elif col.type == "binary":  # binary arrives as base64 text (JSON lines, image records)
            value = F.try_to_binary(raw_col, F.lit("base64"))
        elif col.type in FLOATING_TYPES:
            value = floating_value(raw_col, col.type, col.allow_non_finite)
        else:
            value = raw_col.try_cast(col.type)
        typed.append(F.when(is_null, F.lit(None).cast(col.type)).otherwise(value).alias(col.name))
        if col.type != "string":
            unparsed.append(F.when(~is_null & value.isNull(), F.lit(col.name)))
    extra = [c for c in raw.columns if c not in contract.column_names]
    raw_struct = F.struct(*[F.col(c) for c in contract.column_names]).alias("_raw")
    unparsed_col = F.array_compact(F.array(*unparsed)) if unparsed else F.array().cast("array<string>")
    return raw.select(*typed, *[F.col(c) for c in extra], raw_struct, unparsed_col.alias("_unparsed"))


def failure_condition(exp: Expectation) -> Column:
    """A boolean Column that is true on rows failing ``exp`` (see :mod:`moulin.expectations`)."""
    try:
        return expectation_type(exp.type).condition(exp)
    except KeyError as exc:
        raise QualityError(str(exc)) from None


def failure_message(exp: Expectation) -> Column:
    """Readable text for a row failing ``exp`` (quotes the offending value)."""
    return expectation_type(exp.type).message(exp)


def evaluate(
    typed: DataFrame, contract: Contract, extra: list[tuple[str, Column, Column]] | None = None
) -> DataFrame:
    """Add ``_failed`` (array of failed expectation names) and ``_reason`` to ``typed``.

    Besides the contract's expectations, ``parses:<column>`` fails when a raw
    value does not parse as its type, ``well_formed_row`` when the line
    has the wrong number of fields, and each ``(name, condition, reason)`` of
    ``extra`` where its condition holds.
    """
    names: list[Column] = []
    reasons: list[Column] = []
    has_unparsed = "_unparsed" in typed.columns
    has_corrupt = CORRUPT in typed.columns
    if has_corrupt:
        names.append(F.when(F.col(CORRUPT).isNotNull(), F.array(F.lit(MALFORMED))))
        reasons.append(
            F.when(
                F.col(CORRUPT).isNotNull(),
                F.coalesce(
                    F.col(CORRUPT_REASON) if CORRUPT_REASON in typed.columns else F.lit(None).cast("string"),
                    F.lit(f"line does not have {len(contract.columns)} fields"),
                ),
            )
        )
    if has_unparsed:
        names.append(F.transform(F.col("_unparsed"), lambda c: F.concat(F.lit("parses:"), c)))
        for col in contract.columns:
            if col.type != "string":
                raw = F.col("_raw").getField(col.name)
                why = F.lit(f"' does not parse as {col.type}")
                if col.type in FLOATING_TYPES:
                    # what Spark's own cast reads but the gate refuses: NaN, Infinity, 1e400, 1.5d
                    why = F.when(
                        raw.try_cast(col.type).isNotNull(),
                        F.lit(
                            f"' does not parse as {col.type}: a finite decimal number is expected "
                            "(NaN, Infinity, numbers out of range and suffixes such as 1.5d are refused"
                            + (
                                ")"
                                if col.allow_non_finite
                                else f"; set allow_non_finite: true on the column in {contract.path} "
                                "if NaN and Infinity are valid values)"
                            )
                        ),
                    ).otherwise(why)
                reasons.append(
                    F.when(
                        F.array_contains(F.col("_unparsed"), col.name),
                        F.concat(F.lit(f"{col.name}='"), raw, why),
                    )
                )
    for exp in contract.expectations:
        cond = failure_condition(exp)
        names.append(F.when(cond, F.array(F.lit(exp.name))))
        reasons.append(F.when(cond, failure_message(exp)))
    for name, cond, reason in extra or []:
        names.append(F.when(cond, F.array(F.lit(name))))
        reasons.append(F.when(cond, reason))
    failed = F.flatten(F.array(*[F.coalesce(n, F.array().cast("array<string>")) for n in names]))
    reason = F.concat_ws("; ", F.array_compact(F.array(*reasons)))
    return typed.withColumn("_failed", failed).withColumn("_reason", reason)


def tally(evaluated: DataFrame, contract: Contract, extra_names: list[str] | None = None) -> dict:
    """Counts of an evaluated DataFrame in one pass: ``rows``, ``failed`` (rows with any
    failure) and ``failures`` (rows failing each expectation name that occurs)."""
    names = [MALFORMED] if CORRUPT in evaluated.columns else []
    if "_unparsed" in evaluated.columns:
        names += [f"parses:{c.name}" for c in contract.columns if c.type != "string"]
    names = sorted({*names, *(e.name for e in contract.expectations), *(extra_names or [])})
    totals = evaluated.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum((F.size("_failed") > 0).cast("int")).alias("failed"),
        *[F.sum(F.array_contains("_failed", n).cast("int")).alias(f"n{i}") for i, n in enumerate(names)],
    ).first()
    return {
        "rows": int(totals["rows"]),
        "failed": int(totals["failed"] or 0),
        "failures": {n: int(totals[f"n{i}"]) for i, n in enumerate(names) if totals[f"n{i}"]},
    }
