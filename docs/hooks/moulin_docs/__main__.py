"""``bin/docs``: build, serve and check moulin's documentation site.

bin/docs                        build the site (strict) into site/
bin/docs serve [--dev-addr A]   serve it with live reload (default 127.0.0.1:8000)
bin/docs check                  check the commands and code blocks of every page
bin/docs run-tutorial first-hour --home DIR
                                run a tutorial's marked blocks against a MOULIN_HOME
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from moulin_docs import REPO_ROOT


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``bin/docs`` (also what the command checks of the pages use)."""
    parser = argparse.ArgumentParser(
        prog="bin/docs", description="Build, serve and check moulin's documentation site."
    )
    sub = parser.add_subparsers(dest="action")
    a = sub.add_parser("build", help="build the site with --strict (the default action)")
    a.add_argument("--site-dir", default="site", help="where to write the site (default: site)")
    a = sub.add_parser("serve", help="serve the site with live reload")
    a.add_argument("--dev-addr", default="127.0.0.1:8000", help="address:port (default: 127.0.0.1:8000)")
    sub.add_parser("check", help="check the commands and code blocks of every page")
    a = sub.add_parser("run-tutorial", help="run a tutorial's marked blocks against a MOULIN_HOME")
    a.add_argument("name", help="the tutorial, e.g. first-hour (docs/tutorials/<name>.md)")
    a.add_argument("--home", required=True, type=Path, help="MOULIN_HOME of a finished main command")
    a.add_argument("--timeout", type=int, default=600, help="seconds a block may run (default: 600)")
    return parser


def _mkdocs(*args: str) -> list[str]:
    """The command line of ``mkdocs <args>`` on moulin's mkdocs.yml."""
    return [sys.executable, "-m", "mkdocs", *args, "-f", str(REPO_ROOT / "mkdocs.yml")]


def main(argv: list[str] | None = None) -> int:
    """Run ``bin/docs``; return its exit code."""
    args = build_parser().parse_args(argv)
    action = args.action or "build"
    if action == "build":
        start = time.monotonic()
        site = getattr(args, "site_dir", "site")
        code = subprocess.call(_mkdocs("build", "--strict", "--clean", "--site-dir", site), cwd=REPO_ROOT)
        verdict = "built" if code == 0 else f"failed (exit {code})"
        print(
            f"docs: site {verdict} in {time.monotonic() - start:.1f} s: {Path(REPO_ROOT, site) / 'index.html'}"
        )
        return code
    if action == "serve":  # replaces this process: a signal to bin/docs reaches the server
        os.chdir(REPO_ROOT)
        argv = _mkdocs("serve", "--strict", "--dev-addr", args.dev_addr)
        os.execv(argv[0], argv)
    if action == "check":
        from moulin_docs.checks import check_pages, pages

        problems = check_pages(pages())
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"docs: {len(problems)} problem(s) in the commands and code blocks of {len(pages())} pages")
        return 1 if problems else 0
    from moulin_docs.tutorial import TutorialError, run_tutorial

    try:
        ran = run_tutorial(args.name, args.home.resolve(), args.timeout)
    except TutorialError as exc:
        print(f"docs: {exc}", file=sys.stderr)
        return 1
    print(f"docs: tutorial {args.name}: {ran} block(s) ran against {args.home}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
