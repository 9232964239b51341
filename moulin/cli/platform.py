"""``moulin platform``: PostgreSQL, HDFS, Spark standalone and Airflow on this machine."""

from __future__ import annotations

import argparse

from moulin.command_line import add_action, add_actions, add_command
from moulin.platform.airflow_services import prepare_secrets
from moulin.platform.secrets import secrets_dir
from moulin.platform.services import Platform
from moulin.settings import load_settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``moulin platform``."""
    p = add_command(
        sub,
        "platform",
        help="PostgreSQL, HDFS, Spark standalone and Airflow (scheduler, UI) on this machine",
        description="PostgreSQL, HDFS, Spark standalone and Airflow (scheduler, UI) on this machine, "
        "profile hdfs-local unless --profile says.",
        run=_cmd_platform,
    )
    actions = add_actions(p)
    add_action(
        actions,
        "up",
        help="start every service; waits until each answers",
        description="Start PostgreSQL, HDFS, Spark standalone and Airflow (what is not running), wait "
        "until each answers, print their state and the Airflow UI's address.",
    )
    add_action(
        actions,
        "down",
        help="stop what `up` started (and the job servers tasks started)",
        description="Stop the services `moulin platform up` started and the job servers tasks started.",
    )
    add_action(
        actions,
        "status",
        help="pid, memory and health of every service; exit 3 if one is down",
        description="Print each service's pid, memory and health; exit code 3 if one is not running.",
    )
    add_action(
        actions,
        "secrets",
        help="write the secrets files (mode 0600) docker/compose.yaml reads",
        description="Write the platform's secrets (mode 0600) where MOULIN_SECRETS_DIR of "
        "docker/compose.yaml should point; the admin password is printed once, when created.",
    )


def _cmd_platform(args: argparse.Namespace) -> int:
    settings = load_settings(args.profile or "hdfs-local")
    platform = Platform(settings)
    if args.action == "up":
        status = platform.up()
        print("\n".join(status.lines()))
        print(f"Airflow UI and REST API: {settings.platform.api_url}")
        return 0
    if args.action == "secrets":
        password = prepare_secrets(settings)
        if password:
            print(f"admin password (printed once): {password}")
        print(f"secrets (mode 0600) in {secrets_dir(settings)}: MOULIN_SECRETS_DIR for docker/compose.yaml")
        return 0
    if args.action == "down":
        stopped = platform.down()
        print(f"stopped {len(stopped)} process(es)" if stopped else "nothing of ours was running")
        return 0
    status = platform.status()
    print("\n".join(status.lines()))
    return 0 if status.all_running else 3
