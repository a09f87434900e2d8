# -*- test-case-name: tests.test_received -*-
"""
The C{Received:} header field (RFC 5321 section 4.4) a server adds at the
top of each message it accepts, for the handlers that ask for it (option
C{received_header}, or a handler attribute C{received_header = True}).

It says who sent the message and how: the name the client greeted with,
its address, this server's name, the protocol (RFC 3848 and RFC 6531
section 3.7.3: C{ESMTP}, C{ESMTPS}, C{ESMTPSA}, C{UTF8SMTPS}, C{LMTPA}...),
the TLS version and cipher, an id of the session, the recipient when there
is only one, and the date. Whatever came from the client is cleaned first:
nothing but printable characters (no CR, LF or other control character,
no parenthesis or backslash that would end a comment), so that no byte of
it can start another header field or hide in this one.
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

from twisted_smtpd._clientlimit import clientAddress

#: What a client's text may keep: printable ASCII but for the characters
#: that end a comment or quote in it; and, in a message with SMTPUTF8,
#: any other character but controls and Unicode's line separators.
_UNSAFE = re.compile(r"[^!-'*-\[\]-~]")
_UNSAFE_UTF8 = re.compile(r"[^!-'*-\[\]-~\u00a0-\u2027\u202a-\ud7ff\ue000-\U0010ffff]")

#: The longest a client's text may be in the header field; longer is cut.
_MOST = 255


def clean(text: Any, utf8: bool = False) -> str:
    """
    Make a client's text safe in a C{Received:} field: each character that
    is not printable, and each space, parenthesis and backslash, becomes
    C{?}; more than 255 characters are cut.

    @param utf8: Whether characters beyond ASCII may stay (a message with
        SMTPUTF8, RFC 6532).
    """
    text = str(text)[:_MOST]
    return (_UNSAFE_UTF8 if utf8 else _UNSAFE).sub("?", text) or "?"


def protocolName(server: Any, session: Any, envelope: Any) -> str:
    """
    The C{with} protocol of RFC 3848 and RFC 6531 section 3.7.3: C{SMTP}
    after HELO, C{ESMTP} after EHLO (C{LMTP} for LMTP), C{UTF8} before it
    for a message with SMTPUTF8, then C{S} with TLS and C{A} after AUTH.
    """
    lmtp = getattr(server, "helloVerb", "HELO") == "LHLO"
    secure = session.ssl is not None
    authenticated = bool(session.authenticated)
    if lmtp:
        name = "LMTP"
    elif session.extended_smtp or secure or authenticated:
        name = "ESMTP"
    else:
        name = "SMTP"
    if getattr(envelope, "smtp_utf8", False):
        name = "UTF8" + ("LMTP" if lmtp else "SMTP")
    return name + ("S" if secure else "") + ("A" if authenticated else "")


def sessionId(server: Any) -> str:
    """
    The id of the connection's session: ten random hexadecimal digits,
    the same for every message of the connection (and after STARTTLS).
    """
    return server.stateOf(sessionId, _newId)


def _newId() -> str:
    return secrets.token_hex(5).upper()


def _peerInfo(peer: Any) -> str:
    """
    The client's address as RFC 5321's C{TCP-info}: an address literal.
    """
    address = clientAddress(peer)
    if address is None:
        # A UNIX socket: its path, as a comment.
        return f"(unix socket {clean(peer)})" if peer else "(unknown)"
    if address.version == 6:
        return f"([IPv6:{address.compressed}])"
    return f"([{address}])"


def _tlsInfo(ssl: dict[str, Any] | None) -> str | None:
    """
    The TLS version and cipher, as Postfix writes them, or C{None}.
    """
    if ssl is None:
        return None
    version = clean(ssl.get("protocol") or "TLS")
    cipher = ssl.get("cipher") or ("unknown", None, None)
    text = f"(using {version} with cipher {clean(cipher[0])}"
    if cipher[2]:
        text += f" ({int(cipher[2])} bits)"
    return text + ")"


def receivedHeader(server: Any, session: Any, envelope: Any, when: float) -> str:
    """
    The C{Received:} field of a message, without its line ending; each
    clause on a line of its own, so that lines stay within 78 characters
    (RFC 5322 section 2.1.1) unless the client's text itself is longer.

    @param when: The time of receipt, in seconds since the epoch.
    """
    utf8 = bool(getattr(envelope, "smtp_utf8", False))
    hostName = clean(session.host_name or "unknown", utf8)
    lines = [f"Received: from {hostName} {_peerInfo(session.peer)}"]
    tls = _tlsInfo(session.ssl)
    if tls is not None:
        lines.append(tls)
    lines.append(f"by {clean(server.config.hostname)} (twisted_smtpd)")
    lines.append(
        f"with {protocolName(server, session, envelope)} id {sessionId(server)}"
    )
    recipients = envelope.rcpt_tos
    date = format_datetime(datetime.fromtimestamp(when, timezone.utc))
    if len(recipients) == 1:
        lines.append(f"for <{clean(recipients[0], utf8)}>; {date}")
    else:
        lines[-1] += ";"
        lines.append(date)
    return "\r\n\t".join(lines)


def addReceivedHeader(server: Any, session: Any, envelope: Any) -> None:
    """
    Put a C{Received:} field at the top of the message of C{envelope}: its
    C{original_content}, and its C{content} (C{bytes}, or C{str} with
    C{decode_data}). The field's line ending is the message's own (CRLF,
    or LF for a message that uses bare LFs).
    """
    header = receivedHeader(server, session, envelope, server.config.reactor.seconds())
    original = envelope.original_content or b""
    end = original.find(b"\n")
    if end > 0 and original[end - 1 : end] != b"\r":
        header = header.replace("\r\n", "\n") + "\n"
    else:
        header += "\r\n"
    encoded = header.encode("utf-8")
    envelope.original_content = encoded + original
    content = envelope.content
    if isinstance(content, str):
        envelope.content = header + content
    elif content is not None:
        envelope.content = encoded + content


def withReceivedHeader(hook: Callable[..., Any]) -> Callable[..., Any]:
    """
    Wrap a handler's C{handle_DATA} so that the message has its
    C{Received:} field before the hook sees it.
    """

    @functools.wraps(hook)
    def handle_DATA(server: Any, session: Any, envelope: Any, *args: Any) -> Any:
        addReceivedHeader(server, session, envelope)
        return hook(server, session, envelope, *args)

    return handle_DATA
