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

from moulin.errors import DataError, MoulinError
from moulin.settings import Settings, describe, load_settings
from moulin.spark import act_as_hdfs_user

#: Environment variables that change what a job does (part of a server's name).
ENV_PREFIXES = ("MOULIN_", "SPARK_", "PYSPARK_", "HADOOP_", "JAVA_")
START_TIMEOUT_S = 180


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
    from moulin.lineage import code_version

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
    from moulin.cluster.daemons import process_alive as running

    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # our child that exited: reaped, so it leaves no zombie
    return running(pid, SERVER_MARKER)


def _exchange(info: ServerInfo, request: dict, timeout_s: float) -> Iterator[dict]:
    """Send ``request`` to the server and yield the messages it answers with."""
    with socket.create_connection(("127.0.0.1", info.port), timeout=min(timeout_s, 10)) as conn:
        conn.settimeout(timeout_s)
        stream = conn.makefile("rwb")
        stream.write((json.dumps({**request, "token": info.token}) + "\n").encode())
        stream.flush()
        for raw in stream:
            yield json.loads(raw)


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


def run_stage(
    settings: Settings, stage: str, argv: list[str], timeout_s: float, relay: Callable[[str], None]
):
    """Run ``stage`` on the server for ``settings`` and return the server's final message.

    ``relay`` gets every output line of the stage as it comes.  Returns the
    ``done`` message (``{"done": "ok", "result": ...}``, ``"data_error"`` or
    ``"failed"`` with a ``message``); raises :class:`MoulinError` when the server
    went away before answering (it is then stopped, so a retry starts afresh).
    """
    for _attempt in range(3):
        info = ensure_server(settings)
        try:
            done = _run_once(info, stage, argv, timeout_s, relay)
        except ConnectionRefusedError:  # it stopped between the ping and the request
            continue
        if done is not None and done["done"] != "retry":
            return done
        if done is None:
            break
    else:
        raise MoulinError(
            f"no job server for {settings.profile} would take stage {stage}; see {run_dir(settings)}"
        )
    stop_server(info)
    raise MoulinError(
        f"job server {info.name} stopped while running {stage}; its log {info.log} ends with:\n"
        f"{_log_tail(Path(info.log))}"
    )


def _run_once(info: ServerInfo, stage: str, argv: list[str], timeout_s: float, relay: Callable[[str], None]):
    try:
        for message in _exchange(info, {"op": "run", "stage": stage, "argv": argv}, timeout_s):
            if "line" in message:
                relay(message["line"])
            elif "done" in message:
                return message
    except TimeoutError:
        stop_server(info)
        raise MoulinError(
            f"stage {stage} ran over {timeout_s:.0f}s on job server {info.name}; stopped it"
        ) from None
    except ConnectionRefusedError:
        raise
    except OSError as exc:
        stop_server(info)
        raise MoulinError(
            f"job server {info.name} dropped the connection while running {stage} ({exc}); "
            f"its log {info.log} ends with:\n{_log_tail(Path(info.log))}"
        ) from None
    return None


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


class JobServer:
    """A SparkSession plus a TCP listener that runs stages one at a time."""

    def __init__(self, settings: Settings, name: str, idle_s: float) -> None:
        self.settings = settings
        self.name = name
        self.idle_s = idle_s
        self.token = secrets.token_hex(16)
        self._run_lock = threading.Lock()
        self._stop = threading.Event()
        self._last = time.monotonic()
        self._busy = 0
        self._session = None

    def serve(self) -> None:
        """Build the session, publish the address, answer until idle or stopped."""
        from moulin.spark import build_spark_session

        started = time.monotonic()
        self._session = build_spark_session(self.settings, f"moulin-jobs-{self.name}")
        print(f"job server {self.name}: Spark session up in {time.monotonic() - started:.1f}s", flush=True)
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
                        print(f"job server {self.name}: idle for {self.idle_s:.0f}s, stopping", flush=True)
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
        path, tmp = self._path("json"), self._path("json.tmp")
        tmp.write_text(json.dumps(info.__dict__))
        tmp.chmod(0o600)
        tmp.replace(path)

    def _unpublish(self) -> None:
        info = _read_info(self._path("json"))
        if info is not None and info.pid == os.getpid():
            self._path("json").unlink(missing_ok=True)

    def _handle(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as stream:

            def send(message: dict) -> None:
                with contextlib.suppress(OSError):  # the caller may be gone; the stage goes on
                    stream.write((json.dumps(message, default=str) + "\n").encode())
                    stream.flush()

            try:
                request = json.loads(stream.readline())
            except ValueError:
                return
            if not secrets.compare_digest(str(request.get("token", "")), self.token):
                send({"done": "failed", "message": "wrong token"})
                return
            if request.get("op") == "ping":
                send({"done": "ok"})
                return
            with self._run_lock:
                if self._stop.is_set():
                    send({"done": "retry"})
                    return
                self._busy += 1
                try:
                    done = self._run(request["stage"], list(request.get("argv", [])), send)
                finally:
                    self._busy -= 1
                    self._last = time.monotonic()
                if done["done"] == "failed":
                    print(f"job server {self.name}: stopping after a failed stage", flush=True)
                    self._stop.set()
                    self._unpublish()
            send(done)

    def _run(self, stage: str, argv: list[str], send: Callable[[dict], None]) -> dict:
        from moulin.jobs.entry import build_parser
        from moulin.jobs.registry import StageContext, get_stage

        writer = _LineWriter(lambda line: send({"line": line}))
        started = time.monotonic()
        print(f"job server {self.name}: {stage} {' '.join(argv)}", flush=True)
        try:
            with contextlib.redirect_stdout(writer):  # type: ignore[type-var]
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
                self._session.catalog.clearCache()
            print(
                f"job server {self.name}: {stage} finished in {time.monotonic() - started:.1f}s", flush=True
            )


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
