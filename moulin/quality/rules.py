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
from pyspark.sql import types as T

from moulin.contracts import Contract
from moulin.errors import DataError
from moulin.expectations import Expectation, expectation_type
from moulin.ingest.formats import formats_text

CORRUPT = "_corrupt_record"
#: why a record of a record-format reader (mbox, idx) is corrupt, when it says
CORRUPT_REASON = "_corrupt_reason"
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


def spark_charset(encoding: str, fmt: str = "csv", header: bool = True) -> str:
    """The name Spark's CSV and JSON readers accept for ``encoding`` (``latin-1`` ->
    ``iso-8859-1``, see :func:`moulin.ingest.formats.reader_charset`); an encoding
    Spark cannot read is a :class:`QualityError`."""
    from moulin.ingest.formats import UnreadableEncodingError, reader_charset

    try:
        return reader_charset(encoding, fmt, header)
    except UnreadableEncodingError as exc:
        raise QualityError(f"{exc}; set file.encoding in the source spec") from None


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
    """Raw files of format ``fmt`` (csv, jsonl, parquet) as string columns named as
    the contract's, plus ``_corrupt_record`` (malformed records; csv and jsonl),
    ``_source_file`` and ``ds``.  CSV records may span lines (quoted newlines);
    blank lines are not records; see :func:`read_csv_columns` for
    ``file_columns`` (the column order of each CSV file, by uri)."""
    strings = [T.StructField(c, T.StringType()) for c in contract.column_names]
    schema = T.StructType([*strings, T.StructField(CORRUPT, T.StringType())])
    if fmt == "csv":
        df = read_csv_columns(spark, uris, contract.column_names, encoding, delimiter, header, file_columns)
    elif fmt == "jsonl":
        df = spark.read.json(
            uris,
            schema=schema,
            encoding=spark_charset(encoding, "jsonl"),
            mode="PERMISSIVE",
            columnNameOfCorruptRecord=CORRUPT,
        )
    elif fmt == "mbox":
        df = _read_mbox(spark, uris, contract)
    elif fmt == "idx":
        df = _read_idx(spark, uris, contract)
    elif fmt == "parquet":
        df = spark.read.parquet(*uris)
        missing = [c for c in contract.column_names if c not in df.columns]
        extra = [c for c in df.columns if c not in contract.column_names]
        if missing or extra:
            raise QualityError(
                f"Parquet files {uris[:3]}: columns do not match contract {contract.name} ({contract.path}): "
                f"missing {missing}, unexpected {extra}"
            )
        df = df.select(*[F.col(c).cast("string").alias(c) for c in contract.column_names])
    else:
        raise QualityError(f"unknown raw format {fmt!r}: {formats_text()}")
    source = F.col("_source_file") if fmt in ("csv", "mbox", "idx") else F.col("_metadata.file_path")
    return df.select(
        *[c for c in df.columns if c != "_source_file"], source.alias("_source_file"), F.lit(ds).alias("ds")
    )


def read_csv_columns(
    spark: SparkSession,
    uris: list[str],
    names: list[str],
    encoding: str = "utf-8",
    delimiter: str = ",",
    header: bool = True,
    file_columns: dict[str, list[str]] | None = None,
) -> DataFrame:
    """CSV files as the string columns ``names`` (in that order), ``_corrupt_record`` and
    ``_source_file``, with each value exactly as Python's ``csv`` module reads it.

    Columns are taken by position, in the order ``file_columns[uri]`` gives for a
    file (its header's, when the spec maps columns by name) or else ``names``.
    Records end at ``\n``: Spark's reader, left to detect the line end, turns a
    ``\r\n`` inside a quoted field into ``\n``; with ``\n`` it keeps the field's
    bytes and leaves the ``\r`` of a CRLF record end on the record's last value
    when unquoted, which is removed here (Python's reader never puts a ``\r``
    at the end of an unquoted value).  A quoted last value that itself ends with
    ``\r`` loses that ``\r`` too: the one case this does not keep.
    """
    orders: dict[tuple[str, ...], list[str]] = {}
    for uri in uris:
        orders.setdefault(tuple((file_columns or {}).get(uri) or names), []).append(uri)
    frames = []
    for order, group in orders.items():
        fields = [T.StructField(c, T.StringType()) for c in order]
        df = spark.read.csv(
            group,
            header=header,
            schema=T.StructType([*fields, T.StructField(CORRUPT, T.StringType())]),
            sep=delimiter,
            encoding=spark_charset(encoding, "csv", header),
            escape='"',  # RFC 4180: a quote inside a quoted field is doubled (as Python's csv reads it)
            multiLine=True,
            lineSep="\n",
            mode="PERMISSIVE",
            columnNameOfCorruptRecord=CORRUPT,
            enforceSchema=True,
        )
        last = F.col(order[-1])
        cols = {c: F.col(c) for c in order}
        cols[order[-1]] = F.when(
            last.endswith("\r"), F.expr(f"substring(`{order[-1]}`, 1, length(`{order[-1]}`) - 1)")
        ).otherwise(last)
        frames.append(
            df.select(
                *[cols[c].alias(c) for c in names],
                F.col(CORRUPT),
                F.col("_metadata.file_path").alias("_source_file"),
            )
        )
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out


def _read_mbox(spark: SparkSession, uris: list[str], contract: Contract) -> DataFrame:
    """Mailbox files as one record per message (:mod:`moulin.ingest.mail`); a message
    that does not parse keeps only ``_corrupt_record`` (its reason)."""
    from moulin.ingest.mail import MAIL_FIELDS

    unknown = [c for c in contract.column_names if c not in MAIL_FIELDS]
    if unknown:
        raise QualityError(
            f"contract {contract.name} ({contract.path}) names column(s) {unknown} that mail records do not "
            f"have: an mbox source's columns are among {', '.join(MAIL_FIELDS)}"
        )
    names = contract.column_names
    schema = T.StructType(
        [
            *(T.StructField(c, T.StringType()) for c in names),
            T.StructField(CORRUPT, T.StringType()),
            T.StructField(CORRUPT_REASON, T.StringType()),
            T.StructField("_source_file", T.StringType()),
        ]
    )

    def explode(batches):
        import pandas as pd

        from moulin.ingest.mail import parse_message, split_mbox

        for pdf in batches:
            rows = []
            for path, content in zip(pdf["path"], pdf["content"], strict=True):
                for i, raw in enumerate(split_mbox(bytes(content))):
                    try:
                        fields = parse_message(raw)
                        rows.append(
                            {
                                **{c: fields.get(c) for c in names},
                                CORRUPT: None,
                                CORRUPT_REASON: None,
                                "_source_file": path,
                            }
                        )
                    except Exception as exc:  # noqa: BLE001 - any parse failure is the record's reason
                        reason = f"message {i + 1}: {exc}"[:500]
                        rows.append({CORRUPT: reason, CORRUPT_REASON: reason, "_source_file": path})
            yield pd.DataFrame(rows, columns=[f.name for f in schema.fields])

    files = spark.read.format("binaryFile").load(uris).select("path", "content")
    return files.mapInPandas(explode, schema)


def _read_idx(spark: SparkSession, uris: list[str], contract: Contract) -> DataFrame:
    """IDX image files as one record per image (:mod:`moulin.ingest.idx`), labelled
    from the labels file of the same prefix; an image cut short or without a label
    keeps only ``_corrupt_record`` (its reason)."""
    from moulin.ingest.idx import IDX_FIELDS

    unknown = [c for c in contract.column_names if c not in IDX_FIELDS]
    if unknown:
        raise QualityError(
            f"contract {contract.name} ({contract.path}) names column(s) {unknown} that image records do not "
            f"have: an idx source's columns are among {', '.join(IDX_FIELDS)}"
        )
    names = contract.column_names
    fields = [*names, CORRUPT, CORRUPT_REASON, "_source_file"]
    schema = T.StructType([T.StructField(c, T.StringType()) for c in fields])

    def pair(pdf):
        import pandas as pd

        from moulin.ingest.idx import idx_records

        roles = dict(zip(pdf["role"], zip(pdf["path"], pdf["content"], strict=True), strict=True))
        if "images" not in roles:
            path = roles["labels"][0]
            return pd.DataFrame(
                [{CORRUPT: f"{path}: labels without their images file", CORRUPT_REASON: f"{path}: labels without "
                  "their images file", "_source_file": path}],
                columns=fields,
            )  # fmt: skip
        images_path, images = roles["images"]
        labels_path, labels = roles.get("labels", (None, None))
        rows = []
        for record in idx_records(
            bytes(images), bytes(labels) if labels is not None else None, images_path, labels_path
        ):
            if CORRUPT in record:
                record = {CORRUPT: record[CORRUPT], CORRUPT_REASON: record[CORRUPT]}
            rows.append({**{c: record.get(c) for c in fields}, "_source_file": images_path})
        return pd.DataFrame(rows, columns=fields)

    from moulin.ingest.idx import IdxFormatError, file_role

    paths = [r["path"] for r in spark.read.format("binaryFile").load(uris).select("path").collect()]
    try:
        prefixes = {p: file_role(p) for p in paths}
    except IdxFormatError as exc:
        raise QualityError(str(exc)) from None
    roles = spark.createDataFrame(
        [(p, prefix, role) for p, (prefix, role) in prefixes.items()],
        "path string, prefix string, role string",
    )
    files = spark.read.format("binaryFile").load(uris).select("path", "content").join(roles, "path")
    return files.groupBy("prefix").applyInPandas(pair, schema)


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

    Null markers of the source (e.g. ``NA``, empty) become nulls; the raw
    strings move into the struct column ``_raw``; ``_unparsed`` lists the
    columns whose non-null raw value did not parse.  Other columns of ``raw``
    (lineage, ``_corrupt_record``) are kept.
    """
    if null_values is not None:
        nulls = list(null_values)
    else:
        nulls = list(contract.source.null_values) if contract.source else ["NA", ""]
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
