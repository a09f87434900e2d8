# -*- test-case-name: tests.test_replies -*-
"""
Replies as they go on the wire: their encoding, and the enhanced status
codes (RFC 2034, RFC 3463) that the server adds to replies lacking one.
"""

from __future__ import annotations

import re
from typing import Any

#: A reply that already carries an enhanced status code (RFC 3463).
_HAS_ENHANCED = re.compile(rb"\d{3}[ -][245]\.\d{1,3}\.\d{1,3}(?:[ \r]|$)")

#: The enhanced code given to a reply that has none, by reply code.
_ENHANCED = {
    b"221": b"2.0.0",
    b"250": b"2.0.0",
    b"252": b"2.5.0",
    b"214": b"2.0.0",
    b"421": b"4.3.0",
    b"450": b"4.2.0",
    b"451": b"4.3.0",
    b"452": b"4.3.1",
    b"454": b"4.7.0",
    b"500": b"5.5.2",
    b"501": b"5.5.4",
    b"502": b"5.5.1",
    b"503": b"5.5.1",
    b"504": b"5.5.4",
    b"530": b"5.7.0",
    b"550": b"5.0.0",
    b"552": b"5.3.4",
    b"553": b"5.1.3",
    b"554": b"5.0.0",
    b"555": b"5.5.4",
}


def encode(status: str | bytes, utf8: bool) -> bytes:
    """
    A reply as bytes: UTF-8 when SMTPUTF8 is offered, else ASCII (any other
    character becoming C{?}).

    @raise TypeError: For anything but C{str} or C{bytes}.
    """
    if isinstance(status, str):
        if utf8:
            return status.encode("utf-8")
        return status.encode("ascii", "replace")
    if not isinstance(status, bytes):
        raise TypeError(f"a reply must be str or bytes, not {status!r}")
    return status


def withEnhancedCodes(status: bytes) -> bytes:
    """
    Give each line of a 2yz, 4yz or 5yz reply an enhanced status code of
    its class, unless it has one (RFC 2034 section 3); other replies are
    returned as they are.
    """
    if status[:1] not in (b"2", b"4", b"5") or not _isCode(status):
        return status
    return b"\r\n".join(_enhancedLine(line) for line in status.split(b"\r\n"))


def _enhancedLine(line: bytes) -> bytes:
    """
    Give one reply line an enhanced status code, unless it has one.
    """
    if _HAS_ENHANCED.match(line) is not None or not _isCode(line):
        return line
    enhanced = _ENHANCED.get(line[:3]) or line[:1] + b".0.0"
    separator = line[3:4] or b" "
    text = line[4:]
    return line[:3] + separator + enhanced + (b" " + text if text else b"")


def _isCode(line: bytes) -> bool:
    """
    Whether a reply line starts with a reply code: three digits, then the
    end of the line, a space or a hyphen.
    """
    return len(line) >= 3 and line[:3].isdigit() and line[3:4] in (b"", b" ", b"-")


def codeOf(status: Any) -> str:
    """
    The reply code of a status, for the log; several for a list (LMTP).
    """
    if isinstance(status, (list, tuple)):
        return ",".join("250" if each is None else codeOf(each) for each in status)
    if isinstance(status, bytes):
        return status[:3].decode("ascii", "replace")
    if isinstance(status, str):
        return status[:3]
    return "?"
