"""An MIT Kerberos KDC (Debian's ``krb5-kdc``) for a cluster on hosts, with the
principals of its daemons and users, and the Hadoop properties of secure HDFS.

The realm is the network's domain in capitals.  Principals:

* ``nn/<namenode host>``, ``dn/<datanode host>`` and ``HTTP/<host>`` for each HDFS
  daemon's host (host-based: the hostnames of the network, resolved by each host's
  hosts file), in one keytab per daemon;
* ``hdfs``: the HDFS administrator (the NameNode's superuser: ``nn/*`` and ``dn/*``
  map to ``hdfs`` too, ``hadoop.security.auth_to_local``);
* moulin's service account (``hdfs.user`` or ``moulin``) and the users
  ``engineer``, ``analyst``, ``dpo``, ``outsider``, each with a keytab.

Keytabs are written mode 0600 under ``<cluster_dir>/kerberos/keytabs``; the KDC's
database, its ``kdc.conf`` and the clients' ``krb5.conf`` under ``<cluster_dir>/kerberos``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from moulin.cluster.daemons import ClusterError, Daemon
from moulin.cluster.files import write_once
from moulin.cluster.netns import Network

USERS = ("engineer", "analyst", "dpo", "outsider")
KDC_PORT = 88
DEBIAN_PACKAGES = ("krb5-kdc", "krb5-admin-server", "krb5-user")


def _tool(name: str) -> str:
    for folder in ("/usr/sbin", "/usr/bin"):
        path = Path(folder) / name
        if path.exists():
            return str(path)
    found = shutil.which(name)
    if not found:
        raise ClusterError(
            f"{name} was not found: a Kerberos cluster needs MIT Kerberos "
            f"(apt-get install -y {' '.join(DEBIAN_PACKAGES)})"
        )
    return found


@dataclass(frozen=True)
class Realm:
    """The realm of a network: names, files and principals."""

    network: Network
    root: Path  # <cluster_dir>/kerberos
    service_user: str = "moulin"

    @property
    def name(self) -> str:
        return self.network.domain.upper()

    @property
    def kdc_host(self) -> str:
        return self.network.host("kdc").hostname

    @property
    def krb5_conf(self) -> Path:
        return self.root / "krb5.conf"

    @property
    def kdc_conf(self) -> Path:
        return self.root / "kdc.conf"

    @property
    def database(self) -> Path:
        return self.root / "db" / "principal"

    @property
    def keytab_dir(self) -> Path:
        return self.root / "keytabs"

    def keytab(self, owner: str) -> Path:
        """The keytab of a daemon ("namenode", "datanode-0") or a user ("moulin", "hdfs")."""
        return self.keytab_dir / f"{owner}.keytab"

    def principal(self, user: str) -> str:
        return f"{user}@{self.name}"

    def host_principals(self, role: str) -> list[str]:
        """The service principals of the HDFS daemon on host ``role``."""
        hostname = self.network.host(role).hostname
        service = "nn" if role == "namenode" else "dn"
        return [f"{service}/{hostname}@{self.name}", f"HTTP/{hostname}@{self.name}"]

    # ---------------------------------------------------------------- files
    def write_configs(self) -> None:
        """krb5.conf (clients, daemons) and kdc.conf (the KDC)."""
        write_once(
            self.krb5_conf,
            f"""[libdefaults]
  default_realm = {self.name}
  dns_lookup_kdc = false
  dns_lookup_realm = false
  rdns = false
  dns_canonicalize_hostname = false
  udp_preference_limit = 1
  ticket_lifetime = 10h
  renew_lifetime = 1d
  forwardable = true
  default_ccache_name = FILE:{self.root}/ccache/default

[realms]
  {self.name} = {{
    kdc = {self.kdc_host}:{KDC_PORT}
  }}

[domain_realm]
  .{self.network.domain} = {self.name}
  {self.network.domain} = {self.name}
""",
        )
        write_once(
            self.kdc_conf,
            f"""[kdcdefaults]
  kdc_tcp_listen = {KDC_PORT}
  kdc_listen = {KDC_PORT}

[realms]
  {self.name} = {{
    database_name = {self.database}
    key_stash_file = {self.root}/db/stash
    acl_file = {self.root}/kadm5.acl
    max_life = 10h
    max_renewable_life = 1d
    supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
  }}

[logging]
  kdc = FILE:{self.root}/kdc.log
""",
        )
        write_once(self.root / "kadm5.acl", "")

    def env(self) -> dict[str, str]:
        """The variables that point MIT tools at this realm's files."""
        return {"KRB5_CONFIG": str(self.krb5_conf), "KRB5_KDC_PROFILE": str(self.kdc_conf)}

    def _kadmin(self, *queries: str) -> None:
        env = {**os.environ, **self.env()}
        for query in queries:
            result = subprocess.run(
                [_tool("kadmin.local"), "-r", self.name, "-q", query],
                capture_output=True,
                text=True,
                env=env,
                timeout=60,
            )
            if result.returncode != 0 or "rror" in result.stderr:
                raise ClusterError(f"kadmin.local {query!r} failed: {result.stderr.strip()[-800:]}")

    def create(self, daemon_roles: list[str]) -> None:
        """Make the database (once), the principals and the keytabs (mode 0600)."""
        self.write_configs()
        (self.root / "ccache").mkdir(parents=True, exist_ok=True, mode=0o700)
        if (self.root / "db" / "stash").exists():
            return
        (self.root / "db").mkdir(parents=True, exist_ok=True, mode=0o700)
        result = subprocess.run(
            [_tool("kdb5_util"), "create", "-s", "-r", self.name, "-P", secrets.token_urlsafe(24)],
            capture_output=True,
            text=True,
            env={**os.environ, **self.env()},
            timeout=60,
        )
        if result.returncode != 0:
            raise ClusterError(f"kdb5_util create failed: {result.stderr.strip()[-800:]}")
        self.keytab_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for role in daemon_roles:
            principals = self.host_principals(role)
            self._kadmin(*(f"addprinc -randkey {p}" for p in principals))
            self._kadmin(f"ktadd -k {self.keytab(role)} {' '.join(principals)}")
        for user in ("hdfs", self.service_user, *USERS):
            self._kadmin(
                f"addprinc -randkey {self.principal(user)}",
                f"ktadd -k {self.keytab(user)} {self.principal(user)}",
            )
        for path in self.keytab_dir.iterdir():
            os.chmod(path, 0o600)

    def daemon(self) -> Daemon:
        """The KDC process (foreground, on the network's ``kdc`` host)."""
        host = self.network.host("kdc")
        return Daemon(
            name="kdc",
            command=lambda: [
                "/usr/bin/env",
                *(f"{k}={v}" for k, v in self.env().items()),
                _tool("krb5kdc"),
                "-n",
                "-r",
                self.name,
                "-P",
                str(self.root / "kdc.pid"),
            ],
            ports=(("kerberos", KDC_PORT),),
            marker=str(self.root / "kdc.pid"),
            netns=host.namespace,
            address=host.address,
        )

    # ------------------------------------------------------------ Hadoop side
    def auth_to_local(self) -> str:
        """Rules naming each principal's HDFS user: the daemons' ``hdfs``, a user's own name."""
        realm = self.name.replace(".", "\\.")
        return "\n".join(
            [
                f"RULE:[2:$1@$0](nn@{realm})s/.*/hdfs/",
                f"RULE:[2:$1@$0](dn@{realm})s/.*/hdfs/",
                f"RULE:[2:$1@$0](HTTP@{realm})s/.*/hdfs/",
                f"RULE:[1:$1@$0](.*@{realm})s/@.*//",
                "DEFAULT",
            ]
        )

    def hadoop_conf(self, daemon: str) -> dict[str, dict[str, str]]:
        """Secure-mode properties of daemon (or client) ``daemon``'s configuration."""
        core = {
            "hadoop.security.authentication": "kerberos",
            "hadoop.security.authorization": "true",
            "hadoop.rpc.protection": "authentication",
            "hadoop.security.auth_to_local": self.auth_to_local(),
        }
        hdfs = {
            "dfs.block.access.token.enable": "true",
            "dfs.namenode.kerberos.principal": f"nn/_HOST@{self.name}",
            "dfs.datanode.kerberos.principal": f"dn/_HOST@{self.name}",
            "dfs.web.authentication.kerberos.principal": f"HTTP/_HOST@{self.name}",
            "dfs.namenode.kerberos.internal.spnego.principal": f"HTTP/_HOST@{self.name}",
            # SASL on the DataNodes' data transfer instead of root ports (no jsvc).
            "dfs.data.transfer.protection": "authentication",
            # Hadoop refuses SASL data transfer with a plain-HTTP DataNode web server unless
            # told otherwise: the test cluster's web servers are not TLS (see docs/guides/cluster.md).
            "ignore.secure.ports.for.testing": "true",
            "dfs.permissions.superusergroup": "supergroup",
        }
        if daemon == "namenode":
            hdfs["dfs.namenode.keytab.file"] = str(self.keytab("namenode"))
            hdfs["dfs.web.authentication.kerberos.keytab"] = str(self.keytab("namenode"))
        elif daemon.startswith("datanode-"):
            hdfs["dfs.datanode.keytab.file"] = str(self.keytab(daemon))
            hdfs["dfs.web.authentication.kerberos.keytab"] = str(self.keytab(daemon))
        return {"core-site.xml": core, "hdfs-site.xml": hdfs}

    def java_options(self) -> list[str]:
        """JVM options of a Hadoop 2.7 daemon or client on Java 17 in this realm."""
        # Hadoop 2.7 reaches into the JDK's Kerberos classes (KerberosUtil: the default
        # realm, SPNEGO's OIDs), which Java 17 no longer opens to the classpath.
        internals = (
            "sun.security.krb5",
            "sun.security.krb5.internal",
            "sun.security.jgss",
            "sun.security.jgss.krb5",
        )
        return [
            f"-Djava.security.krb5.conf={self.krb5_conf}",
            "-Djavax.security.auth.useSubjectCredsOnly=false",
            *(f"--add-opens=java.security.jgss/{package}=ALL-UNNAMED" for package in internals),
        ]
