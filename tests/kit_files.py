"""A tabular source the use cases have never seen, for the kit's tests: ``parcels`` (the
orders of :mod:`source_files` under another name) whose ``express`` column is learnable
(express unless the parcel weighs more than 8 kg, 5 % of labels flipped), and the framing
of use case ``express`` on it (``tests/data/kit/express_framing.yaml``, written by hand)."""

from __future__ import annotations

import random
from pathlib import Path

from source_files import order_rows, to_csv, write_contracts

FRAMING = Path(__file__).parent / "data" / "kit" / "express_framing.yaml"
SOURCE, DS, ROWS = "parcels", "2024-03-01", 600


def onboard_parcels(contracts: Path, drops: Path, rows: int = ROWS) -> Path:
    """The contract and spec of source ``parcels`` under ``contracts``, its drop for
    :data:`DS` under ``drops``; returns the drop file."""
    write_contracts(contracts, drops, name=SOURCE)
    orders = order_rows(rows, seed=5)
    rnd = random.Random(3)
    for order in orders:
        heavy = float(order["weight_kg"]) > 8
        order["express"] = "false" if heavy ^ (rnd.random() < 0.05) else "true"
    drops.mkdir(parents=True, exist_ok=True)
    drop = drops / f"{SOURCE}_{DS}.csv"
    drop.write_bytes(to_csv(orders))
    return drop
