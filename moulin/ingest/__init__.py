"""Ingestion: land raw files, SQL extractions and API pages unchanged on the warehouse, with manifests."""

from moulin.ingest.database import extract_to_landing, read_watermark
from moulin.ingest.landing import Landing, LandingError, land_file, landing_dir, read_manifest

__all__ = [
    "Landing",
    "LandingError",
    "extract_to_landing",
    "land_file",
    "landing_dir",
    "read_manifest",
    "read_watermark",
]
