"""Who the store tells of its reads of personal data: a registry of read observers.

:class:`~moulin.delta.DeltaTableStore` (``read``, ``to_arrow``, ``to_pandas``)
announces every read of personal-data columns (the columns a table's Delta
metadata lists as personal) to each registered observer, as a :class:`ReadEvent`,
before it reads any data.  An observer that raises refuses the read: the
exception reaches the caller and no data is returned.

The store knows no observer; a package that must hear of these reads registers
one with :func:`register_read_observer` when it is imported (moulin's audit
trail, :mod:`moulin.privacy.audit`, does).  So that a process that never
imported such a package (a notebook that imports only :mod:`moulin.delta`) is
observed too, the first read of personal data imports the modules that
moulin's root package names in ``moulin.STORE_OBSERVERS``; a module that cannot
be imported refuses the read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import moulin


@dataclass(frozen=True)
class ReadEvent:
    """A read of personal-data columns: the table, the version read, the personal columns read."""

    table_uri: str
    version: int
    columns: tuple[str, ...]
    action: str = "read"


ReadObserver = Callable[[ReadEvent], None]

_observers: list[ReadObserver] = []
_lock = threading.Lock()
_declared_loaded = False


def register_read_observer(observer: ReadObserver) -> ReadObserver:
    """Call ``observer`` with every later :class:`ReadEvent` (once, however often it is
    registered); returns it, so that this works as a decorator."""
    with _lock:
        if observer not in _observers:
            _observers.append(observer)
    return observer


def unregister_read_observer(observer: ReadObserver) -> None:
    """Stop calling ``observer`` (nothing happens when it was not registered)."""
    with _lock:
        if observer in _observers:
            _observers.remove(observer)


def read_observers() -> tuple[ReadObserver, ...]:
    """The registered observers, in the order they are called."""
    with _lock:
        return tuple(_observers)


def _load_declared() -> None:
    """Import the declared observer modules once (an import error propagates, and the
    next read tries again)."""
    global _declared_loaded
    if _declared_loaded:
        return
    moulin.import_declared("STORE_OBSERVERS")
    _declared_loaded = True


def notify_read(event: ReadEvent) -> None:
    """Tell every observer of ``event``, in registration order; the first that raises stops
    the others and the exception propagates (the read is refused)."""
    _load_declared()
    for observer in read_observers():
        observer(event)
