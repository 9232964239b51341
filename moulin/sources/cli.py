"""``moulin source``: list, validate, infer and run sources from the shell."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from moulin.contracts import load_contract
from moulin.errors import MoulinError
from moulin.ingest.formats import format_of_suffix
from moulin.settings import Settings
from moulin.sources.infer import draft, to_yaml
from moulin.sources.land import land_source
from moulin.sources.spec import all_spec_files, load_spec, load_spec_file, spec_warnings, validate_spec
from moulin.spark import build_spark_session


def _say(step: str, start: float, text: str) -> None:
    print(f"  {step:<8} {time.monotonic() - start:6.1f}s  {text}", flush=True)


def run_source(
    settings: Settings,
    target: str,
    ds: str,
    replace: bool = False,
    run_ge: bool = True,
    spark=None,
    redelivery: bool = False,
) -> dict:
    """Land and gate one drop outside Airflow, printing a line per step and the accounting;
    ``redelivery`` lands files already landed under another date (a deliberate redelivery)."""
    from moulin.sources.bronze import gate_landing

    spec = load_spec(target)
    start = time.monotonic()
    print(
        f"moulin source {spec.name}: ds={ds}, {spec.kind} -> {spec.contract}, warehouse {settings.warehouse}"
    )
    landing = land_source(
        settings, spec, ds, replace=replace, say=lambda line: _say("land", start, line), redelivery=redelivery
    )
    _say(
        "land",
        start,
        f"{landing['status']}: {len(landing['files'])} file(s), {landing['rows']} records (manifest v{landing['version']})",
    )
    own = spark is None
    if own:
        spark = build_spark_session(settings, f"moulin-source-{spec.name}")
        _say("spark", start, "session started")
    try:
        outcome = gate_landing(spark, settings, spec, ds, run_ge=run_ge)
    finally:
        if own:
            spark.stop()
    _say("bronze", start, outcome.line())
    for name, count in sorted(outcome.failures.items(), key=lambda kv: -kv[1]):
        _say("", start, f"quarantined {count}: {name}")
    print(f"accounting: manifest {outcome.rows_manifest} = read {outcome.rows_read} = bronze "
          f"{outcome.rows_bronze} + quarantined {outcome.rows_quarantined}; record {outcome.record_uri}")  # fmt: skip
    if outcome.data_docs_uri:
        print(f"Great Expectations Data Docs: {outcome.data_docs_uri}")
    return outcome.as_dict()


def unland(settings: Settings, target: str, ds: str, spark=None) -> dict:
    """Take the landing of one date back (``moulin source unland``), printing the accounting."""
    from moulin.sources.unland import unland_source

    spec = load_spec(target)
    own = spark is None
    if own:
        spark = build_spark_session(settings, f"moulin-unland-{spec.name}")
    try:
        done = unland_source(spark, settings, spec, ds)
    finally:
        if own:
            spark.stop()
    print(f"unland {done.line()}")
    print(f"run `moulin source run {spec.name} --ds {ds}` to land the date again from its drop")
    return done.as_dict()


def _start_date(text: str | None):
    """``--start-date`` as a date (None when not given)."""
    import datetime as dt

    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise MoulinError(f"moulin source infer: --start-date {text!r} is not a date YYYY-MM-DD") from None


def source_cli(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``moulin source <action>``; returns the exit code (errors raise MoulinError)."""

    if args.action == "list":
        for name, path in all_spec_files().items():
            print(f"{name:<24} {path}")
        return 0
    if not args.target:
        raise MoulinError(f"moulin source {args.action}: give a spec file or source name")
    if args.action == "validate":
        spec = load_spec(args.target)
        contract = validate_spec(spec)
        contract = load_contract(spec.contract)
        print(
            f"ok: source {spec.name} ({spec.kind}, {spec.raw_format}, mode {spec.mode}) -> {contract.name} "
            f"({settings.table_uri(contract.table)}), {len(contract.columns)} columns, "
            f"{len(contract.expectations)} expectations; DAG {spec.dag_id} schedule {spec.schedule}"
        )
        for warning in spec_warnings(spec):
            print(f"warning: {warning}")
        return 0
    if args.action == "infer":
        path = Path(args.target)
        if not path.is_file():
            raise MoulinError(f"moulin source infer: {path} is not a file")
        fmt = args.format or format_of_suffix(path.suffix)
        name = args.name or path.stem.lower().replace("-", "_")
        start = _start_date(getattr(args, "start_date", None))
        contract, spec = draft(path, name, fmt, args.encoding, args.delimiter, start_date=start)
        if args.out:
            out = Path(args.out)
            (out / "sources").mkdir(parents=True, exist_ok=True)
            (out / f"bronze_{name}.yaml").write_text(to_yaml(contract))
            (out / "sources" / f"{name}.yaml").write_text(to_yaml(spec))
            print(f"wrote {out / f'bronze_{name}.yaml'} and {out / 'sources' / f'{name}.yaml'}: review them")
            if start is None:
                print(
                    f"set start_date in {out / 'sources' / f'{name}.yaml'} to the date of the first drop "
                    f"to load (or give --start-date): validate refuses the placeholder"
                )
            else:
                load_spec_file(out / "sources" / f"{name}.yaml")
        else:
            print(
                f"# contract bronze_{name}.yaml\n{to_yaml(contract)}\n# sources/{name}.yaml\n{to_yaml(spec)}"
            )
        return 0
    if not args.ds:
        raise MoulinError(f"moulin source {args.action}: give the drop's logical date with --ds YYYY-MM-DD")
    if args.action == "unland":
        unland(settings, args.target, args.ds)
        return 0
    run_source(
        settings,
        args.target,
        args.ds,
        replace=args.replace,
        run_ge=args.run_ge,
        redelivery=getattr(args, "redelivery", False),
    )
    return 0
