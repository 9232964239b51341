"""``moulin package`` (the code zip and environment archives cluster jobs ship) and
``moulin jobs`` (the job servers that run platform stages)."""

from __future__ import annotations

import argparse

from moulin.command_line import add_action, add_actions, add_command
from moulin.errors import MoulinError
from moulin.jobs.server import process_alive, servers, stop_servers
from moulin.jobs.shipping import build_code_zip, build_env_archive
from moulin.settings import load_settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``moulin package`` and ``moulin jobs``."""
    p = add_command(
        sub,
        "package",
        help="build the code zip and environment archives shipped with cluster jobs",
        description="Build the code zip and the environment archives shipped with cluster jobs.",
        run=_cmd_package,
    )
    p.add_argument("--out", default=None, help="output folder (default: <home>/dist/jobs)")
    p.add_argument(
        "--environments", default="platform,training", help="environments to archive (comma-separated)"
    )
    p = add_command(
        sub,
        "jobs",
        help="the job servers that run platform stages (list, stop)",
        description="The job servers that run platform stages.",
        run=_cmd_jobs,
    )
    actions = add_actions(p)
    add_action(
        actions,
        "list",
        help="each job server: pid, port, state, log",
        description="Print each job server's name, pid, port, state and log.",
    )
    add_action(actions, "stop", help="stop every job server", description="Stop every job server.")


def _cmd_package(args: argparse.Namespace) -> int:
    """``moulin package``: the code zip and environment archives that cluster jobs ship."""
    from dataclasses import replace
    from pathlib import Path

    settings = load_settings(args.profile)
    if args.out:
        settings = replace(settings, spark=replace(settings.spark, packages_dir=Path(args.out).absolute()))
    print(f"code: {build_code_zip(settings)}")
    for environment in args.environments.split(","):
        if environment not in ("platform", "training"):
            raise MoulinError(f"--environments: {environment!r} is not platform or training")
        print(f"{environment} environment: {build_env_archive(settings, environment)}")
    return 0


def _cmd_jobs(args: argparse.Namespace) -> int:
    settings = load_settings(args.profile)
    if args.action == "stop":
        print(f"stopped {stop_servers(settings)} job server(s)")
        return 0
    found = servers(settings)
    for info in found:
        state = "running" if process_alive(info.pid) else "gone (stale address file)"
        print(f"{info.name}  pid {info.pid}  port {info.port}  {state}  log {info.log}")
    if not found:
        print("no job server")
    return 0
