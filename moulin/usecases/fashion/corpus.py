"""The catalogue's image drop, from the Debian package ``dataset-fashion-mnist``.

``bin/setup`` installs the package; its four IDX files (train and t10k images
and labels) are copied into one drop folder, the source spec's
``{home}/drops/fashion/<ds>``.  A sample keeps the first N images of each set
(the files are rewritten as smaller, valid IDX files).  The package's README
collects published test accuracies: :func:`published_results` reads them for the
report.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from moulin.errors import MoulinError
from moulin.ingest.idx import read_header, unpack, write_idx
from moulin.settings import Settings
from moulin.usecases.fashion.params import PARAMS

PACKAGE = "dataset-fashion-mnist"
SETS = ("train", "t10k")


class DatasetMissingError(MoulinError):
    """The Fashion-MNIST package is not installed (``bin/setup`` installs it)."""


def dataset_dir(settings: Settings) -> Path:
    """The folder of the installed IDX files."""
    folder = settings.system_datasets_dir / "fashion-mnist"
    if not (folder / "train-images-idx3-ubyte.gz").is_file():
        raise DatasetMissingError(
            f"Fashion-MNIST is not installed in {folder}: run bin/setup (it installs the Debian package {PACKAGE})"
        )
    return folder


def readme_path(settings: Settings) -> Path:
    """The package's README (gzip), whose Benchmark table the report quotes."""
    return settings.system_docs_dir / PACKAGE / "README.md.gz"


def drop_folder(settings: Settings, ds: str) -> Path:
    """Where the drop of ``ds`` is written (the source spec's ``{home}/drops/fashion/{ds}``)."""
    return settings.home / "drops" / "fashion" / ds


def _first_items(data: bytes, limit: int | None) -> bytes:
    if limit is None:
        return data
    raw = unpack(data)
    header = read_header(raw)
    n = min(limit, header.items)
    size = 1
    for d in header.dims[1:]:
        size *= d
    return write_idx(raw[header.offset : header.offset + n * size], (n, *header.dims[1:]))


def prepare_drop(settings: Settings, limit: int | None = None, ds: str = PARAMS.drop) -> dict[str, int]:
    """Copy the IDX files into the drop of ``ds`` (the first ``limit`` images of each
    set: a sample); returns ``{set: images}``.  Rewrites only files whose bytes change."""
    source = dataset_dir(settings)
    folder = drop_folder(settings, ds)
    folder.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for name in SETS:
        for role, ndim in (("images", 3), ("labels", 1)):
            file = f"{name}-{role}-idx{ndim}-ubyte.gz"
            data = _first_items((source / file).read_bytes(), limit)
            path = folder / file
            if not path.exists() or path.read_bytes() != data:
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(data)
                tmp.replace(path)
            if role == "images":
                counts[name] = read_header(unpack(data)).items
    return counts


_ROW = re.compile(r"^\|(?P<name>[^|]+)\|(?P<pre>[^|]*)\|\s*(?P<acc>0\.\d+)\s*\|")


def published_results(settings: Settings) -> list[dict]:
    """The Benchmark table of the package's README: ``{classifier, preprocessing,
    accuracy}`` per row with a Fashion-MNIST test accuracy (as submitted, untested
    by the dataset's authors); empty when the README is not installed."""
    path = readme_path(settings)
    if not path.is_file():
        return []
    text = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")
    section = text.split("## Benchmark", 1)[-1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        match = _ROW.match(line.strip())
        if match:
            rows.append(
                {
                    "classifier": match.group("name").strip(),
                    "preprocessing": match.group("pre").strip(),
                    "accuracy": float(match.group("acc")),
                }
            )
    return rows
