"""``moulin usecase``: use cases as data (check a framing, scaffold a use case)."""

from __future__ import annotations

import argparse
import sys

from moulin.cli import command_names
from moulin.command_line import add_action, add_actions, add_command
from moulin.errors import MoulinError
from moulin.framing import FramingError, find_framing, framing_files, load_framing
from moulin.settings import load_settings
from moulin.usecases.kit.scaffold import scaffold


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``moulin usecase``."""
    p = add_command(
        sub,
        "usecase",
        help="use cases as data: check a framing, scaffold a use case",
        description="Use cases as data: each use case's framing (question, decision, task, metric and "
        "threshold, data, storage, personal data, hardware) in moulin/usecases/<name>/framing.yaml.",
        run=_cmd_usecase,
    )
    actions = add_actions(p)
    a = add_action(
        actions,
        "check",
        help="validate a framing file; OK or file:line:field problems (exit 1)",
        description="Validate a use case's framing: each field, then its coherence with the contracts and "
        "source specs (metric fits the task, threshold in range, features known at prediction time, label "
        "and sources exist, personal data with a legal basis). Prints OK, or one line per problem as "
        "file:line:field: message — what to do, and exits with 1.",
    )
    a.add_argument(
        "target",
        nargs="?",
        default=None,
        help="a use case's name or a framing file (default: every use case)",
    )
    a = add_action(
        actions,
        "new",
        help="scaffold a classifier use case from a framing and an onboarded source",
        description="Write a working use case under the settings' own_usecases_dir (default "
        "<home>/usecases/<name>/): the framing, the training table's contract drafted from the source's "
        "bronze contract, and usecase.py (a table step bronze -> silver, a naive baseline, a logistic "
        "regression and an MLP, the report's wording). It runs at once: moulin <name> run, DAG <name>.",
    )
    a.add_argument("name", help="the use case's name (its command, DAG and folder)")
    a.add_argument("--framing", required=True, help="the framing file (docs/guides/framing.md)")
    a.add_argument(
        "--source",
        action="append",
        default=[],
        help="an onboarded source (default: the framing's data.sources)",
    )
    a.add_argument("--force", action="store_true", help="rewrite a use case this command wrote before")
    a.set_defaults(func=_cmd_usecase_new)


def _cmd_usecase(args: argparse.Namespace) -> int:
    """``moulin usecase check [<name or path>]``: validate framings; OK, or each problem as
    ``file:line:field: message — what to do`` and exit code 1."""

    settings = load_settings(args.profile)
    targets = [args.target] if args.target else [str(p) for p in framing_files(settings).values()]
    if not targets:
        raise MoulinError(f"no framing file under {settings.usecases_dir}: name a framing file to check")
    failed = 0
    for target in targets:
        try:
            path = find_framing(target, settings)
            framing = load_framing(path)
        except FramingError as exc:
            failed += 1
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            continue
        goal = framing.metric
        print(
            f"{path}: OK ({framing.name}: {framing.task.type}, {goal.label} "
            f"{'>=' if goal.spec.higher_is_better else '<='} {goal.threshold:g})"
        )
    return 1 if failed else 0


def _cmd_usecase_new(args: argparse.Namespace) -> int:
    """``moulin usecase new <name> --framing F [--source S ...]``: scaffold a use case."""
    from moulin.delta import DeltaTableStore

    settings = load_settings(args.profile)
    done = scaffold(
        args.name, args.framing, tuple(args.source), settings, force=args.force, reserved=command_names()
    )
    for path in done.files:
        print(f"wrote {path}")
    roles = ", ".join(f"{n} ({r})" for n, r in done.features.items())
    print(f"{done.contract}: label over {len(done.classes)} classes {list(done.classes)}; features {roles}")
    if not DeltaTableStore(None).exists(settings.table_uri(done.bronze_table)):
        print(
            f"note: {done.bronze_table} holds no table yet: land a drop first "
            f"(moulin source run {done.source} --ds YYYY-MM-DD), or run with --ds"
        )
    print(f"run it: moulin {done.name} run   (Airflow: DAG {done.name}, on its sources' bronze Assets)")
    return 0
