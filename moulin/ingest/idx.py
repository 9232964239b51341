"""Images as raw data: IDX files (the MNIST family's format), gzip-compressed or not.

An IDX file starts with two zero bytes, a type code (``0x08``: unsigned bytes)
and the number of dimensions, then one big-endian 32-bit size per dimension and
the values, row-major.  Image sets come as pairs of files sharing a prefix:
``<prefix>-images-idx3-ubyte[.gz]`` (items x height x width pixels) and
``<prefix>-labels-idx1-ubyte[.gz]`` (one label per item).

Each image becomes one record of :data:`IDX_FIELDS`, all text as every raw
reader gives: ``item`` (its index in the file), ``label``, ``height``, ``width``
and ``pixels`` (the raw bytes, base64: the raw form of a contract ``binary``
column).  An image whose bytes are cut short, or that has no label, gives a
record with only its reason.  The landing counts an images file by its header
(the items the file claims) and a labels file as zero records: labels are
fields of their images file's records, never records of their own.
"""

from __future__ import annotations

import base64
import gzip
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from moulin.errors import DataError

IDX_FIELDS: tuple[str, ...] = ("item", "label", "height", "width", "pixels")
UNSIGNED_BYTE = 0x08
_NAME = re.compile(r"^(?P<prefix>.+)-(?P<role>images|labels)-idx(?P<ndim>[13])-ubyte(?:\.gz)?$")


class IdxFormatError(DataError):
    """A file is not an IDX file moulin reads (bad magic, type or size): the message names it."""


@dataclass(frozen=True)
class IdxHeader:
    """The header of an IDX file: its dimensions and where the values start."""

    dims: tuple[int, ...]
    offset: int

    @property
    def items(self) -> int:
        return self.dims[0] if self.dims else 0


def unpack(data: bytes) -> bytes:
    """The IDX bytes of ``data``, gunzipped when it is gzip-compressed."""
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def read_header(data: bytes, name: str = "IDX file") -> IdxHeader:
    """The header of (uncompressed) IDX bytes; only unsigned-byte values are read."""
    if len(data) < 4 or data[:2] != b"\x00\x00":
        raise IdxFormatError(f"{name}: not an IDX file (it must start with two zero bytes)")
    if data[2] != UNSIGNED_BYTE:
        raise IdxFormatError(f"{name}: IDX value type {data[2]:#04x} is not read (only 0x08, unsigned bytes)")
    ndim = data[3]
    if ndim < 1 or len(data) < 4 + 4 * ndim:
        raise IdxFormatError(f"{name}: IDX header with {ndim} dimension(s) is cut short")
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    return IdxHeader(dims=tuple(int(d) for d in dims), offset=4 + 4 * ndim)


def file_role(path: str) -> tuple[str, str]:
    """``(prefix, role)`` of an IDX file by its name: role ``images`` or ``labels``."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    match = _NAME.match(name)
    if not match:
        raise IdxFormatError(
            f"{path}: IDX files must be named <prefix>-images-idx3-ubyte[.gz] or "
            "<prefix>-labels-idx1-ubyte[.gz] (images and their labels are paired by prefix)"
        )
    return match.group("prefix"), match.group("role")


def count_idx_records(data: bytes) -> int:
    """Records of an IDX file for the landing manifest, from its header alone: the
    items of an images file (3 dimensions), zero for a labels file (1 dimension)."""
    header = read_header(unpack(data))
    return header.items if len(header.dims) == 3 else 0


def idx_records(
    images: bytes, labels: bytes | None, images_name: str, labels_name: str | None
) -> Iterator[dict]:
    """One record per item of an images file, labelled from its labels file.

    A record is ``{field: text}`` of :data:`IDX_FIELDS`, or ``{"_corrupt_record":
    reason}`` for an item cut short or without a label.  Labels beyond the last
    image are records with a reason too (so the counts disagree with the
    manifest and the gate stops).
    """
    data = unpack(images)
    header = read_header(data, images_name)
    if len(header.dims) != 3:
        raise IdxFormatError(f"{images_name}: an images file has 3 dimensions, this one {len(header.dims)}")
    n, height, width = header.dims
    size = height * width
    label_values: bytes = b""
    if labels is not None:
        label_data = unpack(labels)
        label_header = read_header(label_data, labels_name or "labels file")
        if len(label_header.dims) != 1:
            raise IdxFormatError(
                f"{labels_name}: a labels file has 1 dimension, this one {len(label_header.dims)}"
            )
        label_values = label_data[label_header.offset : label_header.offset + label_header.items]
    where = labels_name or f"the labels file of {images_name}"
    for i in range(n):
        start = header.offset + i * size
        pixels = data[start : start + size]
        if len(pixels) < size:
            yield {
                "_corrupt_record": f"image {i}: {len(pixels)} of {size} pixel bytes ({images_name} is cut short)"
            }
        elif i >= len(label_values):
            yield {"_corrupt_record": f"image {i}: no label in {where}"}
        else:
            yield {
                "item": str(i),
                "label": str(label_values[i]),
                "height": str(height),
                "width": str(width),
                "pixels": base64.b64encode(pixels).decode("ascii"),
            }
    for j in range(n, len(label_values)):
        yield {"_corrupt_record": f"label {j} of {where} has no image in {images_name}"}


def write_idx(values: bytes, dims: tuple[int, ...], compress: bool = True) -> bytes:
    """IDX bytes of unsigned-byte ``values`` with ``dims`` (gzip-compressed by default)."""
    expected = 1
    for d in dims:
        expected *= d
    if len(values) != expected:
        raise ValueError(f"{len(values)} values do not fill dimensions {dims}")
    data = bytes([0, 0, UNSIGNED_BYTE, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + values
    return gzip.compress(data, mtime=0) if compress else data
