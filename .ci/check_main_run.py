"""Check what the README's main command left behind, from places independent of its own
report: the raw files it landed (lines counted here), the Delta tables (rows counted here),
the leaderboard and the report file.

    .venv/bin/python .ci/check_main_run.py <MOULIN_HOME> <months> <sample> <console log>
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse


def main(home: Path, months: list[int], sample: int, console: Path) -> list[str]:
    from moulin.delta import DeltaTableStore
    from moulin.settings import load_settings

    os.environ["MOULIN_HOME"] = str(home)
    settings = load_settings("local")
    store = DeltaTableStore(None)
    problems: list[str] = []

    def rows(name: str, **filters) -> int:
        return len(store.to_pandas(settings.table_uri(name), filters=filters or None))

    raw = home / "warehouse" / "raw" / "flights"
    landed = {}
    for m in months:
        files = sorted((raw / f"ds=2013-{m:02d}-01").glob("*.csv"))
        # data lines of the raw files (a header line each; quoted line breaks do not occur in flights)
        landed[m] = sum(len(f.read_bytes().splitlines()) - 1 for f in files)
        if landed[m] != sample:
            problems.append(f"raw flights of 2013-{m:02d}: {landed[m]} lines landed, {sample} expected")
        ds = f"2013-{m:02d}-01"
        kept, rejected = rows("bronze/flights", ds=ds), rows("quarantine/flights", ds=ds)
        if kept + rejected != landed[m]:
            problems.append(f"{ds}: bronze {kept} + quarantine {rejected} != {landed[m]} raw lines")
    # The reference sources (source specs weather, airlines: CSV files; planes, airports: SQL
    # tables landed as JSON lines), landed once at the last month: raw records = bronze + quarantine.
    last = f"2013-{max(months):02d}-01"
    for source, pattern, header in (
        ("weather", "*.csv", 1), ("airlines", "*.csv", 1), ("planes", "*.jsonl", 0), ("airports", "*.jsonl", 0)
    ):  # fmt: skip
        files = sorted((home / "warehouse" / "raw" / source / f"ds={last}").glob(pattern))
        records = sum(len(f.read_bytes().splitlines()) - header for f in files)
        kept, rejected = rows(f"bronze/{source}"), rows(f"quarantine/{source}", ds=last)
        if not files or not records:
            problems.append(f"raw {source} of {last}: no records landed ({pattern})")
        elif kept + rejected != records:
            problems.append(
                f"{source} {last}: bronze {kept} + quarantine {rejected} != {records} raw records"
            )
    silver = store.to_pandas(settings.table_uri("silver/flights"), columns=["cancelled", "dep_delayed_15"])
    bronze_total = rows("bronze/flights")
    if len(silver) != bronze_total:
        problems.append(f"silver/flights {len(silver)} rows, bronze/flights {bronze_total}")
    departed = int((~silver["cancelled"] & silver["dep_delayed_15"].notna()).sum())
    features = rows("gold/flight_features")
    if features != departed:
        problems.append(f"gold/flight_features {features} rows, {departed} departed flights in silver")
    board = store.to_pandas(settings.table_uri("gold/model_leaderboard"))
    if len(board) < 3:
        problems.append(f"gold/model_leaderboard has {len(board)} rows: one per model (3) expected")
    reports = [
        line.split(":", 1)[1].strip()
        for line in console.read_text().splitlines()
        if line.startswith("report:")
    ]
    if not reports:
        problems.append(f"no 'report:' line in the main command's output ({console})")
    else:
        path = Path(unquote(urlparse(reports[-1]).path))
        text = path.read_text(errors="replace") if path.is_file() else ""
        if "<html" not in text.lower() or "ROC" not in text:
            problems.append(f"the report {path} is missing or holds no model comparison")
    print(
        f"main command check: raw {sum(landed.values())} lines = bronze {bronze_total} + quarantine "
        f"{sum(landed.values()) - bronze_total}; silver {len(silver)}; features {features}; "
        f"leaderboard {len(board)} rows; report {reports[-1] if reports else '-'}"
    )
    return problems


if __name__ == "__main__":
    home, months, sample, console = sys.argv[1:5]
    found = main(Path(home), [int(m) for m in months.split(",")], int(sample), Path(console))
    for problem in found:
        print(f"main command check: FAILED: {problem}")
    sys.stdout.flush()
    os._exit(1 if found else 0)  # deltalake's native pools can abort at interpreter exit (delta-rs#2184)
