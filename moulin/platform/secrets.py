"""Secrets of the platform's services, generated once and kept in files of mode 0600.

They live under ``<home>/secrets/`` (the pseudonym key of :mod:`moulin.privacy.keys`
lives there too).  A secret is read from its file only: never from a default, never
written to a log.  A file that others can read is refused, naming the file and the
command that fixes it.
"""

from __future__ import annotations

import base64
import os
import secrets
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from moulin.errors import MoulinError
from moulin.settings import Settings


class SecretError(MoulinError):
    """A secret file is unsafe or unreadable; the message names the file."""


@dataclass(frozen=True)
class SecretFile:
    """One generated secret: its file and how a new value is made."""

    name: str
    kind: str  # "password" | "token" | "fernet"

    def path(self, settings: Settings) -> Path:
        return secrets_dir(settings) / self.name

    def generate(self) -> str:
        if self.kind == "fernet":
            return base64.urlsafe_b64encode(os.urandom(32)).decode()
        if self.kind == "password":
            return secrets.token_urlsafe(18)
        return secrets.token_urlsafe(48)


ADMIN_PASSWORD = SecretFile("airflow-admin.password", "password")
JWT_SECRET = SecretFile("airflow-jwt.secret", "token")
API_SECRET_KEY = SecretFile("airflow-api.secret", "token")
FERNET_KEY = SecretFile("airflow-fernet.key", "fernet")
DB_PASSWORD = SecretFile("postgres-airflow.password", "password")
ALL = (ADMIN_PASSWORD, JWT_SECRET, API_SECRET_KEY, FERNET_KEY, DB_PASSWORD)


def secrets_dir(settings: Settings) -> Path:
    """``<home>/secrets`` (created with mode 0700)."""
    path = settings.home / "secrets"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def read_secret(settings: Settings, secret: SecretFile) -> str:
    """The value of ``secret`` (SecretError if missing or readable by others)."""
    path = secret.path(settings)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise SecretError(f"secret file {path} is missing: run `moulin platform up` to create it") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretError(
            f"secret file {path} is readable by others (mode {mode & 0o777:o}): chmod 600 {path}"
        )
    return path.read_text().strip()


def ensure_secret(settings: Settings, secret: SecretFile) -> tuple[str, bool]:
    """The value of ``secret``, generated (mode 0600) if its file does not exist yet;
    also whether it was created now.  Of two processes creating it at once, one
    creates it and the other reads that value: a secret never changes once written."""
    path = secret.path(settings)
    if path.exists():
        return read_secret(settings, secret), False
    value = secret.generate()
    partial = _private_temp(path, value)  # no newline: Airflow reads it whole through *_CMD
    try:
        os.link(partial, path)  # complete, and only if no other process made it meanwhile
    except FileExistsError:
        return read_secret(settings, secret), False
    finally:
        os.unlink(partial)
    return value, True


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically with mode 0600 (files that hold a secret);
    a file that already holds ``text`` with that mode is left as it is."""
    try:
        if path.read_text() == text and path.stat().st_mode & 0o777 == 0o600:
            return
    except OSError:
        pass
    os.replace(_private_temp(path, text), path)


def _private_temp(path: Path, text: str) -> Path:
    """A new file of mode 0600 beside ``path`` holding ``text`` (a unique name per call)."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)
