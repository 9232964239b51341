"""Fixtures of the training tests (run them in the training environment:
``.venv-train/bin/python -m pytest tests/training``).

The synthetic feature table follows ``schemas/flight_features.yaml`` and is
written once per session as a real Delta table, partitioned by split.
"""

from __future__ import annotations

import importlib.util
import socket

import pytest

# In the platform environment (no petastorm/torch) these tests cannot run.
if importlib.util.find_spec("petastorm") is None or importlib.util.find_spec("torch") is None:
    collect_ignore_glob = ["test_*.py"]

SYNTHETIC_ROWS = 4000


def pytest_configure(config: pytest.Config) -> None:
    # petastorm 0.12 uses pyarrow's legacy ParquetDataset API (uber/petastorm#806).
    config.addinivalue_line("filterwarnings", "ignore::FutureWarning:petastorm")
    config.addinivalue_line("filterwarnings", "ignore::UserWarning:petastorm")


@pytest.fixture(scope="session")
def contract():
    from moulin.training.contract import FeatureContract

    return FeatureContract.load("flight_features")


@pytest.fixture(scope="session")
def synthetic_table(tmp_path_factory: pytest.TempPathFactory, contract) -> dict:
    """A synthetic feature table: version 0 with SYNTHETIC_ROWS rows, version 1
    with 600 more appended (other keys).  {"uri", "version", "rows"}."""
    from moulin.training.synthetic import write_synthetic_table

    uri = (tmp_path_factory.mktemp("features") / "flight_features").resolve().as_uri()
    write_synthetic_table(uri, contract, SYNTHETIC_ROWS, seed=7)
    version = write_synthetic_table(uri, contract, 600, seed=8, mode="append", key_prefix="g")
    return {"uri": uri, "version": version, "rows": SYNTHETIC_ROWS + 600}


@pytest.fixture
def rank_env(monkeypatch) -> None:
    """One rank of a one-process job (what torchrun would set)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for name, value in dict(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK="0",
        WORLD_SIZE="1",
        LOCAL_RANK="0",
        OMP_NUM_THREADS="1",
    ).items():
        monkeypatch.setenv(name, value)
