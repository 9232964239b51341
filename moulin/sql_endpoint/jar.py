"""The endpoint's Java classes (``java/moulin/sqlendpoint/*.java``), compiled with javac.

Spark's Thrift server calls a ``PasswdAuthenticationProvider`` to check passwords and
Spark's analyzer calls check rules given by ``spark.sql.extensions``: both are JVM
classes.  moulin ships their source and compiles it, against the jars of the installed
pyspark, into ``<home>/sql-endpoint/moulin-sql-endpoint-<digest>.jar`` the first time
the endpoint starts (``bin/setup`` does it too).  The digest covers the sources and the
pyspark version, so a changed source or Spark is compiled again (the older jar removed);
a jar already built is reused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from moulin.errors import MoulinError
from moulin.settings import Settings

SOURCES = Path(__file__).resolve().parent / "java"


class JavaBuildError(MoulinError):
    """The endpoint's Java classes cannot be compiled; the message says why and what to do."""


def pyspark_jars_dir() -> Path:
    """The ``jars`` folder of the installed pyspark (Spark, Hive JDBC, Beeline, Thrift)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent / "jars"


def _tool(name: str) -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / name).exists():
        return str(Path(home) / "bin" / name)
    found = shutil.which(name)
    if not found:
        raise JavaBuildError(
            f"{name} was not found (JAVA_HOME/bin or PATH): install a JDK 17 "
            "(Debian: openjdk-17-jdk-headless, as bin/setup does)"
        )
    return found


def sources() -> list[Path]:
    """The Java sources, sorted."""
    return sorted(SOURCES.rglob("*.java"))


def digest() -> str:
    """A digest of the sources and the pyspark version (names the jar)."""
    import pyspark

    h = hashlib.sha256(pyspark.__version__.encode())
    for path in sources():
        h.update(path.relative_to(SOURCES).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def jar_path(settings: Settings) -> Path:
    """Where the compiled jar of these sources lives."""
    return settings.home / "sql-endpoint" / f"moulin-sql-endpoint-{digest()}.jar"


def build_jar(settings: Settings) -> Path:
    """The compiled jar, built now unless it exists (JavaBuildError when javac fails)."""
    target = jar_path(settings)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        classes = Path(tmp) / "classes"
        classes.mkdir()
        compiled = subprocess.run(
            [
                _tool("javac"),
                "-nowarn",
                "-encoding",
                "UTF-8",
                "--release",
                "17",
                "-d",
                str(classes),
                "-cp",
                f"{pyspark_jars_dir()}/*",
                *map(str, sources()),
            ],
            capture_output=True,
            text=True,
        )
        if compiled.returncode != 0:
            raise JavaBuildError(f"javac failed on {SOURCES}:\n{(compiled.stdout + compiled.stderr)[-3000:]}")
        partial = Path(tmp) / target.name
        packed = subprocess.run(
            [_tool("jar"), "--create", "--file", str(partial), "-C", str(classes), "."],
            capture_output=True,
            text=True,
        )
        if packed.returncode != 0:
            raise JavaBuildError(f"jar failed:\n{(packed.stdout + packed.stderr)[-3000:]}")
        os.replace(partial, target)  # complete, or not there
    for stale in target.parent.glob("moulin-sql-endpoint-*.jar"):
        if stale != target:  # of older sources (a running endpoint keeps its open file)
            stale.unlink(missing_ok=True)
    return target
