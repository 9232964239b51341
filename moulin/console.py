"""A console a person can read: what a long ``moulin`` command shows, and where the rest goes.

The commands that run a chain from the shell (``moulin source run``, ``mail run``,
``fashion run``, ``sentiment run``, ``flights run``) run inside :func:`console_run`.
For the length of the command:

* the console (the terminal) keeps what moulin prints (its progress lines),
  warnings of moulin's own loggers and errors of any logger;
* everything else goes to the run's log file,
  ``<settings.logs_dir>/<command>/<UTC timestamp>.log``: the Python ``logging`` of the
  libraries (Great Expectations, py4j, pyspark, urllib3, ...) from level INFO,
  Python ``warnings`` (pyspark's Arrow fallback, deprecations), and whatever is
  written to the process's file descriptors 1 and 2 by native code and child
  processes (Spark's JVM and its log4j lines, the Python workers);
* Python code writing to ``sys.stdout`` or ``sys.stderr`` reaches the console only when
  it is moulin's (a library's ``print``, or a logging handler that a library such as
  Airflow installs on those streams, writes to the log only);
* the log file also gets a copy of moulin's own lines, and the traceback of an error;
* Spark sessions built meanwhile get ``spark.ui.showConsoleProgress=false``
  (:func:`spark_conf`), so no stage progress bar is drawn at all;
* job output relayed line by line (:func:`relay_line`, spark-submitted stages)
  shows moulin's lines and logs the rest.

At the end, on success or failure, the console says where the full log is.

Outside a console run (Airflow tasks, job servers, tests that call functions
directly) nothing here changes anything: :func:`relay_line` prints and
:func:`spark_conf` is empty.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import os
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from moulin.settings import Settings

#: Spark configuration of the sessions built during a console run.
CONSOLE_SPARK_CONF: dict[str, str] = {"spark.ui.showConsoleProgress": "false"}

#: Lines of relayed job output that belong on the console (the rest is chatter).
MOULIN_LINE_PREFIXES: tuple[str, ...] = ("MOULIN-", "moulin")

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass
class ConsoleRun:
    """One command running with a readable console; ``log_path`` holds the full log."""

    command: str
    log_path: Path
    log: TextIO
    console_out: TextIO
    console_err: TextIO
    #: The command's exit code, set by the caller: not 0 makes the last line say it failed.
    exit_code: int = 0

    def chatter(self, text: str) -> None:
        """Write ``text`` (one line, no newline needed) to the log file only."""
        self.log.write(text if text.endswith("\n") else text + "\n")


_active: ConsoleRun | None = None


def active() -> ConsoleRun | None:
    """The console run of this process, or None outside one."""
    return _active


def spark_conf() -> dict[str, str]:
    """Extra Spark configuration for a session built now: :data:`CONSOLE_SPARK_CONF` in a
    console run, nothing otherwise (Airflow tasks and job servers keep Spark's defaults)."""
    return dict(CONSOLE_SPARK_CONF) if _active is not None else {}


def relay_line(line: str) -> None:
    """Show one line of a job's output: printed outside a console run (the Airflow task
    log wants all of them); in one, moulin's lines are printed and the rest logged."""
    if _active is None or line.startswith(MOULIN_LINE_PREFIXES):
        print(line, flush=True)
    else:
        _active.chatter(line)


def log_path(settings: Settings, command: str, now: dt.datetime | None = None) -> Path:
    """Where the log of a run of ``command`` starting at ``now`` (UTC) goes (not created)."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    return settings.logs_dir / command / f"{stamp}.log"


def _written_by_moulin(depth: int) -> bool:
    """Whether the Python code ``depth`` frames up (the caller of ``print`` or ``write``)
    is moulin's own (a ``moulin.*`` module, or ``__main__``: ``python -m moulin.cli``)."""
    try:
        name = str(sys._getframe(depth + 1).f_globals.get("__name__", ""))
    except ValueError:  # no such frame
        return False
    return name in ("__main__", "moulin") or name.startswith("moulin.")


class _Tee(io.TextIOBase):
    """``sys.stdout`` or ``sys.stderr`` in a console run: every write goes to the log file;
    writes by moulin's code (its ``print``) go to the console too.  A library's writes
    (a logging handler bound to this stream, Airflow's or structlog's loggers, a
    ``print`` in a library) stay in the log."""

    def __init__(self, console: TextIO, log: TextIO, fd: int, routing: _Routing) -> None:
        super().__init__()
        self._console = console
        self._log = log
        self._fd = fd
        self._routing = routing

    def write(self, text: str) -> int:
        if _written_by_moulin(1):
            self._console.write(text)
        else:
            self._routing.ensure()  # e.g. Airflow's handler, which replaced ours
        self._log.write(text)
        return len(text)

    def flush(self) -> None:
        self._console.flush()
        self._log.flush()

    def isatty(self) -> bool:
        return self._console.isatty()

    def fileno(self) -> int:
        # Raw writes to the descriptor (native code, children given sys.stdout) land in the log.
        return self._fd

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._console.encoding


class _ConsoleFilter(logging.Filter):
    """Records for the console: moulin's warnings and errors, other loggers' errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        own = record.name == "moulin" or record.name.startswith("moulin.")
        return own and record.levelno >= logging.WARNING


class _Routing:
    """The root logger's handlers during a console run: all records from INFO to the log
    file, :class:`_ConsoleFilter`'s to the console.  A library that configures logging
    meanwhile (importing Airflow replaces the root's handlers with one on ``sys.stdout``)
    gets ours back at its next write (:meth:`ensure`)."""

    def __init__(self, log: TextIO, console: TextIO) -> None:
        self.root = logging.getLogger()
        self.file = logging.StreamHandler(log)
        self.file.setFormatter(logging.Formatter(_LOG_FORMAT))
        self.console = logging.StreamHandler(console)
        self.console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.console.addFilter(_ConsoleFilter())
        self.saved_level = self.root.level
        self.saved_handlers = list(self.root.handlers)

    def install(self) -> None:
        for handler in list(self.root.handlers):
            self.root.removeHandler(handler)
        self.root.addHandler(self.file)
        self.root.addHandler(self.console)
        self.root.setLevel(logging.INFO)
        logging.captureWarnings(True)

    def ensure(self) -> None:
        if self.file not in self.root.handlers or self.console not in self.root.handlers:
            self.install()

    def restore(self) -> None:
        logging.captureWarnings(False)
        for handler in list(self.root.handlers):
            self.root.removeHandler(handler)
        for handler in self.saved_handlers:
            self.root.addHandler(handler)
        self.root.setLevel(self.saved_level)


def _console_stream(fd: int) -> TextIO:
    """A line-buffered text stream on a duplicate of ``fd`` (the terminal), kept open."""
    return open(os.dup(fd), "w", buffering=1, encoding="utf-8", errors="replace", closefd=True)  # noqa: SIM115


@contextlib.contextmanager
def console_run(settings: Settings, command: str) -> Iterator[ConsoleRun]:
    """Run the body with a readable console and a full log (see the module's docstring).

    On success the console's last line names the log; on an exception, the
    traceback goes to the log, the console names the log on stderr, and the
    exception propagates (the caller prints its message).
    """
    global _active
    if _active is not None:  # nested: the outer run already routes everything
        yield _active
        return
    path = log_path(settings, command)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path = path.with_name(f"{path.stem}-{os.getpid()}.log")
    sys.stdout.flush()
    sys.stderr.flush()
    log = open(path, "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed below
    console_out, console_err = _console_stream(1), _console_stream(2)
    run = ConsoleRun(command, path, log, console_out, console_err)
    saved_fds = (os.dup(1), os.dup(2))
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    routing = _Routing(log, console_err)
    saved_streams = (sys.stdout, sys.stderr)
    sys.stdout = _Tee(console_out, log, 1, routing)  # type: ignore[assignment]
    sys.stderr = _Tee(console_err, log, 2, routing)  # type: ignore[assignment]
    routing.install()

    _active = run
    log.write(f"moulin {command}: full log of this run (pid {os.getpid()})\n")
    failed: BaseException | None = None
    try:
        yield run
    except BaseException as exc:
        failed = exc
        log.write("".join(traceback.format_exception(exc)))
        raise
    finally:
        _active = None
        routing.restore()
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = saved_streams
        # Children started meanwhile (Spark's JVM) keep writing to the log: they hold
        # their own copies of the descriptors.
        os.dup2(saved_fds[0], 1)
        os.dup2(saved_fds[1], 2)
        for fd in saved_fds:
            os.close(fd)
        console_out.close()
        console_err.close()
        log.close()
        ok = failed is None or isinstance(failed, SystemExit) and failed.code in (None, 0)
        if ok and run.exit_code == 0:
            print(f"moulin: full log in {path}", flush=True)
        else:
            print(f"moulin: failed; full log in {path}", file=sys.stderr, flush=True)
