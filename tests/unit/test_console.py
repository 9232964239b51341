"""A console a person can read: a chain command run from the shell shows moulin's lines
and errors, while the libraries' output (Spark's log4j lines and stage bars, Great
Expectations' registry lines, Python warnings) goes to the run's log file, which the
console names at the end.  Real commands in subprocesses, real Spark and GE."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from source_files import order_rows, to_csv, write_contracts

DS = "2024-03-01"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOULIN_", "AIRFLOW"))}
    env.update(
        MOULIN_HOME=str(tmp_path / "home"),
        MOULIN_SPARK_MASTER="local[2]",
        MOULIN_SPARK_DRIVER_MEMORY="1g",
        MOULIN_SPARK_SHUFFLE_PARTITIONS="2",
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        **extra,
    )
    return env


def _moulin(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "moulin.cli", *args], env=env, capture_output=True, text=True, timeout=900
    )


def _logged(console: str, home: Path, command: str) -> Path:
    """The log file that the console's last line names, checked to be under the home."""
    last = console.strip().splitlines()[-1]
    assert "full log in " in last, console
    path = Path(last.split("full log in ", 1)[1])
    assert path.parent == home / "logs" / command and path.suffix == ".log", path
    assert path.is_file()
    return path


def test_source_run_console_has_moulin_lines_and_the_log_has_the_chatter(tmp_path: Path) -> None:
    contracts, drops = tmp_path / "contracts", tmp_path / "drops"
    drops.mkdir()
    write_contracts(contracts, drops)
    (drops / f"orders_{DS}.csv").write_bytes(to_csv(order_rows(300)))
    env = _env(tmp_path, MOULIN_CONTRACTS_DIR=str(contracts))

    done = _moulin(env, "source", "run", "orders", "--ds", DS)
    console = done.stdout + done.stderr
    assert done.returncode == 0, console
    # moulin's progress lines, in order
    for line in ("moulin source orders: ds=2024-03-01", "  land ", "  spark ", "  bronze ",
                 "accounting: manifest 300 = read 300 = bronze 300 + quarantined 0"):  # fmt: skip
        assert line in done.stdout, console
    # and nothing of the libraries'
    for chatter in ("[Stage ", "Skipping registering", "log4j", " WARN ", "NativeCodeLoader", "Warning"):
        assert chatter not in console, f"{chatter!r} on the console:\n{console}"
    log = _logged(done.stdout, tmp_path / "home", "source").read_text()
    assert "log4j" in log and " WARN " in log  # Spark's JVM wrote to the log file
    assert "accounting: manifest 300" in log  # with moulin's lines for context
    assert "[Stage " not in log  # no progress bar is drawn at all

    # An error: its message on the console (stderr), then where the log is.
    failed = _moulin(env, "source", "run", "orders", "--ds", "2024-03-02")
    assert failed.returncode == 1
    assert "moulin: source orders: no file matches" in failed.stderr, failed.stderr
    assert "failed; full log in" in failed.stderr.strip().splitlines()[-1]
    log = _logged(failed.stderr, tmp_path / "home", "source").read_text()
    assert "no file matches" in log


PROBE = textwrap.dedent(
    """
    import logging, warnings
    from moulin.console import console_run, relay_line
    from moulin.settings import load_settings

    with console_run(load_settings(), "probe"):
        print("moulin probe: started")
        import airflow  # Airflow puts an INFO handler on sys.stdout at import (mail, fashion runs)
        import great_expectations  # and GE logs its registry lines at INFO
        warnings.warn("Arrow optimization failed, falling back", UserWarning)
        logging.getLogger("py4j.clientserver").info("Closing down clientserver connection")
        logging.getLogger("moulin.probe").warning("the user must see this")
        relay_line("MOULIN-PROGRESS trained logreg")
        relay_line("26/01/01 12:00:00 WARN TaskSetManager: a job's chatter")
        print("moulin probe: done")
    """
)


def test_library_logging_and_warnings_go_to_the_log_even_when_airflow_configures_logging(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=_env(tmp_path), capture_output=True, text=True, timeout=300
    )
    console = done.stdout + done.stderr
    assert done.returncode == 0, console
    assert "moulin probe: started" in done.stdout and "moulin probe: done" in done.stdout
    assert "MOULIN-PROGRESS trained logreg" in done.stdout
    assert "the user must see this" in done.stderr  # a warning of moulin's own
    for chatter in ("Skipping registering", "Arrow optimization", "clientserver", "TaskSetManager"):
        assert chatter not in console, f"{chatter!r} on the console:\n{console}"
    log = _logged(done.stdout, tmp_path / "home", "probe").read_text()
    for chatter in ("Skipping registering", "Arrow optimization", "clientserver", "TaskSetManager"):
        assert chatter in log, chatter
