"""Erasure requests waiting for the ``privacy_erase`` stage, kept out of command lines.

A stage's command line is not private: the job server logs it (``run/jobs/*.log``)
and ``spark-submit`` echoes it to the task log, where the erasure's own proof
would then find the address.  So the caller registers the request
(:func:`register_erasure`): the address goes to
``$MOULIN_HOME/secrets/privacy_requests/<request id>.json`` (mode 0600, in a
0700 folder) and the stage gets only ``--request <request id>``.  The stage
reads the address there (:func:`request_address`; a file readable by others is
refused) and removes the file once the erasure is proven complete
(:func:`close_request`); a failed erasure leaves it for the retry.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moulin.errors import DataError
from moulin.settings import Settings

#: What a request id looks like (it names a file: no path separators).
REQUEST_ID = re.compile(r"^erase-\d{8}T\d{6}-[0-9a-f]{8}$")


class PrivacyRequestError(DataError):
    """No such pending request, or its file is malformed or readable by others."""


def requests_dir(settings: Settings) -> Path:
    """Where pending erasure requests are kept."""
    return settings.home / "secrets" / "privacy_requests"


def request_file(settings: Settings, request_id: str) -> Path:
    """The file of pending request ``request_id`` (a malformed id is refused)."""
    if not REQUEST_ID.match(request_id):
        raise PrivacyRequestError(
            f"{request_id!r} is not an erasure request id (erase-YYYYMMDDTHHMMSS-<8 hex>): "
            "register the request with moulin.privacy.requests.register_erasure"
        )
    return requests_dir(settings) / f"{request_id}.json"


def register_erasure(settings: Settings, address: str) -> str:
    """Keep ``address`` in a new 0600 request file; returns the request id to give the stage."""
    from moulin.privacy.erasure import check_address

    check_address(address)
    request_id = f"erase-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"
    path = request_file(settings, request_id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"request_id": request_id, "kind": "erasure", "address": address.strip(),
                   "registered_at": dt.datetime.now(dt.UTC).isoformat()}, out)  # fmt: skip
    os.replace(tmp, path)
    return request_id


def request_address(settings: Settings, request_id: str) -> str:
    """The address of pending request ``request_id``."""
    path = request_file(settings, request_id)
    if not path.exists():
        raise PrivacyRequestError(
            f"no pending erasure request {request_id} ({path} does not exist): register it first, or it "
            "was completed (see `moulin privacy requests`)"
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise PrivacyRequestError(
            f"erasure request file {path} has mode {mode:04o}: readable by others; run chmod 600 {path}"
        )
    try:
        address = json.loads(path.read_text())["address"]
    except (ValueError, KeyError, TypeError):
        raise PrivacyRequestError(
            f"erasure request file {path} is not a request: register it again"
        ) from None
    if not isinstance(address, str):
        raise PrivacyRequestError(f"erasure request file {path} holds no address: register it again")
    return address


def close_request(settings: Settings, request_id: str) -> None:
    """Forget the address of a request whose erasure was proven complete."""
    request_file(settings, request_id).unlink(missing_ok=True)


def erase_request(spark, settings: Settings, request_id: str, say: Callable[[str], None]) -> dict[str, Any]:
    """Carry out pending erasure request ``request_id`` and forget its address once
    the proof holds; returns the erasure's report as a dict.  A request already
    carried out (its file gone, its completion recorded in ``ops/privacy_requests``)
    is reported as such, so a retry of the task after a completed erasure is a no-op."""
    from moulin.privacy.erasure import erase_subject, read_requests

    if not request_file(settings, request_id).exists():
        done = [r for r in read_requests(settings) if r["request_id"] == request_id and not r["hits_after"]]
        if done:
            say(f"{request_id}: already carried out and proven complete on {done[-1]['finished_at']}")
            return {"request_id": request_id, "already_complete": True, "noop": True}
    report = erase_subject(
        spark, settings, request_address(settings, request_id), say=say, request_id=request_id
    )
    close_request(settings, request_id)
    return report.as_dict()
