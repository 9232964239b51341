"""The stage timer under its former name: re-exports :mod:`moulin.phases`.

Library code imports :mod:`moulin.phases` (it sits below the storage layer, which
marks its phases); scripts written against this name keep working.
"""

from __future__ import annotations

from moulin.phases import PHASES, phase, recording

__all__ = ["PHASES", "phase", "recording"]
