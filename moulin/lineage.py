"""Idempotency keys of stage writes: what a write is computed from.

A stage's Delta writes carry an app id built from :func:`run_key`: the stage,
the logical date, its inputs (landed files' checksums, upstream tables' Delta
versions) and :func:`code_version`.  A plain retry computes the same key and
commits nothing; a rerun after the input or the code changed gets a new key
and writes.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from moulin import __version__


@lru_cache(maxsize=1)
def code_version() -> str:
    """moulin's version and a digest of its Python sources (changes with any code edit)."""

    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:12]}"


def run_key(*inputs: Any) -> str:
    """A short digest of ``inputs`` (JSON-able) and :func:`code_version`."""
    text = json.dumps([code_version(), *inputs], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
