# -*- test-case-name: tests.test_lmtp -*-
"""
LMTP (RFC 2033): SMTP's local cousin, with one reply per recipient after
the data. L{LMTP} declares what it changes of L{SMTP}.
"""

from __future__ import annotations

from typing import Any

from twisted_smtpd._authcommand import Auth
from twisted_smtpd._basiccommands import BasicCommands, refuseHostname
from twisted_smtpd._chunking import Chunking
from twisted_smtpd._interfaces import ServerCore
from twisted_smtpd._smtp import SMTP
from twisted_smtpd._starttls import StartTLS
from twisted_smtpd._syntax import syntax
from twisted_smtpd._transaction import Transaction
from twisted_smtpd._verbs import verb


class LMTPCommands(BasicCommands):
    """
    The commands outside a transaction, with LHLO for HELO and EHLO.
    """

    helo = None  # type: ignore[assignment]
    ehlo = None  # type: ignore[assignment]

    @verb("LHLO")
    @syntax("LHLO hostname")
    def lhlo(self, server: ServerCore, arg: str | None) -> Any:
        """
        Greet and list the extensions offered (RFC 2033 section 4.1).
        """
        if refuseHostname(server, "LHLO", arg):
            return None
        return self.greet(server, arg)


class LMTPTransaction(Transaction):
    """
    The transaction, with one reply per accepted recipient after the data
    (RFC 2033 section 4.2).
    """

    repliesPerRecipient = True

    def dataReplies(self, server: ServerCore, status: Any, recipients: int) -> None:
        """
        Send one reply per accepted recipient, in RCPT order. In a list,
        C{None} stands for the default C{250 OK}.

        @raise ValueError: If C{handle_DATA} returned something other than
            a reply, or a list whose length is not the number of recipients
            or that holds something other than replies; the client then gets
            a 451 for each recipient.
        """
        if isinstance(status, (list, tuple)):
            if len(status) != recipients:
                raise ValueError(
                    f"handle_DATA returned {len(status)} statuses for"
                    f" {recipients} recipients"
                )
            statuses = ["250 OK" if each is None else each for each in status]
            for each in statuses:
                if not isinstance(each, (str, bytes)):
                    raise ValueError(f"not a reply: {each!r}")
        elif isinstance(status, (str, bytes)):
            statuses = [status] * recipients
        else:
            raise ValueError(f"not a reply: {status!r}")
        for each in statuses:
            server.reply(each)


_TRANSACTION = LMTPTransaction()


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
    (RFC 3463) to replies that lack it. With CHUNKING, the per-recipient
    replies come after C{BDAT ... LAST} (RFC 3030 section 4.2), and every
    other chunk gets one reply.
    """

    helloVerb = "LHLO"
    beforeTLSVerbs = frozenset(["NOOP", "LHLO", "STARTTLS", "QUIT"])
    # Not counted as a client's mistake (aiosmtpd neither).
    uncountedVerbs = frozenset(["HELO", "EHLO"])
    enhancedStatusCodes = True
    commandGroups = (
        _TRANSACTION,
        Chunking(_TRANSACTION),
        StartTLS(),
        Auth(),
        LMTPCommands(),
    )
