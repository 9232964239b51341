"""The mail use case at full size and what an erasure costs: the whole SpamAssassin
corpus (6,046 messages) through landing, the gate (pseudonyms at bronze), silver and
the spam filters, the analysts' views, then three erasure requests carried out by the
``privacy_erase`` DAG (a frequent sender, a sender in quarantine, and an address that
another address of the corpus contains, such as ``sl@x`` inside ``gsl@x``).

    .venv/bin/python benchmarks/privacy.py [--limit N] [--hdfs]

Prints a line per step, the filters' test metrics, and per erasure: files scanned by
the proof, hits before and after (0 after), seconds, and for every neighbour (an
address containing the subject's, or contained in it): its messages in the raw
mailboxes and its rows in every table, counted and digested before and after by this
script (stdlib e-mail parsing, keyed pseudonyms, Delta reads) — not by the erasure
code — which must be unchanged.  Exit status 1 otherwise.  ``--hdfs`` runs on a
local HDFS started under the temporary home.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import re
import tempfile
import time
from email.header import decode_header, make_header
from pathlib import Path

ADDRESS_CHARS = "A-Za-z0-9._%+'=-"


def whole_address(address: str) -> re.Pattern:
    """``address`` as a whole address in text (not inside a longer one), any case."""
    return re.compile(
        rf"(?<![{ADDRESS_CHARS}]){re.escape(address)}(?![A-Za-z0-9-]|\.[A-Za-z0-9])", re.IGNORECASE
    )


def _messages(data: bytes) -> list[bytes]:
    return [m for m in re.split(rb"(?m)^(?=From )", data) if m.strip()]


def _message_addresses(message: bytes) -> set[str]:
    """From, To and Cc addresses of a message (stdlib parsing, encoded headers decoded)."""
    from email import message_from_bytes, policy
    from email.utils import getaddresses

    msg = message_from_bytes(message, policy=policy.compat32)
    values = []
    for header in ("From", "To", "Cc"):
        for value in msg.get_all(header) or []:
            values.append(str(make_header(decode_header(str(value)))))
    return {a.strip().lower() for _, a in getaddresses(values) if "@" in a}


def _raw_mailboxes(settings) -> dict[str, bytes]:
    """The mailbox files the landings' manifests list now (``uri -> bytes``)."""
    from moulin.storage import WarehouseFS

    fs = WarehouseFS(settings)
    out = {}
    for folder in fs.list(settings.table_uri("raw", "mail")):
        manifest = f"{folder.uri}/_manifest.json"
        if folder.is_dir and fs.exists(manifest):
            for entry in json.loads(fs.read_bytes(manifest)).get("files", []):
                out[entry["uri"]] = fs.read_bytes(entry["uri"])
    return out


def all_addresses(settings) -> collections.Counter:
    """Every From/To/Cc address of the landed mailboxes, with its number of messages."""
    counts: collections.Counter = collections.Counter()
    for data in _raw_mailboxes(settings).values():
        for message in _messages(data):
            counts.update(_message_addresses(message))
    return counts


def _contains(outer: str, inner: str) -> bool:
    return outer != inner and inner in outer


def neighbour_pair(corpus: collections.Counter) -> tuple[str, str] | None:
    """An address of the corpus that another one contains (``sl@x`` in ``gsl@x``), and that one."""
    by_domain: dict[str, list[str]] = collections.defaultdict(list)
    for a in corpus:
        by_domain[a.rsplit("@", 1)[1]].append(a)
    for domain in sorted(by_domain):
        for a in sorted(by_domain[domain]):
            for b in sorted(by_domain[domain]):
                if _contains(b, a):
                    return a, b
    return None


def neighbours_of(subject: str, corpus: collections.Counter) -> list[str]:
    """Addresses of the corpus that contain ``subject`` or that it contains."""
    return sorted(a for a in corpus if _contains(a, subject) or _contains(subject, a))


def _purposes() -> set[str]:
    from moulin.contracts import load_contract_file
    from moulin.settings import REPO_ROOT

    out = set()
    for path in sorted((REPO_ROOT / "schemas").glob("*.yaml")):
        contract = load_contract_file(path)
        out |= {p.purpose for p in contract.personal_columns.values() if p.purpose}
    return out


def neighbour_state(settings, subject: str, neighbour: str) -> dict[str, tuple[int, str]]:
    """``{place: (count, sha256)}`` of what belongs to ``neighbour`` and not to ``subject``:
    its messages in the raw mailboxes, its rows in every Delta table of the warehouse
    (found by its keyed pseudonyms or its whole address)."""
    from deltalake import DeltaTable

    from moulin.privacy.keys import load_key
    from moulin.privacy.pseudonyms import pseudonym
    from moulin.storage import WarehouseFS

    out: dict[str, tuple[int, str]] = {}
    messages = sorted(
        m
        for data in _raw_mailboxes(settings).values()
        for m in _messages(data)
        if neighbour in (found := _message_addresses(m)) and subject not in found
    )
    out["raw mailboxes"] = (len(messages), hashlib.sha256(b"".join(messages)).hexdigest()[:16])
    key = load_key(settings, create=False)
    purposes = _purposes()
    mine = [whole_address(neighbour)] + [
        re.compile(re.escape(pseudonym(neighbour, p, key))) for p in purposes
    ]
    theirs = [whole_address(subject)] + [re.compile(re.escape(pseudonym(subject, p, key))) for p in purposes]
    fs = WarehouseFS(settings)
    for layer in ("bronze", "silver", "gold", "quarantine", "views"):
        root = settings.table_uri(layer)
        if not fs.exists(root):
            continue
        for folder in fs.list(root):
            if not folder.is_dir or not DeltaTable.is_deltatable(folder.uri):
                continue
            frame = DeltaTable(folder.uri).to_pandas()
            rows = sorted(
                line
                for line in (
                    json.dumps([str(v) for v in r], ensure_ascii=False) for r in frame.itertuples(index=False)
                )
                if any(p.search(line) for p in mine) and not any(p.search(line) for p in theirs)
            )
            if rows:
                name = f"{layer}/{folder.uri.rstrip('/').rsplit('/', 1)[-1]}"
                out[name] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16])
    return out


def erase_through_the_dag(settings, subjects: list[str], corpus: collections.Counter, log_dir: Path) -> bool:
    """Register a request per subject and run the ``privacy_erase`` DAG on each; print the
    proof's figures and the neighbours' counts and digests before and after."""
    from moulin.orchestration import DagTest, ensure_airflow_db, run_dag_tests
    from moulin.privacy.erasure import read_requests
    from moulin.privacy.requests import register_erasure

    ensure_airflow_db(settings)
    ok = True
    for n, subject in enumerate(subjects, start=1):
        neighbours = neighbours_of(subject, corpus)
        before = {nb: neighbour_state(settings, subject, nb) for nb in neighbours}
        request_id = register_erasure(settings, subject)
        start = time.perf_counter()
        run_dag_tests(
            settings,
            [DagTest("privacy_erase", f"2026-12-{n:02d}", conf={"request_id": request_id})],
            log_dir,
            lambda line: None,
        )
        seconds = time.perf_counter() - start
        (done,) = [r for r in read_requests(settings) if r["request_id"] == request_id]
        print(
            f"erasure {n} ({request_id}, {corpus[subject]} message(s) of the subject): "
            f"{done['rows_erased']} rows erased; proof scanned {done['files_scanned']} files / "
            f"{done['bytes_scanned'] / 2**20:.1f} MiB; hits {done['hits_before']} -> {done['hits_after']}; "
            f"{seconds:.1f}s through the DAG ({done['seconds']:.1f}s in the stage)"
        )
        ok &= done["hits_before"] > 0 and done["hits_after"] == 0
        if not neighbours:
            print("  no neighbour address in the corpus")
        for nb in neighbours:
            after = neighbour_state(settings, subject, nb)
            same = after == before[nb]
            ok &= same
            places = ", ".join(f"{place} {c} ({d})" for place, (c, d) in sorted(after.items()) if c)
            print(
                f"  neighbour #{neighbours.index(nb) + 1}: {places} -- {'unchanged' if same else 'CHANGED'}"
            )
            if not same:
                print(f"    before: {before[nb]}\n    after:  {after}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="messages per corpus group (default: all)")
    parser.add_argument("--hdfs", action="store_true", help="on a local HDFS instead of local disk")
    args = parser.parse_args()

    from moulin.cluster.ports import free_hdfs_port_env
    from moulin.ingest.mail import parse_message, split_mbox
    from moulin.settings import load_settings

    installed = load_settings()  # the user's home: bin/setup installed the corpus under its dist folder
    home = Path(tempfile.mkdtemp(prefix="moulin-privacy-bench-"))
    os.environ.update(
        MOULIN_HOME=str(home),
        MOULIN_DIST_DIR=str(installed.dist_dir or installed.home / "dist"),
        MOULIN_SPARK_MASTER=os.environ.get("MOULIN_SPARK_MASTER", "local[2]"),
    )
    if args.hdfs:
        os.environ.update(free_hdfs_port_env())
    settings = load_settings("hdfs-local" if args.hdfs else "local")
    cluster = None
    if args.hdfs:
        from moulin.cluster.local import LocalCluster

        cluster = LocalCluster(settings, log=lambda m: None)
        cluster.up()
    try:
        from moulin.spark import build_spark_session
        from moulin.usecases.mail.usecase import USECASE

        spark = build_spark_session(settings, "moulin-privacy-benchmark")
        spark.sparkContext.setLogLevel("ERROR")
        start = time.perf_counter()
        out = USECASE.run(spark, settings, limit=args.limit)
        chain_s = time.perf_counter() - start
        print(f"views: {len(out['follow_on']['views']['views'])} rebuilt by the chain (its follow-on task)")

        def senders(ds: str, box: str) -> collections.Counter:
            data = (settings.home / "drops" / "mail" / ds / f"{box}.mbox").read_bytes()
            found = (parse_message(m)["from_address"] for m in split_mbox(data))
            return collections.Counter(a.lower() for a in found if a and "@" in a)

        from moulin.delta import DeltaTableStore

        quarantine = DeltaTableStore().to_pandas(settings.table_uri("quarantine", "mail"))
        in_quarantine = next(
            (
                json.loads(r)["from_address"]
                for r in quarantine["row"]
                if "@" in (json.loads(r).get("from_address") or "")
            ),
            None,
        )

        def person(counts: collections.Counter) -> str:  # the most frequent sender of at most 20 messages
            return next(a for a, n in counts.most_common() if n <= 20)

        subjects = [
            person(senders("2002-10-10", "ham")),
            in_quarantine,
            person(senders("2003-02-28", "spam")),
        ]
        print(f"\nmail chain: {sum(b['rows_manifest'] for b in out['gates'])} messages in {chain_s:.0f}s")
        for b in out["gates"]:
            print(
                f"  {b['ds']}: manifest {b['rows_manifest']} = bronze {b['rows_bronze']} + quarantined {b['rows_quarantined']}"
            )
        from moulin.usecases.kit.generate import results_lines

        for line in results_lines(USECASE, settings, out["training"]["results_uri"]):
            print(f"  {line}")
        spark.stop()  # the erasures run in the job server's Spark, through the DAG
        corpus = all_addresses(settings)
        pair = neighbour_pair(corpus)
        if pair is None:
            print("no address of the corpus is a neighbour of another (use the whole corpus: no --limit)")
        else:
            subjects[-1] = pair[0]  # three subjects: the third one a neighbour of another address
        subjects = [s for s in subjects if s]
        ok = erase_through_the_dag(settings, subjects, corpus, home / "dag-logs")
        if not ok:
            raise SystemExit(1)
    finally:
        if cluster is not None:
            cluster.down()


if __name__ == "__main__":
    main()
