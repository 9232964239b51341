"""The secret key of moulin's pseudonyms: one source per installation, never replaced silently.

Where the key comes from, first found wins:

1. ``$MOULIN_PSEUDONYM_KEY`` (64 hex characters): set by the operator, or handed
   by an Airflow task to the stage it runs (below).  A stage on a job server
   reads it from its request's context (:func:`moulin.jobs.context.getenv`).
2. The Airflow Connection ``moulin_pseudonym_key`` (its password).  Airflow 3
   gives Connections only to task processes (through its API server), not to a
   ``spark-submit`` child, a job server or the CLI.  So the *task* process reads
   it (:func:`handed_to_stage`, a handover :func:`moulin.jobs.submit.submit_job` asks)
   and hands the key to its stage in the child's environment or in the job
   server request, never on a command line.  Elsewhere the Connection counts
   only when ``$AIRFLOW_CONN_MOULIN_PSEUDONYM_KEY`` defines it.  "No such
   Connection" means "not configured"; any other failure of the lookup, or a
   Connection without a valid password, fails naming the Connection.
3. The key file ``$MOULIN_HOME/secrets/pseudonym.key``, created on first use
   with mode 0600 (a key file readable by group or others is refused).

Never replaced silently: the id of the key whose pseudonyms the warehouse holds
is recorded in ``ops/pseudonym_key.json`` (by the first bronze gate that
pseudonymises, :func:`check_key_id`, and by each rotation,
:func:`record_key_id`).  A gate with a key of another id stops
(:class:`KeyChangedError`, a data error: retries do not help); a key file whose
id is not the recorded one is refused by :func:`load_key`; and no new random key
file is created once an id is recorded (the key lives elsewhere, e.g. in the
Connection, and this process cannot see it).

The key never reaches a table, a log or an error message: what is recorded is
its *key id*, an HMAC of a fixed label, which names the key without revealing it.
"""

from __future__ import annotations

import datetime as dt
import hmac
import importlib
import json
import os
import secrets
import stat
import sys
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path

from moulin.errors import DataError, MoulinError
from moulin.jobs.context import getenv, register_handover
from moulin.settings import Settings
from moulin.storage import WarehouseFS

KEY_ENV = "MOULIN_PSEUDONYM_KEY"
KEY_CONNECTION = "moulin_pseudonym_key"
KEY_BYTES = 32


KEY_RECORD = ("ops", "pseudonym_key.json")


class PseudonymKeyError(MoulinError):
    """The pseudonym key is missing, malformed, unreadable or readable by others."""


class KeyChangedError(PseudonymKeyError, DataError):
    """The key is not the one whose pseudonyms the warehouse holds, and no rotation said so."""


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


def in_airflow_task() -> bool:
    """Whether this process is an Airflow task's (Airflow's task runner talks to its supervisor)."""
    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    return getattr(runner, "SUPERVISOR_COMMS", None) is not None


def _not_found_errors() -> tuple[type[BaseException], ...]:
    """Airflow's "no such Connection" exception types (where this Airflow defines them)."""
    found: list[type[BaseException]] = []
    for module in ("airflow.sdk.exceptions", "airflow.exceptions"):
        try:
            cls = getattr(importlib.import_module(module), "AirflowNotFoundException", None)
        except ImportError:
            continue
        if isinstance(cls, type) and issubclass(cls, BaseException) and cls not in found:
            found.append(cls)
    return tuple(found)


def connection_key() -> PseudonymKey | None:
    """The key of the Airflow Connection ``moulin_pseudonym_key``, None when none is configured.

    Looked up only where Airflow can answer: in a task process, or when
    ``$AIRFLOW_CONN_MOULIN_PSEUDONYM_KEY`` defines it.  Raises
    :class:`PseudonymKeyError` naming the Connection when the lookup fails for
    another reason than "no such Connection", or when it holds no valid key.
    """
    env = f"AIRFLOW_CONN_{KEY_CONNECTION.upper()}"
    if not in_airflow_task() and env not in os.environ:
        return None
    where = f"Airflow Connection {KEY_CONNECTION}"
    try:
        from airflow.sdk import BaseHook
    except ImportError:
        raise PseudonymKeyError(
            f"${env} is set but Airflow is not installed here: the {where} cannot be read; "
            f"unset ${env} or run this in moulin's environment"
        ) from None
    try:
        conn = BaseHook.get_connection(KEY_CONNECTION)
    except _not_found_errors():
        return None
    except Exception as exc:  # noqa: BLE001 - any other failure: the configured source is unreadable
        raise PseudonymKeyError(
            f"the {where} could not be read ({type(exc).__name__}); the key is never replaced by "
            f"another one: fix the Connection (`airflow connections get {KEY_CONNECTION}`) or, "
            f"to use the key file instead, delete the Connection"
        ) from None
    if not conn.password:
        raise PseudonymKeyError(
            f"the {where} has no password: store the key ({KEY_BYTES * 2} hex characters) as its "
            f"password, or delete the Connection to use the key file"
        )
    return _parse(conn.password, where)


@register_handover
def handed_to_stage() -> dict[str, str]:
    """What an Airflow task hands to the stage it runs: ``{MOULIN_PSEUDONYM_KEY: hex}`` when
    the key is the Airflow Connection (the stage's process cannot read it), else nothing
    (registered with :func:`moulin.jobs.context.register_handover`: the submitter asks it)."""
    if os.environ.get(KEY_ENV) or not in_airflow_task():
        return {}  # the operator's key is in the environment the stage inherits
    key = connection_key()
    return {KEY_ENV: key.secret.hex()} if key is not None else {}


def key_record_uri(settings: Settings) -> str:
    """Where the id of the key of the warehouse's pseudonyms is recorded."""
    return settings.table_uri(*KEY_RECORD)


def recorded_key_id(settings: Settings, fs=None) -> str | None:
    """The recorded key id (None before the first pseudonymising gate)."""

    fs = fs or WarehouseFS(settings)
    uri = key_record_uri(settings)
    if not fs.exists(uri):
        return None
    return str(json.loads(fs.read_bytes(uri))["key_id"])


def record_key_id(settings: Settings, key: PseudonymKey, reason: str, fs=None) -> None:
    """Record ``key`` as the key of the warehouse's pseudonyms (``reason``: first gate, rotation)."""

    fs = fs or WarehouseFS(settings)
    record = {
        "key_id": key.key_id,
        "origin": key.origin,
        "reason": reason,
        "previous_key_id": recorded_key_id(settings, fs),
        "recorded_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    fs.write_bytes(key_record_uri(settings), json.dumps(record, indent=2).encode() + b"\n")


def check_key_id(settings: Settings, key: PseudonymKey, fs=None) -> None:
    """Before a gate pseudonymises: record the key on first use, else refuse another key
    (:class:`KeyChangedError`): pseudonyms of two keys in one warehouse never join."""
    recorded = recorded_key_id(settings, fs)
    if recorded is None:
        record_key_id(settings, key, "first pseudonymising gate", fs)
    elif recorded != key.key_id:
        raise KeyChangedError(_changed(settings, key, recorded))


def _changed(settings: Settings, key: PseudonymKey, recorded: str) -> str:
    return (
        f"{key} is not the key of the pseudonyms already in the warehouse ({recorded}, recorded in "
        f"{key_record_uri(settings)}) and no rotation recorded the change: restore that key (the "
        f"Airflow Connection {KEY_CONNECTION} is read only by Airflow tasks; ${KEY_ENV}; the key file "
        f"{key_file(settings)}); a key file's key is changed by `moulin privacy rotate-key`"
    )


def write_key_file(path: Path, secret: bytes) -> None:
    """Write ``secret`` as hex to ``path`` with mode 0600, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret.hex() + "\n")
    os.replace(tmp, path)


def load_key(settings: Settings, create: bool = True) -> PseudonymKey:
    """The pseudonym key (see the module docstring); creates the key file if allowed and
    no key id is recorded yet.  Raises :class:`PseudonymKeyError` naming the source that is
    unreadable, and :class:`KeyChangedError` for a key file that is not the recorded key."""
    handed = getenv(KEY_ENV)
    if handed:
        return _parse(handed, f"${KEY_ENV}")
    from_conn = connection_key()
    if from_conn is not None:
        return from_conn
    path = key_file(settings)
    if not path.exists():
        recorded = recorded_key_id(settings)
        if recorded is not None:
            raise PseudonymKeyError(
                f"no key file {path}, but the warehouse holds pseudonyms of key {recorded} (recorded in "
                f"{key_record_uri(settings)}): a new key is never made in its place. If that key is the "
                f"Airflow Connection {KEY_CONNECTION}, run this as an Airflow task (it hands the key to "
                f"its stage) or export ${KEY_ENV}; else restore the key file"
            )
        if not create:
            raise PseudonymKeyError(f"no pseudonym key: {path} does not exist and ${KEY_ENV} is not set")
        write_key_file(path, secrets.token_bytes(KEY_BYTES))
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise PseudonymKeyError(
            f"pseudonym key file {path} has mode {mode:04o}: readable by others; run chmod 600 {path}"
        )
    key = _parse(path.read_text(), f"key file {path}")
    recorded = recorded_key_id(settings)
    if recorded is not None and recorded != key.key_id:
        raise KeyChangedError(_changed(settings, key, recorded))
    return key
