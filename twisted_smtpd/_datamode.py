# -*- test-case-name: tests.test_transaction -*-
"""
The input mode of a connection that receives a message after C{354}.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted_smtpd._dataframer import DataReceiver
from twisted_smtpd._interfaces import ServerCore
from twisted_smtpd._lines import COMMAND


class MessageData:
    """
    Read one message with a L{DataReceiver}, in raw chunks (never a line at
    a time), then go back to commands and hand the message on.
    """

    reads = True
    timed = True

    def __init__(
        self,
        receiver: DataReceiver,
        received: Callable[[ServerCore, DataReceiver], Any],
        errorReplies: int = 1,
    ) -> None:
        """
        @param receiver: The framer of this message.
        @param received: Called with the connection and C{receiver} once
            the message ended, as a command step (see C{ServerCore.run}).
        @param errorReplies: How many replies an exception in C{received}
            gets: one per recipient for LMTP.
        """
        self._receiver = receiver
        self._received = received
        self._errorReplies = errorReplies

    def frame(self, server: ServerCore, data: bytes, start: int) -> tuple[Any, int]:
        """
        Feed the framer; the unit is the framer once the message ended.
        """
        receiver = self._receiver
        rest = receiver.feed(data[start:] if start else data)
        if rest is None:
            return None, len(data)
        return receiver, len(data) - len(rest)

    def act(self, server: ServerCore, receiver: Any) -> None:
        """
        Read commands again, and hand the message on.
        """
        server.setMode(COMMAND)
        server.run(self._received, server, receiver, errorReplies=self._errorReplies)
