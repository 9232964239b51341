"""``moulin mail``: the e-mail use case from the shell (its drops, its chain)."""

from __future__ import annotations

import argparse

from moulin.cli.chains import start_local_cluster
from moulin.command_line import add_action, add_actions, add_command, add_limit
from moulin.settings import load_settings

#: The actions of ``moulin mail``: (action, one-line help, description).
ACTIONS = (
    (
        "prepare",
        "write the mailbox files of the drops",
        "Write the mailbox files of the drops from the corpus (only files whose bytes change).",
    ),
    (
        "run",
        "run the chain",
        "Prepare the drops and run the e-mail chain (the local HDFS cluster started first on profile hdfs-local).",
    ),
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``moulin mail``; ``run`` runs in a console run."""
    p = add_command(
        sub,
        "mail",
        help="the e-mail use case: prepare the drops, run the chain",
        description="The e-mail use case (spam filter over mailboxes holding personal data).",
        run=_cmd_mail,
        console_actions=("run",),
    )
    actions = add_actions(p)
    for action, what, description in ACTIONS:
        add_limit(
            add_action(actions, action, help=what, description=description),
            "messages per corpus group (0: all)",
        )


def _cmd_mail(args: argparse.Namespace) -> int:
    settings = load_settings(args.profile)
    if args.action == "prepare":
        from moulin.usecases.mail.corpus import prepare_drops

        for ds, counts in prepare_drops(settings, args.limit or None).items():
            print(f"drop {ds}: " + ", ".join(f"{box}.mbox {n} messages" for box, n in counts.items()))
        return 0
    from moulin.spark import build_spark_session
    from moulin.usecases.mail.runner import run_mail

    start_local_cluster(settings)
    run_mail(build_spark_session(settings, "moulin-mail"), settings, args.limit or None)
    return 0
