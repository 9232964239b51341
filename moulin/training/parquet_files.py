"""The Parquet files of a pinned snapshot, opened where they lie: local files by
path, ``hdfs://`` files through WebHDFS range reads (a seekable file object), so
a reader fetches the footer and the row groups it needs and nothing is copied to
local disk.  (pyarrow's ``HadoopFileSystem`` needs libhdfs and a JVM, which the
training environment does not have.)"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from moulin.storage import WarehouseFS
from moulin.training import TrainingError


def local_path(uri: str) -> str | None:
    """The local path of a ``file://`` URI or plain path; None for other schemes."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return unquote(parsed.path) if parsed.scheme else uri
    return None


class WebHdfsFile(io.RawIOBase):
    """A read-only, seekable view of one HDFS file: every read is a WebHDFS
    ``OPEN`` with ``offset`` and ``length`` (wrap it in :class:`io.BufferedReader`)."""

    def __init__(self, fs: Any, uri: str, size: int | None = None) -> None:
        super().__init__()
        self._fs = fs
        self._uri = uri
        self._path = urlparse(uri).path
        self._size = int(size) if size is not None else fs.size(uri)
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer) -> int:
        length = min(len(buffer), self._size - self._position)
        if length <= 0:
            return 0
        client = self._fs._hdfs()

        def read() -> bytes:
            with client.read(self._path, offset=self._position, length=length) as reader:
                return reader.read()

        data = self._fs._retry(read, f"reading {self._uri} at byte {self._position}")
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)


#: Files a thread keeps open for :meth:`ParquetOpener.opened` (the most recently used).
HANDLES_PER_THREAD = 4


@dataclass
class ParquetOpener:
    """Opens the files of one split for reading (local paths, or WebHDFS for ``hdfs://``)."""

    uris: tuple[str, ...]
    settings: Any = None

    def __post_init__(self) -> None:
        self.uris = tuple(self.uris)
        self._fs = None
        self._metadata: dict[int, Any] = {}
        self._handles = threading.local()

    def __getstate__(self) -> dict:  # process pools: no client, no cached footers, no handles
        return {"uris": self.uris, "settings": self.settings}

    def __setstate__(self, state: dict) -> None:
        self.uris, self.settings = state["uris"], state["settings"]
        self._fs, self._metadata, self._handles = None, {}, threading.local()

    def _source(self, uri: str):
        path = local_path(uri)
        if path is not None:
            return path
        if urlparse(uri).scheme != "hdfs":
            raise TrainingError(f"cannot read {uri}: training reads file:// and hdfs:// files")
        if self.settings is None:
            raise TrainingError(f"reading {uri} needs the settings (the warehouse's WebHDFS address)")
        if self._fs is None:
            self._fs = WarehouseFS(self.settings)
        return io.BufferedReader(WebHdfsFile(self._fs, uri), buffer_size=1 << 20)

    def open(self, file: int):
        """A ``pyarrow.parquet.ParquetFile`` of file number ``file`` (footer read once, then cached).
        Each call opens its own handle: callers in different threads do not share one."""
        import pyarrow.parquet as pq

        uri = self.uris[file]
        try:
            parquet = pq.ParquetFile(self._source(uri), metadata=self._metadata.get(file))
        except TrainingError:
            raise
        except Exception as exc:
            raise TrainingError(f"cannot open the Parquet file {uri}: {exc}") from exc
        self._metadata.setdefault(file, parquet.metadata)
        return parquet

    def opened(self, file: int):
        """The calling thread's open ``ParquetFile`` of file number ``file``, opened on first
        use and kept (up to :data:`HANDLES_PER_THREAD` per thread, the least recently used
        closed first): a row group read through a kept handle costs less than one through a
        new handle.  Use it from one thread at a time, as the loader's workers do."""
        handles = getattr(self._handles, "files", None)
        if handles is None:
            handles = self._handles.files = OrderedDict()
        parquet = handles.get(file)
        if parquet is None:
            parquet = handles[file] = self.open(file)
            while len(handles) > HANDLES_PER_THREAD:
                handles.popitem(last=False)[1].close()
        else:
            handles.move_to_end(file)
        return parquet
