"""The ``moulin`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence

from moulin.errors import MoulinError
from moulin.settings import PROFILES, SettingsError, describe, load_settings


def _cmd_settings(args: argparse.Namespace) -> int:
    print(json.dumps(describe(load_settings(args.profile)), indent=2, default=str))
    return 0


def _cmd_cluster(args: argparse.Namespace) -> int:
    from moulin.cluster.local import LocalCluster

    settings = load_settings(args.profile or "hdfs-local")
    cluster = LocalCluster(settings)
    if args.action == "up":
        status = cluster.up(with_spark=args.spark)
        print("\n".join(status.lines()))
        print(f"HDFS: {settings.hdfs.namenode_uri}  WebHDFS/UI: {settings.hdfs.webhdfs_url}")
    elif args.action == "down":
        stopped = cluster.down()
        print(f"stopped {len(stopped)} process(es)" if stopped else "nothing of ours was running")
    else:
        status = cluster.status()
        print("\n".join(status.lines()))
        return 0 if status.namenode_running else 3
    return 0


def _cmd_platform(args: argparse.Namespace) -> int:
    from moulin.platform.services import Platform

    settings = load_settings(args.profile or "hdfs-local")
    platform = Platform(settings)
    if args.action == "up":
        status = platform.up()
        print("\n".join(status.lines()))
        print(f"Airflow UI and REST API: {settings.platform.api_url}")
        return 0
    if args.action == "secrets":
        from moulin.platform.airflow_services import prepare_secrets
        from moulin.platform.secrets import secrets_dir

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
    from moulin.cluster.local import LocalCluster

    LocalCluster(load_settings(args.profile or "hdfs-local")).exec_daemon(args.role, args.index)
    return 0  # not reached: exec replaced this process


def _cmd_flights(args: argparse.Namespace) -> int:
    from moulin.usecases.flights.runner import parse_months, run_chain
    from moulin.usecases.flights.summary import print_run_summary

    settings = load_settings(args.run_profile or args.profile)
    print(f"moulin flights: profile {settings.profile}, warehouse {settings.warehouse}")
    if settings.profile == "hdfs-local":
        from moulin.cluster.local import LocalCluster

        LocalCluster(settings, log=lambda m: print(f"  cluster: {m}")).up()
    conf = {"sample_per_month": args.sample, "epochs": args.epochs}
    steps = run_chain(settings, conf, months=parse_months(args.months))
    print_run_summary(settings, steps)
    return 0


def _cmd_source(args: argparse.Namespace) -> int:
    from moulin.sources.cli import source_cli

    return source_cli(args, load_settings(args.profile))


def _cmd_table(args: argparse.Namespace) -> int:
    from moulin.spark import act_as_hdfs_user
    from moulin.table_cli import table_cli

    settings = load_settings(args.profile)
    act_as_hdfs_user(settings)
    return table_cli(args, settings)


def _cmd_jobs(args: argparse.Namespace) -> int:
    from moulin.jobs.server import process_alive, servers, stop_servers

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

    from moulin.jobs.shipping import build_code_zip, build_env_archive

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
        from moulin.usecases.mail.corpus import prepare_drops

        for ds, counts in prepare_drops(settings, args.limit or None).items():
            print(f"drop {ds}: " + ", ".join(f"{box}.mbox {n} messages" for box, n in counts.items()))
        return 0
    from moulin.spark import build_spark_session
    from moulin.usecases.mail.runner import run_mail

    if settings.profile == "hdfs-local":
        from moulin.cluster.local import LocalCluster

        LocalCluster(settings, log=lambda m: print(f"  cluster: {m}")).up()
    run_mail(build_spark_session(settings, "moulin-mail"), settings, args.limit or None)
    return 0


def _cmd_classifier(args: argparse.Namespace) -> int:
    """``moulin fashion|sentiment prepare|run``: the drop, or the whole chain to the report."""
    import importlib

    settings = load_settings(args.profile)
    corpus = importlib.import_module(f"moulin.usecases.{args.use_case}.corpus")
    if args.action == "prepare":
        print(f"drop: {corpus.prepare_drop(settings, args.limit or None)}")
        return 0
    from moulin.spark import build_spark_session

    runner = importlib.import_module(f"moulin.usecases.{args.use_case}.runner")
    if settings.profile == "hdfs-local":
        from moulin.cluster.local import LocalCluster

        LocalCluster(settings, log=lambda m: print(f"  cluster: {m}")).up()
    models = tuple(m for m in args.models.split(",") if m)
    run = getattr(runner, f"run_{args.use_case}")
    spark = build_spark_session(settings, f"moulin-{args.use_case}")
    run(spark, settings, args.limit or None, args.sample, models, args.epochs_scale)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``moulin`` (all sub-commands)."""
    parser = argparse.ArgumentParser(prog="moulin", description=__doc__)
    parser.add_argument(
        "--profile", choices=PROFILES, help="settings profile (default: $MOULIN_PROFILE or local)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("settings", help="print the resolved settings")
    p.set_defaults(func=_cmd_settings)

    p = sub.add_parser("cluster", help="the local HDFS (and Spark standalone) cluster")
    p.add_argument("action", choices=("up", "down", "status"))
    p.add_argument("--spark", action="store_true", help="also start a Spark standalone master and workers")
    p.set_defaults(func=_cmd_cluster)

    p = sub.add_parser(
        "platform", help="PostgreSQL, HDFS, Spark standalone and Airflow (scheduler, UI) on this machine"
    )
    p.add_argument("action", choices=("up", "down", "status", "secrets"))
    p.set_defaults(func=_cmd_platform)

    p = sub.add_parser("daemon", help="run one cluster daemon in the foreground (containers)")
    p.add_argument("role", choices=("namenode", "datanode", "spark-master", "spark-worker"))
    p.add_argument("--index", type=int, default=0, help="DataNode / worker number (ports, data folder)")
    p.set_defaults(func=_cmd_daemon)

    from moulin.usecases.flights.params import PARAMS as FLIGHTS

    p = sub.add_parser("flights", help="the New York flights use case (main job)")
    p.add_argument("action", choices=("run",))
    p.add_argument("--profile", dest="run_profile", choices=PROFILES, help="settings profile")
    p.add_argument("--sample", type=int, default=0, help="keep N flights per month (0: all)")
    p.add_argument("--months", default="1-12", help="monthly drops to ingest, e.g. 1-12 or 1,9,11")
    p.add_argument("--epochs", type=int, default=FLIGHTS.train.epochs, help="epochs of the neural network")
    p.set_defaults(func=_cmd_flights)

    p = sub.add_parser("source", help="sources as configuration: list, validate, infer, run, unland")
    p.add_argument("action", choices=("list", "validate", "infer", "run", "unland"))
    p.add_argument("target", nargs="?", help="spec file or source name (infer: a sample file)")
    p.add_argument("--ds", help="logical date YYYY-MM-DD of the drop (run, unland)")
    p.add_argument(
        "--replace",
        action="store_true",
        help="run: land changed files as a new landing version and withdraw files no longer in the drop",
    )
    p.add_argument(
        "--redelivery",
        action="store_true",
        help="run: land files whose bytes already landed under another date (a deliberate redelivery)",
    )
    p.add_argument("--no-ge", dest="run_ge", action="store_false", help="run: skip Great Expectations")
    p.add_argument("--name", help="infer: the source's name (default: the file's stem)")
    p.add_argument("--format", choices=("csv", "jsonl", "parquet"), help="infer: default from the suffix")
    p.add_argument("--delimiter", default=",", help="infer: CSV delimiter")
    p.add_argument("--encoding", default="utf-8", help="infer: text encoding")
    p.add_argument("--out", help="infer: write <out>/bronze_<name>.yaml and <out>/sources/<name>.yaml")
    p.add_argument("--start-date", help="infer: logical date YYYY-MM-DD of the first drop to load")
    p.set_defaults(func=_cmd_source)

    p = sub.add_parser("mail", help="the e-mail use case: prepare the drops, run the chain")
    p.add_argument("action", choices=("prepare", "run"))
    p.add_argument("--limit", type=int, default=0, help="messages per corpus group (0: all)")
    p.set_defaults(func=_cmd_mail)

    from moulin.usecases.fashion.params import PARAMS as FASHION
    from moulin.usecases.sentiment.params import PARAMS as SENTIMENT

    for name, params, what, unit in (
        ("fashion", FASHION, "the image use case", "images per official set"),
        ("sentiment", SENTIMENT, "the text use case", "posts"),
    ):
        p = sub.add_parser(name, help=f"{what}: prepare the drop, run the chain to the report")
        p.add_argument("action", choices=("prepare", "run"))
        p.add_argument("--limit", type=int, default=0, help=f"{unit} in the drop (0: all)")
        p.add_argument(
            "--sample", type=float, default=None, help="fraction of rows kept per split in training"
        )
        p.add_argument("--models", default=",".join(params.models), help="comma-separated models to train")
        p.add_argument("--epochs-scale", type=float, default=1.0, help="multiply every network's epochs")
        p.set_defaults(func=_cmd_classifier, use_case=name)

    from moulin.privacy.cli import add_parser as add_privacy

    add_privacy(sub)

    from moulin.sql_cli import add_parser as add_sql

    add_sql(sub)

    p = sub.add_parser(
        "package", help="build the code zip and environment archives shipped with cluster jobs"
    )
    p.add_argument("--out", default=None, help="output folder (default: <home>/dist/jobs)")
    p.add_argument(
        "--environments", default="platform,training", help="environments to archive (comma-separated)"
    )
    p.set_defaults(func=_cmd_package)

    p = sub.add_parser("jobs", help="the job servers that run platform stages (list, stop)")
    p.add_argument("action", choices=("list", "stop"))
    p.set_defaults(func=_cmd_jobs)

    p = sub.add_parser("table", help="inspect a Delta table")
    p.add_argument("action", choices=("show", "history", "count", "schema", "describe"))
    p.add_argument("table", help="table URI, or a path relative to the warehouse")
    p.add_argument("--version", type=int, help="read this table version")
    p.add_argument("--limit", type=int, default=10, help="rows to show")
    p.add_argument("--json", action="store_true", help="history: print each commit's raw JSON")
    p.set_defaults(func=_cmd_table)

    return parser


#: Commands that run a chain from the shell: they run in a console run (moulin.console),
#: their library output going to <logs_dir>/<command>/<timestamp>.log.
CONSOLE_COMMANDS = ("source", "mail", "fashion", "sentiment", "flights")


def _console_command(args: argparse.Namespace) -> str | None:
    """The log folder's name when ``args`` runs a chain (``<command> run``), else None."""
    if args.command in CONSOLE_COMMANDS and getattr(args, "action", None) in ("run", "unland"):
        return str(args.command)
    return None


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command; return its exit code.

    ``source``, ``mail``, ``fashion``, ``sentiment`` and ``flights run`` show moulin's
    lines and errors on the console and log the libraries' output (Spark, Great
    Expectations, ...) to a file they name at the end (:func:`moulin.console.console_run`).
    """
    args = build_parser().parse_args(argv)
    command = _console_command(args)
    if command is None:
        return _dispatch(args)
    from moulin.console import console_run

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
