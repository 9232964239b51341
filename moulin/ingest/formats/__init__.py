"""The raw file formats moulin reads, one class per format, found by scanning this package.

Each module of this package defines a :class:`RawFileFormat` subclass naming one
format (``csv``, ``jsonl`` …): how the landing counts a file's records, how the
quality gate's Spark reader reads files into string columns, the options of a
source spec it takes, and what the gate, the privacy scan and erasure need to
know of it.  A new raw format is one module here: :func:`discover` imports every
module on the package's path, and a subclass that sets :attr:`RawFileFormat.name`
registers itself.  Source specs, contracts, the landing and the gate look a
format up with :func:`raw_format`; an unknown name is an :class:`UnknownFormatError`
naming it and the known ones.
"""

from __future__ import annotations

import codecs
import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from moulin.errors import DataError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

#: The column of a record its reader could not read (its text, or why).
CORRUPT = "_corrupt_record"
#: why a record of a record-format reader (mbox, idx) is corrupt, when it says
CORRUPT_REASON = "_corrupt_reason"

#: A counter of the records of one raw file's bytes.
RowCounter = Callable[[bytes], int]

#: How erasure finds and removes a subject in a raw file: searched and masked as text
#: in the declared encoding, rewritten message by message, or rewritten as Parquet.
ErasedAs = Literal["text", "mailbox", "parquet"]


class UnknownFormatError(DataError, ValueError):
    """A raw format no module of :mod:`moulin.ingest.formats` defines."""


class UnreadableEncodingError(ValueError):
    """A text encoding Python does not know, or Spark's readers cannot read."""


class RawFileError(DataError):
    """A raw file, or the columns asked of it, that its format's reader cannot read."""


class RecordContract(Protocol):
    """What a format's reader needs of a contract: its name, file and column names."""

    @property
    def name(self) -> str: ...

    @property
    def path(self) -> Path: ...

    @property
    def column_names(self) -> list[str]: ...


@dataclass(frozen=True)
class FormatOptions:
    """How a source's raw files are written (its spec's ``file`` options a format reads)."""

    encoding: str = "utf-8"
    delimiter: str = ","
    header: bool = True


@dataclass(frozen=True)
class RawFiles:
    """What a format's Spark reader reads: the files ``uris`` of one drop, the columns of
    ``contract``, the spec's file ``options`` and, for CSV, each file's column order by
    uri (``file_columns``; see :func:`moulin.ingest.formats.csv.read_csv_columns`)."""

    uris: list[str]
    contract: RecordContract
    options: FormatOptions = FormatOptions()
    file_columns: dict[str, list[str]] | None = None


def record_schema(contract: RecordContract, fields: Sequence[str], records: str, fmt: str) -> StructType:
    """The string schema a record format's reader yields for ``contract``: its columns,
    :data:`CORRUPT`, :data:`CORRUPT_REASON` and ``_source_file``; raises
    :class:`RawFileError` when the contract names a column that is not among ``fields``
    (what a ``records`` record of format ``fmt`` has)."""
    from pyspark.sql import types as T

    unknown = [c for c in contract.column_names if c not in fields]
    if unknown:
        raise RawFileError(
            f"contract {contract.name} ({contract.path}) names column(s) {unknown} that {records} records do not "
            f"have: an {fmt} source's columns are among {', '.join(fields)}"
        )
    names = [*contract.column_names, CORRUPT, CORRUPT_REASON, "_source_file"]
    return T.StructType([T.StructField(c, T.StringType()) for c in names])


_REGISTRY: dict[str, RawFileFormat] = {}


class RawFileFormat:
    """One raw file format: subclasses set :attr:`name` (which registers them) and
    implement :meth:`counter` and :meth:`read`; the other members have defaults
    for a binary format that declares no text encoding."""

    #: The name source specs give (``file.format``).
    name: ClassVar[str]
    #: Text lines, whose last line must end with a line end (a cut file shows as a last
    #: line without one); binary formats detect cuts themselves.
    line_format: ClassVar[bool] = False
    #: Values are text decoded by the spec's ``file.encoding`` by Spark's readers (bytes that
    #: do not decode become U+FFFD and the row is quarantined); the privacy scan reads the
    #: files in that encoding.  False for binary formats and for mail (charsets per part).
    text_encoded: ClassVar[bool] = False
    #: The landing checks that a file decodes as ``file.encoding`` (a warning in its manifest).
    decoded_at_landing: ClassVar[bool] = True
    #: A file of 0 bytes is a drop without records, not a cut one.
    empty_file_valid: ClassVar[bool] = False
    #: The ``file`` options of a source spec this format uses (others are dropped from drafts).
    options: ClassVar[tuple[str, ...]] = ("encoding",)
    #: File name suffixes ``moulin source infer`` takes for this format.
    suffixes: ClassVar[tuple[str, ...]] = ()
    #: How erasure finds and removes a subject in a file of this format.
    erased_as: ClassVar[ErasedAs] = "text"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if name is None:
            return
        if name in _REGISTRY and type(_REGISTRY[name]) is not cls:
            raise TypeError(
                f"raw format {name!r} is defined twice: {type(_REGISTRY[name]).__module__} and {cls.__module__}"
            )
        _REGISTRY[name] = cls()

    def __repr__(self) -> str:
        return f"<raw format {self.name}>"

    def counter(self, options: FormatOptions) -> RowCounter:
        """The counter of a file's records, independent of Spark's reader."""
        raise NotImplementedError

    def read(self, spark: SparkSession, files: RawFiles) -> DataFrame:
        """The ``files`` as the string columns of their contract, :data:`CORRUPT` (and, for
        record formats, :data:`CORRUPT_REASON`) and ``_source_file``; raises
        :class:`RawFileError` (or :class:`UnreadableEncodingError`) for what cannot be read."""
        raise NotImplementedError

    def has_header(self, options: FormatOptions) -> bool:
        """Whether a file starts with a header line naming its columns."""
        return False

    def check_encoding(self, encoding: str, header: bool = True) -> None:
        """Raises :class:`UnreadableEncodingError` unless files of this format can be read
        in ``encoding`` (for binary formats: unless Python knows it)."""
        try:
            "".encode(encoding)
        except LookupError:
            raise UnreadableEncodingError(f"unknown encoding {encoding!r}") from None

    def sample(
        self, path: Path, options: FormatOptions, limit: int | None = None
    ) -> tuple[list[str], list[dict[str, Any]]]:
        """``(columns, rows)`` of the records of a sample file (the first ``limit``), values as
        text (None: missing), for ``moulin source infer``; raises :class:`RawFileError` for
        a format that cannot be drafted from a sample."""
        raise RawFileError(f"{path}: a contract cannot be drafted from a {self.name} file: write it by hand")

    @classmethod
    def drafts_from_samples(cls) -> bool:
        """Whether :meth:`sample` reads this format (``moulin source infer`` takes it)."""
        return cls.sample is not RawFileFormat.sample


def discover() -> dict[str, RawFileFormat]:
    """The registered formats by name, after importing every module on this package's path."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return dict(sorted(_REGISTRY.items()))


def format_names() -> tuple[str, ...]:
    """The names of the known raw formats, sorted."""
    return tuple(discover())


def formats_text() -> str:
    """``csv, idx, jsonl, mbox or parquet`` for error messages."""
    names = format_names()
    return ", ".join(names[:-1]) + f" or {names[-1]}"


def raw_format(name: str) -> RawFileFormat:
    """The format named ``name``; raises :class:`UnknownFormatError` naming the known ones."""
    known = discover()
    if name not in known:
        raise UnknownFormatError(f"unknown raw format {name!r}: use {formats_text()}")
    return known[name]


def format_of_suffix(suffix: str, default: str = "csv") -> str:
    """The format whose files end with ``suffix`` (``.json`` -> ``jsonl``), else ``default``."""
    return next((f.name for f in discover().values() if suffix in f.suffixes), default)


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


def reader_charset(encoding: str, fmt: str, after_mark: bool = False) -> str:
    """The name Spark's CSV and JSON readers use for ``encoding`` (``latin-1`` ->
    ``iso-8859-1``) in files of format ``fmt``; ``after_mark``: the reader skips the
    first line, so UTF-8 after a byte-order mark is read.  Raises
    :class:`UnreadableEncodingError` saying which to use."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise UnreadableEncodingError(f"unknown text encoding {encoding!r}") from None
    if name == "utf-8-sig" and not after_mark:
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


class SparkTextFormat(RawFileFormat):
    """A format of text lines that Spark's own readers read, in a declared encoding."""

    line_format = True
    text_encoded = True

    def charset(self, options: FormatOptions) -> str:
        """Spark's name of ``options.encoding`` (:func:`reader_charset`)."""
        return reader_charset(options.encoding, self.name, after_mark=self.has_header(options))

    def check_encoding(self, encoding: str, header: bool = True) -> None:
        self.charset(FormatOptions(encoding=encoding, header=header))


RAW_FORMATS: tuple[str, ...] = format_names()
#: A raw format's name (the formats defined in this package when it was imported).
RawFormat = Literal[RAW_FORMATS]  # type: ignore[valid-type]
