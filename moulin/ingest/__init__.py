"""Ingestion: land raw files, SQL extractions and API pages unchanged on the warehouse, with manifests."""

from moulin.ingest.landing import Landing, LandingError, land_file, landing_dir, read_manifest
from moulin.ingest.sql import extract_table, read_watermark

__all__ = [
    "Landing",
    "LandingError",
    "extract_table",
    "land_file",
    "landing_dir",
    "read_manifest",
    "read_watermark",
]
