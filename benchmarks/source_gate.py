"""What the quality gate of a source costs: one drop of a generated source (``orders``, 13
columns of mixed types) gated into bronze, against the same Spark job without the gate
(read the CSV with the contract's types, write the bronze partition).

    .venv/bin/python benchmarks/source_gate.py [--rows 400000] [--repeat 2]

Prints the seconds of each variant (best of ``--repeat``, each on a fresh drop
date so every run writes) and the ratios gate / plain job (goal: at most 1.3).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    import os

    from source_files import order_rows, to_csv, write_contracts

    from moulin.settings import load_settings

    work = Path(tempfile.mkdtemp(prefix="moulin-gate-bench-"))
    os.environ["MOULIN_CONTRACTS_DIR"] = str(work / "contracts")
    settings = replace(load_settings("local"), home=work / "home", contracts_dir=work / "contracts")
    drops = work / "drops"
    drops.mkdir()
    spec_path = write_contracts(work / "contracts", drops, extra="quarantine_threshold: 0.5\n")

    from moulin.delta import DeltaTableStore
    from moulin.sources.bronze import gate_landing
    from moulin.sources.land import land_source
    from moulin.sources.spec import load_spec_file, validate_spec
    from moulin.spark import build_spark_session

    spark = build_spark_session(settings, "moulin-gate-benchmark")
    spark.sparkContext.setLogLevel("ERROR")
    spec = load_spec_file(spec_path)
    contract = validate_spec(spec)
    t = time.perf_counter()
    rows = order_rows(args.rows, seed=1)
    data = to_csv(rows)
    print(
        f"generated {args.rows:,} rows ({len(data) / 2**20:.1f} MiB of CSV) in {time.perf_counter() - t:.1f}s"
    )
    store = DeltaTableStore(spark)
    times: dict[str, list[float]] = {"plain job": [], "gate without GE": [], "gate with GE": []}
    day = 0
    for _ in range(args.repeat):
        for variant in times:
            day += 1
            ds = f"2024-04-{day:02d}"
            # new keys every day: the gate checks them against the rows already in bronze
            (drops / f"orders_{ds}.csv").write_bytes(
                to_csv(order_rows(args.rows, start_id=day * args.rows, seed=day))
            )
            land_source(settings, spec, ds)
            start = time.perf_counter()
            if variant == "plain job":
                from pyspark.sql import functions as F

                uri = f"{settings.table_uri('raw', 'orders', f'ds={ds}')}/orders_{ds}.csv"
                df = spark.read.csv(
                    uri, header=True, schema=contract.spark_schema(lineage=False), multiLine=True
                )
                df = df.withColumn("_source_file", F.col("_metadata.file_path")).withColumn("ds", F.lit(ds))
                store.write(
                    df, settings.table_uri("bench", "plain_orders"), mode="overwrite",
                    partition_by=["ds"], replace_where={"ds": ds},
                )  # fmt: skip
            else:
                out = gate_landing(spark, settings, spec, ds, run_ge=variant == "gate with GE")
                assert out.rows_read == args.rows, out
            times[variant].append(time.perf_counter() - start)
            print(f"  {variant:<16} ds={ds}: {times[variant][-1]:6.1f}s", flush=True)
    best = {k: min(v) for k, v in times.items()}
    print(f"\n{args.rows:,} rows, best of {args.repeat} ({settings.spark.master}):")
    for variant, seconds in best.items():
        ratio = seconds / best["plain job"]
        print(
            f"  {variant:<16} {seconds:6.1f}s  {args.rows / seconds:10,.0f} rows/s  x{ratio:.2f} of the plain job"
        )
    spark.stop()


if __name__ == "__main__":
    main()
