"""Background daemons tracked by pid files: start once, stop only what we started."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from moulin.cluster.files import exclusive_lock, write_atomic
from moulin.cluster.netns import in_namespace
from moulin.errors import MoulinError


class ClusterError(MoulinError):
    """The local cluster cannot start or is unhealthy; the message says what to do."""


@dataclass(frozen=True)
class Daemon:
    """One background process of the local cluster."""

    name: str  # e.g. "namenode", "datanode-1"
    command: Callable[[], list[str]]  # built only when the daemon is started
    ports: tuple[tuple[str, int], ...]  # (what, port) pairs it binds
    marker: str  # a string its command line holds (guards against pid reuse)
    env: dict[str, str] | None = None
    # Operating-system account to run as when moulin runs as root (PostgreSQL refuses root).
    run_as: str | None = None
    # What `stop` sends first (PostgreSQL: SIGINT, a fast shutdown that does not wait for clients).
    stop_signal: int = signal.SIGTERM
    # The network namespace it runs in (a host of moulin.cluster.netns), None: this
    # machine's own; and the address its ports are checked on there (None: the set's host).
    netns: str | None = None
    address: str | None = None


class DaemonSet:
    """Pid-file bookkeeping for the daemons under one folder."""

    def __init__(self, root: Path, host: str = "127.0.0.1") -> None:
        self.root = root
        self.host = host
        self.pid_dir = root / "pids"
        self.log_dir = root / "logs"

    def pid_file(self, name: str) -> Path:
        return self.pid_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.out"

    def pid(self, daemon: Daemon) -> int | None:
        """The pid of ``daemon`` if it runs (from its pid file), else None."""
        path = self.pid_file(daemon.name)
        try:
            pid = int(path.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if process_alive(pid, daemon.marker) else None

    def lock_file(self, name: str) -> Path:
        return self.pid_dir / f".{name}.lock"

    def start(self, daemon: Daemon) -> tuple[int, bool]:
        """Start ``daemon`` unless it runs; return (pid, started_now).

        Another ``moulin`` process starting or stopping the same daemon waits (a lock
        per daemon), so two ``up`` never start it twice; the pid file is replaced in
        one rename, so a reader never sees it empty.
        """
        with exclusive_lock(self.lock_file(daemon.name)):
            return self._start_locked(daemon)

    def _start_locked(self, daemon: Daemon) -> tuple[int, bool]:
        existing = self.pid(daemon)
        if existing:
            return existing, False
        for what, port in daemon.ports:
            address = daemon.address or self.host
            if daemon.netns:
                what_there = f"{daemon.name} {what} in namespace {daemon.netns}"
                in_namespace(daemon.netns, lambda a=address, p=port, w=what_there: ensure_port_free(a, p, w))
            else:
                ensure_port_free(address, port, f"{daemon.name} {what}")
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        # Hadoop daemons run as the OS user that starts them (the NameNode's is the
        # HDFS superuser), never as the user moulin's clients act as.
        env.pop("HADOOP_USER_NAME", None)
        env.update(daemon.env or {})
        account = run_as_kwargs(daemon.run_as)
        command = daemon.command()  # may prepare files: before the process starts
        if daemon.netns:
            # `ip netns exec` enters the namespace and execs the command: same pid.
            command = ["ip", "netns", "exec", daemon.netns, *command]
        with open(self.log_file(daemon.name), "ab") as log:
            proc = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # outlives the `moulin` command
                env=env,
                **account,
            )
        write_atomic(self.pid_file(daemon.name), f"{proc.pid}\n")
        time.sleep(0.5)
        if proc.poll() is not None:
            raise ClusterError(
                f"{daemon.name} exited at once with code {proc.returncode}; "
                f"see {self.log_file(daemon.name)}:\n{tail(self.log_file(daemon.name))}"
            )
        return proc.pid, True

    def stop(self, daemon: Daemon, timeout_s: float = 20.0) -> bool:
        """Stop ``daemon`` if we started it and it runs; return whether it was running."""
        if not self.pid_dir.is_dir():
            return False  # nothing was ever started here
        with exclusive_lock(self.lock_file(daemon.name)):
            return self._stop_locked(daemon, timeout_s)

    def _stop_locked(self, daemon: Daemon, timeout_s: float) -> bool:
        pid = self.pid(daemon)
        self.pid_file(daemon.name).unlink(missing_ok=True)
        if not pid:
            return False
        _signal_group(pid, daemon.stop_signal)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and process_alive(pid, daemon.marker):
            time.sleep(0.2)
        if process_alive(pid, daemon.marker):
            _signal_group(pid, signal.SIGKILL)
            time.sleep(0.5)
        return True


def run_as_kwargs(account: str | None) -> dict:
    """``subprocess.Popen`` arguments that run a child as ``account`` when this process is
    root (nothing otherwise: a normal user runs its children as itself)."""
    if not account or os.geteuid() != 0:
        return {}
    import pwd

    try:
        entry = pwd.getpwnam(account)
    except KeyError:
        raise ClusterError(
            f"operating-system user {account!r} does not exist: install the package that creates it "
            "or run moulin as a normal user"
        ) from None
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def process_alive(pid: int, marker: str) -> bool:
    """Whether ``pid`` runs (not a zombie) and its command line holds ``marker`` (not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":  # zombie: exited
        return False
    return marker in cmdline


def ensure_port_free(host: str, port: int, what: str) -> None:
    """Raise a ClusterError naming ``port`` if something already listens there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            raise ClusterError(
                f"port {port} on {host} ({what}) is taken by another process: stop it, "
                f"or move moulin's port with the matching MOULIN_* setting "
                f"(see `moulin settings`)"
            ) from None


def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def java_executable() -> str:
    """Path of ``java`` (JAVA_HOME first); a clear error if none is installed."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise ClusterError(
            "java was not found on PATH and JAVA_HOME is unset: install a JDK 17 "
            "(e.g. apt-get install -y openjdk-17-jdk-headless) and retry"
        )
    return found


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file (empty if it does not exist)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
