"""The raw file formats as a registry: every format counts and reads a small real file
(the landing's count equals the rows Spark reads), unknown names are refused naming the
known ones, and a format defined in one new module of the package is found, counted and
accepted by source specs and contracts without editing any other file."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from moulin.contracts import parse_contract
from moulin.ingest import formats
from moulin.ingest.counting import row_counter
from moulin.ingest.formats import FormatOptions, UnknownFormatError, raw_format
from moulin.ingest.idx import write_idx
from moulin.ingest.mail import write_mbox
from moulin.quality.rules import CORRUPT, QualityError, read_raw
from moulin.sources.spec import SourceSpecError, parse_spec

MESSAGE = (
    b"From alice@example.org Mon Sep  2 10:00:00 2002\n"
    b'From: "Alice A." <alice@example.org>\nTo: bob@example.net\n'
    b"Subject: =?iso-8859-1?q?caf=E9?=\nDate: Mon, 2 Sep 2002 10:00:00 +0200\n\n"
    b"Hello\nFrom the start of a line\n"
)


def _parquet(rows: list[dict[str, str]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), out)
    return out.getvalue()


#: format -> (files by name, contract columns, the records' values of the first column, sorted)
SAMPLES: dict[str, Callable[[], tuple[dict[str, bytes], list[str], list[str]]]] = {
    "csv": lambda: ({"d.csv": b'id,code\n1,A\n\n2,"B\nx"\n3,C\n'}, ["id", "code"], ["1", "2", "3"]),
    "jsonl": lambda: (
        {"d.jsonl": b'{"id": "1", "code": "A"}\n\n{"id": "2", "code": "B"}\n'},
        ["id", "code"],
        ["1", "2"],
    ),
    "parquet": lambda: (
        {"d.parquet": _parquet([{"id": "1", "code": "A"}, {"id": "2", "code": None}])},
        ["id", "code"],
        ["1", "2"],
    ),
    "mbox": lambda: (
        {"d.mbox": write_mbox([MESSAGE, MESSAGE.replace(b"caf=E9", b"th=E9")])},
        ["subject", "from_address"],
        ["café", "thé"],
    ),
    "idx": lambda: (
        {
            "t-images-idx3-ubyte.gz": write_idx(bytes(range(3 * 4)), (3, 2, 2)),
            "t-labels-idx1-ubyte.gz": write_idx(bytes([7, 8, 9]), (3,)),
        },
        ["label", "item"],
        ["7", "8", "9"],
    ),
}


def _contract(columns: list[str], fmt: str):
    return parse_contract(
        {
            "name": "bronze_sample",
            "layer": "bronze",
            "table": "bronze/sample",
            "columns": [{"name": c, "type": "string", "nullable": True} for c in columns],
            "quarantine_threshold": 0.5,
        },
        Path("schemas/bronze_sample.yaml"),
    )


def test_every_registered_format_has_a_sample_here() -> None:
    assert set(formats.discover()) == set(SAMPLES) == set(formats.RAW_FORMATS)


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_each_format_counts_and_reads_a_real_file_alike(spark, tmp_path, fmt) -> None:
    files, columns, first = SAMPLES[fmt]()
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    counted = sum(row_counter(fmt)(data) for data in files.values())
    assert counted == len(first)
    uris = [(tmp_path / name).resolve().as_uri() for name in files]
    df = read_raw(spark, uris, _contract(columns, fmt), "2024-01-01", fmt)
    assert df.columns[: len(columns)] == columns and df.columns[-2:] == ["_source_file", "ds"]
    rows = df.collect()
    assert len(rows) == counted
    assert not [r for r in rows if CORRUPT in df.columns and r[CORRUPT] is not None]
    assert sorted(r[columns[0]] for r in rows) == first
    assert {r["ds"] for r in rows} == {"2024-01-01"}
    assert all(r["_source_file"].rsplit("/", 1)[-1] in files for r in rows)


def test_formats_declare_what_the_landing_and_the_gate_decide() -> None:
    csv, jsonl, parquet, mbox, idx = (raw_format(n) for n in ("csv", "jsonl", "parquet", "mbox", "idx"))
    assert [f.name for f in formats.discover().values() if f.line_format] == ["csv", "jsonl", "mbox"]
    assert [f.name for f in formats.discover().values() if f.text_encoded] == ["csv", "jsonl"]
    assert csv.has_header(FormatOptions()) and not csv.has_header(FormatOptions(header=False))
    assert jsonl.empty_file_valid and not parquet.decoded_at_landing
    assert (mbox.erased_as, parquet.erased_as, idx.erased_as) == ("mailbox", "parquet", "text")
    assert formats.format_of_suffix(".json") == "jsonl" and formats.format_of_suffix(".txt") == "csv"
    assert row_counter("csv", delimiter=";", header=False)(b"a;b\n1;2\n") == 2


def test_unknown_formats_are_refused_naming_the_known_ones(tmp_path) -> None:
    with pytest.raises(
        UnknownFormatError, match=r"unknown raw format 'avro': use csv, idx, jsonl, mbox or parquet"
    ):
        raw_format("avro")
    with pytest.raises(SourceSpecError, match=r"field file.format: unknown raw format 'avro': use csv,"):
        parse_spec({"name": "s", "kind": "file", "contract": "bronze_s", "file": {"path": "x", "format": "avro"}},
                   tmp_path / "s.yaml")  # fmt: skip


def test_an_encoding_the_readers_cannot_read_is_refused_by_the_spec_and_the_gate(spark, tmp_path) -> None:
    spec = {"name": "s", "kind": "file", "contract": "bronze_s", "file": {"path": "x", "format": "jsonl"}}
    spec["file"]["encoding"] = "utf-8-sig"
    with pytest.raises(
        SourceSpecError, match=r"file.encoding: encoding 'utf-8-sig' .* CSV files with a header"
    ):
        parse_spec(spec, tmp_path / "s.yaml")
    spec["file"].update(format="mbox", encoding="no-such-codec")
    with pytest.raises(SourceSpecError, match=r"file.encoding: unknown encoding 'no-such-codec'"):
        parse_spec(spec, tmp_path / "s.yaml")
    (tmp_path / "d.csv").write_bytes(b"id\n1\n")
    with pytest.raises(QualityError, match=r"cannot read 'cp1252'.*; set file.encoding in the source spec"):
        read_raw(
            spark, [(tmp_path / "d.csv").as_uri()], _contract(["id"], "csv"), "2024-01-01", "csv", "cp1252"
        )


PIPES = '''
"""Pipe-separated text without a header: a raw format in one module."""

from functools import partial

from moulin.ingest.formats import FormatOptions, RawFileFormat


def count_pipes(data: bytes, encoding: str = "utf-8") -> int:
    return sum(1 for line in data.decode(encoding).splitlines() if line.strip())


class Pipes(RawFileFormat):
    name = "pipes"
    line_format = True

    def counter(self, options: FormatOptions):
        return partial(count_pipes, encoding=options.encoding)
'''


@pytest.fixture
def extra_format(tmp_path, monkeypatch) -> str:
    """A format module in a folder added to the package's path (as a file dropped into it)."""
    folder = tmp_path / "more_formats"
    folder.mkdir()
    (folder / "pipes.py").write_text(PIPES)
    monkeypatch.setattr(formats, "__path__", [*formats.__path__, str(folder)])
    monkeypatch.setattr(formats, "_REGISTRY", dict(formats._REGISTRY))
    yield "pipes"
    sys.modules.pop(f"{formats.__name__}.pipes", None)


def test_a_new_format_is_one_module(extra_format, tmp_path) -> None:
    assert extra_format not in formats.RAW_FORMATS  # not known before its module is found
    assert raw_format(extra_format).line_format
    assert formats.formats_text() == "csv, idx, jsonl, mbox, parquet or pipes"
    assert row_counter(extra_format)(b"a|b\n\nc|d\n") == 2
    spec = parse_spec(
        {"name": "p", "kind": "file", "contract": "bronze_p", "file": {"path": "x", "format": "pipes"}},
        tmp_path / "p.yaml",
    )
    assert spec.raw_format == "pipes" and spec.file_format is raw_format("pipes")
    with pytest.raises(SourceSpecError, match=r"cannot be drafted from a pipes file"):
        from moulin.sources.infer import read_sample

        read_sample(tmp_path / "p.yaml", "pipes")
    assert set(formats.discover()) == {*formats.RAW_FORMATS, "pipes"}


@pytest.mark.parametrize(("fmt", "known"), [("mbox", "message_id"), ("idx", "label")])
def test_a_record_format_refuses_a_column_its_records_lack(fmt: str, known: str) -> None:
    """The reader of a record format names the contract, the column and the ones it has."""
    with pytest.raises(formats.RawFileError) as refused:
        formats.record_schema(_contract([known, "colour"], fmt), _fields(fmt), "its", fmt)
    said = str(refused.value)
    assert "bronze_sample" in said and "['colour']" in said and known in said
    schema = formats.record_schema(_contract([known], fmt), _fields(fmt), "its", fmt)
    assert schema.fieldNames() == [known, CORRUPT, "_corrupt_reason", "_source_file"]


def _fields(fmt: str) -> tuple[str, ...]:
    from moulin.ingest.idx import IDX_FIELDS
    from moulin.ingest.mail import MAIL_FIELDS

    return {"mbox": MAIL_FIELDS, "idx": IDX_FIELDS}[fmt]
