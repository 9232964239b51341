"""A source the code has never seen, generated for the tests: ``orders`` with 13 columns of
mixed types (accented strings with commas and quotes, nullable ints, decimals, dates,
timestamps with zones, booleans), its contract and its source specs."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
from pathlib import Path

COLUMNS = ["order_id", "customer", "city", "quantity", "unit_price", "discount", "order_date",
           "shipped_at", "express", "status", "note", "rating", "weight_kg"]  # fmt: skip
NAMES = ["Zoë Dupont, SA", "Łukasz Kowalski", 'Renée "La" Forêt', "Jürgen Müller", "Ana Peña", "李雷"]
CITIES = ["Montréal", "Köln", "São Paulo", "Zürich", "Paris"]

CONTRACT = """\
name: bronze_orders
layer: bronze
table: bronze/orders
description: Orders of the shop, one file per day.
owner: shop-data
keys: [order_id]
partition_by: [ds]
personal_data: [customer]
columns:
  - {name: order_id, type: bigint, nullable: false}
  - {name: customer, type: string, nullable: false}
  - {name: city, type: string, nullable: true}
  - {name: quantity, type: int, nullable: true}
  - {name: unit_price, type: "decimal(10,2)", nullable: false}
  - {name: discount, type: double, nullable: true}
  - {name: order_date, type: date, nullable: false}
  - {name: shipped_at, type: timestamp, nullable: true}
  - {name: express, type: boolean, nullable: false}
  - {name: status, type: string, nullable: false}
  - {name: note, type: string, nullable: true}
  - {name: rating, type: int, nullable: true}
  - {name: weight_kg, type: double, nullable: true}
expectations:
  - {type: in_set, column: status, values: [new, paid, shipped, cancelled]}
  - {type: between, column: quantity, min: 1, max: 1000}
  - {type: between, column: rating, min: 1, max: 5}
quarantine_threshold: 0.2
"""


def order_rows(n: int, start_id: int = 1, seed: int = 0, day: dt.date = dt.date(2024, 3, 1)) -> list[dict]:
    """``n`` valid orders with ids from ``start_id``."""
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        shipped = dt.datetime(day.year, day.month, day.day, rnd.randrange(24), rnd.randrange(60),
                              tzinfo=dt.timezone(dt.timedelta(hours=rnd.choice([-5, 0, 1, 9]))))  # fmt: skip
        rows.append({
            "order_id": start_id + i,
            "customer": rnd.choice(NAMES),
            "city": rnd.choice(CITIES + [""]),
            "quantity": rnd.choice([str(rnd.randrange(1, 50)), ""]),
            "unit_price": f"{rnd.randrange(100, 99999) / 100:.2f}",
            "discount": rnd.choice(["", "0.1", "0.25"]),
            "order_date": day.isoformat(),
            "shipped_at": rnd.choice([shipped.isoformat(), ""]),
            "express": rnd.choice(["true", "false"]),
            "status": rnd.choice(["new", "paid", "shipped", "cancelled"]),
            "note": rnd.choice(["", "leave at door, please", "line one\nline two", "said \"fragile\""]),
            "rating": rnd.choice(["", "1", "5"]),
            "weight_kg": f"{rnd.random() * 20:.3f}",
        })  # fmt: skip
    return rows


def to_csv(rows: list[dict], columns: list[str] = COLUMNS, delimiter: str = ",") -> bytes:
    """CSV bytes with a header (``\\n`` line ends, quoting as needed)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", delimiter=delimiter)
    writer.writerow(columns)
    for r in rows:
        writer.writerow([r.get(c, "") for c in columns])
    return out.getvalue().encode("utf-8")


def to_jsonl(rows: list[dict]) -> bytes:
    """JSON lines of ``rows`` with typed values (numbers, booleans, nulls)."""
    out = []
    for r in rows:
        rec = {}
        for c in COLUMNS:
            v = r[c]
            if v == "":
                rec[c] = None
            elif c in ("order_id", "quantity", "rating"):
                rec[c] = int(v)
            elif c in ("discount", "weight_kg"):
                rec[c] = float(v)
            elif c == "express":
                rec[c] = v == "true"
            else:
                rec[c] = v
        out.append(json.dumps(rec, ensure_ascii=False))
    return ("\n".join(out) + "\n").encode()


def write_contracts(folder: Path, drops: Path, name: str = "orders", kind: str = "file", fmt: str = "csv",
                    extra: str = "") -> Path:  # fmt: skip
    """Write ``bronze_orders.yaml`` (once) and ``sources/<name>.yaml`` under ``folder``;
    returns the spec's path."""
    (folder / "sources").mkdir(parents=True, exist_ok=True)
    contract = CONTRACT.replace("bronze_orders", f"bronze_{name}").replace("bronze/orders", f"bronze/{name}")
    contract = contract.replace("{name: orders, format: csv}", f"{{name: {name}, format: {fmt}}}")
    (folder / f"bronze_{name}.yaml").write_text(contract)
    body = (
        f'name: {name}\nkind: {kind}\ncontract: bronze_{name}\nschedule: "@daily"\nstart_date: 2024-03-01\n'
    )
    if kind == "file":
        suffix = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet"}[fmt]
        body += f"file:\n  path: {drops}/{name}_{{ds}}*.{suffix}\n  format: {fmt}\n"
    spec = folder / "sources" / f"{name}.yaml"
    spec.write_text(body + extra)
    return spec
