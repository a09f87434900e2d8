# -*- test-case-name: tests.test_transaction,tests.test_channel -*-
"""
The input mode of a connection that receives a message after C{354}.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted_smtpd._dataframer import DataReceiver
from twisted_smtpd._interfaces import ServerCore
from twisted_smtpd._lines import COMMAND


class MessageData(DataReceiver):
    """
    Read one message in raw chunks (never a line at a time) with the pure
    framer this class extends, then go back to commands and hand the
    message on.

    One object per message is both the framer and the mode, since a
    message is the hot path of the server.
    """

    __slots__ = ("_received", "_errorReplies")

    reads = True
    timed = True

    #: The idle clock starts again for every
    #: L{PROGRESS_BYTES <twisted_smtpd._channel.PROGRESS_BYTES>} received,
    #: not for every chunk: a message must keep flowing.
    streamed = True

    def __init__(
        self,
        config: Any,
        received: Callable[[ServerCore, DataReceiver], Any],
        errorReplies: int = 1,
    ) -> None:
        """
        @param config: The server's options, for the limits.
        @param received: Called with the connection and this framer once
            the message ended, as a command step (see C{ServerCore.run}).
        @param errorReplies: How many replies an exception in C{received}
            gets: one per recipient for LMTP.
        """
        DataReceiver.__init__(
            self,
            config.data_size_limit,
            config.line_length_limit,
            config.allowBareNewline,
        )
        self._received = received
        self._errorReplies = errorReplies

    def frame(self, data: bytes, start: int, config: Any) -> tuple[Any, int]:
        """
        Feed the framer; the unit is the framer itself once the message
        ended.
        """
        rest = self.feed(data[start:] if start else data)
        if rest is None:
            return None, len(data)
        return self, len(data) - len(rest)

    def act(self, server: ServerCore, unit: Any) -> None:
        """
        Read commands again, and hand the message on.
        """
        server.setMode(COMMAND)
        server.run(self._received, server, self, errorReplies=self._errorReplies)
