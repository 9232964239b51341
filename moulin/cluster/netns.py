"""Hosts as Linux network namespaces joined by one bridge: a cluster of several
machines on one machine, for tests and benchmarks.

Each host is a network namespace (``ip netns``) with one interface ``eth0``, an
address of the network's subnet and its own ``/etc/hosts`` (``ip netns exec``
bind-mounts ``/etc/netns/<namespace>/hosts`` over ``/etc/hosts``).  The bridge
lives in a namespace of its own (the *switch*), so nothing of a network is in the
machine's own namespace: no address, no route, no link.  Two networks on one
machine (two test runs) never see each other, even with the same subnet.

Every name a network creates starts with ``<prefix><run id>-`` (namespaces, the
``/etc/netns`` folders); :func:`destroy` removes them and ends the processes left
in them, and :func:`leftovers` finds those of networks whose owner is gone.

Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and iproute2.
"""

from __future__ import annotations

import ctypes
import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

from moulin.errors import MoulinError

NETNS_RUN_DIR = Path("/run/netns")
NETNS_ETC_DIR = Path("/etc/netns")
# Where each live network records who owns it (read by `leftovers`).
REGISTRY_DIR = Path("/run/moulin-netns")
SWITCH = "sw"
BRIDGE = "br0"
HOST_LINK = "eth0"
_CLONE_NEWNET = 0x40000000
T = TypeVar("T")


class NetworkError(MoulinError):
    """A network namespace, link or address could not be made or removed."""


@dataclass(frozen=True)
class Host:
    """One host of a network: its role, namespace, address and names."""

    role: str  # "namenode", "datanode-0", "spark-master", "spark-worker-1", "kdc", "driver"
    namespace: str
    address: str
    hostname: str  # fully qualified: <role>.<domain>
    port: str  # the bridge's port (a veth end in the switch namespace)


@dataclass
class Network:
    """A set of hosts on one bridge; what :func:`create` made and :func:`destroy` removes."""

    run_id: str
    prefix: str
    subnet: str
    domain: str
    hosts: list[Host] = field(default_factory=list)
    # The process that owns the network (a test run); None: kept until `destroy`
    # (`moulin cluster up --hosts`), never taken for a leftover.
    owner_pid: int | None = None

    @property
    def stem(self) -> str:
        """The start of every name this network creates."""
        return f"{self.prefix}{self.run_id}-"

    @property
    def switch(self) -> str:
        """The namespace holding the bridge."""
        return f"{self.stem}{SWITCH}"

    @property
    def namespaces(self) -> list[str]:
        return [self.switch, *(h.namespace for h in self.hosts)]

    def host(self, role: str) -> Host:
        """The host of ``role``; NetworkError naming the roles there are otherwise."""
        for host in self.hosts:
            if host.role == role:
                return host
        raise NetworkError(
            f"network {self.run_id} has no host {role!r}: it has {', '.join(h.role for h in self.hosts)}"
        )

    def has(self, role: str) -> bool:
        return any(h.role == role for h in self.hosts)

    def address_of(self, name: str) -> str:
        """The address of a host given by hostname, role or address."""
        for host in self.hosts:
            if name in (host.hostname, host.role, host.address):
                return host.address
        raise NetworkError(f"{name!r} is no host of network {self.run_id}")

    def hosts_file(self) -> str:
        """The ``/etc/hosts`` every namespace of the network sees."""
        lines = ["127.0.0.1 localhost"]
        lines += [f"{h.address} {h.hostname} {h.role}" for h in self.hosts]
        return "\n".join(lines) + "\n"

    def exec_prefix(self, role: str) -> list[str]:
        """The command prefix that runs a program on host ``role``."""
        return ["ip", "netns", "exec", self.host(role).namespace]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> Network:
        data = json.loads(text)
        hosts = [Host(**h) for h in data.pop("hosts")]
        return cls(hosts=hosts, **data)


def plan(
    roles: Iterable[str],
    subnet: str = "198.51.100.0/24",
    domain: str = "moulin.test",
    prefix: str = "mln",
    run_id: str | None = None,
    owner_pid: int | None = None,
    first_host: int = 10,
) -> Network:
    """A network of one host per role, addresses from ``subnet`` in order from its
    ``first_host``-th address (nothing created yet)."""
    net = ipaddress.ip_network(subnet)
    run_id = run_id or secrets.token_hex(3)
    if len(f"{prefix}{run_id}-") > 12:
        raise NetworkError(f"prefix {prefix!r} with run id {run_id!r} is too long for namespace names")
    domain = f"{prefix}{run_id}.{domain}"
    hosts = []
    for offset, role in enumerate(roles):
        address = net.network_address + first_host + offset
        if address not in net or address == net.broadcast_address:
            raise NetworkError(f"subnet {subnet} has no room for {offset + 1} hosts from .{first_host}")
        hosts.append(
            Host(
                role=role,
                namespace=f"{prefix}{run_id}-{_short(role)}",
                address=str(address),
                hostname=f"{role}.{domain}",
                port=f"p{offset}",
            )
        )
    return Network(
        run_id=run_id, prefix=prefix, subnet=subnet, domain=domain, hosts=hosts, owner_pid=owner_pid
    )


def _short(role: str) -> str:
    """A short namespace suffix for a role ("datanode-1" -> "dn1")."""
    kind, _, index = role.partition("-")
    abbrev = {
        "namenode": "nn",
        "datanode": "dn",
        "spark": "sp",
        "kdc": "kdc",
        "driver": "drv",
    }.get(kind, kind[:3])
    if role.startswith("spark-master"):
        return "spm"
    if role.startswith("spark-worker"):
        return f"spw{role.rsplit('-', 1)[-1]}"
    return f"{abbrev}{index}"


# ----------------------------------------------------------------- commands
def _ip(*args: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise NetworkError("`ip` was not found: install iproute2 (apt-get install -y iproute2)") from None
    except subprocess.TimeoutExpired:
        raise NetworkError(f"`ip {' '.join(args)}` did not finish in {timeout} s") from None
    if check and result.returncode != 0:
        raise NetworkError(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")
    return result


def check_capabilities() -> None:
    """Raise a NetworkError saying what to do when this process cannot make namespaces."""
    if os.geteuid() != 0:
        raise NetworkError(
            "hosts as network namespaces need root (CAP_NET_ADMIN and CAP_SYS_ADMIN): run as root, "
            "or use the single-host cluster (`moulin cluster up` without --hosts)"
        )
    if shutil.which("ip") is None:
        raise NetworkError("`ip` was not found: install iproute2 (apt-get install -y iproute2)")


def create(network: Network) -> Network:
    """Make the switch, every host namespace, its link, address and hosts file; on any
    failure, remove what was made and raise."""
    check_capabilities()
    _register(network)
    try:
        _ip("netns", "add", network.switch)
        _ip("-n", network.switch, "link", "add", BRIDGE, "type", "bridge")
        _ip("-n", network.switch, "link", "set", BRIDGE, "up")
        _ip("-n", network.switch, "link", "set", "lo", "up")
        prefixlen = ipaddress.ip_network(network.subnet).prefixlen
        hosts_text = network.hosts_file()
        for host in network.hosts:
            _ip("netns", "add", host.namespace)
            etc = NETNS_ETC_DIR / host.namespace
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text(hosts_text)
            # Both ends are made in their namespaces: the machine's own sees neither.
            _ip(
                "link", "add", HOST_LINK, "netns", host.namespace, "type", "veth",
                "peer", "name", host.port, "netns", network.switch,
            )  # fmt: skip
            _ip("-n", network.switch, "link", "set", host.port, "master", BRIDGE)
            _ip("-n", network.switch, "link", "set", host.port, "up")
            _ip("-n", host.namespace, "addr", "add", f"{host.address}/{prefixlen}", "dev", HOST_LINK)
            _ip("-n", host.namespace, "link", "set", HOST_LINK, "up")
            _ip("-n", host.namespace, "link", "set", "lo", "up")
    except BaseException:
        destroy(network)
        raise
    return network


def _register(network: Network) -> None:
    REGISTRY_DIR.mkdir(parents=True, exist_ok=True)
    (REGISTRY_DIR / f"{network.prefix}{network.run_id}.json").write_text(network.to_json())


def destroy(network: Network, timeout_s: float = 15) -> list[str]:
    """End the processes left in the network's namespaces, remove the namespaces, their
    links (with them) and hosts files; return what it removed.  Safe to call twice."""
    return destroy_stem(network.stem, timeout_s) + _unregister(f"{network.prefix}{network.run_id}")


def _unregister(key: str) -> list[str]:
    path = REGISTRY_DIR / f"{key}.json"
    if path.exists():
        path.unlink(missing_ok=True)
        return [str(path)]
    return []


def namespaces_with(stem: str) -> list[str]:
    """Network namespaces whose name starts with ``stem``."""
    listed = _ip("netns", "list", check=False).stdout.split("\n")
    names = {line.split()[0] for line in listed if line.strip()}
    if NETNS_RUN_DIR.is_dir():
        names |= {p.name for p in NETNS_RUN_DIR.iterdir()}
    return sorted(n for n in names if n.startswith(stem))


def pids_in(namespace: str) -> list[int]:
    """Processes whose network namespace is ``namespace``."""
    result = _ip("netns", "pids", namespace, check=False)
    return [int(p) for p in result.stdout.split() if p.isdigit()]


def destroy_stem(stem: str, timeout_s: float = 15) -> list[str]:
    """Remove every namespace (and its ``/etc/netns`` folder) named ``stem...`` after ending
    the processes in it (SIGTERM, then SIGKILL after ``timeout_s``)."""
    removed = []
    names = namespaces_with(stem)
    pids = {pid for ns in names for pid in pids_in(ns)}
    pids.discard(os.getpid())
    for pid in pids:
        _kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while pids and time.monotonic() < deadline:
        pids = {pid for pid in pids if _alive(pid)}
        time.sleep(0.2)
    for pid in pids:
        _kill(pid, signal.SIGKILL)
    for ns in names:
        _ip("netns", "del", ns, check=False)
        removed.append(f"namespace {ns}")
    if NETNS_ETC_DIR.is_dir():
        for folder in NETNS_ETC_DIR.iterdir():
            if folder.name.startswith(stem):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(str(folder))
    return removed


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def leftovers(prefix: str = "mln") -> list[str]:
    """Stems (``<prefix><run id>-``) of networks left by owners that are gone: a test
    run's whose process died, or namespaces no live network registered."""
    registered: dict[str, Network] = {}
    if REGISTRY_DIR.is_dir():
        for path in REGISTRY_DIR.glob(f"{prefix}*.json"):
            try:
                registered[path.stem] = Network.from_json(path.read_text())
            except (OSError, ValueError, TypeError, KeyError):
                continue
    stems = {ns.rsplit("-", 1)[0] + "-" for ns in namespaces_with(prefix)}
    stems |= {n.stem for n in registered.values()}
    gone = []
    for stem in sorted(stems):
        net = registered.get(stem[:-1])
        if net is None:
            gone.append(stem)  # no record: nobody owns it
        elif net.owner_pid is not None and not _alive(net.owner_pid):
            gone.append(stem)
    return gone


def remove_leftovers(prefix: str = "mln") -> list[str]:
    """Remove the networks :func:`leftovers` finds; return what was removed."""
    removed = []
    for stem in leftovers(prefix):
        removed += destroy_stem(stem)
        removed += _unregister(stem[:-1])
    return removed


# ------------------------------------------------------------- inside a host
def in_namespace(namespace: str, action: Callable[[], T], timeout_s: float = 60) -> T:
    """Run ``action`` in a thread that has entered ``namespace``'s network (sockets it
    opens are that host's); return its result or raise its exception.

    Only the network changes: files, and so ``/etc/hosts``, are this process's, so
    give addresses, not the network's hostnames.
    """
    box: dict[str, object] = {}

    def run() -> None:
        try:
            fd = os.open(NETNS_RUN_DIR / namespace, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            box["error"] = NetworkError(f"network namespace {namespace} does not exist ({exc})")
            return
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.setns(fd, _CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                box["error"] = NetworkError(f"cannot enter network namespace {namespace}: {os.strerror(err)}")
                return
            box["result"] = action()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc
        finally:
            os.close(fd)

    # The thread ends after the action: no thread of this process stays in the namespace.
    thread = threading.Thread(target=run, name=f"netns-{namespace}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise NetworkError(f"an action in namespace {namespace} did not finish in {timeout_s} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]


def set_link(network: Network, role: str, up: bool) -> None:
    """Take host ``role``'s cable out of the bridge (``up=False``) or put it back: its
    packets are dropped both ways until then, as with a pulled cable or a dead switch port."""
    _ip("-n", network.switch, "link", "set", network.host(role).port, "up" if up else "down")


def cut_path(network: Network, a: str, b: str, cut: bool = True) -> None:
    """Drop the traffic between hosts ``a`` and ``b`` only (``cut=False``: restore it),
    their cables staying in: each gets a blackhole route to the other, so what one
    sends the other is discarded, and both keep talking to every other host."""
    for here, there in ((a, b), (b, a)):
        ns, address = network.host(here).namespace, network.host(there).address
        if cut:
            _ip("-n", ns, "route", "replace", "blackhole", f"{address}/32")
        else:
            _ip("-n", ns, "route", "del", "blackhole", f"{address}/32", check=False)
