"""Finding declared use cases: every ``<folder>/<name>/usecase.py`` defining ``USECASE``
(a :class:`~moulin.usecases.kit.declaration.UseCase` named as its folder), in each of
``Settings.usecase_dirs``: moulin's own ``moulin/usecases/`` (imported as
``moulin.usecases.<name>.usecase``), then this installation's (``Settings.own_usecases_dir``,
written by ``moulin usecase new``; imported from the file as ``moulin_usecases.<name>``).
Like Kedro's ``find_pipelines()``: nothing lists them by hand."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import types
from pathlib import Path

from moulin.settings import Settings, load_settings
from moulin.usecases.kit.declaration import UseCase
from moulin.usecases.kit.parts import UseCaseError

log = logging.getLogger(__name__)

DECLARATION_FILE = "usecase.py"
#: The package the use cases of ``own_usecases_dir`` are imported under.
OWN_PACKAGE = "moulin_usecases"


def usecase_files(settings: Settings | None = None) -> dict[str, Path]:
    """Every ``usecase.py`` by use-case name (moulin's own first; a name already found is skipped)."""
    found: dict[str, Path] = {}
    for folder in (settings or load_settings()).usecase_dirs:
        for path in sorted(folder.glob(f"*/{DECLARATION_FILE}")):
            found.setdefault(path.parent.name, path)
    return found


def _module_name(path: Path, settings: Settings) -> str:
    if path.parent.parent.resolve() == settings.usecases_dir.resolve():
        return f"moulin.usecases.{path.parent.name}.usecase"
    return f"{OWN_PACKAGE}.{path.parent.name}"


def _import(path: Path, name: str) -> types.ModuleType:
    """The module of ``path``: imported once, again when its file is another or has changed."""
    if not name.startswith(f"{OWN_PACKAGE}."):
        return importlib.import_module(name)
    loaded = sys.modules.get(name)
    stamp = (str(path.resolve()), path.stat().st_mtime_ns)
    if loaded is not None and getattr(loaded, "__moulin_stamp__", None) == stamp:
        return loaded
    if OWN_PACKAGE not in sys.modules:
        package = types.ModuleType(OWN_PACKAGE)
        package.__path__ = []
        sys.modules[OWN_PACKAGE] = package
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    module.__moulin_stamp__ = stamp  # type: ignore[attr-defined]
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_usecase_file(path: Path, settings: Settings | None = None) -> UseCase:
    """The ``USECASE`` of ``path`` (imported once per process); :class:`UseCaseError`
    naming the file when it fails to import, lacks ``USECASE`` or names another folder."""
    settings = settings or load_settings()
    try:
        module = _import(path, _module_name(path, settings))
    except UseCaseError:
        raise
    except Exception as exc:
        raise UseCaseError(
            f"{path}: cannot import the use case: {type(exc).__name__}: {exc} — fix the file"
        ) from exc
    usecase = getattr(module, "USECASE", None)
    if not isinstance(usecase, UseCase):
        raise UseCaseError(
            f"{path}: defines no USECASE (got {type(usecase).__name__}) — set USECASE = UseCase(...) "
            "(moulin.usecases.kit)"
        )
    if usecase.name != path.parent.name:
        raise UseCaseError(
            f"{path}: USECASE.name {usecase.name!r} differs from its folder {path.parent.name!r} — rename one"
        )
    return usecase


def find_usecases(settings: Settings | None = None, strict: bool = True) -> dict[str, UseCase]:
    """Every declared use case by name.  ``strict=False`` logs a use case that does not
    load and goes on (the DAG folder, the stage registry), instead of raising."""
    settings = settings or load_settings()
    out: dict[str, UseCase] = {}
    for name, path in usecase_files(settings).items():
        try:
            out[name] = load_usecase_file(path, settings)
        except UseCaseError as exc:
            if strict:
                raise
            log.error("use case %s not loaded: %s", name, exc)
    return out


def get_usecase(name: str, settings: Settings | None = None) -> UseCase:
    """The declared use case ``name`` (:class:`UseCaseError` naming the known ones)."""
    settings = settings or load_settings()
    files = usecase_files(settings)
    if name not in files:
        dirs = " or ".join(str(d) for d in settings.usecase_dirs)
        raise UseCaseError(
            f"no use case {name!r} (no {name}/{DECLARATION_FILE} under {dirs}); known: {', '.join(files) or 'none'}"
        )
    return load_usecase_file(files[name], settings)


def register_all_stages(settings: Settings | None = None) -> None:
    """Register the stages of every use case that loads (the job entry point's registry)."""
    for usecase in find_usecases(settings, strict=False).values():
        usecase.register_stages()


def usecase_dags(settings: Settings | None = None, fileloc: str | None = None) -> dict:
    """The DAG of every use case that loads, by DAG id (``dags/usecases.py``, the file Airflow
    parses them from, ``fileloc``); a use case whose DAG cannot be built is logged and left out."""
    dags = {}
    for name, usecase in find_usecases(settings, strict=False).items():
        try:
            dags[usecase.dag_name] = usecase.dag(fileloc)
        except Exception as exc:  # noqa: BLE001 - one broken use case must not hide the others
            log.error("no DAG for use case %s: %s", name, exc)
    return dags
