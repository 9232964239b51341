"""moulin's Kerberos login: a ticket from its keytab, in a ticket cache of its own.

With ``hdfs.kerberos_principal`` set, :func:`login` runs ``kinit -kt`` into
``<home>/kerberos/krb5cc_<principal>`` (mode 0600) unless that cache already holds a
valid ticket of the principal, and exports ``KRB5CCNAME`` and ``KRB5_CONFIG`` so
that every client of this process uses it: WebHDFS (SPNEGO through gssapi),
deltalake's HDFS client (hdfs-native, through libgssapi_krb5) and a Spark JVM
started afterwards (Java reads ``KRB5CCNAME``; the realm's krb5.conf goes to it as
``-Djava.security.krb5.conf``, see :func:`java_options`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from moulin.errors import MoulinError
from moulin.settings import Settings


class KerberosError(MoulinError):
    """moulin could not get a Kerberos ticket; the message says what to check."""


# This process's last login (its settings) and when its ticket ends: see `refresh`.
_session: dict[str, object] = {}
# A ticket ending sooner than this is renewed from the keytab (login, refresh).
MARGIN_S = 60


def _tool(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/bin") / name, Path("/usr/sbin") / name) if p.exists()), None
    )
    if not found:
        raise KerberosError(
            f"{name} was not found: install MIT Kerberos clients (apt-get install -y krb5-user)"
        )
    return found


def cache_path(settings: Settings) -> Path:
    """moulin's ticket cache for ``hdfs.kerberos_principal``."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", settings.hdfs.kerberos_principal)
    return settings.home / "kerberos" / f"krb5cc_{safe}"


def token_path(settings: Settings) -> Path:
    """Where :func:`hdfs_token_file` writes moulin's HDFS delegation token."""
    return settings.home / "kerberos" / f"hdfs-{cache_path(settings).name.removeprefix('krb5cc_')}.token"


def executors_need_tokens(settings: Settings) -> bool:
    """Whether Spark's executors get moulin's HDFS token from a file: a Kerberos cluster
    whose Spark is a standalone master (its scheduler hands executors no tokens; YARN's does)."""
    return settings.hdfs.kerberos and settings.spark.master.startswith("spark://")


def krb5_env(settings: Settings) -> dict[str, str]:
    """``KRB5CCNAME`` (and ``KRB5_CONFIG`` if set) of moulin's ticket cache."""
    env = {"KRB5CCNAME": f"FILE:{cache_path(settings)}"}
    if settings.hdfs.krb5_conf:
        env["KRB5_CONFIG"] = str(settings.hdfs.krb5_conf)
    return env


def java_options(settings: Settings) -> list[str]:
    """JVM options of a Kerberos client of ``settings`` (the realm's krb5.conf)."""
    if not settings.hdfs.kerberos:
        return []
    opts = ["-Djavax.security.auth.useSubjectCredsOnly=false"]
    if settings.hdfs.krb5_conf:
        opts.insert(0, f"-Djava.security.krb5.conf={settings.hdfs.krb5_conf}")
    return opts


def jaas_path(settings: Settings) -> Path:
    """The JAAS file of moulin's JVM clients (written by :func:`login`)."""
    return settings.home / "kerberos" / f"jaas-{cache_path(settings).name.removeprefix('krb5cc_')}.conf"


def driver_java_options(settings: Settings) -> list[str]:
    """:func:`java_options`, and for the driver's JVM (which holds moulin's keytab) a JAAS
    login from that keytab: when the ticket of moulin's cache expires mid-run, Java's
    GSS logs in again from the keytab instead of prompting on stdin for a username
    (which hangs a Spark driver whose stdin is PySpark's pipe)."""
    opts = java_options(settings)
    if settings.hdfs.kerberos and settings.hdfs.kerberos_keytab:
        opts.append(f"-Djava.security.auth.login.config={jaas_path(settings)}")
    return opts


def _write_jaas(settings: Settings) -> None:
    hdfs = settings.hdfs
    if not hdfs.kerberos_keytab:
        return
    entry = (
        "  com.sun.security.auth.module.Krb5LoginModule required\n"
        f'  useKeyTab=true keyTab="{hdfs.kerberos_keytab}" principal="{hdfs.kerberos_principal}"\n'
        "  storeKey=true doNotPrompt=true useTicketCache=false;\n"
    )
    text = "".join(
        f"{name} {{\n{entry}}};\n"
        for name in ("com.sun.security.jgss.krb5.initiate", "com.sun.security.jgss.initiate")
    )
    path = jaas_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(text)
    os.chmod(path, 0o600)


def login(settings: Settings, env: dict[str, str] | os._Environ | None = None) -> str | None:
    """Get a ticket for ``hdfs.kerberos_principal`` from ``hdfs.kerberos_keytab`` (unless
    the cache holds a valid one) and export the cache in ``env`` (default: this
    process's environment); return the principal, None under simple authentication."""
    hdfs = settings.hdfs
    if not hdfs.kerberos:
        return None
    env = os.environ if env is None else env
    variables = krb5_env(settings)
    cache = cache_path(settings)
    run_env = {**os.environ, **variables}
    _write_jaas(settings)
    if _valid(cache, hdfs.kerberos_principal, run_env):
        env.update(variables)
        _remember(settings, cache, run_env)
        return hdfs.kerberos_principal
    keytab = hdfs.kerberos_keytab
    if keytab is None:
        raise KerberosError(
            f"MOULIN_HDFS_KERBEROS_PRINCIPAL={hdfs.kerberos_principal} needs its keytab: set "
            "MOULIN_HDFS_KERBEROS_KEYTAB to the file your administrator handed over"
        )
    try:
        mode = Path(keytab).stat().st_mode & 0o777
    except OSError as exc:
        raise KerberosError(
            f"keytab {keytab} cannot be read ({exc.strerror}): check MOULIN_HDFS_KERBEROS_KEYTAB"
        ) from None
    if mode & 0o077:
        raise KerberosError(
            f"keytab {keytab} is readable by others (mode {mode:o}): it is a password; chmod 600 {keytab}"
        )
    cache.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    result = subprocess.run(
        [_tool("kinit"), "-kt", str(keytab), "-c", f"FILE:{cache}", hdfs.kerberos_principal],
        capture_output=True,
        text=True,
        env=run_env,
        timeout=60,
    )
    if result.returncode != 0:
        raise KerberosError(
            f"kinit -kt {keytab} {hdfs.kerberos_principal} failed: {result.stderr.strip()[-600:]} "
            "(check the principal's name and realm, that the keytab holds it (klist -kt), and that "
            "the KDC of krb5.conf answers)"
        )
    os.chmod(cache, 0o600)
    env.update(variables)
    _remember(settings, cache, run_env)
    return hdfs.kerberos_principal


def refresh() -> None:
    """Get a new ticket from the keytab when this process's ends within :data:`MARGIN_S`
    (a run longer than the ticket's life: deltalake's HDFS client reads the cache for
    each new connection).  Cheap otherwise: no process is started."""
    if renewal_due(_session, time.time()):
        login(_session["settings"])  # type: ignore[arg-type]


def renewal_due(session: dict, now: float) -> bool:
    """Whether a process whose login is ``session`` (its settings and when its ticket ends,
    a wall time) must get a new ticket at ``now``: once it logged in, from :data:`MARGIN_S`
    before the end."""
    return session.get("settings") is not None and now >= float(session.get("ends", 0)) - MARGIN_S


def _remember(settings: Settings, cache: Path, env: dict[str, str]) -> None:
    _session["settings"] = settings
    _session["ends"] = _ticket_end(cache, env) or time.time() + MARGIN_S + 1


def _ticket_end(cache: Path, env: dict[str, str]) -> float | None:
    """When the TGT in ``cache`` expires (a wall time), None if it shows none."""
    from datetime import datetime

    shown = subprocess.run(
        [_tool("klist"), "-c", f"FILE:{cache}"],
        capture_output=True,
        text=True,
        env={**env, "LC_ALL": "C"},
        timeout=30,
    ).stdout
    for line in shown.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[4].startswith("krbtgt/"):
            try:
                end = datetime.strptime(f"{parts[2]} {parts[3]}", "%m/%d/%y %H:%M:%S")
            except ValueError:
                return None
            return time.mktime(end.timetuple())  # klist shows local time
    return None


def _valid(cache: Path, principal: str, env: dict[str, str]) -> bool:
    """Whether ``cache`` holds an unexpired ticket of ``principal``."""
    if not cache.exists():
        return False
    klist = _tool("klist")
    if subprocess.run([klist, "-s", "-c", f"FILE:{cache}"], env=env, timeout=30).returncode != 0:
        return False
    end = _ticket_end(cache, env)
    if end is not None and end - time.time() < MARGIN_S:
        return False  # about to expire: a new one
    shown = subprocess.run(
        [klist, "-c", f"FILE:{cache}"], capture_output=True, text=True, env=env, timeout=30
    )
    return f"Default principal: {principal}" in shown.stdout


def _vint(value: int) -> bytes:
    """Hadoop's ``WritableUtils.writeVInt`` (zero-compressed, big-endian)."""
    if -112 <= value <= 127:
        return bytes([value & 0xFF])
    length = -112
    if value < 0:
        value ^= -1
        length = -120
    tmp, size = value, 0
    while tmp:
        tmp >>= 8
        size += 1
    out = bytes([(length - size) & 0xFF])
    return out + value.to_bytes(size, "big")


def _read_vint(data: bytes, at: int) -> tuple[int, int]:
    """Hadoop's ``WritableUtils.readVInt``: (value, next position)."""
    first = data[at] - 256 if data[at] > 127 else data[at]
    if first >= -112:
        return first, at + 1
    negative = first < -120
    size = (-119 - first) if negative else (-111 - first)
    value = int.from_bytes(data[at + 1 : at + size], "big")
    return (value ^ -1 if negative else value), at + size


def _text(data: bytes) -> bytes:
    return _vint(len(data)) + data


def token_storage(url_string: str, service: str) -> bytes:
    """Hadoop's token storage file (``Credentials.writeTokenStorageStream``, format 0) holding
    the delegation token ``url_string`` (as WebHDFS's GETDELEGATIONTOKEN gives it) as an
    ``HDFS_DELEGATION_TOKEN`` labelled ``service`` (the NameNode's RPC ``address:port``,
    where Hadoop's client looks for it)."""
    import base64

    try:
        raw = base64.urlsafe_b64decode(url_string + "=" * (-len(url_string) % 4))
        # Token.write: identifier, password, kind, service (each length-prefixed).
        at, parts = 0, []
        for _ in range(4):
            size, at = _read_vint(raw, at)
            if size < 0 or at + size > len(raw):
                raise ValueError("a field runs past the end")
            parts.append(raw[at : at + size])
            at += size
    except (ValueError, IndexError) as exc:
        raise KerberosError(
            f"the NameNode's delegation token does not decode ({exc}): it should be the urlString "
            "of WebHDFS's GETDELEGATIONTOKEN answer; check the NameNode's version and logs"
        ) from None
    identifier, password = parts[0], parts[1]
    label = service.encode()
    token = _text(identifier) + _text(password) + _text(b"HDFS_DELEGATION_TOKEN") + _text(label)
    # One token, no secret key.
    return b"HDTS" + b"\x00" + _vint(1) + _text(label) + token + _vint(0)


#: The variable through which Hadoop's client (and moulin's WebHDFS client) finds a token file.
TOKEN_FILE_VAR = "HADOOP_TOKEN_FILE_LOCATION"


def handed_token_file() -> Path | None:
    """The token file this process was handed (``HADOOP_TOKEN_FILE_LOCATION``), None if none:
    such a process (an executor on a standalone worker, a job of the training environment,
    which has no Kerberos client for Python) acts with moulin's token, not a ticket."""
    value = os.environ.get(TOKEN_FILE_VAR)
    if not value:
        return None
    path = Path(value)
    if not path.is_file():
        raise KerberosError(
            f"{TOKEN_FILE_VAR}={value} names no file: the process that started this one writes it "
            "(moulin.kerberos.hdfs_token_file); it must be readable where this process runs"
        )
    return path


def webhdfs_delegation(token_file: Path) -> str:
    """WebHDFS's ``delegation`` parameter (``Token.encodeToUrlString``) of the first token of
    the Hadoop token storage file ``token_file`` (as :func:`token_storage` writes it)."""
    import base64

    data = token_file.read_bytes()
    if data[:5] != b"HDTS\x00":
        raise KerberosError(f"{token_file} is not a Hadoop token storage file (format 0): write it anew")
    count, at = _read_vint(data, 5)
    if count < 1:
        raise KerberosError(f"{token_file} holds no token: write it anew (moulin.kerberos.hdfs_token_file)")
    fields = []
    for _ in range(5):  # alias, then Token.write: identifier, password, kind, service
        size, at = _read_vint(data, at)
        fields.append(data[at : at + size])
        at += size
    raw = b"".join(_text(f) for f in fields[1:])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def ensure_token_file(settings: Settings) -> Path:
    """moulin's token file for executors: the one this process was handed when it is
    :func:`token_path` (its parent wrote it), else a new one (:func:`hdfs_token_file`)."""
    handed = handed_token_file()
    if handed is not None and handed == token_path(settings):
        return handed
    return hdfs_token_file(settings)


def hdfs_token_file(settings: Settings, path: Path | None = None) -> Path:
    """Write an HDFS delegation token of moulin's principal as a Hadoop token storage
    file (mode 0600; default ``<home>/kerberos/hdfs-<principal>.token``); return its path.

    For processes that cannot log in themselves and are handed the file through
    ``HADOOP_TOKEN_FILE_LOCATION``: the executors of a Spark standalone cluster,
    to which Spark's standalone scheduler hands no tokens.  The token comes from
    WebHDFS (GETDELEGATIONTOKEN with SPNEGO, renewer: moulin's user) and is labelled
    for the NameNode's RPC address, where Hadoop's client looks for it.
    """
    import socket

    import requests
    from requests_kerberos import OPTIONAL, HTTPKerberosAuth

    login(settings)
    hdfs = settings.hdfs
    url = f"{hdfs.webhdfs_url}/webhdfs/v1/?op=GETDELEGATIONTOKEN&renewer={settings.hdfs_user}"
    response = requests.get(url, auth=HTTPKerberosAuth(mutual_authentication=OPTIONAL), timeout=30)
    if response.status_code != 200:
        raise KerberosError(
            f"the NameNode gave no delegation token (HTTP {response.status_code}: {response.text[:300]}): "
            "check moulin's ticket (klist) and that the NameNode runs in secure mode"
        )
    service = f"{socket.gethostbyname(hdfs.host)}:{hdfs.namenode_rpc_port}"
    data = token_storage(response.json()["Token"]["urlString"], service)
    target = path or token_path(settings)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, target)
    return target
