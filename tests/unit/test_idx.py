"""IDX image files: headers, the landing's count, records with reasons for cut or
unlabelled images, and the PNG data URIs of report images."""

from __future__ import annotations

import base64
import zlib

import numpy as np
import pytest

from moulin.ingest.counting import row_counter
from moulin.ingest.idx import (
    IdxFormatError,
    count_idx_records,
    file_role,
    idx_records,
    read_header,
    write_idx,
)
from moulin.reporting.images import grey_png


def _images(n: int, h: int = 4, w: int = 3) -> bytes:
    return write_idx(bytes(range(n * h * w)), (n, h, w))


def test_header_and_counts() -> None:
    images, labels = _images(5), write_idx(bytes([1, 2, 3, 4, 5]), (5,))
    assert read_header(zlib.decompress(images, 31)).dims == (5, 4, 3)
    assert count_idx_records(images) == 5 and count_idx_records(labels) == 0
    assert row_counter("idx")(images) == 5
    assert count_idx_records(write_idx(bytes(12), (1, 4, 3), compress=False)) == 1


def test_records_carry_label_size_and_pixels() -> None:
    records = list(idx_records(_images(2), write_idx(bytes([7, 9]), (2,)), "x-images", "x-labels"))
    assert [r["label"] for r in records] == ["7", "9"]
    assert records[1]["item"] == "1" and (records[1]["height"], records[1]["width"]) == ("4", "3")
    assert base64.b64decode(records[1]["pixels"]) == bytes(range(12, 24))


def test_cut_and_unlabelled_images_get_reasons() -> None:
    raw = zlib.decompress(_images(3), 31)[:-5]  # the last image loses 5 of its 12 bytes
    records = list(idx_records(raw, write_idx(bytes([1]), (1,)), "t-images", "t-labels"))
    assert len(records) == 3 and "label" in records[0]
    assert records[1] == {"_corrupt_record": "image 1: no label in t-labels"}
    assert records[2] == {"_corrupt_record": "image 2: 7 of 12 pixel bytes (t-images is cut short)"}
    extra = list(idx_records(_images(1), write_idx(bytes([1, 2]), (2,)), "t-images", "t-labels"))
    assert extra[1] == {"_corrupt_record": "label 1 of t-labels has no image in t-images"}


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x01\x00\x08\x01", "two zero bytes"),
        (b"\x00\x00\x0d\x01", "type 0x0d"),
        (b"\x00\x00\x08\x03\x00", "cut short"),
    ],
)
def test_bad_headers_name_the_file(data: bytes, message: str) -> None:
    with pytest.raises(IdxFormatError, match=message):
        read_header(data, "f.idx")


def test_file_roles_pair_images_and_labels() -> None:
    assert file_role("hdfs://nn/raw/ds=1/train-images-idx3-ubyte.gz") == ("train", "images")
    assert file_role("/d/t10k-labels-idx1-ubyte") == ("t10k", "labels")
    with pytest.raises(IdxFormatError, match="paired by prefix"):
        file_role("/d/pictures.gz")


def test_write_idx_checks_the_size() -> None:
    with pytest.raises(ValueError, match="do not fill"):
        write_idx(bytes(5), (2, 3))


def test_png_round_trip() -> None:
    image = (np.arange(28 * 28) % 256).astype(np.uint8).reshape(28, 28)
    png = grey_png(image)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    idat = png[png.index(b"IDAT") + 4 :]
    rows = zlib.decompressobj().decompress(idat)
    decoded = np.frombuffer(rows, dtype=np.uint8).reshape(28, 29)
    assert (decoded[:, 0] == 0).all() and (decoded[:, 1:] == image).all()
