"""Small images inline in a report: 8-bit grey pixel arrays as PNG data URIs
(encoded with zlib, no imaging library needed)."""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def grey_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of a 2-D uint8 array (8-bit greyscale)."""
    image = np.asarray(pixels, dtype=np.uint8)
    if image.ndim != 2:
        raise ValueError(f"a grey image is 2-D (height, width), got shape {image.shape}")
    height, width = image.shape
    rows = b"".join(b"\x00" + image[r].tobytes() for r in range(height))  # filter type 0 per row
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows, 9))
        + _chunk(b"IEND", b"")
    )


def png_data_uri(pixels: np.ndarray) -> str:
    """``data:image/png;base64,...`` of a grey image."""
    return "data:image/png;base64," + base64.b64encode(grey_png(pixels)).decode("ascii")
