"""Who transforms a contract's personal columns at bronze: a registry of one column treatment.

A contract may ask for personal columns to be pseudonymised or masked as the
bronze gate writes them (:attr:`~moulin.contracts.Contract.treated_columns`).
The gate (:mod:`moulin.sources.bronze`) knows no pseudonym and no key: a package
registers the treatment with :func:`register_column_treatment` when it is
imported (moulin's privacy package does, :mod:`moulin.privacy.bronze_treatment`),
and the gate asks :func:`prepare_treatment` for it.  So that a process that never
imported such a package treats its columns too, :func:`prepare_treatment` first
imports the modules that moulin's root package names in ``moulin.BRONZE_TREATMENTS``.

Clear text is never written for want of a treatment: a contract that declares
treated columns while none is registered stops the gate with
:class:`NoColumnTreatmentError` before anything is written.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import moulin
from moulin.contracts import Contract
from moulin.errors import DataError
from moulin.settings import Settings
from moulin.storage import WarehouseFS


@dataclass(frozen=True)
class PreparedTreatment:
    """A treatment ready for one bronze run: ``key_id`` names what it is computed with (a
    changed key treats the landing again), ``apply`` transforms a DataFrame's treated columns."""

    key_id: str
    apply: Callable[[Any], Any]


#: Prepares the treatment of a contract's columns for one run (loads and checks its key).
ColumnTreatment = Callable[[Settings, Contract, WarehouseFS], PreparedTreatment]


class NoColumnTreatmentError(DataError):
    """A contract asks for personal columns to be pseudonymised or masked at bronze but no
    column treatment is registered: the gate stops rather than write clear text."""


_treatment: ColumnTreatment | None = None
_lock = threading.Lock()


def register_column_treatment(treatment: ColumnTreatment) -> ColumnTreatment:
    """Make ``treatment`` the one that bronze applies (registering it again changes nothing;
    another one raises :class:`ValueError`); returns it, so that this works as a decorator."""
    global _treatment
    with _lock:
        if _treatment is not None and _treatment is not treatment:
            raise ValueError(
                f"a column treatment is registered already ({_treatment.__module__}.{_treatment.__qualname__}): "
                f"unregister it before registering {treatment.__module__}.{treatment.__qualname__}"
            )
        _treatment = treatment
    return treatment


def unregister_column_treatment(treatment: ColumnTreatment) -> None:
    """Stop applying ``treatment`` (nothing happens when it is not the registered one)."""
    global _treatment
    with _lock:
        if _treatment is treatment:
            _treatment = None


def registered_treatment() -> ColumnTreatment | None:
    """The registered column treatment (the declared modules imported first; an import error
    propagates), or None."""
    moulin.import_declared("BRONZE_TREATMENTS")
    with _lock:
        return _treatment


def prepare_treatment(settings: Settings, contract: Contract, fs: WarehouseFS) -> PreparedTreatment | None:
    """The treatment of ``contract``'s treated columns for one run, or None when it declares
    none; raises :class:`NoColumnTreatmentError` when it declares some and none is registered."""
    columns = contract.treated_columns
    if not columns:
        return None
    treatment = registered_treatment()
    if treatment is None:
        raise NoColumnTreatmentError(
            f"contract {contract.name} ({contract.path}) asks for {', '.join(sorted(columns))} to be "
            f"pseudonymised or masked at bronze, but no column treatment is registered, so nothing was "
            f"written: name the module that registers it (moulin.privacy.bronze_treatment) in "
            f"moulin.BRONZE_TREATMENTS, or check that it imports"
        )
    return treatment(settings, contract, fs)
