"""The mail use case at full size and what an erasure costs: the whole SpamAssassin
corpus (6,046 messages) through landing, the gate (pseudonyms at bronze), silver and
the spam filters, the analysts' views, then the erasure of three subjects (a
frequent sender, a sender in quarantine, a recipient) with its on-disk proof.

    .venv/bin/python benchmarks/privacy.py [--limit N] [--hdfs]

Prints a line per step, the filters' test metrics, and per erasure: rows erased
per table, raw files rewritten, files and bytes scanned, hits before and after,
seconds.  ``--hdfs`` runs on a local HDFS started under the temporary home.
"""

from __future__ import annotations

import argparse
import collections
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="messages per corpus group (default: all)")
    parser.add_argument("--hdfs", action="store_true", help="on a local HDFS instead of local disk")
    args = parser.parse_args()

    from moulin.cluster.ports import free_hdfs_port_env
    from moulin.ingest.mail import parse_message, split_mbox
    from moulin.settings import load_settings

    home = Path(tempfile.mkdtemp(prefix="moulin-privacy-bench-"))
    os.environ.update(
        MOULIN_HOME=str(home), MOULIN_SPARK_MASTER=os.environ.get("MOULIN_SPARK_MASTER", "local[2]")
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
        from moulin.privacy.erasure import erase_subject
        from moulin.privacy.views import build_views
        from moulin.spark import build_spark_session
        from moulin.usecases.mail.runner import run_mail

        spark = build_spark_session(settings, "moulin-privacy-benchmark")
        spark.sparkContext.setLogLevel("ERROR")
        start = time.perf_counter()
        out = run_mail(spark, settings, limit=args.limit)
        chain_s = time.perf_counter() - start
        t = time.perf_counter()
        build_views(spark, settings, print)
        print(f"views: {time.perf_counter() - t:.1f}s")

        def senders(ds: str, box: str) -> collections.Counter:
            data = (settings.home / "drops" / "mail" / ds / f"{box}.mbox").read_bytes()
            found = (parse_message(m)["from_address"] for m in split_mbox(data))
            return collections.Counter(a.lower() for a in found if a and "@" in a)

        from moulin.delta import DeltaTableStore

        quarantine = DeltaTableStore().to_pandas(settings.table_uri("quarantine", "mail"))
        import json

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
        print(f"\nmail chain: {sum(b['rows_manifest'] for b in out['bronze'])} messages in {chain_s:.0f}s")
        for b in out["bronze"]:
            print(
                f"  {b['ds']}: manifest {b['rows_manifest']} = bronze {b['rows_bronze']} + quarantined {b['rows_quarantined']}"
            )
        for name, m in out["model"]["models"].items():
            print(
                f"  filter [{name}]: test accuracy {m['test_accuracy']}, F1 {m['test_f1_spam']}, ROC-AUC {m['test_roc_auc']}"
            )
        for n, subject in enumerate(s for s in subjects if s):
            report = erase_subject(spark, settings, subject)
            rows = {t.table: t.rows_erased for t in report.tables if t.rows_erased}
            print(f"erasure {n + 1}: {rows}, {len(report.raw_files)} raw file(s) rewritten; scanned "
                  f"{report.proof_after['files_scanned']} files / {report.proof_after['bytes_scanned'] / 2**20:.1f} MiB; "
                  f"hits {report.proof_before['hits']} -> {report.proof_after['hits']}; {report.seconds:.1f}s")  # fmt: skip
        again = erase_subject(spark, settings, subjects[0])
        print(f"rerun of erasure 1: noop={again.noop}, {again.seconds:.1f}s")
        spark.stop()
    finally:
        if cluster is not None:
            cluster.down()


if __name__ == "__main__":
    main()
