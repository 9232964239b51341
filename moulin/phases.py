"""Where a stage's time goes: named phases timed by a context manager.

Library code marks its phases (``with phase("validate"): ...``); a caller that
wants the figures wraps the work in :func:`recording` and gets seconds per
phase.  Without a recording, :func:`phase` costs a context-variable lookup.
Spark evaluates lazily, so a phase holds the Spark work its actions trigger:
``write`` includes computing the frame it writes unless that frame was cached.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Iterator
from contextvars import ContextVar

#: The phases library code marks.
PHASES = ("validate", "write", "commit")

_current: ContextVar[dict[str, float] | None] = ContextVar("moulin_phases", default=None)
_open: ContextVar[str | None] = ContextVar("moulin_open_phase", default=None)


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Time the block as phase ``name`` (a phase inside another counts for the outer one only)."""
    seconds = _current.get()
    if seconds is None or _open.get() is not None:
        yield
        return
    token = _open.set(name)
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[name] += time.perf_counter() - start
        _open.reset(token)


@contextlib.contextmanager
def recording() -> Iterator[dict[str, float]]:
    """Collect the seconds of every phase marked inside the block."""
    seconds: dict[str, float] = defaultdict(float)
    token = _current.set(seconds)
    try:
        yield seconds
    finally:
        _current.reset(token)
