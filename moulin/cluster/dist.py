"""Obtain the Apache Hadoop 2.7.3 jars for the local HDFS from registry packages only.

No Hadoop distribution is in the package registries, but the source package of
``pyspark==2.4.8`` carries the Hadoop 2.7.3 jars (NameNode, DataNode, FsShell).
WebHDFS needs Jersey 1, which those jars lack: it comes from Debian's
``libjersey1-*-java`` packages (``/usr/share/java``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from moulin.errors import MoulinError
from moulin.settings import Settings

PYSPARK_SDIST = "pyspark==2.4.8"
DEBIAN_JAVA_DIR = Path("/usr/share/java")
JERSEY1_JARS = (
    "jersey1-core.jar",
    "jersey1-server.jar",
    "jersey1-servlet.jar",
    "jersey1-json.jar",
    "jsr311-api.jar",
)
DEBIAN_PACKAGES = (
    "libjersey1-core-java",
    "libjersey1-server-java",
    "libjersey1-servlet-java",
    "libjersey1-json-java",
    "libjsr311-api-java",
)
# Jersey 2 / JAX-RS 2 break WebHDFS (AbstractMethodError in UriBuilderImpl);
# Spark 2.4, Scala and Hive jars are not needed by HDFS daemons.
_EXCLUDED_PREFIXES = (
    "jersey-",
    "javax.ws.rs-api-",
    "spark-",
    "scala-",
    "hive-",
    "breeze",
    "kubernetes-",
    "mesos-",
    "datanucleus-",
    "derby-",
    "calcite-",
    "orc-",
    "arrow-",
)


class DistributionError(MoulinError):
    """The Hadoop jars or their Debian companions are missing."""


def hadoop_jars(settings: Settings) -> list[Path]:
    """Return the jars of the HDFS daemons' classpath, fetching them if absent."""
    jar_dir = settings.hadoop_dist_dir / "jars"
    if not (jar_dir / "hadoop-hdfs-2.7.3.jar").exists():
        fetch_hadoop_jars(jar_dir)
    jars = sorted(jar_dir.glob("*.jar"))
    return jars + jersey1_jars()


def jersey1_jars() -> list[Path]:
    """Debian's Jersey 1 jars, needed by WebHDFS; a clear error if not installed."""
    missing = [name for name in JERSEY1_JARS if not (DEBIAN_JAVA_DIR / name).exists()]
    if missing:
        raise DistributionError(
            f"WebHDFS needs Jersey 1 jars missing from {DEBIAN_JAVA_DIR}: {', '.join(missing)}. "
            f"Install them with: apt-get install -y {' '.join(DEBIAN_PACKAGES)}"
        )
    return [DEBIAN_JAVA_DIR / name for name in JERSEY1_JARS]


def fetch_hadoop_jars(jar_dir: Path) -> None:
    """Download the pyspark 2.4.8 source package and extract its Hadoop-side jars."""
    print(f"moulin: fetching Hadoop 2.7.3 jars ({PYSPARK_SDIST} source package, 220 MB)", flush=True)
    jar_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=jar_dir.parent) as tmp:
        tmp_path = Path(tmp)
        tarball = _download_sdist(tmp_path)
        staging = tmp_path / "jars"
        staging.mkdir()
        with tarfile.open(tarball) as archive:
            for member in archive.getmembers():
                name = Path(member.name).name
                if "/deps/jars/" not in member.name or not name.endswith(".jar"):
                    continue
                if name.startswith(_EXCLUDED_PREFIXES):
                    continue
                source = archive.extractfile(member)
                if source is None:
                    continue
                with open(staging / name, "wb") as out:
                    shutil.copyfileobj(source, out)
        if not (staging / "hadoop-hdfs-2.7.3.jar").exists():
            raise DistributionError(f"{tarball.name} holds no hadoop-hdfs-2.7.3.jar")
        if (jar_dir / "hadoop-hdfs-2.7.3.jar").exists():
            return  # another moulin process fetched them meanwhile: daemons may be using those
        if jar_dir.exists():
            shutil.rmtree(jar_dir)
        staging.rename(jar_dir)  # atomic: a half-extracted folder is never used


def _download_sdist(dest: Path) -> Path:
    # pip builds the source package's metadata while downloading; its setup.py
    # needs setuptools < 81 and wheel, so do it in a throwaway environment.
    venv = dest / "venv"
    _quiet([sys.executable, "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--quiet"]
    _quiet([*pip, "install", "setuptools<81", "wheel"])
    _quiet([*pip, "download", "--no-deps", "--no-build-isolation", PYSPARK_SDIST, "-d", str(dest)])
    found = sorted(dest.glob("pyspark-2.4.8.tar.gz"))
    if not found:
        raise DistributionError(f"pip did not download {PYSPARK_SDIST} into {dest}")
    return found[0]


def _quiet(command: list[str]) -> None:
    """Run a setup command, showing its output only when it fails."""
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise DistributionError(
            f"`{' '.join(command[:6])} ...` failed with code {result.returncode}:\n"
            f"{(result.stdout + result.stderr)[-3000:]}"
        )
