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
from twisted_smtpd._streaming import PIECE_SIZE

#: The unit of a piece of a message to hand on before its end.
PIECE = object()


class MessageData(DataReceiver):
    """
    Read one message in raw chunks (never a line at a time) with the pure
    framer this class extends, then go back to commands and hand the
    message on.

    One object per message is both the framer and the mode, since a
    message is the hot path of the server.
    """

    __slots__ = ("_received", "_errorReplies", "_piece")

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
        piece: Callable[[ServerCore, bytes], Any] | None = None,
    ) -> None:
        """
        @param config: The server's options, for the limits.
        @param received: Called with the connection and this framer once
            the message ended, as a command step (see C{ServerCore.run}).
        @param errorReplies: How many replies an exception in C{received}
            gets: one per recipient for LMTP.
        @param piece: For a message handed on in pieces: called with the
            connection and each piece of about
            L{PIECE_SIZE <twisted_smtpd._streaming.PIECE_SIZE>} octets as
            it arrives, as a command step (reading waits for what it
            returns); the rest is left for C{received} to take.
        """
        DataReceiver.__init__(
            self,
            config.data_size_limit,
            config.line_length_limit,
            config.allowBareNewline,
        )
        self._received = received
        self._errorReplies = errorReplies
        self._piece = piece

    def frame(self, data: bytes, start: int, config: Any) -> tuple[Any, int]:
        """
        Feed the framer; the unit is the framer itself once the message
        ended.
        """
        rest = self.feed(data[start:] if start else data)
        if rest is None:
            if self._piece is not None and self.holding() >= PIECE_SIZE:
                return PIECE, len(data)
            return None, len(data)
        return self, len(data) - len(rest)

    def act(self, server: ServerCore, unit: Any) -> None:
        """
        Hand a piece on; or read commands again, and hand the message on.
        """
        if unit is PIECE:
            server.run(self._piece, server, self.content())
            return
        server.setMode(COMMAND)
        server.run(self._received, server, self, errorReplies=self._errorReplies)
