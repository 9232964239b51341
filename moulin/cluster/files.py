"""Files that running daemons read while other processes may write them.

Configs, ``web.xml`` and pid files are read by daemons (or by other ``moulin``
commands) at any moment.  Writing them in place (truncate, then write) lets a reader
see an empty or partial file, as a DataNode's Jetty did (``SAXParseException;
Premature end of file``).  Here a file is written to a temporary sibling and renamed
over the target, so a reader sees the old content or the new one, never a mix; and a
file that already holds the wanted content is not written at all.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path


def write_atomic(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    """Replace ``path`` by ``data`` in one rename (readers never see a partial file)."""
    raw = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(raw)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_once(path: Path, data: str | bytes, mode: int = 0o644) -> bool:
    """Write ``data`` to ``path`` atomically unless it already holds exactly that;
    True if it wrote."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        if path.read_bytes() == raw:
            return False
    except OSError:
        pass
    write_atomic(path, raw, mode)
    return True


def symlink_atomic(link: Path, target: Path) -> None:
    """Make ``link`` point at ``target``, replacing another link in one rename."""
    if link.is_symlink() and os.readlink(link) == str(target):
        return
    tmp = link.with_name(f".{link.name}.{uuid.uuid4().hex[:12]}.tmp")
    tmp.symlink_to(target)
    try:
        os.replace(tmp, link)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if absent) for the block; other
    processes (and other calls in this one) wait.  The lock dies with its process."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
