"""``moulin <use case> prepare|run``: one command per declared use case, found by
:func:`moulin.usecases.kit.find_usecases` (not listed here)."""

from __future__ import annotations

import argparse

from moulin.cli.chains import start_local_cluster
from moulin.command_line import add_action, add_actions, add_command, add_ds, add_limit
from moulin.errors import MoulinError
from moulin.settings import load_settings
from moulin.spark import build_spark_session
from moulin.usecases.kit import find_usecases, get_usecase


def add_parser(sub: argparse._SubParsersAction) -> None:
    """One command per declared use case whose name no command before it took:
    ``moulin <name> run`` (in a console run) and, with a drop to write, ``prepare``."""

    for name, usecase in find_usecases(strict=False).items():
        if name in sub.choices:
            continue
        what = usecase.description or f"use case {name}"
        p = add_command(
            sub, name, help=f"{what}: run the chain to the report", description=what,
            run=_cmd_declared_usecase, console_actions=("run",),
        )  # fmt: skip
        p.set_defaults(declared_usecase=True)
        actions = add_actions(p)
        limit = f"{usecase.limit_unit} in the drop (0: all)"
        if usecase.prepare is not None:
            a = add_action(
                actions,
                "prepare",
                help="write the drop from the corpus",
                description="Write the drop from the corpus (only files whose bytes change).",
            )
            add_limit(a, limit)
        a = add_action(
            actions,
            "run",
            help="run the chain to the report",
            description="Run the whole chain: "
            + ("the drop, " if usecase.prepare is not None else "")
            + "each source landed and gated for --ds, every table step, the training job of each model, "
            "the report (the local HDFS cluster started first on profile hdfs-local).",
        )
        add_ds(
            a,
            "the drop date landed from each source (default: "
            + (", ".join(usecase.drop_dates) or "none, the bronze tables as they are")
            + ")",
            default=None,
        )
        add_limit(a, limit)
        a.add_argument(
            "--sample", type=float, default=None, help="fraction of rows kept per split in training"
        )
        a.add_argument("--models", default=",".join(usecase.models), help="comma-separated models to train")
        a.add_argument("--epochs-scale", type=float, default=1.0, help="multiply every network's epochs")


def _cmd_declared_usecase(args: argparse.Namespace) -> int:
    """``moulin <use case> prepare|run``: a declared use case's drop, or its whole chain to the report."""

    settings = load_settings(args.profile)
    usecase = get_usecase(args.command, settings)
    if args.action == "prepare":
        if usecase.prepare is None:
            raise MoulinError(
                f"use case {usecase.name} has no drop to prepare: its sources are onboarded as they are"
            )
        print(f"drop: {usecase.prepare(settings, args.limit or None)}")
        return 0

    start_local_cluster(settings)
    spark = build_spark_session(settings, f"moulin-{usecase.name}")
    usecase.run(
        spark, settings, ds=args.ds, limit=args.limit or None, sample=args.sample,
        models=tuple(m for m in args.models.split(",") if m), epochs_scale=args.epochs_scale,
    )  # fmt: skip
    return 0
