# -*- test-case-name: tests.test_amqp -*-
"""
The body of a message that L{twisted_smtpd.handlers.AMQP} publishes: a
versioned JSON header with the envelope and the session's facts, then the
message as received.

Layout (content type L{CONTENT_TYPE})::

    4 bytes   N, the length of the JSON header, unsigned big-endian
    N bytes   the JSON header, UTF-8 (ASCII in practice: non-ASCII is escaped)
    the rest  the message, byte for byte as received (after dot-unstuffing)

The envelope travels in the body rather than in AMQP headers because the
header frame is bounded by the negotiated frame size (128 KiB by default):
a thousand long recipients would overflow it, a body has no such bound.
"""

from __future__ import annotations

import json
import struct
from typing import Any

#: The AMQP C{content_type} of a published message.
CONTENT_TYPE = "application/x-twisted-smtpd-message; version=1"

#: The C{version} of the JSON header this module writes.
FORMAT_VERSION = 1

_LENGTH = struct.Struct(">I")


class FormatError(ValueError):
    """
    A body that is not in the format of L{CONTENT_TYPE}.
    """


def encodeMessage(facts: dict[str, Any], message: bytes) -> bytes:
    """
    Make a published body from the JSON header C{facts} and the message.
    """
    header = json.dumps(facts, separators=(",", ":"), sort_keys=True).encode("ascii")
    return b"".join((_LENGTH.pack(len(header)), header, message))


def decodeMessage(body: bytes) -> tuple[dict[str, Any], bytes]:
    """
    Split a published body into its JSON header and the message: what a
    consumer does with each body it gets.

    @return: The header as a C{dict} and the message as C{bytes}.
    @raise FormatError: If C{body} is not in this format, or its header's
        C{version} is not one this code reads.
    """
    if len(body) < _LENGTH.size:
        raise FormatError("body shorter than its length prefix")
    (length,) = _LENGTH.unpack_from(body)
    end = _LENGTH.size + length
    if end > len(body):
        raise FormatError("JSON header longer than the body")
    try:
        facts = json.loads(body[_LENGTH.size : end])
    except ValueError as e:
        raise FormatError(f"JSON header not readable: {e}") from None
    if not isinstance(facts, dict) or facts.get("version") != FORMAT_VERSION:
        raise FormatError("not a version 1 header")
    return facts, body[end:]


def _peer(peer: Any) -> Any:
    """
    The peer as JSON: C{[host, port]} for TCP, the path for UNIX sockets.
    """
    if isinstance(peer, tuple):
        return list(peer[:2])
    return None if peer is None else str(peer)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _tls(ssl: Any) -> dict[str, Any] | None:
    """
    What the header says of TLS: protocol and cipher name, or C{None} for a
    plaintext session.
    """
    if not ssl:
        return None
    cipher = ssl.get("cipher") or (None,)
    return {"protocol": ssl.get("protocol"), "cipher": cipher[0]}


def _auth(session: Any) -> dict[str, Any] | None:
    """
    What the header says of AUTH: the login name of a successful AUTH, or
    C{None} when the session is not authenticated. Passwords never travel.
    """
    if not session.authenticated:
        return None
    login = getattr(session.auth_data, "login", None)
    return {"login": None if login is None else _text(login)}


def _dsn(envelope: Any) -> dict[str, Any] | None:
    """
    The DSN parameters (RFC 3461) where the transaction has any.
    """
    recipients = [
        None
        if d is None
        else {"notify": d.notify and list(d.notify), "orcpt": d.orcpt and list(d.orcpt)}
        for d in envelope.rcpt_dsn
    ]
    if envelope.dsn_ret is None and envelope.dsn_envid is None:
        if not any(recipients):
            return None
    return {"ret": envelope.dsn_ret, "envid": envelope.dsn_envid, "rcpt": recipients}


def messageFacts(
    session: Any, envelope: Any, messageId: str, timestamp: float
) -> dict[str, Any]:
    """
    The JSON header of one transaction (see C{docs/amqp.rst}).

    @param messageId: The AMQP C{message_id} of the published message.
    @param timestamp: When the message was received, in POSIX seconds.
    """
    facts: dict[str, Any] = {
        "version": FORMAT_VERSION,
        "id": messageId,
        "timestamp": timestamp,
        "mail_from": envelope.mail_from,
        "rcpt_tos": list(envelope.rcpt_tos),
        "mail_options": list(envelope.mail_options),
        "rcpt_options": list(envelope.rcpt_options),
        "peer": _peer(session.peer),
        "helo": session.host_name,
        "tls": _tls(session.ssl),
        "auth": _auth(session),
    }
    if envelope.smtp_utf8:
        facts["smtputf8"] = True
    if envelope.requiretls:
        facts["requiretls"] = True
    dsn = _dsn(envelope)
    if dsn is not None:
        facts["dsn"] = dsn
    return facts
