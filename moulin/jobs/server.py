"""The job server: one long-lived Spark application that runs registered stages on request.

Starting a JVM and a Spark application costs tens of seconds on a small
machine, and a DAG run used to pay it once per stage.  On the ``local`` and
``hdfs-local`` profiles :func:`moulin.jobs.submit.submit_job` hands the stages of
the platform environment to a job server instead: a Python process holding
one SparkSession that runs stages one at a time, with the same
``(ctx, args) -> dict`` call as under ``spark-submit``, and streams their output
lines back to the caller.

A server serves one configuration: its name is a digest of the settings the
job would load, moulin's code version, the Python interpreter and the
``MOULIN_*`` / Spark / Hadoop environment, so a code edit or another profile
gets a server of its own.  It listens on ``127.0.0.1`` (a random port and a
random token, in a mode-0600 file under ``$MOULIN_HOME/run/jobs``), exits after
``spark.job_server_idle_s`` seconds without a request, and exits after any stage
that failed for a reason other than its data, so that the retry gets a fresh
application.  The ``cluster`` profile keeps ``spark-submit``: there each job
gets its own executors.

Stages of several callers wait for each other: a queued caller is told which
stage it waits for, and waits up to :data:`QUEUE_LIMIT_S`; a stage's own limit
(``timeout_s``) is a wall-clock deadline from the moment the server starts it.
Past it the caller has the server cancel that stage alone (its Spark job
group), which then ends as failed; no caller's limit ever stops a server that
runs another caller's stage.

    python -m moulin.jobs.server --profile local --name <digest>   (started by submit_job)
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from moulin.cluster.daemons import process_alive as running
from moulin.errors import DataError, MoulinError
from moulin.jobs.context import AIRFLOW_CONTEXT_PREFIX, applied, caller_context
from moulin.jobs.entry import build_parser
from moulin.jobs.registry import StageContext, get_stage
from moulin.lineage import code_version
from moulin.settings import Settings, describe, load_settings
from moulin.spark import act_as_hdfs_user, build_spark_session

#: Environment variables that change what a job does (part of a server's name).
ENV_PREFIXES = ("MOULIN_", "SPARK_", "PYSPARK_", "HADOOP_", "JAVA_")
START_TIMEOUT_S = 180
#: How long a stage may wait for its turn (the stages of other tasks before it), apart from its own limit.
QUEUE_LIMIT_S = 6 * 3600
#: How long a cancelled stage has to end before its server exits (a stage busy outside Spark cannot be interrupted).
CANCEL_GRACE_S = 30
#: How long the server waits for a request line on a new connection.
REQUEST_READ_S = 30


@dataclass(frozen=True)
class ServerInfo:
    """Where a running job server listens (its ``<name>.json`` file)."""

    name: str
    pid: int
    port: int
    token: str
    log: str


def run_dir(settings: Settings) -> Path:
    """Folder of the job servers' address, lock and log files."""
    return settings.home / "run" / "jobs"


def server_name(settings: Settings, env: dict[str, str] | None = None) -> str:
    """The digest naming the server that runs jobs of ``settings`` in this environment."""

    # The child gets HADOOP_USER_NAME from ensure_server: count it the same on both sides.
    env = act_as_hdfs_user(settings, dict(os.environ if env is None else env))
    relevant = {k: v for k, v in sorted(env.items()) if k.startswith(ENV_PREFIXES) and k != "MOULIN_PROFILE"}
    text = json.dumps(
        [describe(settings), code_version(), sys.executable, relevant], sort_keys=True, default=str
    )
    return f"{settings.profile}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def _read_info(path: Path) -> ServerInfo | None:
    try:
        return ServerInfo(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


#: What a job server's command line holds (a pid reused by another program is not ours).
SERVER_MARKER = "moulin.jobs.server"


def process_alive(pid: int) -> bool:
    """Whether job server ``pid`` runs (reaping it first when it is an exited child of ours)."""

    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # our child that exited: reaped, so it leaves no zombie
    return running(pid, SERVER_MARKER)


class _Lines:
    """Messages (one JSON object a line) read from a socket with ``recv``, each read bounded by a deadline.

    A ``socket.makefile`` stream cannot be read again once a timeout fired inside
    it; this reader keeps its own buffer, so a read that timed out loses nothing.
    """

    def __init__(self, conn: socket.socket) -> None:
        self._conn = conn
        self._buffer = b""

    def next(self, deadline: float) -> dict | None:
        """The next message; ``None`` when the peer closed the connection; :class:`TimeoutError` at ``deadline``."""
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message before the deadline")
            self._conn.settimeout(left)
            chunk = self._conn.recv(65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)


def _send_line(conn: socket.socket, message: dict) -> None:
    conn.sendall((json.dumps(message, default=str) + "\n").encode())


def _connect(info: ServerInfo, request: dict, timeout_s: float) -> socket.socket:
    """A connection to the server on which ``request`` (with the token) was sent."""
    conn = socket.create_connection(("127.0.0.1", info.port), timeout=timeout_s)
    try:
        _send_line(conn, {**request, "token": info.token})
    except OSError:
        conn.close()
        raise
    return conn


def _exchange(info: ServerInfo, request: dict, timeout_s: float) -> Iterator[dict]:
    """Send ``request`` to the server and yield the messages it answers with, all within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    with _connect(info, request, timeout_s) as conn:
        lines = _Lines(conn)
        while (message := lines.next(deadline)) is not None:
            yield message


def ping(info: ServerInfo) -> bool:
    """Whether the server answers."""
    try:
        return any(m.get("done") == "ok" for m in _exchange(info, {"op": "ping"}, 5))
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def _locked(path: Path, timeout_s: float) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise MoulinError(f"job server lock {path} held for over {timeout_s:.0f}s") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def ensure_server(settings: Settings) -> ServerInfo:
    """The running server for ``settings`` (started, and waited for, if none answers)."""
    name = server_name(settings)
    folder = run_dir(settings)
    info_path, log_path = folder / f"{name}.json", folder / f"{name}.log"
    with _locked(folder / f"{name}.lock", START_TIMEOUT_S + 30):
        info = _read_info(info_path)
        if info is not None and process_alive(info.pid) and ping(info):
            return info
        info_path.unlink(missing_ok=True)
        env = dict(os.environ, MOULIN_PROFILE=settings.profile, PYTHONUNBUFFERED="1")
        # It serves many tasks: each request brings its own task context (moulin.jobs.context).
        env = {k: v for k, v in env.items() if not k.startswith(AIRFLOW_CONTEXT_PREFIX)}
        act_as_hdfs_user(settings, env)  # its Spark JVM and deltalake act as the HDFS user
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "moulin.jobs.server", "--profile", settings.profile, "--name", name],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # outlives the task that started it
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise MoulinError(
                    f"the job server exited with code {proc.returncode} while starting; "
                    f"its log {log_path} ends with:\n{_log_tail(log_path)}"
                )
            info = _read_info(info_path)
            if info is not None and info.pid == proc.pid and ping(info):
                return info
            time.sleep(0.25)
        proc.kill()
        raise MoulinError(
            f"the job server did not answer within {START_TIMEOUT_S}s; its log {log_path} "
            f"ends with:\n{_log_tail(log_path)}"
        )


def cancel_stage(info: ServerInfo, request_id: str) -> bool:
    """Ask the server to cancel the stage of request ``request_id``; whether that stage was the one running.

    The server cancels only the stage of that request (its Spark job group), never
    another one, and the stage then ends as failed (see :class:`JobServer`).
    """
    for message in _exchange(info, {"op": "cancel", "id": request_id}, 15):
        if "done" in message:
            return bool(message.get("cancelled"))
    return False


#: The answer of :func:`_run_once` when the server went away before the stage started (run it again).
_RETRY = {"done": "retry"}


def run_stage(
    settings: Settings,
    stage: str,
    argv: list[str],
    timeout_s: float,
    relay: Callable[[str], None],
    queue_limit_s: float = QUEUE_LIMIT_S,
    context: dict[str, str] | None = None,
):
    """Run ``stage`` on the server for ``settings`` and return the server's final message.

    ``context`` is the caller's task context and what it hands to the stage
    (:func:`moulin.jobs.context.caller_context`, by default this process's
    ``AIRFLOW_CTX_*``): the server applies it to this stage alone.

    ``relay`` gets every output line of the stage as it comes, and a ``moulin:``
    line when the stage has to wait for another one.  The stage waits its turn
    (stages run one at a time) for up to ``queue_limit_s``; its own limit,
    ``timeout_s``, counts from the moment the server starts it.  Returns the
    ``done`` message (``{"done": "ok", "result": ...}``, ``"data_error"`` or
    ``"failed"`` with a ``message``).  Raises :class:`MoulinError` when the stage
    ran over its limit (the server cancelled it), when it waited over
    ``queue_limit_s`` (the server is left alone), or when the server went away
    while running it (it is then stopped, so a retry starts afresh).  A server
    that went away before the stage started is started again.
    """
    for _attempt in range(3):
        info = ensure_server(settings)
        try:
            done = _run_once(info, stage, argv, timeout_s, relay, queue_limit_s, context)
        except ConnectionRefusedError:  # it stopped between the ping and the request
            continue
        if done["done"] != "retry":
            return done
    raise MoulinError(
        f"no job server for {settings.profile} would take stage {stage}; see {run_dir(settings)}"
    )


def _run_once(
    info: ServerInfo,
    stage: str,
    argv: list[str],
    timeout_s: float,
    relay: Callable[[str], None],
    queue_limit_s: float,
    context: dict[str, str] | None = None,
) -> dict:
    """One request: wait for the start (queue limit), then for the end (the stage's own limit)."""
    request = {
        "op": "run",
        "stage": stage,
        "argv": argv,
        "limit_s": timeout_s,
        "context": caller_context() if context is None else context,
    }
    try:
        conn = _connect(info, request, 10)
    except ConnectionRefusedError:
        raise
    except OSError:
        return _RETRY  # it went away while we connected: our stage never started
    with conn:
        lines = _Lines(conn)
        request_id = _wait_for_start(info, stage, lines, relay, queue_limit_s)
        if isinstance(request_id, dict):
            return request_id  # answered without running (a retry, a refused request)
        deadline = time.monotonic() + timeout_s
        try:
            while (message := lines.next(deadline)) is not None:
                if "line" in message:
                    relay(message["line"])
                elif "done" in message:
                    return message
        except TimeoutError:
            return _cancel_over_limit(info, stage, timeout_s, request_id, lines, relay)
        except OSError as exc:
            stop_server(info)
            raise MoulinError(
                f"job server {info.name} dropped the connection while running {stage} ({exc}); "
                f"its log {info.log} ends with:\n{_log_tail(Path(info.log))}"
            ) from None
    stop_server(info)
    raise MoulinError(
        f"job server {info.name} stopped while running {stage}; its log {info.log} ends with:\n"
        f"{_log_tail(Path(info.log))}"
    )


def _wait_for_start(
    info: ServerInfo, stage: str, lines: _Lines, relay: Callable[[str], None], queue_limit_s: float
) -> str | dict:
    """The request id once the server started the stage, or the ``done`` message it answered instead.

    The wait has no part of the stage's limit: stages run one at a time, and a
    queued stage must not stop the one running.  Past ``queue_limit_s`` it gives
    up (the server and the stage it runs are left alone).
    """
    deadline = time.monotonic() + queue_limit_s
    holder = None
    try:
        while (message := lines.next(deadline)) is not None:
            if message.get("started"):
                return str(message["id"])
            if "done" in message:
                return message
            if message.get("queued"):
                holder = message.get("running")
                relay(
                    f"moulin: {stage} waits for job server {info.name}, which runs stage {holder} "
                    f"(for {message.get('running_s', 0):.0f}s so far)"
                )
    except TimeoutError:
        running = f"stage {holder}" if holder else "other stages"
        raise MoulinError(
            f"stage {stage} waited over {queue_limit_s:.0f}s for its turn on job server {info.name}, "
            f"busy with {running}; gave up without stopping it (see `moulin jobs list`)"
        ) from None
    except OSError:
        pass  # it went away before our stage started: that stage never ran, start it again
    return _RETRY


def _cancel_over_limit(
    info: ServerInfo,
    stage: str,
    timeout_s: float,
    request_id: str,
    lines: _Lines,
    relay: Callable[[str], None],
) -> dict:
    """Have the server cancel our stage, which ran over its limit, and raise (or return its late ``done``)."""
    over = f"stage {stage} ran over its limit of {timeout_s:.0f}s on job server {info.name}"
    with contextlib.suppress(OSError, ValueError):  # a server gone shows as the connection closing
        cancel_stage(info, request_id)
    deadline = time.monotonic() + CANCEL_GRACE_S + 15
    try:
        while (message := lines.next(deadline)) is not None:
            if "line" in message:
                relay(message["line"])
            elif "done" in message:
                if message.get("cancelled"):
                    raise MoulinError(f"{over}; {message.get('message', 'cancelled')}")
                return message  # it ended on its own before the cancel reached it
    except TimeoutError:
        # Our stage still holds the server (its end was never sent): stopping it stops no one else's.
        stop_server(info)
        raise MoulinError(
            f"{over} and did not end within {CANCEL_GRACE_S}s of its cancel; stopped the server"
        ) from None
    except OSError:
        pass
    stop_server(info)
    raise MoulinError(
        f"{over}; the server could not cancel it and stopped. Its log {info.log} ends with:\n"
        f"{_log_tail(Path(info.log))}"
    )


def servers(settings: Settings) -> list[ServerInfo]:
    """The job servers whose address files are under this home (running or left by a dead one)."""
    folder = run_dir(settings)
    found = [_read_info(p) for p in sorted(folder.glob("*.json"))] if folder.exists() else []
    return [i for i in found if i is not None]


def stop_server(info: ServerInfo, wait_s: float = 20) -> bool:
    """Stop one server (SIGTERM, then SIGKILL); True if it was running."""
    if not process_alive(info.pid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_s
    while process_alive(info.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if process_alive(info.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, signal.SIGKILL)
    return True


def stop_servers(settings: Settings) -> int:
    """Stop every job server of this home; returns how many were running."""
    stopped = 0
    for info in servers(settings):
        stopped += stop_server(info)
        (run_dir(settings) / f"{info.name}.json").unlink(missing_ok=True)
    return stopped


# --------------------------------------------------------------------------- the server


class _LineWriter:
    """A text stream that hands every complete line to ``send``."""

    def __init__(self, send: Callable[[str], None]) -> None:
        self._send = send
        self._buffer = ""

    def write(self, text: str) -> int:
        self._buffer += text
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            self._send(line)
        return len(text)

    def flush(self) -> None:
        if self._buffer:
            self._send(self._buffer)
            self._buffer = ""


@dataclass
class _Running:
    """The stage a server runs now: its request id (also its Spark job group), name, start and limit."""

    id: str
    stage: str
    started: float
    limit_s: float | None
    cancelled_at: float | None = None


def _peer_gone(conn: socket.socket) -> bool:
    """Whether the caller closed its side of ``conn`` (it sends nothing after its request)."""
    try:
        readable, _, _ = select.select([conn], [], [], 0)
        return bool(readable) and conn.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class JobServer:
    """A SparkSession plus a TCP listener that runs stages one at a time.

    A ``run`` request waits for the run lock (the caller hears ``{"queued": true,
    "running": <stage>}`` while another stage holds it), then gets ``{"started":
    true, "id": <request id>}``, the stage's output lines and its ``done``
    message.  The stage runs under the Spark job group of its request id; a
    ``cancel`` request naming that id (its caller's limit passed) cancels the
    group's jobs, and the stage ends as failed.  A stage still running
    :data:`CANCEL_GRACE_S` after its cancel (busy outside Spark, where a thread
    cannot be interrupted) makes the server exit, as a killed ``spark-submit``
    would.  A cancel naming another id changes nothing.
    """

    def __init__(self, settings: Settings, name: str, idle_s: float) -> None:
        self.settings = settings
        self.name = name
        self.idle_s = idle_s
        self.token = secrets.token_hex(16)
        self._run_lock = threading.Lock()
        self._state_lock = threading.Lock()  # guards _running and _busy
        self._stop = threading.Event()
        self._last = time.monotonic()
        self._busy = 0
        self._running: _Running | None = None
        self._session = None

    def _log(self, text: str) -> None:
        # The server's own log, never a stage's caller (a stage's stdout is redirected to it).
        print(f"job server {self.name}: {text}", file=sys.__stdout__, flush=True)

    def serve(self) -> None:
        """Build the session, publish the address, answer until idle or stopped."""

        started = time.monotonic()
        self._session = build_spark_session(self.settings, f"moulin-jobs-{self.name}")
        self._log(f"Spark session up in {time.monotonic() - started:.1f}s")
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(1.0)
        info = ServerInfo(
            self.name, os.getpid(), listener.getsockname()[1], self.token, str(self._path("log"))
        )
        self._publish(info)
        signal.signal(signal.SIGTERM, lambda *_: self._stop.set())
        try:
            while not self._stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    if not self._busy and time.monotonic() - self._last > self.idle_s:
                        self._log(f"idle for {self.idle_s:.0f}s, stopping")
                        break
                    continue
                threading.Thread(target=self._handle, args=(conn,), daemon=True).start()
        finally:
            listener.close()
            self._unpublish()
            with self._run_lock:  # let a running stage finish before the session goes
                self._session.stop()

    def _path(self, suffix: str) -> Path:
        return run_dir(self.settings) / f"{self.name}.{suffix}"

    def _publish(self, info: ServerInfo) -> None:
        """Write the address file (its token) private from its creation: mode 0600 at ``open``."""
        path, tmp = self._path("json"), self._path("json.tmp")
        tmp.unlink(missing_ok=True)  # O_EXCL: never reuse a file someone else may hold open
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(info.__dict__))
        tmp.replace(path)

    def _unpublish(self) -> None:
        info = _read_info(self._path("json"))
        if info is not None and info.pid == os.getpid():
            self._path("json").unlink(missing_ok=True)

    def _handle(self, conn: socket.socket) -> None:
        with conn:

            def send(message: dict) -> bool:
                try:
                    _send_line(conn, message)
                    return True
                except OSError:  # the caller may be gone; a running stage goes on
                    return False

            try:
                request = _Lines(conn).next(time.monotonic() + REQUEST_READ_S)
            except (OSError, ValueError):
                return
            if not isinstance(request, dict):
                return
            conn.settimeout(None)
            if not secrets.compare_digest(str(request.get("token", "")), self.token):
                send({"done": "failed", "message": "wrong token"})
                return
            op = request.get("op")
            if op == "ping":
                send({"done": "ok"})
            elif op == "cancel":
                send(self._cancel(str(request.get("id", ""))))
            elif op == "run":
                with self._state_lock:
                    self._busy += 1
                try:
                    self._serve_run(conn, request, send)
                finally:
                    with self._state_lock:
                        self._busy -= 1
            else:
                send({"done": "failed", "message": f"unknown request {op!r}"})

    def _wait_for_turn(self, conn: socket.socket, stage: str, send: Callable[[dict], bool]) -> bool:
        """Take the run lock (True), telling the caller which stage it waits for; False if it left."""
        announced = None
        while not self._run_lock.acquire(timeout=0 if announced is None else 1.0):
            if _peer_gone(conn):
                self._log(f"{stage}: its caller left while it waited for its turn")
                return False
            with self._state_lock:
                running = self._running
            if running is not None and running.id != announced:
                send(
                    {
                        "queued": True,
                        "running": running.stage,
                        "running_s": time.monotonic() - running.started,
                    }
                )
                announced = running.id
            elif announced is None:
                announced = ""  # the lock is between two stages: poll from now on
        if _peer_gone(conn):
            self._run_lock.release()
            self._log(f"{stage}: its caller left while it waited for its turn")
            return False
        return True

    def _serve_run(self, conn: socket.socket, request: dict, send: Callable[[dict], bool]) -> None:
        stage = str(request.get("stage", ""))
        limit = request.get("limit_s")
        if not self._wait_for_turn(conn, stage, send):
            return
        try:
            if self._stop.is_set():
                send({"done": "retry"})
                return
            running = _Running(secrets.token_hex(8), stage, time.monotonic(), limit)
            with self._state_lock:  # before the caller hears of it: its cancel may follow at once
                self._running = running
            if not send({"started": True, "id": running.id}):
                with self._state_lock:
                    self._running = None
                return  # its caller is gone: nobody waits for this stage
            try:
                context = request.get("context")
                with applied(context if isinstance(context, dict) else {}):
                    done = self._run(running, list(request.get("argv", [])), send)
            finally:
                with self._state_lock:
                    self._running = None
                self._last = time.monotonic()
            if running.cancelled_at is not None and done["done"] != "ok":
                limit_text = f"{limit:g} s" if isinstance(limit, (int, float)) else "unknown"
                done = {
                    "done": "failed",
                    "cancelled": True,
                    "message": f"moulin {stage}: cancelled after "
                    f"{running.cancelled_at - running.started:.1f} s (its limit: {limit_text})",
                }
            if done["done"] == "failed":
                self._log("stopping after a failed stage")
                self._stop.set()
                self._unpublish()
            send(done)
        finally:
            self._run_lock.release()

    def _cancel(self, request_id: str) -> dict:
        """Cancel the stage of ``request_id`` if it is the one running (and only then)."""
        with self._state_lock:
            running = self._running
            if running is None or running.id != request_id:
                return {"done": "ok", "cancelled": False, "message": f"request {request_id} is not running"}
            if running.cancelled_at is None:
                running.cancelled_at = time.monotonic()
                self._log(
                    f"{running.stage}: cancelled by its caller after "
                    f"{running.cancelled_at - running.started:.1f}s (its limit {running.limit_s}s)"
                )
                threading.Thread(target=self._enforce_cancel, args=(running,), daemon=True).start()
        return {"done": "ok", "cancelled": True}

    def _enforce_cancel(self, running: _Running) -> None:
        """Cancel the stage's Spark jobs until it ends (jobs it starts later too); exit after the grace."""
        assert running.cancelled_at is not None
        deadline = running.cancelled_at + CANCEL_GRACE_S
        while time.monotonic() < deadline:
            with self._state_lock:
                if self._running is not running:
                    return
            with contextlib.suppress(Exception):
                self._session.sparkContext.cancelJobGroup(running.id)
            time.sleep(0.5)
        with self._state_lock:  # held to the end: the stage cannot finish between the check and the exit
            if self._running is running:
                self._log(f"{running.stage} did not end within {CANCEL_GRACE_S}s of its cancel; exiting")
                self._unpublish()
                os._exit(1)

    def _run(self, running: _Running, argv: list[str], send: Callable[[dict], bool]) -> dict:
        stage = running.stage
        writer = _LineWriter(lambda line: send({"line": line}))
        self._log(f"{stage} {' '.join(argv)}")
        spark_context = self._session.sparkContext
        try:
            with contextlib.redirect_stdout(writer):  # type: ignore[type-var]
                # Every job this thread starts is in the request's group: a cancel stops them, not others'.
                spark_context.setJobGroup(running.id, f"moulin {stage}", interruptOnCancel=True)
                try:
                    args = build_parser().parse_args([stage, *argv])
                except SystemExit:
                    return {"done": "failed", "message": f"bad arguments for stage {stage}: {argv}"}
                spec = get_stage(args.stage)
                ctx = StageContext(self.settings, spec.name, session=self._session)
                result = spec.function(ctx, args)
            return {"done": "ok", "result": result}
        except DataError as exc:
            return {"done": "data_error", "message": f"moulin {stage}: data error: {exc}"}
        except Exception as exc:  # noqa: BLE001 - reported to the caller, which decides on retries
            traceback.print_exc()
            return {"done": "failed", "message": f"moulin {stage}: {exc}\n{traceback.format_exc(limit=8)}"}
        finally:
            writer.flush()
            with contextlib.suppress(Exception):
                for key in ("spark.jobGroup.id", "spark.job.description", "spark.job.interruptOnCancel"):
                    spark_context.setLocalProperty(key, None)  # type: ignore[arg-type]
            with contextlib.suppress(Exception):
                self._session.catalog.clearCache()
            self._log(f"{stage} finished in {time.monotonic() - running.started:.1f}s")


def main(argv: list[str] | None = None) -> int:
    """Run a job server in the foreground (``submit_job`` starts it detached)."""
    parser = argparse.ArgumentParser(prog="python -m moulin.jobs.server")
    parser.add_argument("--profile", required=True)
    parser.add_argument("--name", required=True, help="the name the caller computed (checked)")
    args = parser.parse_args(argv)
    settings = load_settings(args.profile)
    name = server_name(settings)
    if name != args.name:
        print(f"job server: asked to serve {args.name} but this environment makes {name}", file=sys.stderr)
        return 2
    run_dir(settings).mkdir(parents=True, exist_ok=True)
    JobServer(settings, name, settings.spark.job_server_idle_s).serve()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # deltalake's native thread pools can abort the interpreter at exit (delta-io/delta-rs#2184).
    os._exit(code)
