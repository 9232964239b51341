"""Run a tutorial's marked code blocks for real (``bin/docs run-tutorial``).

The blocks a tutorial marks with ``<!-- tutorial: run -->`` are read from its page (not
copied anywhere) and run in order against one ``MOULIN_HOME``: shell blocks with
``bash -euo pipefail``, Python blocks with this environment's Python, from the
repository root.  CI runs the first hour's query blocks against the main command's home.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from moulin_docs import DOCS_DIR, REPO_ROOT
from moulin_docs.pages import RUN_MARK, SHELL, Block, blocks

#: Runs a Python block, then leaves with os._exit: deltalake's native thread pools can
#: abort the interpreter's teardown after every line succeeded (delta-io/delta-rs#2184).
_PYTHON = (
    "import os, sys\n"
    "source = sys.stdin.read()\n"
    "exec(compile(source, sys.argv[1], 'exec'), {'__name__': '__main__'})\n"
    "sys.stdout.flush(); sys.stderr.flush(); os._exit(0)\n"
)


class TutorialError(RuntimeError):
    """A tutorial cannot be found or one of its blocks failed; the message says which."""


def page_of(name: str) -> Path:
    """The page of tutorial ``name`` (``first-hour`` -> docs/tutorials/first-hour.md)."""
    page = DOCS_DIR / "tutorials" / f"{name}.md"
    if not page.is_file():
        known = ", ".join(sorted(p.stem for p in page.parent.glob("*.md") if p.stem != "index"))
        raise TutorialError(f"no tutorial {name!r} ({page} does not exist): choose one of {known}")
    return page


def runnable(page: Path) -> list[Block]:
    """The blocks of ``page`` marked to run."""
    found = [b for b in blocks(page) if b.marked]
    for block in found:
        if block.lang not in (*SHELL, "python"):
            raise TutorialError(f"{block.where}: a marked block must be bash or python, not {block.lang!r}")
    return found


def run_block(block: Block, env: dict[str, str], timeout_s: int) -> subprocess.CompletedProcess:
    """Run one block from the repository root; its output goes to this process's."""
    if block.lang == "python":
        argv = [sys.executable, "-c", _PYTHON, block.where]
        return subprocess.run(argv, input=block.body, text=True, env=env, cwd=REPO_ROOT, timeout=timeout_s)
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.body], env=env, cwd=REPO_ROOT, timeout=timeout_s
    )


def run_tutorial(name: str, home: Path, timeout_s: int = 600) -> int:
    """Run the marked blocks of tutorial ``name`` against ``home``; the number run.
    Raises :class:`TutorialError` naming the first block that failed."""
    page = page_of(name)
    if not home.is_dir():
        raise TutorialError(f"MOULIN_HOME {home} does not exist: pass the home of a finished main command")
    found = runnable(page)
    if not found:
        raise TutorialError(f"{page} marks no block with {RUN_MARK!r}: nothing to run")
    env = {**os.environ, "MOULIN_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    for i, block in enumerate(found, 1):
        print(f"docs: tutorial {name} block {i}/{len(found)} ({block.lang}, {block.where})", flush=True)
        start = time.monotonic()
        try:
            done = run_block(block, env, timeout_s)
        except subprocess.TimeoutExpired:
            raise TutorialError(f"{block.where}: still running after {timeout_s} s") from None
        if done.returncode != 0:
            raise TutorialError(f"{block.where}: exit {done.returncode}:\n{block.body}")
        print(f"docs: block {i} ok in {time.monotonic() - start:.1f} s", flush=True)
    return len(found)
