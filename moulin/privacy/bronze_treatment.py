"""Pseudonymisation at bronze: the column treatment privacy registers with the bronze gate.

Imported (by name, ``moulin.BRONZE_TREATMENTS``) before the gate writes a source whose
contract declares columns to pseudonymise or mask, this module registers
:func:`pseudonymise_at_bronze` with :mod:`moulin.sources.treatments`: it loads the
pseudonym key, refuses a key that changed without a rotation, and transforms the
columns with :func:`moulin.privacy.pseudonyms.apply_treatments`.
"""

from __future__ import annotations

from moulin.contracts import Contract
from moulin.privacy.keys import check_key_id, load_key
from moulin.privacy.pseudonyms import apply_treatments
from moulin.settings import Settings
from moulin.sources.treatments import PreparedTreatment, register_column_treatment
from moulin.storage import WarehouseFS


@register_column_treatment
def pseudonymise_at_bronze(settings: Settings, contract: Contract, fs: WarehouseFS) -> PreparedTreatment:
    """The pseudonymisation and masking of ``contract``'s treated columns under the
    warehouse's pseudonym key (a key changed without a rotation stops the gate)."""
    key = load_key(settings)
    check_key_id(settings, key, fs)
    return PreparedTreatment(key_id=key.key_id, apply=lambda df: apply_treatments(df, contract, key))
