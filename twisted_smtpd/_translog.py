# -*- test-case-name: tests.test_translog -*-
"""
The one log event of each mail transaction.

Every transaction that got as far as an accepted MAIL is logged once, when
it ends: delivered, refused at the end of the data, or aborted (RSET, a new
HELO, STARTTLS, an error, the connection lost). The event holds the peer,
the sender, how many recipients, the size, the result and how long it took,
never the content or credentials.
"""

from __future__ import annotations

import time
from typing import Any

from twisted.logger import Logger, LogLevel

log = Logger(namespace="twisted_smtpd.server")

#: The C{log_format} of a transaction's event. Observers that know it (see
#: L{twisted_smtpd.log}) recognise the event by it (by identity) and format
#: it with L{transactionText}.
TRANSACTION_FORMAT = (
    "{peer} message from {sender} to {recipients} recipient(s),"
    " {size} bytes: {result} in {duration:.3f}s"
)


def transactionText(event: Any) -> str:
    """
    The text of a transaction's event: what Twisted's formatter makes of
    L{TRANSACTION_FORMAT}, made without it.
    """
    return (
        f"{event['peer']} message from {event['sender']} to"
        f" {event['recipients']} recipient(s), {event['size']} bytes:"
        f" {event['result']} in {event['duration']:.3f}s"
    )


def logTransaction(
    peer: Any, envelope: Any, size: int, result: str, start: float
) -> None:
    """
    Emit the event of a transaction that ended.

    @param peer: The client's address, as C{session.peer}.
    @param envelope: The transaction's envelope.
    @param size: The size of the message received, 0 if none was.
    @param result: The reply code(s) to the end of the data, or
        C{"aborted"}.
    @param start: When the transaction began, in L{time.monotonic} seconds.
    """
    # Logger.emit checks the level against a fresh list of all levels on
    # each call; on this per-message path the event is built as emit builds
    # it and handed to the observer directly.
    log.observer(
        {
            "log_logger": log,
            "log_level": LogLevel.info,
            "log_namespace": log.namespace,
            "log_source": None,
            "log_format": TRANSACTION_FORMAT,
            "log_time": time.time(),
            "peer": peer,
            "sender": envelope.mail_from,
            "recipients": len(envelope.rcpt_tos),
            "size": size,
            "result": result,
            "duration": time.monotonic() - start,
        }
    )
