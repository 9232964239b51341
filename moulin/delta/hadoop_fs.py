"""File operations on any Hadoop file system (file://, hdfs://) through Spark's JVM.

Data files are written by Spark, so they are moved, listed and read back with the
same Hadoop ``FileSystem`` client (py4j), whatever the profile.  ``rename`` is
atomic on HDFS and on the local file system.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FileStatus:
    """A file found by a listing: its path relative to the listed folder."""

    uri: str
    relative: str
    size: int
    modification_time: int  # milliseconds since the epoch
    is_dir: bool = False


class HadoopFS:
    """The Hadoop ``FileSystem`` of one table URI."""

    def __init__(self, spark, uri: str) -> None:
        self._jvm = spark._jvm
        self._Path = self._jvm.org.apache.hadoop.fs.Path
        conf = spark._jsc.hadoopConfiguration()
        self.fs = self._Path(uri).getFileSystem(conf)

    def _p(self, uri: str):
        return self._Path(uri)

    def exists(self, uri: str) -> bool:
        return bool(self.fs.exists(self._p(uri)))

    def mkdirs(self, uri: str) -> None:
        self.fs.mkdirs(self._p(uri))

    def rename(self, src: str, dst: str) -> bool:
        return bool(self.fs.rename(self._p(src), self._p(dst)))

    def delete(self, uri: str, recursive: bool = False) -> bool:
        return bool(self.fs.delete(self._p(uri), recursive))

    def list_dir(self, uri: str) -> list[FileStatus]:
        """Direct children of folder ``uri`` (empty when it does not exist)."""
        path = self._p(uri)
        if not self.fs.exists(path):
            return []
        base = uri.rstrip("/")
        out = []
        for st in self.fs.listStatus(path):
            name = st.getPath().getName()
            out.append(
                FileStatus(f"{base}/{name}", name, st.getLen(), st.getModificationTime(), st.isDirectory())
            )
        return out

    def list_files(self, uri: str) -> list[FileStatus]:
        """All files under folder ``uri``, recursively (empty when it does not exist)."""
        path = self._p(uri)
        if not self.fs.exists(path):
            return []
        root = str(self.fs.makeQualified(path).toString()).rstrip("/")
        base = uri.rstrip("/")
        out = []
        it = self.fs.listFiles(path, True)
        while it.hasNext():
            st = it.next()
            full = str(st.getPath().toString())
            rel = full[len(root) + 1 :] if full.startswith(root + "/") else st.getPath().getName()
            out.append(FileStatus(f"{base}/{rel}", rel, st.getLen(), st.getModificationTime()))
        return out

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Create (or replace) the small file ``uri`` with ``data``."""
        stream = self.fs.create(self._p(uri), True)
        try:
            for start in range(0, len(data), _CHUNK):
                stream.write(bytearray(data[start : start + _CHUNK]))
        finally:
            stream.close()

    def put_if_absent(self, src: str, dst: str) -> bool:
        """Move file ``src`` to ``dst`` only if ``dst`` does not exist, atomically.

        HDFS ``rename`` never replaces an existing file; on the local file system
        Hadoop's rename may replace it, so a hard link is made instead.
        """
        if src.startswith("file:"):
            import os
            from urllib.parse import urlparse

            try:
                os.link(urlparse(src).path, urlparse(dst).path)
            except FileExistsError:
                return False
            finally:
                self.delete(src)
            return True
        return bool(self.fs.rename(self._p(src), self._p(dst)))

    def read_bytes(self, uri: str) -> bytes:
        """The whole (small) file ``uri``."""
        size = int(self.fs.getFileStatus(self._p(uri)).getLen())
        return self.read_tail(uri, size, size)

    def read_tail(self, uri: str, size: int, length: int) -> bytes:
        """The last ``length`` bytes of the file ``uri`` of ``size`` bytes.

        Read in chunks of at most 4 KiB: py4j returns a ``byte[]`` of a few KiB in
        about 1 ms, but one of 8 KiB or more stalls for ~40 ms on loopback TCP.
        """
        length = min(length, size)
        start = size - length
        jvm = self._jvm
        stream = self.fs.open(self._p(uri))
        try:
            stream.seek(start)
            parts = []
            remaining = length
            while remaining > 0:
                n = min(_CHUNK, remaining)
                parts.append(bytes(jvm.org.apache.commons.io.IOUtils.toByteArray(stream, n)))
                remaining -= n
            return b"".join(parts)
        finally:
            stream.close()


_CHUNK = 4096
