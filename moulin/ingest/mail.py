"""E-mail as raw data: mailbox files (mbox, RFC 4155) of RFC 822 messages.

A landed mbox file holds messages, each starting with a ``From `` line at the
start of the file or after a blank line (``>From `` in a body is an escaped
``From ``).  Each message becomes one record of the fields in
:data:`MAIL_FIELDS`, all text: addresses are the ``addr-spec`` parts (lists
joined by ``", "``), display names decoded from RFC 2047, the body is the text
of the ``text/plain`` parts (or the ``text/html`` ones without tags) decoded
with the declared charset (undecodable bytes replaced: mail often lies about its
charset).  A message that cannot be parsed gives a record with only its reason.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
from email.header import decode_header, make_header

MAIL_FIELDS: tuple[str, ...] = (
    "message_id",
    "sent_at",
    "from_address",
    "from_name",
    "to_addresses",
    "subject",
    "received_ips",
    "body",
)
_FROM_LINE = re.compile(rb"^From ", re.MULTILINE)
_IP = re.compile(r"\[(\d{1,3}(?:\.\d{1,3}){3})\]")
_TAG = re.compile(r"<[^>]+>")


def split_mbox(data: bytes) -> list[bytes]:
    """The messages of an mbox file (their ``From `` separator lines removed)."""
    starts = [
        m.start()
        for m in _FROM_LINE.finditer(data)
        if m.start() == 0 or data[m.start() - 2 : m.start()] == b"\n\n"
    ]
    out = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(data)
        chunk = data[start:end]
        body = chunk.split(b"\n", 1)[1] if b"\n" in chunk else b""
        if body.endswith(b"\n\n"):  # the blank line that separates messages
            body = body[:-1]
        out.append(re.sub(rb"(?m)^>(>*From )", rb"\1", body))
    return out


def count_mbox_messages(data: bytes) -> int:
    """Messages in an mbox file, counted by Python's :mod:`mailbox` (independent of
    :func:`split_mbox`, which the Spark reader uses)."""
    import mailbox
    import os
    import tempfile

    fd, path = tempfile.mkstemp(suffix=".mbox")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        box = mailbox.mbox(path, create=False)
        try:
            return len(box.keys())
        finally:
            box.close()
    finally:
        os.unlink(path)


def _text(value) -> str | None:
    if value is None:
        return None
    try:
        return str(make_header(decode_header(str(value)))).strip()
    except Exception:  # noqa: BLE001 - a malformed encoded word: keep the header as written
        return str(value).strip()


def _payload_text(part) -> str:
    payload = part.get_payload(decode=True) or b""
    charset = part.get_content_charset() or "latin-1"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("latin-1", errors="replace")


def _body(message) -> str:
    plain, html = [], []
    for part in message.walk() if message.is_multipart() else [message]:
        if part.is_multipart():
            continue
        kind = part.get_content_type()
        if kind == "text/plain":
            plain.append(_payload_text(part))
        elif kind == "text/html":
            html.append(_TAG.sub(" ", _payload_text(part)))
    return "\n".join(plain) if plain else "\n".join(html)


def parse_message(raw: bytes) -> dict[str, str | None]:
    """The :data:`MAIL_FIELDS` of one RFC 822 message (raises ValueError when it has no header)."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    if not message.keys():
        raise ValueError("no header lines: not an RFC 822 message")
    senders = email.utils.getaddresses([str(v) for v in message.get_all("From", [])])
    recipients = email.utils.getaddresses(
        [str(v) for v in message.get_all("To", []) + message.get_all("Cc", [])]
    )
    sent = message.get("Date")
    sent_at = None
    if sent:
        try:
            when = email.utils.parsedate_to_datetime(str(sent))
            sent_at = when.isoformat() if when.tzinfo else when.isoformat() + "+00:00"
        except (TypeError, ValueError, IndexError, OverflowError):
            sent_at = None
    ips = [ip for header in message.get_all("Received", []) for ip in _IP.findall(str(header))]
    addresses = [a for _, a in recipients if "@" in a]
    name, address = senders[0] if senders else ("", "")
    return {
        "message_id": _text(message.get("Message-ID")) or None,
        "sent_at": sent_at,
        "from_address": address or None,
        "from_name": _text(name) or None,
        "to_addresses": ", ".join(dict.fromkeys(addresses)) or None,
        "subject": _text(message.get("Subject")),
        "received_ips": ", ".join(dict.fromkeys(ips)) or None,
        "body": _body(message),
    }


def write_mbox(messages: list[bytes]) -> bytes:
    """An mbox file of RFC 822 messages (``From `` lines in bodies escaped, mboxrd)."""
    out = bytearray()
    for raw in messages:
        message = raw
        if message.startswith(b"From "):  # an envelope line already: keep it as the separator
            first, _, message = message.partition(b"\n")
            out += first + b"\n"
        else:
            out += b"From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n"
        out += re.sub(rb"(?m)^(>*From )", rb">\1", message)
        if not out.endswith(b"\n"):
            out += b"\n"
        out += b"\n"
    return bytes(out)
