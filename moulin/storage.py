"""Files on the warehouse file system: ``file://`` locally, ``hdfs://`` through WebHDFS.

Used for raw landings, manifests, reports and model files (not for tables:
tables go through :mod:`moulin.delta`).  Writes are atomic: a file is written
under a temporary name beside its target and renamed into place.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from moulin.errors import MoulinError
from moulin.settings import Settings


class StorageError(MoulinError):
    """A warehouse file operation failed; the message names the URI."""


@dataclass(frozen=True)
class FileInfo:
    """One entry of a listing."""

    uri: str
    size: int
    is_dir: bool


class WarehouseFS:
    """Minimal file-system operations on ``file://`` and ``hdfs://`` URIs."""

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
            from hdfs import InsecureClient

            self._client = InsecureClient(self.settings.hdfs.webhdfs_url, user=os.environ.get("USER", "root"))
        return self._client

    @staticmethod
    def _split(uri: str) -> tuple[str, str]:
        parsed = urlparse(uri)
        if parsed.scheme in ("", "file"):
            return "file", parsed.path if parsed.scheme else uri
        if parsed.scheme == "hdfs":
            return "hdfs", parsed.path or "/"
        raise StorageError(f"unsupported URI scheme {parsed.scheme!r} in {uri}: use file:// or hdfs://")

    # -- API
    def exists(self, uri: str) -> bool:
        """Whether a file or folder exists at ``uri``."""
        kind, path = self._split(uri)
        if kind == "file":
            return Path(path).exists()
        return self._hdfs().status(path, strict=False) is not None

    def makedirs(self, uri: str) -> None:
        """Create folder ``uri`` and its parents."""
        kind, path = self._split(uri)
        if kind == "file":
            Path(path).mkdir(parents=True, exist_ok=True)
        else:
            self._hdfs().makedirs(path)

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Write ``data`` to ``uri`` atomically (temporary name, then rename)."""
        kind, path = self._split(uri)
        tmp = f"{os.path.dirname(path)}/.{os.path.basename(path)}.{uuid.uuid4().hex}.tmp"
        if kind == "file":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
            return
        client = self._hdfs()
        client.makedirs(os.path.dirname(path))
        self._retry(lambda: client.write(tmp, data=data, overwrite=True), f"writing {uri}")
        if client.status(path, strict=False) is not None:
            client.delete(path)
        client.rename(tmp, path)

    def put_file(self, local_path: Path, uri: str) -> None:
        """Copy a local file to ``uri`` atomically."""
        kind, path = self._split(uri)
        if kind == "file":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            tmp = f"{path}.{uuid.uuid4().hex}.tmp"
            shutil.copyfile(local_path, tmp)
            os.replace(tmp, path)
            return
        client = self._hdfs()
        client.makedirs(os.path.dirname(path))
        tmp = f"{os.path.dirname(path)}/.{os.path.basename(path)}.{uuid.uuid4().hex}.tmp"
        self._retry(lambda: client.upload(tmp, str(local_path), overwrite=True), f"uploading {uri}")
        if client.status(path, strict=False) is not None:
            client.delete(path)
        client.rename(tmp, path)

    def read_bytes(self, uri: str) -> bytes:
        """The whole content of file ``uri``."""
        kind, path = self._split(uri)
        try:
            if kind == "file":
                return Path(path).read_bytes()

            def read() -> bytes:
                with self._hdfs().read(path) as reader:
                    return reader.read()

            return self._retry(read, f"reading {uri}")
        except (OSError, Exception) as exc:  # hdfs raises HdfsError
            if isinstance(exc, StorageError):
                raise
            raise StorageError(f"cannot read {uri}: {exc}") from exc

    def get_file(self, uri: str, local_path: Path) -> None:
        """Copy file ``uri`` to a local path."""
        local_path.parent.mkdir(parents=True, exist_ok=True)
        local_path.write_bytes(self.read_bytes(uri))

    def list(self, uri: str) -> list[FileInfo]:
        """Entries directly under folder ``uri`` (empty if it does not exist)."""
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
            return Path(path).stat().st_size
        return int(self._hdfs().status(path)["length"])

    def delete(self, uri: str, recursive: bool = False) -> None:
        """Delete ``uri`` (a folder only when ``recursive``)."""
        kind, path = self._split(uri)
        if kind == "file":
            p = Path(path)
            if p.is_dir():
                if not recursive:
                    raise StorageError(f"{uri} is a folder: pass recursive=True")
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
            return
        self._hdfs().delete(path, recursive=recursive)

    def sha256(self, uri: str) -> str:
        """SHA-256 of file ``uri`` (hex)."""
        return hashlib.sha256(self.read_bytes(uri)).hexdigest()
