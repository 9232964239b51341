"""A synthetic feature table that follows the contract, with a learnable signal.

For tests and benchmarks only: column names, types, nullability and the split
rule come from the contract; the label depends on the categorical values
(random effects) and on the first numeric columns (linear + one quadratic term).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from moulin.training import TrainingError
from moulin.training.contract import FeatureContract

LEVELS = (8, 3, 20, 12, 5)


def synthetic_features(
    contract: FeatureContract, n_rows: int, seed: int = 0, key_prefix: str = "f"
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {contract.key: [f"{key_prefix}{i:08d}" for i in range(n_rows)]}
    logit = np.full(n_rows, -1.3)
    for j, col in enumerate(contract.categorical):
        k = LEVELS[j % len(LEVELS)]
        weights = 1.0 / np.arange(1, k + 1)
        codes = rng.choice(k, size=n_rows, p=weights / weights.sum())
        effects = rng.normal(0, 0.9, size=k)
        logit += effects[codes]
        data[col] = np.array([f"{col[:3].upper()}{c}" for c in codes], dtype=object)
    for j, col in enumerate(contract.numeric):
        z = rng.normal(size=n_rows)
        if j == 0:
            logit += 0.8 * z
        elif j == 1:
            logit += 0.6 * (z**2 - 1)
        elif j == 2:
            logit -= 0.5 * z
        values = np.round(10 + 3 * z, 3)
        if col in contract.nullable:
            values = np.where(rng.random(n_rows) < 0.05, np.nan, values)
        data[col] = values
    y = (rng.random(n_rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    data[contract.label] = y
    rule = contract.split_rule or {}
    if not rule.get("train_until") or not rule.get("validation_until"):
        raise TrainingError(
            f"feature contract {contract.name} has no split rule (split.train_until/validation_until)"
        )
    train_until = date.fromisoformat(str(rule["train_until"]))
    val_until = date.fromisoformat(str(rule["validation_until"]))
    start = date(train_until.year, 1, 1)  # a year of dates around the split bounds
    days = rng.integers(0, 365, size=n_rows)
    dates = [start + timedelta(days=int(d)) for d in days]
    if contract.time:
        data[contract.time] = dates
    data[contract.split] = np.array(
        ["train" if d <= train_until else "validation" if d <= val_until else "test" for d in dates],
        dtype=object,
    )
    return pd.DataFrame(data)


def write_synthetic_table(
    uri: str,
    contract: FeatureContract,
    n_rows: int,
    seed: int = 0,
    rows_per_group: int = 256,
    mode: str = "error",
    key_prefix: str = "f",
) -> int:
    """Write a synthetic feature table (partitioned by split) as a Delta table; its version."""
    from deltalake import DeltaTable, WriterProperties, write_deltalake

    frame = synthetic_features(contract, n_rows, seed, key_prefix=key_prefix)
    write_deltalake(
        uri,
        frame,
        partition_by=[contract.split],
        mode=mode,
        writer_properties=WriterProperties(max_row_group_size=rows_per_group),
    )
    dt = DeltaTable(uri)
    version = dt.version()
    del dt
    return int(version)
