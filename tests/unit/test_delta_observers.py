"""The store's read observers: who hears of reads of personal data, and the audit
trail registered as one without the store importing it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from moulin.delta import DeltaTableStore
from moulin.delta.observers import (
    ReadEvent,
    read_observers,
    register_read_observer,
    unregister_read_observer,
)
from moulin.settings import Settings, load_settings


@pytest.fixture
def wh(moulin_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings whose warehouse is a fresh folder (also in the environment, for subprocesses)."""
    monkeypatch.setenv("MOULIN_WAREHOUSE_URI", (tmp_path / "warehouse").as_uri())
    return load_settings("local")


def _personal_table(settings: Settings) -> str:
    """A table whose Delta metadata lists two personal columns, as DeltaTableStore.write sets it."""
    uri = settings.table_uri("views/bronze_mail")
    write_deltalake(uri, pa.table({"from_address": ["ps_1"], "subject": ["hi"], "ds": ["d"]}))
    personal = {"moulin.personalData": '["from_address", "subject"]'}
    DeltaTable(uri).alter.set_table_properties(personal, raise_if_not_exists=False)
    return uri


@pytest.fixture
def heard():
    """The events a test observer hears while the test runs."""
    events: list[ReadEvent] = []
    observer = register_read_observer(events.append)
    yield events
    unregister_read_observer(observer)


def test_reads_of_personal_columns_are_announced_with_the_columns_read(wh: Settings, heard) -> None:
    uri = _personal_table(wh)
    plain = wh.table_uri("gold/orders")
    write_deltalake(plain, pa.table({"orders": [7]}))
    store = DeltaTableStore(None)

    store.to_arrow(uri)
    store.to_pandas(uri, columns=["subject", "ds"])
    store.to_arrow(uri, columns=["ds"])  # no personal column read
    store.to_arrow(plain)
    assert heard == [
        ReadEvent(uri, 1, ("from_address", "subject")),
        ReadEvent(uri, 1, ("subject",)),
    ]


def test_an_observer_that_raises_refuses_the_read(wh: Settings) -> None:
    uri = _personal_table(wh)

    def refuse(event: ReadEvent) -> None:
        raise PermissionError(f"no reads of {event.table_uri}")

    register_read_observer(refuse)
    try:
        with pytest.raises(PermissionError, match="no reads of"):
            DeltaTableStore(None).to_arrow(uri)
    finally:
        unregister_read_observer(refuse)
    assert refuse not in read_observers()


def test_an_observer_registered_twice_is_called_once(wh: Settings, heard) -> None:
    register_read_observer(heard.append)
    DeltaTableStore(None).to_arrow(_personal_table(wh))
    assert len(heard) == 1


def test_a_process_that_imports_only_the_store_audits_its_reads_of_personal_data(wh: Settings) -> None:
    """An analyst's notebook: the store imports the declared observers (the audit trail)
    on its first read of personal data, never before."""
    from moulin.privacy.audit import read_audit

    uri = _personal_table(wh)
    code = (
        "import sys\n"
        "from moulin.delta import DeltaTableStore\n"
        "assert not [m for m in sys.modules if m.startswith(('moulin.privacy', 'moulin.jobs'))]\n"
        f"DeltaTableStore(None).to_arrow({uri!r}, columns=['ds'])\n"
        "assert 'moulin.privacy.audit' not in sys.modules  # no personal column read\n"
        f"DeltaTableStore(None).to_arrow({uri!r})\n"
        "assert 'moulin.privacy.audit' in sys.modules\n"
        "print('checked', flush=True)\n"
        # deltalake's native thread pools may abort the interpreter's own exit (delta-rs#2184),
        # as moulin's CLI avoids with os._exit
        "import os; os._exit(0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "checked", done.stderr[-3000:]
    reads = [r for r in read_audit(wh) if r["action"] == "read" and r["table_uri"] == uri]
    assert len(reads) == 1 and reads[0]["columns"] == "from_address,subject" and reads[0]["version"] == 1
