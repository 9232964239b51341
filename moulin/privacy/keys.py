"""The secret key of moulin's pseudonyms.

Looked up, in order: the environment variable ``MOULIN_PSEUDONYM_KEY`` (64 hex
characters), the Airflow Connection ``moulin_pseudonym_key`` (its password),
then the key file ``$MOULIN_HOME/secrets/pseudonym.key``, created on first use
with mode 0600 (a key file readable by group or others is refused).  The key
never reaches a table, a log or an error message: what is recorded is its
*key id*, an HMAC of a fixed label, which names the key without revealing it.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path

from moulin.errors import MoulinError
from moulin.settings import Settings

KEY_ENV = "MOULIN_PSEUDONYM_KEY"
KEY_CONNECTION = "moulin_pseudonym_key"
KEY_BYTES = 32


class PseudonymKeyError(MoulinError):
    """The pseudonym key is missing, malformed or readable by others."""


@dataclass(frozen=True)
class PseudonymKey:
    """A secret key and where it came from (the secret itself is never printed)."""

    secret: bytes = field(repr=False)
    origin: str

    @property
    def key_id(self) -> str:
        """Names the key in records without revealing it."""
        return hmac.new(self.secret, b"moulin key id", sha256).hexdigest()[:12]

    def for_purpose(self, purpose: str) -> bytes:
        """The sub-key of one purpose: pseudonyms of one purpose do not link to another's."""
        return hmac.new(self.secret, f"moulin purpose {purpose}".encode(), sha256).digest()

    def __str__(self) -> str:
        return f"pseudonym key {self.key_id} ({self.origin})"


def key_file(settings: Settings) -> Path:
    """Where the key file of this installation lives."""
    return settings.home / "secrets" / "pseudonym.key"


def _parse(text: str, origin: str) -> PseudonymKey:
    value = text.strip()
    try:
        secret = bytes.fromhex(value)
    except ValueError:
        raise PseudonymKeyError(
            f"the pseudonym key from {origin} is not hex: give {KEY_BYTES * 2} hex characters"
        ) from None
    if len(secret) < 16:
        raise PseudonymKeyError(
            f"the pseudonym key from {origin} is {len(secret)} bytes: give at least 16 (32 advised)"
        )
    return PseudonymKey(secret, origin)


def _from_connection() -> PseudonymKey | None:
    try:
        from airflow.sdk import BaseHook
    except ImportError:
        return None
    env = f"AIRFLOW_CONN_{KEY_CONNECTION.upper()}"
    if env not in os.environ and "AIRFLOW_HOME" not in os.environ:
        return None
    try:
        conn = BaseHook.get_connection(KEY_CONNECTION)
    except Exception:  # noqa: BLE001 - no such connection: fall back to the key file
        return None
    return _parse(conn.password or "", f"Airflow Connection {KEY_CONNECTION}") if conn.password else None


def write_key_file(path: Path, secret: bytes) -> None:
    """Write ``secret`` as hex to ``path`` with mode 0600, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret.hex() + "\n")
    os.replace(tmp, path)


def load_key(settings: Settings, create: bool = True) -> PseudonymKey:
    """The pseudonym key (see the module docstring); creates the key file if allowed."""
    if os.environ.get(KEY_ENV):
        return _parse(os.environ[KEY_ENV], f"${KEY_ENV}")
    from_conn = _from_connection()
    if from_conn is not None:
        return from_conn
    path = key_file(settings)
    if not path.exists():
        if not create:
            raise PseudonymKeyError(f"no pseudonym key: {path} does not exist and ${KEY_ENV} is not set")
        write_key_file(path, secrets.token_bytes(KEY_BYTES))
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise PseudonymKeyError(
            f"pseudonym key file {path} has mode {mode:04o}: readable by others; run chmod 600 {path}"
        )
    return _parse(path.read_text(), f"key file {path}")
