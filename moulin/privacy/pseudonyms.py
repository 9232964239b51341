"""Keyed pseudonyms and masking of personal data.

A pseudonym is ``ps_`` + the first 32 hex characters of HMAC-SHA256 of the
normalised value (trimmed, lower-cased) under the sub-key of a *purpose*: the
same address gives the same pseudonym in every table of one purpose (joins
still work) and another under another purpose or another key.  Without the key
a pseudonym cannot be reversed by hashing a dictionary of addresses, which an
unkeyed hash would allow.  Lists (``"a@x, b@y"``) are pseudonymised element by
element.  Free text is masked: e-mail addresses become ``<email>``, IPv4
addresses ``<ip>``.
"""

from __future__ import annotations

import hmac
import re
from hashlib import sha256

from moulin.contracts import Contract
from moulin.privacy.keys import PseudonymKey

PREFIX = "ps_"
LIST_SEPARATOR = ", "
EMAIL = re.compile(r"[A-Za-z0-9._%+'=-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
IPV4 = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])")


def normalise(value: str) -> str:
    """The form a value is pseudonymised in (trimmed, lower case)."""
    return value.strip().lower()


def pseudonym_with(subkey: bytes, value: str) -> str:
    """The pseudonym of ``value`` under the sub-key of a purpose."""
    return PREFIX + hmac.new(subkey, normalise(value).encode(), sha256).hexdigest()[:32]


def pseudonym(value: str, purpose: str, key: PseudonymKey) -> str:
    """The pseudonym of ``value`` for ``purpose``."""
    return pseudonym_with(key.for_purpose(purpose), value)


def pseudonymise_value(value: str | None, subkey: bytes) -> str | None:
    """Pseudonymise a value, element by element when it is a ``", "``-separated list."""
    if value is None:
        return None
    parts = [p for p in (s.strip() for s in value.split(",")) if p]
    return LIST_SEPARATOR.join(pseudonym_with(subkey, p) for p in parts) if parts else None


def mask_text(text: str | None) -> str | None:
    """``text`` with e-mail addresses and IPv4 addresses replaced by ``<email>`` / ``<ip>``."""
    if text is None:
        return None
    return IPV4.sub("<ip>", EMAIL.sub("<email>", text))


def apply_treatments(df, contract: Contract, key: PseudonymKey):
    """``df`` with the contract's ``pseudonymise`` and ``mask`` columns transformed
    (one pass on Arrow batches; other columns unchanged).  The sub-keys travel in
    the task closure; they are never logged."""
    todo = contract.treated_columns
    if not todo:
        return df
    subkeys = {
        name: key.for_purpose(purpose)
        for name, (treatment, purpose) in todo.items()
        if treatment == "pseudonymise"
    }
    masked = [name for name, (treatment, _) in todo.items() if treatment == "mask"]
    schema = df.schema

    def transform(batches):
        import pyarrow as pa

        for batch in batches:
            columns = []
            for name in batch.schema.names:
                column = batch.column(name)
                if name in subkeys:
                    subkey = subkeys[name]
                    column = pa.array(
                        [pseudonymise_value(v, subkey) for v in column.to_pylist()], pa.string()
                    )
                elif name in masked:
                    column = pa.array([mask_text(v) for v in column.to_pylist()], pa.string())
                columns.append(column)
            yield pa.RecordBatch.from_arrays(columns, schema=batch.schema)

    return df.mapInArrow(transform, schema)
