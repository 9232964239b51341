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
from pathlib import Path

from moulin.errors import MoulinError
from moulin.settings import Settings


class KerberosError(MoulinError):
    """moulin could not get a Kerberos ticket; the message says what to check."""


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
    if _valid(cache, hdfs.kerberos_principal, run_env):
        env.update(variables)
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
    return hdfs.kerberos_principal


def _valid(cache: Path, principal: str, env: dict[str, str]) -> bool:
    """Whether ``cache`` holds an unexpired ticket of ``principal``."""
    if not cache.exists():
        return False
    klist = _tool("klist")
    if subprocess.run([klist, "-s", "-c", f"FILE:{cache}"], env=env, timeout=30).returncode != 0:
        return False
    shown = subprocess.run(
        [klist, "-c", f"FILE:{cache}"], capture_output=True, text=True, env=env, timeout=30
    )
    return f"Default principal: {principal}" in shown.stdout
