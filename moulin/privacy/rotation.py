"""Rotation of the pseudonym key, kept whole for erasure and resumable.

A rotation makes a new key and keeps the previous one (``secrets/pseudonym.key.previous``)
until nothing in the warehouse refers to it.  Its state is recorded in the warehouse
(``ops/pseudonym_rotation.json``), so a rotation that stopped is continued, never
started again with a third key, by running ``moulin privacy rotate-key`` again:

1. **regating**: every landing of every source whose contract pseudonymises is gated
   into bronze again under the new key (its idempotency key names the key, so each is
   recomputed; a landing gated already is not gated again).  A landing that cannot be
   gated does not stop the others: it is recorded as *blocked* with its error, and the
   rotation stops after the last landing, naming each blocked landing and what to do
   (make it gateable and rerun, or ``--drop-landing <source>/<ds>`` to delete that
   day's bronze rows, which cannot be pseudonymised again without it).  A bronze
   partition without a landing is blocked the same way.
2. **rebuilding**: the bronze tables are vacuumed; every derived table holding
   pseudonyms (``treatment: pseudonymised``) and every analysts' view waits for a
   rebuild.  The views are rebuilt here; a derived table is rebuilt by its own stage.
   :func:`settle_rotation` (run by the rotation and by every erasure) clears a table
   once each pseudonym it holds is one of the re-gated bronze tables' (so none is of
   the previous key), vacuums it, and when nothing waits destroys the previous key.
3. **finished**.

While a rotation is unfinished an erasure refuses (:class:`RotationUnfinishedError`,
naming what waits): it would match the current key's pseudonyms only and miss the
tables still holding the previous key's.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from collections.abc import Callable
from typing import Any, Literal

from moulin.contracts import Contract, load_all_contracts
from moulin.errors import MoulinError
from moulin.ingest.landing import read_manifest
from moulin.privacy.keys import (
    KEY_BYTES,
    KEY_ENV,
    PseudonymKey,
    key_file,
    load_key,
    record_key_id,
    write_key_file,
)
from moulin.privacy.views import analyst_columns, build_views, view_contracts, view_uri
from moulin.settings import Settings
from moulin.sources.spec import all_spec_files, load_spec
from moulin.storage import WarehouseFS

ROTATION_RECORD = ("ops", "pseudonym_rotation.json")
Status = Literal["regating", "rebuilding", "finished"]
LandingStatus = Literal["waiting", "gated", "blocked", "dropped"]


class RotationBlockedError(MoulinError):
    """Some landings could not be gated under the new key: the message names each and what to do."""


class RotationUnfinishedError(MoulinError):
    """A key rotation is unfinished: tables or landings still hold pseudonyms of the previous key."""


def rotation_uri(settings: Settings) -> str:
    """Where the state of the current (or last) rotation is recorded."""
    return settings.table_uri(*ROTATION_RECORD)


def read_rotation(settings: Settings, fs=None) -> dict[str, Any] | None:
    """The recorded state of the current or last rotation (None if the key was never rotated)."""

    fs = fs or WarehouseFS(settings)
    uri = rotation_uri(settings)
    return json.loads(fs.read_bytes(uri)) if fs.exists(uri) else None


def _save(settings: Settings, state: dict[str, Any], fs=None) -> None:
    fs = fs or WarehouseFS(settings)
    fs.write_bytes(rotation_uri(settings), json.dumps(state, indent=2, sort_keys=True).encode() + b"\n")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _previous_file(settings: Settings):
    path = key_file(settings)
    return path.with_name(path.name + ".previous")


def rotate_key(
    spark,
    settings: Settings,
    say: Callable[[str], None] = lambda line: None,
    drop_landings: list[str] | None = None,
) -> dict[str, Any]:
    """Rotate the key file's key, or continue the unfinished rotation (see the module docstring).

    ``drop_landings`` (``"<source>/<ds>"``): blocked landings the operator gives up on;
    their bronze rows are deleted (they hold pseudonyms of the previous key).  Raises
    :class:`RotationBlockedError` when landings are blocked; returns the state otherwise
    (``rebuild``: the derived tables that still wait for their stage)."""

    fs = WarehouseFS(settings)
    state = read_rotation(settings, fs)
    if state is None or state["status"] == "finished":
        state = _start(settings, say, fs)
    else:
        key = load_key(settings)
        if key.key_id == state["previous_key_id"] and not any(
            v["status"] == "gated" for v in state["landings"].values()
        ):  # stopped before the new key was stored: nothing uses it, start again
            state = _start(settings, say, fs)
            key = load_key(settings)
        if key.key_id != state["key_id"]:
            raise MoulinError(
                f"the rotation recorded in {rotation_uri(settings)} is to key {state['key_id']}, but the key "
                f"is {key.key_id}: restore the key file {key_file(settings)} of that rotation, then rerun"
            )
        say(f"continuing the rotation to key {state['key_id']} (from {state['previous_key_id']})")
    if state["status"] == "regating":
        _regate(spark, settings, state, say, set(drop_landings or []), fs)
    settle_rotation(spark, settings, say, state)
    return {
        "key_id": state["key_id"],
        "previous_key_id": state["previous_key_id"],
        "status": state["status"],
        "regated": [
            {
                "source": k.split("/", 1)[0],
                "ds": k.split("/", 1)[1],
                "bronze_version": v.get("bronze_version"),
            }
            for k, v in sorted(state["landings"].items())
            if v["status"] == "gated"
        ],
        "rebuild": sorted(state["pending"]),
    }


def _start(settings: Settings, say: Callable[[str], None], fs) -> dict[str, Any]:
    """A new key (the previous one kept in a 0600 file) and a new rotation state."""
    if os.environ.get(KEY_ENV):
        raise MoulinError(
            f"the pseudonym key comes from ${KEY_ENV}: store a new secret there (or in the Airflow "
            "Connection), then run the sources' bronze step again; moulin rotates only its key file"
        )
    old = load_key(settings)
    path = key_file(settings)
    previous = _previous_file(settings)
    write_key_file(previous, old.secret)
    secret = secrets.token_bytes(KEY_BYTES)
    new = PseudonymKey(secret, f"key file {path}")
    state: dict[str, Any] = {
        "key_id": new.key_id,
        "previous_key_id": old.key_id,
        "previous_key_file": str(previous),
        "started_at": _now(),
        "status": "regating",
        "landings": {},
        "pending": {},
    }
    _save(settings, state, fs)
    # The record names the new key before the file holds it: gates accept it from now on.
    record_key_id(settings, new, f"rotation from {old.key_id}", fs)
    write_key_file(path, secret)
    say(f"new key {load_key(settings).key_id} (was {old.key_id}); the previous key is kept in {previous} "
        "until no table holds its pseudonyms")  # fmt: skip
    return state


def _pseudonymising_specs() -> list[tuple[Any, Contract]]:
    contracts = load_all_contracts()
    out = []
    for name in all_spec_files():
        spec = load_spec(name)
        contract = contracts.get(spec.contract)
        if contract is not None and any(
            p.treatment == "pseudonymise" for p in contract.personal_columns.values()
        ):
            out.append((spec, contract))
    return out


def _regate(spark, settings: Settings, state: dict[str, Any], say, drop: set[str], fs) -> None:
    """Gate every landing not gated yet under the new key; record each outcome as it comes."""
    from moulin.delta import DeltaTableStore
    from moulin.sources.bronze import gate_landing

    store = DeltaTableStore(spark)
    landings: dict[str, dict[str, Any]] = state["landings"]
    unknown = sorted(d for d in drop if landings.get(d, {}).get("status") != "blocked")
    if unknown:
        raise MoulinError(
            f"--drop-landing {', '.join(unknown)}: not a blocked landing of this rotation (blocked: "
            f"{', '.join(k for k, v in sorted(landings.items()) if v['status'] == 'blocked') or 'none'})"
        )
    for spec, contract in _pseudonymising_specs():
        bronze_uri = settings.table_uri(contract.table)
        days = set()
        for entry in fs.list(settings.table_uri("raw", spec.name)):
            ds = entry.uri.rsplit("/", 1)[-1].removeprefix("ds=")
            if entry.is_dir and read_manifest(settings, spec.name, ds, fs) is not None:
                days.add(ds)
        if store.exists(bronze_uri) and "ds" in store.metadata(bronze_uri).partition_by:
            held = {f.partition_values.get("ds") for f in store.snapshot(bronze_uri).files()} - {None}
            for ds in sorted(str(d) for d in held if str(d) not in days):  # rows no landing can redo
                landings.setdefault(f"{spec.name}/{ds}", {"status": "blocked", "error": (
                    f"bronze {bronze_uri} holds ds={ds} but no landing of it exists to pseudonymise again")})  # fmt: skip
        for ds in sorted(days):
            landings.setdefault(f"{spec.name}/{ds}", {"status": "waiting"})
        for name, landing in sorted(landings.items()):
            source, ds = name.split("/", 1)
            if source != spec.name or landing["status"] in ("gated", "dropped"):
                continue
            if name in drop:
                _drop_bronze_day(store, bronze_uri, ds, name)
                landing.update(status="dropped", dropped_at=_now())
                say(f"bronze {bronze_uri}: ds={ds} deleted (landing {name} given up by the operator)")
            elif ds in days:
                try:
                    outcome = gate_landing(spark, settings, spec, ds)
                except Exception as exc:  # noqa: BLE001 - recorded and reported; the others go on
                    landing.update(
                        status="blocked", error=f"{type(exc).__name__}: {' '.join(str(exc).split())[:600]}"
                    )
                    say(f"bronze {name}: blocked: {landing['error']}")
                else:
                    landing.update(status="gated", bronze_version=outcome.bronze_version, error=None)
                    say(f"bronze {outcome.line()}")
            _save(settings, state, fs)
    blocked = {k: v for k, v in sorted(landings.items()) if v["status"] == "blocked"}
    if blocked:
        raise RotationBlockedError(
            f"key rotation to {state['key_id']} is not finished: {len(blocked)} landing(s) could not be gated "
            "under the new key and their bronze rows keep pseudonyms of the previous key: "
            + "; ".join(f"{k}: {v['error']}" for k, v in blocked.items())
            + ". Make each gateable (e.g. land the complete drop again with `moulin source run <source> --ds "
            "<ds>`) and run `moulin privacy rotate-key` again: it continues this rotation, landings gated "
            "already are not gated again. A landing that cannot be repaired: rerun with `--drop-landing "
            "<source>/<ds>`, which deletes that day's bronze rows. Erasures refuse until then; the previous "
            f"key stays in {state['previous_key_file']}"
        )

    for uri in sorted({settings.table_uri(c.table) for _, c in _pseudonymising_specs()}):
        if store.exists(uri):
            removed = store.vacuum(uri, retention_hours=0, force=True)
            say(f"{uri}: {len(removed)} file(s) with old pseudonyms vacuumed")
    pending: dict[str, str] = {}
    for contract in load_all_contracts().values():
        if "<" in contract.table:
            continue
        if any(p.treatment == "pseudonymised" for p in contract.personal_columns.values()):
            pending[settings.table_uri(contract.table)] = (
                f"derived table of contract {contract.name}: run the stage that writes it again, for every "
                "partition"
            )
    for contract in view_contracts():
        if any(p.treatment in ("pseudonymise", "pseudonymised") for p in contract.personal_columns.values()):
            pending[view_uri(settings, contract)] = "analysts' view: rebuilt by the rotation"
    state.update(status="rebuilding", pending=pending, bronze_done_at=_now())
    _save(settings, state, fs)


def _drop_bronze_day(store, uri: str, ds: str, name: str) -> None:
    """Delete the rows of day ``ds`` from bronze ``uri`` (a landing given up during a rotation)."""
    from moulin.delta import retry_on_conflict

    if not store.exists(uri):
        return
    if "ds" not in store.metadata(uri).partition_by:
        raise MoulinError(
            f"--drop-landing {name}: bronze {uri} is not partitioned by ds, so one day cannot be deleted; "
            "repair the landing and rerun the rotation"
        )

    def once(attempt: int) -> None:
        version = store.version(uri)
        empty = store.read(uri, version=version).limit(0)
        store.write(empty, uri, mode="overwrite", replace_where={"ds": ds}, expected_version=version,
                    commit_info={"moulin.operation": "rotation-drop-landing"})  # fmt: skip

    retry_on_conflict(uri, "deletion of a given-up landing", once)


def _pseudonym_columns(settings: Settings) -> dict[str, list[str]]:
    """The columns holding pseudonyms of every table and analysts' view, by URI."""

    out: dict[str, list[str]] = {}
    for contract in load_all_contracts().values():
        if "<" in contract.table:
            continue
        names = [
            n
            for n, p in contract.personal_columns.items()
            if p.treatment in ("pseudonymise", "pseudonymised")
        ]
        if names:
            out[settings.table_uri(contract.table)] = names
            out[view_uri(settings, contract)] = [n for n in names if n in analyst_columns(contract)]
    return out


def _pseudonym_values(spark, uri: str, columns: list[str]):
    """The distinct pseudonyms held in ``columns`` of table ``uri`` (lists split), one column ``v``."""
    from pyspark.sql import functions as F

    from moulin.delta import DeltaTableStore

    df = DeltaTableStore(spark).read(uri)
    present = [c for c in columns if c in df.columns]
    out = None
    for c in present:
        part = df.select(F.explode(F.split(F.col(f"`{c}`"), ", ")).alias("v")).where(
            F.col("v").startswith("ps_")
        )
        out = part if out is None else out.unionByName(part)
    return out.distinct() if out is not None else None


def _unknown_pseudonyms(spark, settings: Settings, uri: str, known) -> int:
    """How many distinct pseudonyms of table ``uri`` the re-gated bronze tables do not hold."""
    values = _pseudonym_values(spark, uri, _pseudonym_columns(settings).get(uri, []))
    if values is None:
        return 0
    if known is None:
        return values.count()
    return values.join(known, "v", "left_anti").count()


def settle_rotation(
    spark, settings: Settings, say: Callable[[str], None] = lambda line: None, state: dict | None = None
) -> dict[str, Any] | None:
    """Clear what the unfinished rotation waits for, where done: rebuild and vacuum the views,
    vacuum each derived table whose pseudonyms are all the re-gated bronze's, and destroy the
    previous key when nothing waits.  Returns the state (None: never rotated)."""
    from moulin.delta import DeltaTableStore

    fs = WarehouseFS(settings)
    state = state or read_rotation(settings, fs)
    if state is None or state["status"] != "rebuilding":
        return state
    store = DeltaTableStore(spark)
    bronze = sorted({settings.table_uri(c.table) for _, c in _pseudonymising_specs()})
    known = None
    for uri in bronze:
        if store.exists(uri):
            values = _pseudonym_values(spark, uri, _pseudonym_columns(settings).get(uri, []))
            if values is not None:
                known = values if known is None else known.unionByName(values)
    if known is not None:
        known = known.distinct().cache()
    try:
        views = {v["view"] for v in build_views(spark, settings, say)}
        for uri, why in sorted(state["pending"].items()):
            if uri in views or not store.exists(uri):
                continue
            unknown = _unknown_pseudonyms(spark, settings, uri, known)
            if unknown:
                say(f"{uri}: {unknown} pseudonym(s) of the previous key; waits ({why})")
                continue
            removed = store.vacuum(uri, retention_hours=0, force=True)
            say(f"{uri}: rebuilt under the new key, {len(removed)} old file(s) vacuumed")
            del state["pending"][uri]
        for uri in sorted(views & set(state["pending"])):  # views last: built from the tables above
            if _unknown_pseudonyms(spark, settings, uri, known):
                continue
            removed = store.vacuum(uri, retention_hours=0, force=True)
            say(f"{uri}: view rebuilt under the new key, {len(removed)} old file(s) vacuumed")
            del state["pending"][uri]
        for uri in [u for u in state["pending"] if not store.exists(u)]:
            del state["pending"][uri]
    finally:
        if known is not None:
            known.unpersist()
    if not state["pending"]:
        previous = _previous_file(settings)
        previous.unlink(missing_ok=True)
        state.update(status="finished", finished_at=_now())
        say(f"rotation to key {state['key_id']} finished: no table holds pseudonyms of "
            f"{state['previous_key_id']}; the previous key was destroyed")  # fmt: skip
    else:
        say(f"rotation to key {state['key_id']} waits for: {', '.join(sorted(state['pending']))}; the "
            f"previous key stays in {state['previous_key_file']} until they are rebuilt")  # fmt: skip
    _save(settings, state, fs)
    return state


def check_rotation_finished(
    spark, settings: Settings, say: Callable[[str], None] = lambda line: None
) -> None:
    """Refuse (:class:`RotationUnfinishedError`) while a key rotation is unfinished, after
    clearing what is done (:func:`settle_rotation`); the message names what waits."""
    state = settle_rotation(spark, settings, say)
    if state is None or state["status"] == "finished":
        return
    if state["status"] == "regating":
        waiting = [f"landing {k} ({v['status']})" for k, v in sorted(state["landings"].items())
                   if v["status"] in ("waiting", "blocked")]  # fmt: skip
        what = "finish it with `moulin privacy rotate-key` (it continues the rotation)"
    else:
        waiting = [f"{uri} ({why})" for uri, why in sorted(state["pending"].items())]
        what = "rebuild them, then rerun; `moulin privacy rotate-key` reports what is left"
    raise RotationUnfinishedError(
        f"the key rotation to {state['key_id']} is unfinished (recorded in {rotation_uri(settings)}): "
        f"{', '.join(waiting) or 'its regating'} still hold(s) pseudonyms of the previous key "
        f"{state['previous_key_id']}, which an erasure would not find: {what}"
    )
