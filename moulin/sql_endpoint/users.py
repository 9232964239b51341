"""Who may log in to the SQL endpoint, with which password, and who may query it.

The endpoint's users are the users of the warehouse's access zones
(``hdfs.group_mapping``: moulin, engineer, analyst, dpo, outsider by default).  Each
has a password generated once by :mod:`moulin.platform.secrets` (``<home>/secrets/
sql-endpoint-<user>.password``, mode 0600; ``moulin sql-endpoint password USER`` prints
it).  The server never sees those files: it checks logins against the *users file*
(:func:`write_users_file`), which holds a salted PBKDF2-SHA256 hash per user, read at
each login by ``java/moulin/sqlendpoint/PasswordFile.java``.

*Readers* are the users in the group of the curated zone (``analysts``): the only users
whose queries run.  Another authenticated user (``outsider``) is refused at its first
query, with a message naming the group it lacks.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from moulin.errors import MoulinError
from moulin.platform.secrets import SecretFile, ensure_secret, secrets_dir, write_private
from moulin.privacy.access import ZONES
from moulin.settings import Settings

#: PBKDF2 rounds of the users file (a generated password has 144 random bits: this only
#: slows down a guess against a stolen file further).
ITERATIONS = 20_000
#: The access zone whose group makes a user a reader (see moulin.catalog.ANALYST_ZONE).
READER_ZONE = "curated"


class UnknownUserError(MoulinError):
    """A user the endpoint does not know (not in hdfs.group_mapping)."""


def reader_group() -> str:
    """The group of the curated zone: its members' queries run."""
    return next(z.group for z in ZONES if z.name == READER_ZONE)


def users(settings: Settings) -> dict[str, tuple[str, ...]]:
    """Every user of the endpoint and its groups (``hdfs.group_mapping``)."""
    return settings.hdfs.groups()


def readers(settings: Settings) -> list[str]:
    """The users whose queries run: members of :func:`reader_group`, sorted."""
    group = reader_group()
    return sorted(u for u, groups in users(settings).items() if group in groups)


def password_secret(user: str) -> SecretFile:
    """The secret file of ``user``'s password."""
    return SecretFile(f"sql-endpoint-{user}.password", "password")


def password(settings: Settings, user: str) -> str:
    """``user``'s password, generated (mode 0600) the first time it is asked for."""
    known = users(settings)
    if user not in known:
        raise UnknownUserError(
            f"the SQL endpoint has no user {user!r}: its users are {', '.join(sorted(known))} "
            "(setting hdfs.group_mapping)"
        )
    return ensure_secret(settings, password_secret(user))[0]


def users_file(settings: Settings) -> Path:
    """The file the server checks logins against (mode 0600)."""
    return secrets_dir(settings) / "sql-endpoint.users"


def hash_line(user: str, secret: str, salt: bytes | None = None) -> str:
    """One line of the users file: ``user:iterations:salt_hex:hash_hex``."""
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, ITERATIONS, dklen=32)
    return f"{user}:{ITERATIONS}:{salt.hex()}:{digest.hex()}"


def write_users_file(settings: Settings) -> Path:
    """Write the users file from every user's password (generating those missing); return it."""
    lines = [hash_line(user, password(settings, user)) for user in sorted(users(settings))]
    path = users_file(settings)
    write_private(path, "\n".join(lines) + "\n")
    return path
