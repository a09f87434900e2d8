# -*- test-case-name: tests.test_headers -*-
"""
Header fields added to a message by the handlers that keep or pass it on
(L{Mailbox <twisted_smtpd.handlers.Mailbox>} writes C{X-Peer},
C{X-MailFrom} and C{X-RcptTo}; L{Proxy <twisted_smtpd.handlers.Proxy>}
writes C{X-Peer}), without touching any other byte of it: in one go
(L{withHeaders}) or while the message streams in (L{HeaderSplicer}).
"""

from __future__ import annotations

import re

#: The start of an empty line: the end of a message's header section.
_BLANK_LINE = re.compile(rb"^(\r\n|\n)", re.MULTILINE)


def withHeaders(data: bytes, headers: list[bytes]) -> bytes:
    """
    Add header fields at the end of the header section of C{data} and leave
    every other byte as it was.

    @param data: A message.
    @param headers: Complete header lines without their line ending; each
        gets the line ending of the message's empty line (CRLF when there
        is none).
    @return: The message with the fields before its first empty line, or at
        its end when it has no empty line (it is all header).
    """
    match = _BLANK_LINE.search(data)
    if match is None:
        ending = b"\r\n"
        at = len(data)
        if data and not data.endswith(b"\n"):
            data += ending
            at = len(data)
    else:
        ending = match.group(1)
        at = match.start()
    return data[:at] + _fields(headers, ending) + data[at:]


def _fields(headers: list[bytes], ending: bytes) -> bytes:
    """
    The header lines C{headers}, each ended with C{ending}.
    """
    return b"".join(header + ending for header in headers)


def _firstEnding(data: bytes | bytearray) -> bytes:
    """
    The line ending of the first line of C{data}: LF for a message whose
    first line ends in a bare LF, CRLF otherwise.
    """
    at = data.find(b"\n")
    return b"\n" if at == 0 or (at > 0 and data[at - 1 : at] != b"\r") else b"\r\n"


#: How many octets of a streamed message L{HeaderSplicer} holds while it
#: looks for the empty line that ends the header section.
HEAD_LIMIT = 1024 * 1024


class HeaderSplicer:
    """
    L{withHeaders} for a message that arrives in pieces: hold the start of
    the message until the empty line that ends its header section has come,
    then pass everything on with the fields added, so that the bytes given
    out are those L{withHeaders} makes of the whole message.

    Memory stays bounded: when no empty line starts within the first
    C{limit} octets, the fields go at the very start of the message instead
    (with the line ending of its first line, or CRLF if that line is longer
    than the limit), the one case where the result differs from
    L{withHeaders}.
    """

    def __init__(self, headers: list[bytes], limit: int = HEAD_LIMIT) -> None:
        """
        @param headers: As for L{withHeaders}.
        @param limit: The most octets held before giving up on the header
            section.
        """
        self._headers = headers
        self._limit = limit
        self._head: bytearray | None = bytearray()

    def feed(self, data: bytes) -> bytes:
        """
        Take the next piece of the message.

        @return: The bytes to pass on now (empty while the header section is
            still being held).
        """
        head = self._head
        if head is None:
            return data
        # An empty line split across pieces starts at the last octet held.
        start = max(0, len(head) - 1)
        head += data
        match = _BLANK_LINE.search(head, start)
        if match is not None and match.start() <= self._limit:
            at = match.start()
            added = _fields(self._headers, match.group(1))
            out = b"".join((head[:at], added, head[at:]))
        elif len(head) > self._limit + 1:
            # No empty line can start within the first limit octets now.
            ending = _firstEnding(head[: self._limit + 1])
            out = _fields(self._headers, ending) + head
        else:
            return b""
        self._head = None
        return out

    def finish(self) -> bytes:
        """
        The message has ended.

        @return: The bytes still to pass on: the message held so far with
            the fields, as L{withHeaders} adds them, if it was all held.
        """
        head = self._head
        if head is None:
            return b""
        self._head = None
        return withHeaders(bytes(head), self._headers)
