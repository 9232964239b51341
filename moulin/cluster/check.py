"""``moulin cluster check``: are the settings and files an administrator handed over
(core-site.xml, hdfs-site.xml, krb5.conf, keytab, Spark master URL) enough for moulin?

Each check gives one :class:`Finding`: what was checked, whether it holds, what was
seen and, when it does not hold, what to do.  The checks go from files to network:
a file that is missing or wrong is reported before any connection is tried, and a
check that needs an earlier one that failed is skipped (said so), so the first
failure is the thing to fix.  Nothing is written to HDFS: write access is asked
with WebHDFS CHECKACCESS.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from moulin import kerberos
from moulin.settings import Settings

OK, FAIL, WARN, SKIP = "ok", "FAIL", "warn", "skip"


@dataclass(frozen=True)
class Finding:
    """The outcome of one check."""

    what: str
    status: str  # OK, FAIL, WARN or SKIP
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status:<4}  {self.what}: {self.detail}"
        return text + (f"\n      fix: {self.fix}" if self.fix else "")


@dataclass
class Report:
    """Every finding of one ``check`` run."""

    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.status == FAIL for f in self.findings)

    def lines(self) -> list[str]:
        failed = sum(f.status == FAIL for f in self.findings)
        summary = "all checks passed" if not failed else f"{failed} check(s) failed: fix the first one first"
        return [f.line() for f in self.findings] + [summary]


def read_hadoop_xml(path: Path) -> dict[str, str]:
    """The properties of a Hadoop configuration file (ValueError naming what is wrong)."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"{path} is not well-formed XML ({exc})") from None
    if root.tag != "configuration":
        raise ValueError(f"{path}: the root element is <{root.tag}>, not <configuration>")
    props = {}
    for prop in root.iter("property"):
        name, value = prop.findtext("name"), prop.findtext("value")
        if name:
            props[name.strip()] = (value or "").strip()
    return props


def read_krb5_conf(path: Path) -> tuple[str, dict[str, list[str]]]:
    """(default realm, realm -> KDC addresses) of a krb5.conf."""
    text = path.read_text()
    default = re.search(r"^\s*default_realm\s*=\s*(\S+)", text, re.MULTILINE)
    realms: dict[str, list[str]] = {}
    section = ""
    current = None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            section, current = line[1:-1].strip(), None
            continue
        if section != "realms" or not line:
            continue
        opened = re.match(r"(\S+)\s*=\s*\{", line)
        if opened:
            current = opened.group(1)
            realms[current] = []
        elif line == "}":
            current = None
        elif current and re.match(r"kdc\s*=", line):
            realms[current].append(line.split("=", 1)[1].strip())
    return (default.group(1) if default else ""), realms


def _connect(host: str, port: int, timeout: float = 3.0) -> str | None:
    """None when host:port accepts a TCP connection, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except socket.gaierror as exc:
        return f"the name {host} does not resolve ({exc.strerror})"
    except OSError as exc:
        return f"{host}:{port} does not accept connections ({exc.strerror or type(exc).__name__})"


def _host_port(address: str, default_port: int) -> tuple[str, int]:
    host, _, port = address.rpartition(":") if ":" in address else (address, "", "")
    return host, int(port) if port.isdigit() else default_port


class Checker:
    """Runs the checks of :func:`check` in order, remembering what failed."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.report = Report()
        self.core: dict[str, str] = {}
        self.site: dict[str, str] = {}
        self.failed: set[str] = set()

    def add(self, key: str, what: str, status: str, detail: str, fix: str = "") -> None:
        if status == FAIL:
            self.failed.add(key)
        self.report.findings.append(Finding(what, status, detail, fix))

    def needs(self, key: str, *required: str) -> bool:
        """False (and a SKIP finding) when a check this one needs has failed."""
        missing = [r for r in required if r in self.failed]
        if missing:
            self.add(key, key, SKIP, f"not tried: {', '.join(missing)} failed above")
            self.failed.add(key)
            return False
        return True

    # ---------------------------------------------------------------- files
    def hadoop_files(self) -> None:
        conf = self.settings.hadoop_conf_dir
        if conf is None:
            self.add(
                "hadoop-conf",
                "Hadoop configuration",
                WARN,
                "no folder handed over (MOULIN_HADOOP_CONF_DIR unset): the NameNode comes from moulin's "
                f"settings ({self.settings.hdfs.namenode_uri})",
                "set MOULIN_HADOOP_CONF_DIR to the folder holding the cluster's core-site.xml and hdfs-site.xml",
            )
            return
        for name, target in (("core-site.xml", "core"), ("hdfs-site.xml", "site")):
            path = Path(conf) / name
            if not path.is_file():
                self.add(
                    "hadoop-conf",
                    name,
                    FAIL,
                    f"{path} does not exist",
                    f"copy the cluster's {name} into {conf} (MOULIN_HADOOP_CONF_DIR)",
                )
                continue
            try:
                setattr(self, target, read_hadoop_xml(path))
            except (OSError, ValueError) as exc:
                self.add("hadoop-conf", name, FAIL, str(exc), f"ask the administrator for a valid {name}")
                continue
            self.add("hadoop-conf", name, OK, f"{path} ({len(getattr(self, target))} properties)")
        default_fs = self.core.get("fs.defaultFS", "")
        if self.core and not default_fs.startswith("hdfs://"):
            self.add(
                "hadoop-conf",
                "fs.defaultFS",
                FAIL,
                f"is {default_fs or 'unset'}, not an hdfs:// URI",
                "set fs.defaultFS in core-site.xml to hdfs://<namenode>:<port>",
            )

    def namenode(self) -> tuple[str, int]:
        """The NameNode's RPC host and port (core-site, else settings)."""
        default_fs = self.core.get("fs.defaultFS", "")
        if default_fs.startswith("hdfs://"):
            parsed = urlparse(default_fs)
            return parsed.hostname or "", parsed.port or 8020
        return self.settings.hdfs.host, self.settings.hdfs.namenode_rpc_port

    def webhdfs(self) -> str:
        """The NameNode's HTTP base URL (hdfs-site, else settings)."""
        address = self.site.get("dfs.namenode.http-address", "")
        if address:
            host, port = _host_port(address, 9870)
            if host in ("0.0.0.0", ""):
                host = self.namenode()[0]
            return f"http://{host}:{port}"
        return self.settings.hdfs.webhdfs_url

    @property
    def secure(self) -> bool:
        return (
            self.core.get("hadoop.security.authentication", "simple") == "kerberos"
            or self.settings.hdfs.kerberos
        )

    def kerberos_files(self) -> None:
        hdfs = self.settings.hdfs
        if not self.secure:
            self.add(
                "kerberos",
                "authentication",
                OK,
                "simple (no Kerberos): moulin acts as " + self.settings.hdfs_user,
            )
            return
        if not hdfs.kerberos:
            self.add(
                "kerberos",
                "moulin's principal",
                FAIL,
                "core-site.xml asks for Kerberos but moulin has no principal",
                "set MOULIN_HDFS_KERBEROS_PRINCIPAL and MOULIN_HDFS_KERBEROS_KEYTAB to the service "
                "account the administrator created",
            )
            return
        if self.core and self.core.get("hadoop.security.authentication") != "kerberos":
            self.add(
                "kerberos",
                "core-site.xml",
                FAIL,
                "moulin has a principal but hadoop.security.authentication is not kerberos",
                "use the cluster's secure core-site.xml, or unset MOULIN_HDFS_KERBEROS_PRINCIPAL",
            )
        for key in ("dfs.namenode.kerberos.principal",):
            if self.site and key not in self.site:
                self.add(
                    "kerberos",
                    key,
                    FAIL,
                    "missing from hdfs-site.xml",
                    f"add {key} (the NameNode's principal, e.g. nn/_HOST@REALM)",
                )
        if self.site and "dfs.data.transfer.protection" not in self.site:
            self.add(
                "kerberos",
                "dfs.data.transfer.protection",
                WARN,
                "unset: clients will expect the DataNodes on privileged ports",
                "add the cluster's dfs.data.transfer.protection (e.g. authentication) to hdfs-site.xml",
            )
        realm = hdfs.kerberos_principal.rpartition("@")[2]
        krb5 = Path(hdfs.krb5_conf or "/etc/krb5.conf")
        if not krb5.is_file():
            self.add(
                "krb5",
                "krb5.conf",
                FAIL,
                f"{krb5} does not exist",
                "set MOULIN_HDFS_KRB5_CONF to the krb5.conf the administrator handed over",
            )
        else:
            default, realms = read_krb5_conf(krb5)
            if realm not in realms:
                self.add(
                    "krb5",
                    "krb5.conf",
                    FAIL,
                    f"{krb5} has no [realms] entry for {realm} (it has {', '.join(realms) or 'none'})",
                    f"use the realm's krb5.conf, or fix the principal's realm ({hdfs.kerberos_principal})",
                )
            elif not realms[realm]:
                self.add(
                    "krb5",
                    "krb5.conf",
                    FAIL,
                    f"realm {realm} names no kdc",
                    f"add kdc = <host> under {realm}",
                )
            else:
                self.add(
                    "krb5",
                    "krb5.conf",
                    OK,
                    f"{krb5}: realm {realm}, KDC {', '.join(realms[realm])}"
                    + ("" if default == realm else f" (default realm {default})"),
                )
                self.kdcs = realms[realm]
        keytab = hdfs.kerberos_keytab
        if keytab is None or not Path(keytab).is_file():
            self.add(
                "keytab",
                "keytab",
                FAIL,
                f"{keytab or 'no keytab'} does not exist",
                "set MOULIN_HDFS_KERBEROS_KEYTAB to the keytab file of moulin's principal",
            )
            return
        info = Path(keytab).stat()
        if stat.S_IMODE(info.st_mode) & 0o077:
            self.add(
                "keytab",
                "keytab",
                FAIL,
                f"{keytab} is mode {stat.S_IMODE(info.st_mode):o}: others can read moulin's password",
                f"chmod 600 {keytab}",
            )
            return
        if info.st_uid != os.geteuid():
            self.add("keytab", "keytab", WARN, f"{keytab} is owned by uid {info.st_uid}, not by this user")
        env = {**os.environ, **({"KRB5_CONFIG": str(hdfs.krb5_conf)} if hdfs.krb5_conf else {})}
        try:
            listed = subprocess.run(
                ["klist", "-kt", str(keytab)], capture_output=True, text=True, env=env, timeout=20
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.add("keytab", "keytab", FAIL, f"klist could not read it ({exc})", "install krb5-user")
            return
        if hdfs.kerberos_principal not in listed.stdout:
            held = sorted(set(re.findall(r"\s(\S+@\S+)\s*$", listed.stdout, re.MULTILINE)))
            self.add(
                "keytab",
                "keytab",
                FAIL,
                f"{keytab} holds no key of {hdfs.kerberos_principal} (it holds {', '.join(held) or 'nothing'})",
                "ask for the keytab of moulin's principal, or fix MOULIN_HDFS_KERBEROS_PRINCIPAL",
            )
            return
        self.add("keytab", "keytab", OK, f"{keytab}: mode 600, holds {hdfs.kerberos_principal}")

    # -------------------------------------------------------------- network
    def reachable(self) -> None:
        if self.secure and self.needs("kdc", "krb5"):
            problems = [_connect(*_host_port(kdc, 88)) for kdc in getattr(self, "kdcs", [])]
            if problems and all(problems):
                self.add(
                    "kdc",
                    "KDC",
                    FAIL,
                    "; ".join(p for p in problems if p),
                    "check the kdc lines of krb5.conf and that this host may reach port 88",
                )
            elif problems:
                self.add("kdc", "KDC", OK, "answers on " + ", ".join(getattr(self, "kdcs", [])))
        host, port = self.namenode()
        problem = _connect(host, port)
        if problem:
            self.add(
                "namenode",
                "NameNode RPC",
                FAIL,
                problem,
                "check fs.defaultFS (core-site.xml) and that this host may reach it",
            )
        else:
            self.add("namenode", "NameNode RPC", OK, f"{host}:{port} accepts connections")
        parsed = urlparse(self.webhdfs())
        problem = _connect(parsed.hostname or "", parsed.port or 80)
        if problem:
            self.add("webhdfs", "WebHDFS", FAIL, problem, "check dfs.namenode.http-address (hdfs-site.xml)")
        else:
            self.add("webhdfs", "WebHDFS", OK, f"{self.webhdfs()} accepts connections")

    def authenticated(self) -> None:
        if self.secure:
            if not self.needs("login", "keytab", "kdc"):
                return

            try:
                kerberos.login(self.settings)
            except kerberos.KerberosError as exc:
                self.add("login", "Kerberos login", FAIL, str(exc))
                return
            self.add("login", "Kerberos login", OK, f"ticket of {self.settings.hdfs.kerberos_principal}")
        if not self.needs("access", "webhdfs", "login"):
            return
        import requests

        path = urlparse(self.settings.warehouse).path or "/"
        url = f"{self.webhdfs()}/webhdfs/v1{path}"
        auth, query = None, f"user.name={self.settings.hdfs_user}"
        if self.secure:
            from requests_kerberos import OPTIONAL, HTTPKerberosAuth

            auth, query = HTTPKerberosAuth(mutual_authentication=OPTIONAL), ""
        try:
            status = requests.get(f"{url}?op=GETFILESTATUS&{query}", auth=auth, timeout=15)
        except requests.RequestException as exc:
            self.add("access", "authenticated", FAIL, f"WebHDFS did not answer ({type(exc).__name__})")
            return
        if status.status_code == 401:
            self.add(
                "access",
                "authenticated",
                FAIL,
                "the NameNode refused moulin's credentials (HTTP 401)",
                "check that the principal's realm is the cluster's and the KDC is the cluster's",
            )
            return
        self.add(
            "access",
            "authenticated",
            OK,
            f"the NameNode knows moulin as {self.settings.hdfs_user}"
            if not self.secure
            else f"SPNEGO as {self.settings.hdfs.kerberos_principal}",
        )
        if status.status_code == 404:
            self.add(
                "access",
                "warehouse",
                FAIL,
                f"{self.settings.warehouse} does not exist",
                f"ask the HDFS administrator to create {path} owned by {self.settings.hdfs_user}",
            )
            return
        if status.status_code != 200:
            self.add(
                "access",
                "warehouse",
                FAIL,
                f"GETFILESTATUS {path}: HTTP {status.status_code}: {status.text[:200]}",
            )
            return
        access = requests.get(f"{url}?op=CHECKACCESS&fsaction=rwx&{query}", auth=auth, timeout=15)
        if access.status_code == 200:
            self.add(
                "access", "warehouse", OK, f"{self.settings.warehouse}: moulin may read, write and list it"
            )
        else:
            owner = status.json().get("FileStatus", {})
            self.add(
                "access",
                "warehouse",
                FAIL,
                f"{self.settings.warehouse} is {owner.get('owner')}:{owner.get('group')} "
                f"{owner.get('permission')}: moulin ({self.settings.hdfs_user}) may not write it",
                f"hdfs dfs -chown {self.settings.hdfs_user} {path} (as the HDFS superuser)",
            )

    def spark(self) -> None:
        master = self.settings.spark.master
        if master.startswith("spark://"):
            problems = []
            for address in master.removeprefix("spark://").split(","):
                host, port = _host_port(address, 7077)
                problems.append(_connect(host, port))
            if all(problems):
                self.add(
                    "spark",
                    "Spark master",
                    FAIL,
                    "; ".join(p for p in problems if p),
                    "check MOULIN_SPARK_MASTER (spark://host:port) and that this host may reach it",
                )
            else:
                self.add("spark", "Spark master", OK, f"{master} accepts connections")
        elif master.startswith(("yarn", "local", "k8s://")):
            self.add("spark", "Spark master", OK, f"{master} (nothing to reach from here)")
        else:
            self.add(
                "spark",
                "Spark master",
                FAIL,
                f"{master!r} is no Spark master URL",
                "set MOULIN_SPARK_MASTER to spark://host:port, yarn or local[N]",
            )


def check(settings: Settings, steps: tuple[Callable[[Checker], None], ...] | None = None) -> Report:
    """Run every check against ``settings`` (and the files it names); the report."""
    checker = Checker(settings)
    for step in steps or (
        Checker.hadoop_files,
        Checker.kerberos_files,
        Checker.reachable,
        Checker.authenticated,
        Checker.spark,
    ):
        step(checker)
    return checker.report


__all__ = ["Finding", "Report", "check", "read_hadoop_xml", "read_krb5_conf"]
