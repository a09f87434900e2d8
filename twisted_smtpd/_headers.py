# -*- test-case-name: tests.test_headers -*-
"""
Header fields added to a message by the handlers that keep or pass it on
(L{Mailbox <twisted_smtpd.handlers.Mailbox>} writes C{X-Peer},
C{X-MailFrom} and C{X-RcptTo}; L{Proxy <twisted_smtpd.handlers.Proxy>}
writes C{X-Peer}), without touching any other byte of it.
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
    added = b"".join(header + ending for header in headers)
    return data[:at] + added + data[at:]
