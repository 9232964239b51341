"""HDFS access zones: who may read which folders of the warehouse.

The local NameNode checks permissions (``dfs.permissions.enabled``) the POSIX way:
an owner, a group and a mode on every file and folder, and *execute* on every
folder above a path to reach it.  Each top-level folder of the warehouse
belongs to a zone, and a zone gives it, and everything under it, one owner,
one group and one mode:

* ``raw`` (landed files, as received): group ``data-engineering``, 750;
* ``quarantine`` (rows refused at bronze): group ``data-engineering``, 750;
* curated -- ``bronze``, ``silver``, ``gold``, ``features``, ``reports``,
  ``models``, ``views`` (analysts' views of personal tables): group ``analysts``, 750;
* ops -- ``ops`` (audit trail, privacy requests, register), ``quality``
  (results may quote rows), ``runs``, ``_health``: group ``privacy``, 750;
* personal -- the tables holding personal data, in any layer (given by the
  caller): group ``privacy``, 750.

Folders get the mode (``rwxr-x---``), files the mode without execute bits
(``rw-r-----``).  The owner is the user moulin acts as (``settings.hdfs_user``),
which writes the data.  The warehouse root itself gets ``755`` (every zone is
reached through it); top-level folders of no zone are left as they are.

A personal-data table keeps the ``privacy`` group even inside a curated layer:
an analyst reads ``silver/flights`` but not ``silver/customers``.  Its folder is
set before the zones and skipped by them, so it is never readable by the
layer's group, not even for a moment.

Entries written after a run inherit the group of their folder (HDFS does so)
and stay closed to others by the zone folder's mode; Spark's writes also get
the ``hdfs.umask`` (027: ``750``/``640``).  But a *new* personal-data table
inherits its layer's group: it is readable by analysts until
:func:`apply_permissions` runs, so run it right after such a table's first
write.  It is idempotent (it changes only what differs).  Changing an owner
needs the HDFS superuser; the owner itself may change the group (to one of its
own groups) and the mode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from moulin.errors import MoulinError
from moulin.settings import Settings
from moulin.storage import WarehouseFS, webhdfs_client

if TYPE_CHECKING:
    from moulin.contracts import Contract

__all__ = [
    "PERSONAL",
    "ROOT_MODE",
    "ZONES",
    "AccessError",
    "Applied",
    "Zone",
    "apply_permissions",
    "personal_table_uris",
]


class AccessError(MoulinError):
    """Permissions could not be set (not the superuser or the owner, not HDFS...)."""


@dataclass(frozen=True)
class Zone:
    """Folders of the warehouse that share one owner, group and mode."""

    name: str
    folders: tuple[str, ...]  # paths under the warehouse root
    group: str
    mode: int = 0o750  # of folders; files get it without the execute bits
    owner: str = ""  # empty: the owner apply_permissions is given (settings.hdfs_user)
    description: str = ""

    @property
    def file_mode(self) -> int:
        return self.mode & 0o666


ZONES: tuple[Zone, ...] = (
    Zone("raw", ("raw",), "data-engineering", description="landed source files, as received"),
    Zone("quarantine", ("quarantine",), "data-engineering", description="rows refused at bronze"),
    Zone(
        "curated",
        ("bronze", "silver", "gold", "features", "reports", "models", "views"),
        "analysts",
        description="the curated layers and what is built from them",
    ),
    Zone(
        "ops",
        ("ops", "quality", "runs", "_health"),
        "privacy",
        description="audit trail, quality results (may quote rows), run records",
    ),
)

#: Tables holding personal data (given to apply_permissions), whatever their layer.
PERSONAL = Zone("personal", (), "privacy", description="tables holding personal data")

#: Mode of the warehouse root: everyone may reach the zones (which then check).
ROOT_MODE = 0o755


@dataclass(frozen=True)
class Applied:
    """What :func:`apply_permissions` set on one folder (recursively)."""

    zone: str
    uri: str
    owner: str
    group: str
    mode: str  # of folders, octal ("750"); files get file_mode
    file_mode: str
    entries: int  # files and folders seen
    changed: int  # of which owner, group or mode was changed

    def line(self) -> str:
        return (
            f"{self.zone:<10} {self.uri}  {self.owner}:{self.group} dirs {self.mode} files {self.file_mode}"
            f"  ({self.changed} of {self.entries} changed)"
        )


def _applied(zone: Zone, uri: str, owner: str, entries: int, changed: int) -> Applied:
    return Applied(
        zone.name, uri, owner, zone.group, f"{zone.mode:o}", f"{zone.file_mode:o}", entries, changed
    )


def personal_table_uris(settings: Settings, contracts: Iterable[Contract]) -> list[str]:
    """URIs of the tables whose contract declares personal data."""
    return [settings.table_uri(c.table) for c in contracts if c.personal_data]


def _path_of(settings: Settings, uri: str) -> str:
    """The HDFS path of ``uri`` (a URI, or a path under the warehouse)."""
    if "://" not in uri:
        uri = settings.table_uri(uri)
    parsed = urlparse(uri)
    if parsed.scheme != "hdfs":
        raise AccessError(
            f"{uri}: HDFS permissions are set on hdfs:// URIs only (profile hdfs-local or cluster)"
        )
    path = "/" + parsed.path.strip("/")
    if ".." in path.split("/"):
        raise AccessError(f"{uri}: a path with '..' is not allowed")
    return path


def _hdfs_error(exc: Exception) -> bool:
    from hdfs.util import HdfsError

    return isinstance(exc, HdfsError)


class _Setter:
    """Walks folders through WebHDFS and sets owner, group and mode where they differ."""

    def __init__(self, settings: Settings, as_user: str) -> None:
        self.as_user = as_user
        self.client = webhdfs_client(settings, as_user)
        self._retry = WarehouseFS._retry

    def _call(self, action, what: str):
        try:
            return self._retry(action, what)
        except Exception as exc:
            if not _hdfs_error(exc):
                raise
            hint = ""
            if getattr(exc, "exception", None) == "AccessControlException":
                hint = (
                    f" (acting as HDFS user {self.as_user!r}: run as the HDFS superuser, e.g. "
                    "MOULIN_HDFS_USER=<the NameNode's user>, or as the owner of these files)"
                )
            raise AccessError(f"{what}: {exc}{hint}") from exc

    def walk(self, path: str, skip: frozenset[str]) -> Iterator[tuple[str, dict]]:
        """``path`` and everything under it, parents before children, except ``skip`` subtrees."""
        status = self._call(lambda: self.client.status(path, strict=False), f"status of {path}")
        if status is None:
            return
        yield path, status
        folders = [path] if status["type"] == "DIRECTORY" else []
        while folders:
            folder = folders.pop()
            listing = self._call(lambda f=folder: self.client.list(f, status=True), f"listing {folder}")
            for name, st in listing:
                child = f"{folder.rstrip('/')}/{name}"
                if child in skip:
                    continue
                yield child, st
                if st["type"] == "DIRECTORY":
                    folders.append(child)

    def set(self, path: str, status: dict, owner: str, group: str, mode: int) -> bool:
        """Give ``path`` this owner, group and mode; True if anything changed."""
        changed = False
        if status.get("owner") != owner or status.get("group") != group:
            self._call(
                lambda: self.client.set_owner(path, owner=owner, group=group),
                f"setting owner {owner}:{group} of {path}",
            )
            changed = True
        if int(status.get("permission", "0"), 8) != mode:
            self._call(
                lambda: self.client.set_permission(path, f"{mode:o}"),
                f"setting mode {mode:o} of {path}",
            )
            changed = True
        return changed

    def apply(self, zone: Zone, path: str, owner: str, skip: frozenset[str]) -> tuple[int, int]:
        """Set ``zone``'s owner, group and modes on ``path`` and under it: (entries, changed)."""
        entries = changed = 0
        for entry, status in self.walk(path, skip):
            mode = zone.mode if status["type"] == "DIRECTORY" else zone.file_mode
            changed += self.set(entry, status, owner, zone.group, mode)
            entries += 1
        return entries, changed


def apply_permissions(
    settings: Settings,
    personal_tables: list[str],
    say: Callable[[str], None] = print,
    *,
    owner: str | None = None,
    as_user: str | None = None,
    zones: tuple[Zone, ...] = ZONES,
) -> list[Applied]:
    """Set owner, group and mode of the warehouse's zones and personal-data tables.

    ``personal_tables``: URIs (or paths under the warehouse) of the tables that
    hold personal data (see :func:`personal_table_uris`); they get the
    :data:`PERSONAL` zone wherever they are.  ``owner`` (default
    ``settings.hdfs_user``, the user the pipelines write as) owns everything;
    the calls are made as ``as_user`` (default ``settings.hdfs_user``), which
    must be the HDFS superuser or already own the files.  Folders that do not
    exist are skipped; top-level folders of no zone are left as they are (and
    named).  Idempotent: only entries that differ are changed.  Returns one
    :class:`Applied` per folder, and says one line for each.
    """
    owner = owner or settings.hdfs_user
    as_user = as_user or settings.hdfs_user
    root = _path_of(settings, settings.warehouse)
    setter = _Setter(settings, as_user)
    personal = sorted({_path_of(settings, t) for t in personal_tables})
    for path in personal:
        if path == root or not path.startswith(root.rstrip("/") + "/"):
            raise AccessError(f"personal-data table {path} is not a table under the warehouse {root}")
    skip = frozenset(personal)
    parsed = urlparse(settings.warehouse)
    base = f"{parsed.scheme}://{parsed.netloc}"
    results: list[Applied] = []

    def record(applied: Applied) -> None:
        results.append(applied)
        say(applied.line())

    # The root first (so the zones can be reached; its group is kept), then the
    # personal tables (closed before their layer's group is set around them),
    # then the zones.
    status = setter._call(lambda: setter.client.status(root, strict=False), f"status of {root}")
    if status is None:
        raise AccessError(f"the warehouse {settings.warehouse} does not exist: nothing to protect")
    changed = setter.set(root, status, owner, status["group"], ROOT_MODE)
    parts = root.strip("/").split("/")[:-1]
    for ancestor in ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]:
        st = setter._call(lambda a=ancestor: setter.client.status(a), f"status of {ancestor}")
        if not int(st["permission"], 8) & 0o001:
            say(
                f"warning: {base + ancestor} is {st['owner']}:{st['group']} {st['permission']}: "
                "users outside that group cannot reach the warehouse below it"
            )
    record(Applied("root", base + root, owner, status["group"], f"{ROOT_MODE:o}", "-", 1, int(changed)))
    for path in personal:
        zone_owner = PERSONAL.owner or owner
        entries, changed = setter.apply(PERSONAL, path, zone_owner, frozenset())
        if not entries:
            say(f"{PERSONAL.name:<10} {base + path}  does not exist: skipped")
            continue
        record(_applied(PERSONAL, base + path, zone_owner, entries, changed))
    zoned: set[str] = set()
    for zone in zones:
        for folder in zone.folders:
            path = f"{root.rstrip('/')}/{folder.strip('/')}"
            zoned.add(path)
            entries, changed = setter.apply(zone, path, zone.owner or owner, skip)
            if entries:
                record(_applied(zone, base + path, zone.owner or owner, entries, changed))
    listing = setter._call(lambda: setter.client.list(root, status=True), f"listing {root}")
    for name, st in listing:
        path = f"{root.rstrip('/')}/{name}"
        if path not in zoned and path not in skip and st["type"] == "DIRECTORY":
            say(
                f"{'(no zone)':<10} {base + path}  left as is ({st['owner']}:{st['group']} {st['permission']})"
            )
    return results
