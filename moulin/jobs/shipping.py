"""Job packages: moulin's code and a Python environment, shipped with a Spark job.

On a cluster (profile ``cluster``, or ``spark.ship_code`` on) the executors run on
hosts that have neither moulin nor moulin's virtualenvs.  ``moulin package``
builds, under :attr:`moulin.settings.Settings.job_packages_dir`:

* ``moulin-code-<digest>.zip``: the ``moulin`` package folder (no tests, no
  ``__pycache__``), put on the executors' ``PYTHONPATH``;
* ``<environment>-env-<digest>.tar.gz``: the environment's virtualenv (``.venv`` for
  platform stages, ``.venv-train`` for training stages) without moulin (the
  editable install's ``.pth``, finder and ``dist-info`` are left out) and without
  ``pyspark/jars`` (the cluster's own Spark runs the JVM side).  Gzip level 1
  (fast; torch's libraries still shrink to about a third).  Not a plain ``.tar``:
  Spark 4.0 unpacks ``.tar`` with Java code that drops the files' permissions
  (SPARK-38632: ``./env/bin/python`` would not be executable) and refuses links,
  while ``.tar.gz`` goes through Hadoop's ``FileUtil.unTar`` (the ``tar`` command).

Building is idempotent: the code zip is named by the digest of the package's
files and an environment archive by the digest of the environment's lock stamp
(``<venv>/.moulin-stamp``, written by ``bin/setup``; without one, the installed
distributions' names and versions), so an unchanged one is reused.

A virtualenv links its interpreter to the base Python (``bin/python3.11`` ->
``/root/.pyenv/.../python3.11``); the archive holds a copy of that file (as ``python -m venv --copies``
would).  The copy still finds its standard library and ``libpython`` at the
base Python's paths (``pyvenv.cfg``'s ``home``, the binary's RUNPATH): the hosts
need the same base Python (3.11) at the same path, as with ``venv-pack``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import moulin
from moulin.errors import MoulinError
from moulin.jobs.registry import Environment
from moulin.settings import Settings

#: Name the environment archive is unpacked under in each executor's working folder.
SHIPPED_ENV_ALIAS = "env"
#: The executors' Python: inside the unpacked environment archive.
SHIPPED_PYTHON = f"./{SHIPPED_ENV_ALIAS}/bin/python"
#: The stamp ``bin/setup`` writes into a virtualenv after installing its lock file.
STAMP_FILE = ".moulin-stamp"
#: Bump when what goes into an archive changes (exclusions), so old archives are rebuilt.
ARCHIVE_LAYOUT = "4"
#: Gzip level of environment archives: 1 is about 45 MB/s and keeps a third of torch's bytes.
COMPRESS_LEVEL = 1

Log = Callable[[str], None]


class PackagingError(MoulinError):
    """A job package cannot be built (missing environment, unreadable files)."""


@dataclass(frozen=True)
class JobPackages:
    """What a job ships: moulin's code and its environment's archive."""

    environment: Environment
    code_zip: Path
    env_archive: Path


def environment_root(python: str) -> Path:
    """The virtualenv folder of interpreter ``python`` (the folder holding ``pyvenv.cfg``)."""
    root = Path(python).absolute().parent.parent
    if not (root / "pyvenv.cfg").is_file():
        raise PackagingError(
            f"{python} is not the Python of a virtualenv ({root / 'pyvenv.cfg'} is missing): "
            "job environments are shipped from virtualenvs; run bin/setup or set MOULIN_TRAINING_PYTHON"
        )
    return root


def environment_python(settings: Settings, environment: Environment) -> str:
    """The local interpreter of ``environment``: this process's for platform, the training one's else."""
    return settings.training_python_path if environment == "training" else sys.executable


def _code_files(package: Path) -> Iterator[Path]:
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
            yield path


def _moulin_package() -> Path:
    return Path(moulin.__file__).resolve().parent


def build_code_zip(settings: Settings, log: Log = print) -> Path:
    """The zip of the ``moulin`` package for the executors (built if its content changed)."""
    package = _moulin_package()
    files = list(_code_files(package))
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    out_dir = settings.job_packages_dir
    target = out_dir / f"moulin-code-{digest.hexdigest()[:12]}.zip"
    if target.is_file():
        log(f"moulin package: code {target.name} is up to date")
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            zf.write(path, f"moulin/{path.relative_to(package)}")
    partial.replace(target)  # older zips stay: small, and a running job may be shipping one
    log(f"moulin package: code {target} ({len(files)} files, {target.stat().st_size / 1e6:.1f} MB)")
    return target


def _environment_key(root: Path) -> str:
    stamp = root / STAMP_FILE
    digest = hashlib.sha256(ARCHIVE_LAYOUT.encode() + b"\0" + str(root).encode() + b"\0")
    if stamp.is_file():
        digest.update(stamp.read_bytes())
    else:
        site = sorted(root.glob("lib/python*/site-packages/*.dist-info"))
        digest.update("\n".join(p.name for p in site).encode())
    return digest.hexdigest()[:12]


def _excluded(relative: str) -> bool:
    """Whether an environment's entry (path relative to its root) stays out of the archive.

    A folder left out is left out with all it holds (``tarfile`` does not descend into it).
    """
    parts = relative.split("/")
    if parts == ["bin", "moulin"]:
        return True  # the console script of moulin's editable install
    if len(parts) < 4 or parts[0] != "lib" or parts[2] != "site-packages":
        return False
    name = parts[4] if parts[3] == "__pycache__" and len(parts) > 4 else parts[3]
    if name.startswith(("__editable__.moulin-", "__editable___moulin_")):
        return True  # the editable install of moulin: executors get the code zip instead
    if name.startswith("moulin-") and name.endswith((".dist-info", ".egg-info", ".egg-link")):
        return True
    return parts[3:5] == ["pyspark", "jars"]  # the JVM side: the cluster's Spark provides it


def build_env_archive(settings: Settings, environment: Environment, log: Log = print) -> Path:
    """The ``.tar.gz`` of ``environment``'s virtualenv without moulin (reused while its stamp is unchanged)."""
    root = environment_root(environment_python(settings, environment))
    out_dir = settings.job_packages_dir
    target = out_dir / f"{environment}-env-{_environment_key(root)}.tar.gz"
    if target.is_file():
        log(f"moulin package: {environment} environment {target.name} is up to date")
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    log(f"moulin package: archiving the {environment} environment {root} (a few GB: may take a minute)")
    count = size = 0

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        nonlocal count, size
        if _excluded(info.name):
            return None
        if info.issym():
            source = root / info.name
            pointed = source.resolve()
            if not pointed.is_relative_to(root.resolve()):
                # A link leaving the environment (bin/python3.11 -> the base interpreter):
                # store the file it points to (as `venv --copies` does), so the archive
                # holds no link out of itself (Spark's Java unpacker refuses those).
                if not pointed.is_file():
                    raise PackagingError(f"{source} links to {pointed}, which is not a file: recreate {root}")
                info.type, info.linkname = tarfile.REGTYPE, ""
                info.size, info.mode = pointed.stat().st_size, pointed.stat().st_mode & 0o7777
        count += 1
        size += info.size
        if count % 20000 == 0:
            log(f"moulin package:   {count} files, {size / 1e9:.2f} GB")
        return info

    try:
        with tarfile.open(partial, "w:gz", compresslevel=COMPRESS_LEVEL, format=tarfile.PAX_FORMAT) as tar:
            # Entries named from the top (bin/python, lib/...): Spark's unpacking refuses "./".
            for entry in sorted(root.iterdir()):
                tar.add(entry, arcname=entry.name, filter=keep)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise PackagingError(f"cannot archive {root} into {partial}: {exc}") from None
    partial.replace(target)
    _remove_others(out_dir, f"{environment}-env-*.tar*", target)
    log(
        f"moulin package: {environment} environment {target} ({count} files, {size / 1e9:.2f} GB, "
        f"{target.stat().st_size / 1e9:.2f} GB compressed)"
    )
    return target


def _remove_others(folder: Path, pattern: str, keep: Path) -> None:
    """Delete outdated environment archives (hundreds of MB each) once a new one is built.

    A job submitted with the old one before keeps its own copy once Spark has
    fetched it; submit no job while the environment itself is being reinstalled.
    """
    for other in folder.glob(pattern):
        if other != keep:
            other.unlink(missing_ok=True)


def job_packages(settings: Settings, environment: Environment, log: Log = print) -> JobPackages:
    """The packages a job of ``environment`` ships, built or reused."""
    return JobPackages(
        environment=environment,
        code_zip=build_code_zip(settings, log),
        env_archive=build_env_archive(settings, environment, log),
    )
