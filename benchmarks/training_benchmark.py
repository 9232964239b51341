"""Time one training run (snapshot -> DDP MLP + baselines -> metrics) on a
synthetic feature table of a given size.  Run in the training environment::

    .venv-train/bin/python benchmarks/training_benchmark.py --rows 100000 --epochs 2 --processes 2

Prints one JSON object: rows, per-phase and per-model seconds, epoch times, test AUCs.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rows-per-group", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1024)
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="moulin-train-bench-")
    os.environ.update(MOULIN_HOME=home, MOULIN_SPARK_MASTER=f"local[{max(2, args.processes)}]")
    from moulin.settings import load_settings
    from moulin.spark import build_spark_session
    from moulin.training.contract import FeatureContract
    from moulin.training.run import train_and_compare
    from moulin.training.run_options import TrainingOptions
    from moulin.training.synthetic import write_synthetic_table

    settings = load_settings("local")
    contract = FeatureContract.load("flight_features")
    uri = settings.table_uri("gold", "flight_features")
    t = time.time()
    write_synthetic_table(uri, contract, args.rows, seed=1, rows_per_group=args.rows_per_group)
    write_s = time.time() - t
    spark = build_spark_session(settings, "moulin-training-benchmark")
    t = time.time()
    options = TrainingOptions(
        contract="flight_features",
        epochs=args.epochs,
        num_processes=args.processes,
        batch_size=args.batch_size,
        early_stopping=False,
    )
    summary = train_and_compare(spark, settings, options)
    total = time.time() - t
    results = json.loads(open(summary["paths"]["results_json"].removeprefix("file://")).read())
    spark.stop()
    print(
        json.dumps(
            {
                "rows": summary["rows"],
                "processes": args.processes,
                "write_table_s": round(write_s, 2),
                "train_and_compare_s": round(total, 2),
                "model_train_s": {n: round(m["train_seconds"], 2) for n, m in summary["models"].items()},
                "mlp_epoch_s": [h["seconds"] for h in results["models"]["mlp"]["training"]["history"]],
                "test_roc_auc": {n: round(m["roc_auc"], 4) for n, m in summary["models"].items()},
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
