"""``moulin privacy ...``: the key, erasure, requests, retention, the register, the
audit trail and HDFS access zones from the shell."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from moulin.command_line import add_action, add_actions, add_command, add_limit
from moulin.errors import MoulinError
from moulin.privacy.access import apply_permissions
from moulin.privacy.keys import load_key
from moulin.privacy.register import register_html, write_register
from moulin.privacy.requests import erase_request, register_erasure
from moulin.privacy.rotation import rotate_key
from moulin.privacy.views import build_views
from moulin.settings import Settings, load_settings
from moulin.spark import act_as_hdfs_user, build_spark_session


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``moulin privacy`` and its actions, each with only its own options."""
    p = add_command(
        sub,
        "privacy",
        help="personal data: key, erase, requests, retention, register, audit, access",
        description="Personal data from the shell: the pseudonym key, erasure requests and erasures, "
        "retention, the record of processing activities, the audit trail, HDFS access zones and the "
        "analysts' views.",
        run=_run,
    )
    actions = add_actions(p)

    add_action(
        actions,
        "key",
        help="print the pseudonym key's id and where it comes from",
        description="Print the pseudonym key's id (an HMAC of a label, never the key) and its origin; "
        "the key file is created (mode 0600) on first use.",
    )
    a = add_action(
        actions,
        "rotate-key",
        help="write a new pseudonym key and pseudonymise every landing again",
        description="Write a new pseudonym key, gate every landing of every pseudonymising source "
        "again, vacuum bronze and rebuild the analysts' views; rerun, it continues the same rotation. "
        "The previous key is destroyed once no table holds its pseudonyms.",
    )
    a.add_argument(
        "--drop-landing",
        action="append",
        metavar="SOURCE/DS",
        help="a landing the rotation reported blocked that cannot be repaired; its bronze rows "
        "(pseudonyms of the previous key) are deleted so the rotation can finish (repeatable)",
    )
    a = add_action(
        actions,
        "request",
        help="register an erasure request; prints its id",
        description="Register an erasure request for each address read from standard input (one a "
        "line; prompted without echo on a terminal) and print its id, for `moulin privacy erase "
        "--request` or the privacy_erase DAG.",
    )
    a.add_argument(
        "--subject",
        action="append",
        help="the subject's e-mail address instead of standard input (repeatable; it stays in the "
        "shell's history)",
    )
    a = add_action(
        actions,
        "erase",
        help="erase a subject: a registered request (--request) or an address (--subject)",
        description="Erase a subject from every table, quarantine and raw file that holds it, then "
        "prove it by scanning the warehouse, the logs and Airflow's metadata database.  Give "
        "--request or --subject.",
    )
    a.add_argument("--request", dest="request_id", help="the id of a registered request")
    a.add_argument(
        "--subject",
        action="append",
        help="the subject's e-mail address (repeatable; it stays in the shell's history: prefer "
        "`request`, which reads it from standard input)",
    )
    add_action(
        actions,
        "requests",
        help="the recorded privacy requests, one JSON line each",
        description="Print the privacy requests recorded in ops/privacy_requests, oldest first, one "
        "JSON line each.",
    )
    a = add_action(
        actions,
        "retention",
        help="delete what is older than each contract's retention",
        description="Delete the partitions (and raw drops, staging copies) older than each "
        "contract's privacy.retention_days, then vacuum the tables; recorded in ops/retention.",
    )
    a.add_argument("--dry-run", action="store_true", help="say what would be deleted, delete nothing")
    a.add_argument("--today", help="the date to count from (YYYY-MM-DD; default today)")
    a = add_action(
        actions,
        "register",
        help="write the record of processing activities (HTML)",
        description="Write the record of processing activities (GDPR art. 30) from the contracts, as "
        "HTML, to ops/register/record_of_processing.html in the warehouse.",
    )
    a.add_argument("--out", help="also write the HTML to this local file")
    a = add_action(
        actions,
        "audit",
        help="the newest rows of the audit trail, one JSON line each",
        description="Print the newest rows of the audit trail (ops/audit), one JSON line each.",
    )
    add_limit(a, "newest rows to show", default=50)
    a = add_action(
        actions,
        "permissions",
        help="set each access zone's owner, group and mode on HDFS",
        description="Set each access zone's owner, group and mode recursively (folders 750, files "
        "640); only what differs changes.",
    )
    a.add_argument("--owner", help="owner to set (default: the user moulin acts as)")
    a.add_argument("--as-user", help="HDFS user to act as (the superuser or the owner)")
    add_action(
        actions,
        "views",
        help="rebuild the analysts' views of the personal-data tables",
        description="Rebuild every analysts' view (views/<layer>_<name>) from its table's latest "
        "version: the columns that hold no personal data, keyed pseudonyms or masked text.",
    )


def _spark(settings: Settings, name: str):
    return build_spark_session(settings, f"moulin-privacy-{name}")


def _addresses_from_stdin() -> list[str]:
    """The addresses to register, one per line of standard input (prompted on a terminal)."""
    import sys

    if sys.stdin.isatty():
        import getpass

        lines = [getpass.getpass("subject's e-mail address (not echoed): ")]
    else:
        lines = sys.stdin.read().splitlines()
    addresses = [line.strip() for line in lines if line.strip()]
    if not addresses:
        raise MoulinError("request needs the subject's address on standard input (or --subject <address>)")
    return addresses


def _run(args: argparse.Namespace) -> int:
    settings = load_settings(args.profile)
    act_as_hdfs_user(settings)
    action = args.action
    if action == "key":
        print(load_key(settings))
    elif action == "rotate-key":
        out = rotate_key(_spark(settings, "rotate"), settings, print, drop_landings=args.drop_landing)
        print(f"rotation to key {out['key_id']}: {len(out['regated'])} landing(s) pseudonymised again; "
              + ("finished, the previous key destroyed" if out["status"] == "finished" else
                 f"waits for the rebuild of {', '.join(out['rebuild'])} (erasures refuse until then; "
                 "rerun rotate-key after rebuilding them)"))  # fmt: skip
    elif action == "request":
        for address in args.subject or _addresses_from_stdin():
            request_id = register_erasure(settings, address)
            print(f"{request_id}: registered; carry it out with `moulin privacy erase --request {request_id}` "
                  f"or by triggering DAG privacy_erase with request_id={request_id}")  # fmt: skip
    elif action == "erase":
        from moulin.privacy.erasure import ErasureReport, erase_subject

        if not args.subject and not args.request_id:
            raise MoulinError(
                "erase needs --request <request id> (from `moulin privacy request`) or --subject <address>"
            )
        spark = _spark(settings, "erase")
        if args.request_id:
            out = erase_request(spark, settings, args.request_id, print)
            if out.get("already_complete"):
                return 0
            reports = [ErasureReport.from_dict(out)]
        else:
            reports = [erase_subject(spark, settings, subject, print) for subject in args.subject]
        for report in reports:
            rows = sum(t.rows_erased for t in report.tables)
            state = (
                "nothing to erase (recorded as a no-op)"
                if report.noop
                else f"{rows} row(s), {len(report.raw_files)} raw file(s) erased"
            )
            print(f"{report.request_id}: {state}; proof: {report.proof_after['files_scanned']} files, "
                  f"{report.proof_after['bytes_scanned']} bytes scanned, hits {report.proof_before['hits']} -> "
                  f"{report.proof_after['hits']} in {report.seconds} s")  # fmt: skip
    elif action == "requests":
        from moulin.privacy.erasure import read_requests

        for row in read_requests(settings):
            print(json.dumps(row, default=str))
    elif action == "retention":
        from moulin.privacy.retention import apply_retention

        today = dt.date.fromisoformat(args.today) if args.today else None
        spark = None if args.dry_run else _spark(settings, "retention")
        apply_retention(spark, settings, today, dry_run=args.dry_run, say=print)
    elif action == "register":
        uri = write_register(settings)
        if args.out:
            Path(args.out).write_text(register_html(settings))
        print(f"record of processing activities: {uri}" + (f" and {args.out}" if args.out else ""))
    elif action == "views":
        build_views(_spark(settings, "views"), settings, print)
    elif action == "audit":
        from moulin.privacy.audit import read_audit

        for row in read_audit(settings)[-args.limit :]:
            print(json.dumps(row, default=str))
    else:
        from moulin.privacy.erasure import personal_tables

        # a personal source's quarantine stays with data engineering (who fix its rows)
        personal = [t.uri for t in personal_tables(settings) if t.contract is not None]
        apply_permissions(settings, personal, say=print, owner=args.owner, as_user=args.as_user)
    return 0
