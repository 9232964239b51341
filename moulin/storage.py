"""Files on the warehouse file system: ``file://`` locally, ``hdfs://`` through WebHDFS.

Used for raw landings, manifests, watermarks, reports and model files (not for
tables: tables go through :mod:`moulin.delta`).

What is guaranteed
------------------

**Atomic writes.**  :meth:`WarehouseFS.write_bytes` and :meth:`WarehouseFS.put_file`
write the whole content to a hidden temporary file ``.<name>.<uuid>.tmp`` beside
the target, then put it in place.  Readers see the complete old content or the
complete new content, never a partial file.

* ``file://``: the temporary file is fsynced and ``os.replace``-d over the target
  (atomic), then the folder is fsynced.
* ``hdfs://``: WebHDFS RENAME does not overwrite, so a write is (1) temporary
  file written; (2) the existing target, if any, renamed to a backup
  ``.<name>.<uuid>.old`` (same uuid as the temporary file); (3) temporary file
  renamed to the target; (4) backup deleted.

**Crash recovery: the newest complete version wins.**  A crash between (2) and
(3) leaves no target.  :meth:`WarehouseFS.recover` puts one back; ``exists``,
``read_bytes``, ``size`` (and ``sha256``, ``get_file``) run it whenever the
target is missing.  A temporary file whose backup (same uuid) exists is
complete, because the backup is made only after it was fully written and
closed, and it is newer than its backup: the interrupted write is rolled
forward.  A backup without its temporary file is put back.  Recovery only
renames without overwriting and deletes a backup only once the version that
replaces it is in place, so a crash at any step, recovery included, never loses
both versions.  A crash before (2) leaves the old target and a stray temporary
file; a crash during the first write of a new file leaves no target (that write
did not happen).  Deleting a file also deletes its backups, so it is not
resurrected.

**Concurrent writers** of one file without a lock each succeed and one of the
contents remains.  A read-modify-write (manifests, watermarks) must hold
:meth:`WarehouseFS.lock`.

**Locks.**  :meth:`WarehouseFS.lock` creates ``<uri>.lock`` exclusively
(``O_CREAT | O_EXCL`` locally; on HDFS a WebHDFS CREATE with ``overwrite=false``,
which the NameNode performs atomically).  The lock file holds JSON ``{host, pid,
acquired_at, token}``.  Locks are advisory: they serialise only code that takes
them.  A waiter polls every ~:data:`LOCK_POLL_S` and raises
:class:`LockTimeoutError` after ``timeout_s`` (default ``settings.lock_timeout_s``),
naming the lock file and its holder.  A lock older than ``stale_after_s``
(default ``settings.lock_stale_after_s``) is presumed left by a dead process and
broken with a warning, so a holder must finish within that time; waiters that
find one stale lock take turns through a breaker lock ``<uri>.lock.break`` and
delete the lock only if it is still the stale one, so a fresh lock is never
broken.  Release deletes the lock file only if it still holds the holder's
token.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from moulin import kerberos
from moulin.errors import MoulinError
from moulin.settings import Settings

log = logging.getLogger(__name__)

# Pause between two attempts to take a held lock (randomised by +-50 %).
LOCK_POLL_S = 0.1
LOCK_SUFFIX = ".lock"
# A breaker lock (taken to delete a stale lock) older than this was left by a dead process.
BREAKER_STALE_S = 60
# Tries of a write whose target keeps being replaced by other (unlocked) writers.
WRITE_ATTEMPTS = 5

_UUID = "[0-9a-f]{32}"


class StorageError(MoulinError):
    """A warehouse file operation failed; the message names the URI."""


class LockTimeoutError(StorageError):
    """A warehouse lock stayed held by another run for longer than the wait allowed."""

    def __init__(self, message: str, lock_uri: str, holder: LockHolder | None) -> None:
        super().__init__(message)
        self.lock_uri = lock_uri
        self.holder = holder


@dataclass(frozen=True)
class FileInfo:
    """One entry of a listing."""

    uri: str
    size: int
    is_dir: bool


@dataclass(frozen=True)
class LockHolder:
    """What a lock file says about who holds it."""

    lock_uri: str
    host: str | None
    pid: int | None
    acquired_at: str
    token: str | None
    age_s: float
    mtime: float = 0.0

    def describe(self) -> str:
        """One phrase for messages: pid, host, since when."""
        return (
            f"pid {self.pid if self.pid is not None else '?'} on host {self.host or '?'} "
            f"since {self.acquired_at} ({self.age_s:.0f} s ago, token {self.token or '?'})"
        )


def _sidecar_pattern(name: str) -> re.Pattern[str]:
    """Temporary files and backups of file ``name``: ``.<name>.<uuid>.tmp|old``."""
    return re.compile(rf"^\.{re.escape(name)}\.({_UUID})\.(tmp|old)$")


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def webhdfs_client(settings: Settings, user: str | None = None):
    """A WebHDFS client (``hdfs`` package) of ``settings``: under Kerberos, SPNEGO with
    moulin's ticket (from its keytab, see moulin.kerberos; no ``user.name`` is sent, so
    ``user`` must be None); otherwise simple authentication as ``user`` (default: the
    user moulin acts as)."""
    if settings.hdfs.kerberos:
        handed = kerberos.handed_token_file()
        if handed is not None:
            # A process with moulin's token (an executor on a standalone worker, a job of the
            # training environment) uses it: no ticket, no Kerberos client needed.
            from hdfs import TokenClient

            return TokenClient(settings.hdfs.webhdfs_url, kerberos.webhdfs_delegation(handed))
        from hdfs.ext.kerberos import KerberosClient

        if user is not None and user != settings.hdfs_user:
            raise StorageError(
                f"under Kerberos moulin acts as {settings.hdfs.kerberos_principal} (its ticket), not as "
                f"{user!r}: run with that user's principal and keytab (MOULIN_HDFS_KERBEROS_PRINCIPAL, "
                "MOULIN_HDFS_KERBEROS_KEYTAB)"
            )
        kerberos.login(settings)
        return KerberosClient(settings.hdfs.webhdfs_url, mutual_auth="OPTIONAL")
    from hdfs import InsecureClient

    return InsecureClient(settings.hdfs.webhdfs_url, user=user or settings.hdfs_user)


class WarehouseFS:
    """Minimal file-system operations on ``file://`` and ``hdfs://`` URIs."""

    # Test hook: called with "tmp_written", "backup_made" (HDFS, when a target
    # existed) and "renamed" during a write; raising from it simulates a crash there.
    fault_hook: Callable[[str], None] | None = None

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client = None

    # -- helpers
    @staticmethod
    def _retry(action, what: str, attempts: int = 6):
        """Run a WebHDFS call, retrying connection failures.

        WebHDFS redirects each read or write to one DataNode; until the NameNode
        declares a stopped DataNode dead (about 40 s here), it may still pick it.
        Another try usually lands on a live replica.
        """
        import requests

        delay = 0.5
        for attempt in range(attempts):
            try:
                return action()
            except requests.exceptions.ConnectionError as exc:
                if attempt == attempts - 1:
                    raise StorageError(f"{what}: HDFS unreachable after {attempts} tries: {exc}") from exc
                time.sleep(delay)
                delay = min(delay * 2, 8)

    def _hdfs(self):
        if self._client is None:
            # The client logs every request at INFO: task logs would drown in them.
            logging.getLogger("hdfs.client").setLevel(logging.WARNING)
            self._client = webhdfs_client(self.settings)
        return self._client

    @staticmethod
    def _split(uri: str) -> tuple[str, str]:
        parsed = urlparse(uri)
        if parsed.scheme in ("", "file"):
            return "file", parsed.path if parsed.scheme else uri
        if parsed.scheme == "hdfs":
            return "hdfs", parsed.path or "/"
        raise StorageError(f"unsupported URI scheme {parsed.scheme!r} in {uri}: use file:// or hdfs://")

    def _fault(self, step: str) -> None:
        hook = self.fault_hook
        if hook is not None:
            hook(step)

    # -- primitive operations on paths (no recovery)
    def _present(self, kind: str, path: str) -> bool:
        if kind == "file":
            return os.path.exists(path)
        client = self._hdfs()
        return self._retry(lambda: client.status(path, strict=False), f"status of {path}") is not None

    def _remove(self, kind: str, path: str) -> None:
        """Delete file ``path`` if it exists."""
        if kind == "file":
            Path(path).unlink(missing_ok=True)
            return
        client = self._hdfs()
        self._retry(lambda: client.delete(path), f"deleting {path}")

    def _rename_noreplace(self, kind: str, src: str, dst: str) -> bool:
        """Rename ``src`` to ``dst`` unless ``dst`` exists; False when ``src`` is gone or ``dst`` exists."""
        if kind == "file":
            try:
                os.link(src, dst)
            except (FileNotFoundError, FileExistsError):
                return False
            except OSError:  # no hard links on this file system
                if os.path.lexists(dst):
                    return False
                try:
                    os.rename(src, dst)
                except FileNotFoundError:
                    return False
                return True
            try:
                os.unlink(src)
            except FileNotFoundError:
                pass
            return True
        from hdfs.util import HdfsError

        client = self._hdfs()
        try:
            self._retry(lambda: client.rename(src, dst), f"renaming {src} to {dst}")
        except HdfsError:  # WebHDFS RENAME answered false: source gone or target there
            return False
        return True

    def _entries(self, kind: str, folder: str) -> dict[str, float]:
        """Names directly under ``folder`` with their modification times (empty if no folder)."""
        if kind == "file":
            out: dict[str, float] = {}
            try:
                children = list(os.scandir(folder or "."))
            except (FileNotFoundError, NotADirectoryError):
                return out
            for child in children:
                try:
                    out[child.name] = child.stat(follow_symlinks=False).st_mtime
                except FileNotFoundError:
                    continue
            return out
        from hdfs.util import HdfsError

        client = self._hdfs()
        try:
            listing = self._retry(lambda: client.list(folder, status=True), f"listing {folder}")
        except HdfsError:  # no such folder, or a file
            return {}
        return {name: st["modificationTime"] / 1000 for name, st in listing}

    def _sidecars(self, kind: str, path: str) -> tuple[dict[str, str], dict[str, tuple[str, float]], dict]:
        """(backups by uuid, temporary files by uuid with mtimes, all entries) of file ``path``."""
        folder, name = os.path.split(path)
        entries = self._entries(kind, folder)
        pattern = _sidecar_pattern(name)
        olds: dict[str, str] = {}
        tmps: dict[str, tuple[str, float]] = {}
        for entry, mtime in entries.items():
            match = pattern.match(entry)
            if match is None:
                continue
            if match.group(2) == "old":
                olds[match.group(1)] = entry
            else:
                tmps[match.group(1)] = (entry, mtime)
        return olds, tmps, entries

    # -- writes
    @staticmethod
    def _tmp_path(path: str, token: str) -> str:
        folder, name = os.path.split(path)
        return f"{folder}/.{name}.{token}.tmp"

    def _commit_local(self, tmp: str, path: str) -> None:
        self._fault("tmp_written")
        os.replace(tmp, path)
        _fsync_dir(os.path.dirname(path))
        self._fault("renamed")

    def _commit_hdfs(self, uri: str, tmp: str, path: str, token: str) -> None:
        """Steps (2)-(4) of an HDFS write: back up the target, rename, delete the backup."""
        folder, name = os.path.split(path)
        backup = f"{folder}/.{name}.{token}.old"
        self._fault("tmp_written")
        for attempt in range(WRITE_ATTEMPTS):
            if self._present("hdfs", path):
                if attempt:  # a backup of a previous attempt is obsolete: the target is back
                    self._remove("hdfs", backup)
                if not self._rename_noreplace("hdfs", path, backup):
                    continue  # the target moved meanwhile (another writer): look again
                self._fault("backup_made")
            if self._rename_noreplace("hdfs", tmp, path):
                self._fault("renamed")
                self._remove("hdfs", backup)
                return
            if not self._present("hdfs", tmp):
                # A reader's recover() saw the gap and rolled this very write forward.
                self._remove("hdfs", backup)
                return
            # Another writer put a target back between our backup and our rename: again.
        raise StorageError(
            f"cannot write {uri}: renaming {tmp} into place failed {WRITE_ATTEMPTS} times "
            f"(other writers kept replacing the file, or HDFS refuses the rename). Take "
            f"WarehouseFS.lock({uri!r}) around writes of a shared file; the new content is in {tmp}."
        )

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Write ``data`` to ``uri`` atomically (see the module docstring)."""

        def fill(tmp: str) -> None:
            with open(tmp, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())

        self._write_atomically(
            uri, fill, lambda client, tmp: client.write(tmp, data=data, overwrite=True), "writing"
        )

    def put_file(self, local_path: Path, uri: str) -> None:
        """Copy a local file to ``uri`` atomically (see the module docstring)."""

        def fill(tmp: str) -> None:
            shutil.copyfile(local_path, tmp)
            with open(tmp, "rb+") as out:
                os.fsync(out.fileno())

        self._write_atomically(
            uri, fill, lambda client, tmp: client.upload(tmp, str(local_path), overwrite=True), "uploading"
        )

    def _write_atomically(
        self,
        uri: str,
        fill_local: Callable[[str], None],
        fill_hdfs: Callable[[Any, str], object],
        verb: str,
    ) -> None:
        """Fill a temporary file beside ``uri`` (``fill_local(tmp)`` on a local disk,
        ``fill_hdfs(client, tmp)`` on HDFS), then put it in place; a failed fill leaves
        no temporary file behind."""
        kind, path = self._split(uri)
        token = uuid.uuid4().hex
        tmp = self._tmp_path(path, token)
        if kind == "file":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            try:
                fill_local(tmp)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            self._commit_local(tmp, path)
            return
        client = self._hdfs()
        self._retry(lambda: client.makedirs(os.path.dirname(path)), f"creating the folder of {uri}")
        try:
            self._retry(lambda: fill_hdfs(client, tmp), f"{verb} {uri}")
        except BaseException:
            self._discard(tmp)
            raise
        self._commit_hdfs(uri, tmp, path, token)

    def _discard(self, tmp: str) -> None:
        """Best-effort removal of the temporary file of a failed HDFS write."""
        try:
            self._hdfs().delete(tmp)
        except Exception as exc:  # the write's own error matters more
            log.debug("could not delete %s: %s", tmp, exc)

    # -- recovery
    def recover(self, uri: str) -> bool:
        """Finish or undo a write of file ``uri`` interrupted by a crash; True if ``uri`` exists then.

        When the target is missing, the newest complete version is put back: the
        temporary file of a write that got past its backup step (it is complete
        and newer), else the newest backup.  When the target is there, backups of
        writes that finished (their temporary file is gone) are deleted.
        """
        kind, path = self._split(uri)
        folder, name = os.path.split(path)
        olds, tmps, entries = self._sidecars(kind, path)
        if name in entries:
            for token, entry in olds.items():
                if token not in tmps:
                    self._remove(kind, f"{folder}/{entry}")
            return True
        if not olds:
            return self._present(kind, path)
        candidates = [(tmps[t][1], 1, t, tmps[t][0]) for t in olds if t in tmps]
        candidates += [(entries[entry], 0, t, entry) for t, entry in olds.items()]
        for _mtime, is_tmp, token, entry in sorted(candidates, reverse=True):
            if self._rename_noreplace(kind, f"{folder}/{entry}", path):
                what = "rolled forward the interrupted write" if is_tmp else "put back the backup"
                log.warning("recovered %s: %s %s", uri, what, entry)
                if is_tmp:
                    self._remove(kind, f"{folder}/{olds[token]}")
                return True
            if self._present(kind, path):  # another reader recovered it first
                return True
        return self._present(kind, path)

    def _ensure(self, kind: str, path: str, uri: str) -> bool:
        return self._present(kind, path) or self.recover(uri)

    # -- API
    def exists(self, uri: str) -> bool:
        """Whether a file or folder exists at ``uri`` (recovering an interrupted write)."""
        kind, path = self._split(uri)
        return self._ensure(kind, path, uri)

    def makedirs(self, uri: str) -> None:
        """Create folder ``uri`` and its parents."""
        kind, path = self._split(uri)
        if kind == "file":
            Path(path).mkdir(parents=True, exist_ok=True)
        else:
            self._hdfs().makedirs(path)

    def _read(self, kind: str, path: str, uri: str) -> bytes:
        if kind == "file":
            return Path(path).read_bytes()

        def read() -> bytes:
            with self._hdfs().read(path) as reader:
                return reader.read()

        return self._retry(read, f"reading {uri}")

    def read_bytes(self, uri: str) -> bytes:
        """The whole content of file ``uri`` (recovering an interrupted write)."""
        kind, path = self._split(uri)
        try:
            return self._read(kind, path, uri)
        except StorageError:
            raise
        except Exception as exc:  # OSError; hdfs raises HdfsError
            error = exc
        if getattr(error, "exception", None) == "AccessControlException":  # no recovery can help
            raise StorageError(
                f"cannot read {uri} as HDFS user {self.settings.hdfs_user!r}: {error}"
            ) from error
        if not self._present(kind, path) and self.recover(uri):
            try:
                return self._read(kind, path, uri)
            except StorageError:
                raise
            except Exception as exc:
                error = exc
        raise StorageError(f"cannot read {uri}: {error}") from error

    def get_file(self, uri: str, local_path: Path) -> None:
        """Copy file ``uri`` to a local path."""
        local_path.parent.mkdir(parents=True, exist_ok=True)
        local_path.write_bytes(self.read_bytes(uri))

    def list(self, uri: str) -> list[FileInfo]:
        """Entries directly under folder ``uri`` (empty if it does not exist).

        Hidden temporary files, backups and lock files are listed too.
        """
        kind, path = self._split(uri)
        base = uri.rstrip("/")
        if kind == "file":
            folder = Path(path)
            if not folder.is_dir():
                return []
            return [
                FileInfo(f"{base}/{p.name}", p.stat().st_size if p.is_file() else 0, p.is_dir())
                for p in sorted(folder.iterdir())
            ]
        client = self._hdfs()
        if client.status(path, strict=False) is None:
            return []
        return [
            FileInfo(f"{base}/{name}", st["length"], st["type"] == "DIRECTORY")
            for name, st in sorted(client.list(path, status=True))
        ]

    def size(self, uri: str) -> int:
        """Size in bytes of file ``uri``."""
        kind, path = self._split(uri)
        if kind == "file":
            if not os.path.exists(path):
                self.recover(uri)
            return Path(path).stat().st_size
        client = self._hdfs()
        status = client.status(path, strict=False)
        if status is None and self.recover(uri):
            status = client.status(path, strict=False)
        if status is None:
            raise StorageError(f"cannot get the size of {uri}: no such file")
        return int(status["length"])

    def delete(self, uri: str, recursive: bool = False) -> None:
        """Delete ``uri`` (a folder only when ``recursive``); a file's backups go with it."""
        kind, path = self._split(uri)
        if kind == "file":
            p = Path(path)
            if p.is_dir():
                if not recursive:
                    raise StorageError(f"{uri} is a folder: pass recursive=True")
                shutil.rmtree(p)
                return
            p.unlink(missing_ok=True)
        else:
            client = self._hdfs()
            status = client.status(path, strict=False)
            client.delete(path, recursive=recursive)
            if status is not None and status["type"] == "DIRECTORY":
                return
        folder = os.path.dirname(path)
        olds, tmps, _ = self._sidecars(kind, path)
        for token, entry in olds.items():
            self._remove(kind, f"{folder}/{entry}")
            if token in tmps:
                self._remove(kind, f"{folder}/{tmps[token][0]}")

    def sha256(self, uri: str) -> str:
        """SHA-256 of file ``uri`` (hex)."""
        return hashlib.sha256(self.read_bytes(uri)).hexdigest()

    # -- locks
    @contextmanager
    def lock(
        self, uri: str, timeout_s: float | None = None, stale_after_s: float | None = None
    ) -> Iterator[LockHolder]:
        """Hold the lock of ``uri`` (the file ``<uri>.lock``) for the ``with`` block.

        Waits up to ``timeout_s`` (default ``settings.lock_timeout_s``), then raises
        :class:`LockTimeoutError` naming the lock file and its holder.  A lock older
        than ``stale_after_s`` (default ``settings.lock_stale_after_s``) is broken.
        Yields this holder's record.
        """
        timeout_s = self.settings.lock_timeout_s if timeout_s is None else timeout_s
        stale_after_s = self.settings.lock_stale_after_s if stale_after_s is None else stale_after_s
        kind, path = self._split(uri)
        lock_uri, lock_path = uri + LOCK_SUFFIX, path + LOCK_SUFFIX
        token = uuid.uuid4().hex
        deadline = time.monotonic() + timeout_s
        while True:
            record = {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "acquired_at": _now_iso(),
                "token": token,
            }
            if self._create_exclusive(kind, lock_path, lock_uri, record):
                break
            holder = self._read_lock(kind, lock_path, lock_uri)
            if holder is not None and holder.age_s > stale_after_s:
                if self._break_stale(kind, lock_path, holder, stale_after_s):
                    continue
            if time.monotonic() >= deadline:
                held = f"held by {holder.describe()}" if holder else "held (it was just released; retry)"
                raise LockTimeoutError(
                    f"timed out after {timeout_s:g} s waiting for lock {lock_uri}, {held}. "
                    f"If that process is dead, delete {lock_uri} and retry; a lock older than "
                    f"{stale_after_s:g} s is broken automatically.",
                    lock_uri,
                    holder,
                )
            if holder is not None:
                time.sleep(LOCK_POLL_S * random.uniform(0.5, 1.5))
        mine = LockHolder(lock_uri, record["host"], record["pid"], record["acquired_at"], token, 0.0)
        try:
            stamp = self._lock_stamp(kind, lock_path, lock_uri)
        except Exception:  # noqa: BLE001 - release falls back to the token in the file
            stamp = None
        try:
            yield mine
        finally:
            try:
                self._release(kind, lock_path, lock_uri, token, stamp)
            except Exception as exc:  # noqa: BLE001 - never hide the guarded work's outcome
                log.warning(
                    "could not release lock %s (%s): it is broken as stale after %g s",
                    lock_uri,
                    " ".join(str(exc).split())[:200],
                    stale_after_s,
                )

    def _create_exclusive(self, kind: str, path: str, lock_uri: str, record: dict) -> bool:
        """Create lock file ``path`` holding ``record``; False if it already exists."""
        payload = json.dumps(record, sort_keys=True).encode() + b"\n"
        if kind == "file":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            try:
                os.write(fd, payload)
                os.fsync(fd)
            finally:
                os.close(fd)
            return True
        from hdfs.util import HdfsError

        client = self._hdfs()
        last: HdfsError | None = None
        for _ in range(3):
            try:
                self._retry(
                    lambda: client.write(path, data=payload, overwrite=False), f"creating lock {lock_uri}"
                )
                return True
            except HdfsError as exc:  # the NameNode refused the create: does the file exist?
                last = exc
                holder = self._read_lock(kind, path, lock_uri)
                if holder is not None:
                    # A retried call may have found our own first create.
                    return holder.token == record["token"]
        raise StorageError(f"cannot create lock file {lock_uri}: {last}") from last

    def _read_lock(self, kind: str, path: str, lock_uri: str) -> LockHolder | None:
        """The holder recorded in lock file ``path``, or None if there is no such file."""
        if kind == "file":
            try:
                mtime = os.stat(path).st_mtime
                raw = Path(path).read_bytes()
            except FileNotFoundError:
                return None
        else:
            from hdfs.util import HdfsError

            client = self._hdfs()
            status = self._retry(lambda: client.status(path, strict=False), f"status of {lock_uri}")
            if status is None:
                return None
            mtime = status["modificationTime"] / 1000
            try:
                raw = self._read(kind, path, lock_uri)
            except HdfsError:
                if not self._present(kind, path):
                    return None
                raw = b""
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                data = {}
        except ValueError:  # being written, or written by a process that died half-way
            data = {}
        since = mtime
        acquired_at = data.get("acquired_at")
        if isinstance(acquired_at, str):
            try:
                since = datetime.fromisoformat(acquired_at).timestamp()
            except ValueError:
                acquired_at = None
        if not isinstance(acquired_at, str):
            acquired_at = datetime.fromtimestamp(mtime, UTC).isoformat(timespec="milliseconds")
        pid = data.get("pid")
        return LockHolder(
            lock_uri=lock_uri,
            host=data.get("host"),
            pid=pid if isinstance(pid, int) else None,
            acquired_at=acquired_at,
            token=data.get("token"),
            age_s=max(time.time() - since, 0.0),
            mtime=mtime,
        )

    def _break_stale(self, kind: str, path: str, holder: LockHolder, stale_after_s: float) -> bool:
        """Delete the stale lock ``holder``, and only it; True when the lock file is gone.

        There is no compare-and-delete on HDFS, so waiters that find the same
        stale lock take turns through a breaker lock ``<lock>.break`` (exclusive
        creation too): under it, the lock file is read again and deleted only if
        it is still the stale one, so a fresh lock taken meanwhile is left alone.
        A breaker lock older than :data:`BREAKER_STALE_S` (its holder died) is deleted.
        """
        breaker, breaker_uri = path + ".break", holder.lock_uri + ".break"
        token = uuid.uuid4().hex
        record = {"host": socket.gethostname(), "pid": os.getpid(), "acquired_at": _now_iso(), "token": token}
        if not self._create_exclusive(kind, breaker, breaker_uri, record):
            other = self._read_lock(kind, breaker, breaker_uri)
            if other is not None and other.age_s > BREAKER_STALE_S:
                log.warning("deleting stale breaker lock %s held by %s", breaker_uri, other.describe())
                self._remove(kind, breaker)
            return False  # another waiter is breaking it: look again after a pause
        try:
            current = self._read_lock(kind, path, holder.lock_uri)
            if current is None:
                return True
            if (current.token, current.mtime) != (holder.token, holder.mtime):
                return False  # released and taken afresh meanwhile
            self._remove(kind, path)
        finally:
            self._release(kind, breaker, breaker_uri, token)
        log.warning(
            "broke stale lock %s held by %s (older than %g s)",
            holder.lock_uri,
            holder.describe(),
            stale_after_s,
        )
        return True

    def _lock_stamp(self, kind: str, path: str, lock_uri: str) -> tuple | None:
        """The identity of lock file ``path`` from metadata alone (no DataNode read on HDFS)."""
        if kind == "file":
            try:
                st = os.stat(path)
            except FileNotFoundError:
                return None
            return (st.st_ino, st.st_mtime_ns, st.st_size)
        client = self._hdfs()
        status = self._retry(lambda: client.status(path, strict=False), f"status of {lock_uri}")
        if status is None:
            return None
        return (status.get("fileId"), status.get("modificationTime"), status.get("length"))

    def _release(self, kind: str, path: str, lock_uri: str, token: str, stamp: tuple | None = None) -> None:
        """Delete the lock if it is still this holder's: same file (metadata), else same token.

        The metadata check needs the NameNode only, so a release still works while a
        DataNode holding the lock file's block is down.
        """
        if stamp is not None:
            current = self._lock_stamp(kind, path, lock_uri)
            if current is None:
                log.warning("lock %s was gone at release (broken as stale while held?)", lock_uri)
                return
            if current == stamp:
                self._remove(kind, path)
                return
        holder = self._read_lock(kind, path, lock_uri)
        if holder is None:
            log.warning("lock %s was gone at release (broken as stale while held?)", lock_uri)
            return
        if holder.token != token:
            log.warning("lock %s is now held by %s: left in place", lock_uri, holder.describe())
            return
        self._remove(kind, path)
