"""Rotation of the pseudonym key: a new key, every landing of every personal-data
source gated into bronze again under it (its idempotency key names the key, so
each is recomputed), the bronze tables vacuumed so the old pseudonyms leave the
disk, and the old key destroyed.  Tables derived from bronze keep the old
pseudonyms until their stages run again (the command names them)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from typing import Any

from moulin.contracts import load_all_contracts
from moulin.errors import MoulinError
from moulin.privacy.keys import (
    KEY_BYTES,
    KEY_ENV,
    PseudonymKey,
    key_file,
    load_key,
    record_key_id,
    write_key_file,
)
from moulin.settings import Settings


def rotate_key(spark, settings: Settings, say: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Rotate the key file's key and pseudonymise bronze again (see the module docstring)."""
    from moulin.delta import DeltaTableStore
    from moulin.ingest.landing import read_manifest
    from moulin.sources.bronze import gate_landing
    from moulin.sources.spec import all_spec_files, load_spec
    from moulin.storage import WarehouseFS

    if os.environ.get(KEY_ENV):
        raise MoulinError(
            f"the pseudonym key comes from ${KEY_ENV}: store a new secret there (or in the Airflow "
            "Connection), then run the sources' bronze step again; moulin rotates only its key file"
        )
    old = load_key(settings)
    path = key_file(settings)
    previous = path.with_name(path.name + ".previous")
    write_key_file(previous, old.secret)
    secret = secrets.token_bytes(KEY_BYTES)
    # The record names the new key before the file holds it: gates accept it from now on.
    record_key_id(settings, PseudonymKey(secret, f"key file {path}"), f"rotation from {old.key_id}")
    write_key_file(path, secret)
    new = load_key(settings)
    say(f"new key {new.key_id} (was {old.key_id})")
    fs = WarehouseFS(settings)
    store = DeltaTableStore(spark)
    contracts = load_all_contracts()
    regated, bronze_tables = [], set()
    for name in all_spec_files():
        spec = load_spec(name)
        contract = contracts.get(spec.contract)
        if contract is None or not any(
            p.treatment == "pseudonymise" for p in contract.personal_columns.values()
        ):
            continue
        root = settings.table_uri("raw", spec.name)
        for entry in fs.list(root):
            ds = entry.uri.rsplit("/", 1)[-1].removeprefix("ds=")
            if not entry.is_dir or read_manifest(settings, spec.name, ds, fs) is None:
                continue
            outcome = gate_landing(spark, settings, spec, ds)
            say(f"bronze {outcome.line()}")
            regated.append({"source": spec.name, "ds": ds, "bronze_version": outcome.bronze_version})
        bronze_tables.add(settings.table_uri(contract.table))
    for uri in sorted(bronze_tables):
        removed = store.vacuum(uri, retention_hours=0, force=True)
        say(f"{uri}: {len(removed)} file(s) with old pseudonyms vacuumed")
    previous.unlink()
    stale = sorted(
        name
        for name, c in contracts.items()
        if any(p.treatment == "pseudonymised" for p in c.personal_columns.values())
    )
    if stale:
        say(f"derived tables still holding old pseudonyms until rebuilt: {', '.join(stale)}")
    return {"key_id": new.key_id, "previous_key_id": old.key_id, "regated": regated, "rebuild": stale}
