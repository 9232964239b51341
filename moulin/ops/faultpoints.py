"""Named points where a running task can be held for a fault drill.

An operator (or a test) rehearsing a failure needs the task to be at a known
point when the fault strikes: after its Spark stage committed, say, and
before the task reported success.  A *fault point* is such a place in the
code (:func:`fault_point`); it costs one ``stat`` when nobody armed it.

Arming a point writes ``<home>/run/faultpoints/<name>.armed``.  The first
task to reach the point claims the arm (an atomic rename, so exactly one task
does), records its pid in ``<name>.reached`` and holds until
``<name>.release`` appears or ``hold_s`` passes.  The drill then acts on that
pid (kills it, kills the scheduler, ...), and the retried task passes the
point without stopping, as the arm was used up.

    arm(settings, "after-bronze_flights")
    reached = wait_reached(settings, "after-bronze_flights", timeout_s=600)
    os.kill(reached.pid, signal.SIGKILL)
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from moulin.errors import MoulinError
from moulin.settings import Settings

#: How long a task holds at a point it reached before it goes on by itself.
DEFAULT_HOLD_S = 900.0


class FaultPointTimeout(MoulinError):
    """No task reached an armed fault point within the time the drill allowed."""


@dataclass(frozen=True)
class Reached:
    """A task holding at a fault point: its process and when it got there."""

    name: str
    pid: int
    at: float


def points_dir(settings: Settings) -> Path:
    """Folder of the arm, reached and release files of this home's fault points."""
    return settings.home / "run" / "faultpoints"


def _path(settings: Settings, name: str, kind: str) -> Path:
    if not name or "/" in name or name.startswith("."):
        raise MoulinError(f"fault point name {name!r}: use letters, digits, '-', '_' and '.'")
    return points_dir(settings) / f"{name}.{kind}"


def arm(settings: Settings, name: str) -> None:
    """Arm fault point ``name``: the next task that reaches it holds there (once)."""
    folder = points_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    for kind in ("reached", "release", "claimed"):
        _path(settings, name, kind).unlink(missing_ok=True)
    _path(settings, name, "armed").write_text("")


def release(settings: Settings, name: str) -> None:
    """Let a task holding at ``name`` go on."""
    points_dir(settings).mkdir(parents=True, exist_ok=True)
    _path(settings, name, "release").write_text("")


def disarm(settings: Settings, name: str) -> None:
    """Remove every file of fault point ``name`` (a held task goes on)."""
    release(settings, name)
    for kind in ("armed", "reached", "claimed"):
        _path(settings, name, kind).unlink(missing_ok=True)


def wait_reached(settings: Settings, name: str, timeout_s: float) -> Reached:
    """The task that reached armed point ``name``, once one has (at most ``timeout_s``)."""
    path = _path(settings, name, "reached")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            data = json.loads(path.read_text())
            return Reached(name, int(data["pid"]), float(data["at"]))
        except (OSError, ValueError, KeyError):
            time.sleep(0.2)
    raise FaultPointTimeout(
        f"no task reached fault point {name} within {timeout_s:.0f}s (armed in {points_dir(settings)})"
    )


def fault_point(settings: Settings, name: str, hold_s: float = DEFAULT_HOLD_S) -> None:
    """Hold here if fault point ``name`` is armed (see the module docstring); else return at once."""
    armed = _path(settings, name, "armed")
    if not armed.exists():
        return
    claimed = _path(settings, name, "claimed")
    try:
        os.rename(armed, claimed)
    except FileNotFoundError:  # another task claimed it first
        return
    reached = _path(settings, name, "reached")
    tmp = reached.with_name(reached.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "at": time.time()}))
    tmp.replace(reached)
    print(f"moulin: holding at fault point {name} (pid {os.getpid()})", flush=True)
    release_path = _path(settings, name, "release")
    deadline = time.monotonic() + hold_s
    while time.monotonic() < deadline and not release_path.exists():
        time.sleep(0.2)
    print(f"moulin: fault point {name} passed", flush=True)
