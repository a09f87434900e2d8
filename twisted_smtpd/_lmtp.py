# -*- test-case-name: tests.test_lmtp -*-
"""
LMTP (RFC 2033): SMTP's local cousin, with one reply per recipient after
the data.
"""

from __future__ import annotations

import re
from typing import Any

from twisted_smtpd._protocol import SMTP, syntax

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


def _withEnhancedCode(line: bytes) -> bytes:
    """
    Give one reply line an enhanced status code, unless it has one.
    """
    if _HAS_ENHANCED.match(line) is not None or not line[:3].isdigit():
        return line
    enhanced = _ENHANCED.get(line[:3]) or line[:1] + b".0.0"
    separator = line[3:4] or b" "
    return line[:3] + separator + enhanced + b" " + line[4:]


class LMTP(SMTP):
    """
    An LMTP server (RFC 2033) for one connection.

    Clients greet with C{LHLO}; C{HELO} and C{EHLO} are refused. After the
    data, the client gets one reply per accepted recipient, in RCPT order:
    C{handle_DATA} may return a list with one status per recipient in
    C{envelope.rcpt_tos}, or one status for all of them. PIPELINING and
    ENHANCEDSTATUSCODES are advertised, as section 5 of the RFC requires,
    and every 2xx, 4xx and 5xx reply other than the greeting and the reply
    to LHLO carries an enhanced status code: the server adds a generic one
    (RFC 3463) to replies that lack it.
    """

    _beforeTLSVerbs = frozenset(["NOOP", "LHLO", "STARTTLS", "QUIT"])
    _sendHeloFirst = "503 Error: send LHLO first"
    _pendingRecipients = 0

    smtp_HELO = None  # type: ignore[assignment]
    smtp_EHLO = None  # type: ignore[assignment]

    def _unknown(self, verb: str) -> None:
        if verb in ("HELO", "EHLO"):
            # Not counted as a client's mistake (aiosmtpd neither).
            self._reply(f'500 Error: command "{verb}" not recognized')
            return
        super()._unknown(verb)

    @syntax("LHLO hostname")
    def smtp_LHLO(self, arg: str | None) -> Any:
        """
        Greet and list the extensions offered (RFC 2033 section 4.1).
        """
        if not arg:
            self._reply("501 Syntax: LHLO hostname")
            return None
        return SMTP.smtp_EHLO(self, arg)

    def _ehloResponses(self) -> list[str]:
        lines = super()._ehloResponses()
        lines.insert(-1, "250-ENHANCEDSTATUSCODES")
        return lines

    def _reply(self, status: str | bytes) -> None:
        """
        Send a reply, adding a generic enhanced status code (RFC 3463) to
        each line of a 2xx, 4xx or 5xx reply that has none (RFC 2034
        section 3).
        """
        status = self._encode(status)
        if status[:1] in (b"2", b"4", b"5") and status[:3].isdigit():
            status = b"\r\n".join(
                _withEnhancedCode(line) for line in status.split(b"\r\n")
            )
        SMTP._reply(self, status)

    # The reply to LHLO lists keywords and has no enhanced codes (RFC 2034).
    _ehloReply = SMTP._reply

    def _messageReceived(self, receiver: Any) -> Any:
        self._pendingRecipients = len(self.envelope.rcpt_tos)
        return super()._messageReceived(receiver)

    def _dataReplies(self, status: Any) -> None:
        """
        Send one reply per accepted recipient (RFC 2033 section 4.2). In a
        list, C{None} stands for the default C{250 OK}.

        @raise ValueError: If C{handle_DATA} returned something other than
            a reply, or a list whose length is not the number of recipients
            or that holds something other than replies; the client then gets
            a 451 for each recipient.
        """
        count = self._pendingRecipients
        if isinstance(status, (list, tuple)):
            if len(status) != count:
                raise ValueError(
                    f"handle_DATA returned {len(status)} statuses for"
                    f" {count} recipients"
                )
            statuses = ["250 OK" if each is None else each for each in status]
            for each in statuses:
                if not isinstance(each, (str, bytes)):
                    raise ValueError(f"not a reply: {each!r}")
        elif isinstance(status, (str, bytes)):
            statuses = [status] * count
        else:
            raise ValueError(f"not a reply: {status!r}")
        self._pendingRecipients = 0
        for each in statuses:
            self._reply(each)

    def _replyError(self, status: Any) -> None:
        count, self._pendingRecipients = self._pendingRecipients, 0
        for _ in range(max(count, 1)):
            super()._replyError(status)
