"""The "Add a source" tutorial's recipes, run as the page prints them
(docs/tutorials/add-a-source.md): infer from a sample, the spec, validate, one drop
outside Airflow, the DuckDB query of the new table, and the DAG of one's own scheduled
on the source's Asset. The code blocks are read from the page itself, so a recipe that
stops working fails here; only the example paths (``/data/drops``, ``~/shop-contracts``)
are replaced by the test's folders."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from source_files import order_rows, to_csv

from moulin.orchestration import DAGS_FOLDER, airflow_env
from moulin.settings import REPO_ROOT, load_settings

pytestmark = pytest.mark.integration

PAGE = REPO_ROOT / "docs" / "tutorials" / "add-a-source.md"
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>\w+)\n(?P<body>.*?)^(?P=indent)```", re.S | re.M)
MOULIN = str(Path(sys.executable).with_name("moulin"))


def page_block(lang: str, containing: str) -> str:
    """The one ``lang`` code block of the tutorial page that contains ``containing``, dedented."""
    found = [
        textwrap.dedent(m["body"])
        for m in FENCE.finditer(PAGE.read_text())
        if m["lang"] == lang and containing in m["body"]
    ]
    assert len(found) == 1, f"{PAGE} has {len(found)} {lang} blocks with {containing!r}"
    return found[0]


@pytest.fixture
def shop(tmp_path, monkeypatch, settings) -> dict[str, Path]:
    """The tutorial's example folders, under the test's own ``MOULIN_HOME``."""
    folders = {name: tmp_path / name for name in ("home", "drops", "contracts")}
    for folder in folders.values():
        folder.mkdir()
    monkeypatch.setenv("MOULIN_HOME", str(folders["home"]))
    monkeypatch.setenv("MOULIN_PROFILE", "local")
    monkeypatch.setenv("MOULIN_CONTRACTS_DIR", str(folders["contracts"]))
    return folders


def _here(text: str, shop: dict[str, Path]) -> str:
    return (
        text.replace("~/shop-contracts", str(shop["contracts"]))
        .replace("/data/drops", str(shop["drops"]))
        .replace(".venv/bin/moulin", MOULIN)
    )


def _bash(script: str, shop: dict[str, Path]) -> subprocess.CompletedProcess:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _here(script, shop)],
        env=dict(os.environ), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, (
        f"{script}\n-> {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done


def test_add_a_source_then_query_it_with_duckdb_and_schedule_a_dag_on_it(shop, monkeypatch) -> None:
    from deltalake import DeltaTable

    (shop["drops"] / "orders_2024-03-01.csv").write_bytes(to_csv(order_rows(40, seed=3)))

    # 1. infer, as printed (MOULIN_CONTRACTS_DIR exported by the recipe itself)
    _bash(page_block("bash", "source infer"), shop)
    assert (shop["contracts"] / "bronze_orders.yaml").is_file()
    # 2. the spec as the page shows it
    spec = shop["contracts"] / "sources" / "orders.yaml"
    spec.write_text(_here(page_block("yaml", "name: orders"), shop))
    # 3. validate, 4. one drop outside Airflow
    _bash(".venv/bin/moulin source validate orders", shop)
    ran = _bash(page_block("bash", "source run orders --ds 2024-03-01"), shop)

    # what Python's csv module reads from the drops: every record is in bronze or quarantine
    records = {
        ds: len(list(csv.DictReader(io.StringIO((shop["drops"] / f"orders_{ds}.csv").read_text()))))
        for ds in ("2024-03-01",)
    }
    assert records == {"2024-03-01": 40}
    settings = load_settings()
    quarantine = settings.table_uri("quarantine", "orders")
    rejected: dict[str, int] = {}
    if DeltaTable.is_deltatable(quarantine):
        for ds in DeltaTable(quarantine).to_pyarrow_table().column("ds").to_pylist():
            rejected[str(ds)[:10]] = rejected.get(str(ds)[:10], 0) + 1

    # the analysts' DuckDB recipe, run as a script: its printed table has each date's count
    query = subprocess.run(
        [sys.executable, "-c", page_block("python", "duckdb.sql")],
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    # the recipe's own lines all ran (0); deltalake's native thread pools may abort the
    # interpreter's exit afterwards (SIGABRT, delta-rs#2184), which changes no answer
    assert query.returncode in (0, -signal.SIGABRT), query.stderr[-3000:]
    shown = dict(re.findall(r"│\s*(\d{4}-\d{2}-\d{2})\s*│\s*(\d+)\s*│", query.stdout))
    assert {ds: int(n) + rejected.get(ds, 0) for ds, n in shown.items()} == records, (
        query.stdout,
        ran.stdout,
    )

    # the DAG of one's own, in a DAGs folder with moulin's source DAGs: scheduled on the
    # Asset that source_orders' bronze task emits; its task counts what DuckDB counted
    for name, value in airflow_env(settings).items():
        monkeypatch.setenv(name, value)
    dags = shop["home"] / "dags"
    dags.mkdir()
    shutil.copy(DAGS_FOLDER / "sources.py", dags / "sources.py")
    (dags / "orders_after_each_drop.py").write_text(page_block("python", "orders_after_each_drop"))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dags))
    assert bag.import_errors == {}
    mine, source = bag.dags["orders_after_each_drop"], bag.dags["source_orders"]
    emitted = [o.uri for o in source.get_task("bronze").outlets]
    assert emitted == ["moulin://bronze/orders"] and mine.schedule.uri in emitted
    assert mine.get_task("count_orders").python_callable() == sum(int(n) for n in shown.values())
