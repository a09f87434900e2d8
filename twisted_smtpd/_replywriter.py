# -*- test-case-name: tests.test_replywriter -*-
"""
The replies of one connection as they go on the wire: queued while a batch
of pipelined commands is read, written in one write, with enhanced status
codes when they are on; and the last reply before closing.

Every error reply (4yz, 5yz) queued here counts as the client's error
towards C{hard_error_limit} (see L{twisted_smtpd._policy.countError}),
unless the server queues it through L{ReplyWriter.uncounted}: an
exception's reply, or the 421 of a closing connection, reports the
server's own trouble.

L{ReplyWriter} is the lowest layer of the server. The transport is touched
by it (writes, closing), by L{twisted_smtpd._channel.Channel} above it
(pausing and resuming reads) and by L{twisted_smtpd._connection.Connection}
(the start of the connection and of TLS), and by no other code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.protocols.basic import LineReceiver

from twisted_smtpd._hooks import DONE
from twisted_smtpd._policy import countError
from twisted_smtpd._replies import encode, withEnhancedCodes
from twisted_smtpd._transport import mayHoldWrites, send

#: The first octet of the replies that count as errors.
_ERRORS = frozenset([b"4", b"5"])


class ReplyWriter(LineReceiver):
    """
    Queue replies, write them in batches, and close with a last reply.

    A subclass provides C{config} (the options) and says, by C{_busy},
    whether it is reading a batch of commands, whose replies then wait for
    the end of the batch.
    """

    #: Whether replies get enhanced status codes (RFC 2034): the
    #: C{enhanced_status_codes} option turns it on for a connection, and
    #: LMTP always has it (RFC 2033 section 5).
    enhancedStatusCodes = False

    #: Seconds a closing connection may take to deliver its last replies
    #: to a client that does not read them, before it is dropped.
    closeTimeout = 30.0

    config: Any
    _out: list[bytes] | None = None
    _busy = False
    _closing = False
    _handshakePending = False
    _closeTimer: Any = None
    _watcher: Callable[[bytes], None] | None = None
    _uncounted = False
    _states: dict[object, Any] | None = None

    #: Why the server closed the connection (a reason of
    #: L{twisted_smtpd._connhooks}, given to C{handle_DISCONNECT}), or
    #: C{None} while it did not.
    closeReason: str | None = None

    def stateOf(self, key: object, factory: Callable[[], Any] | None) -> Any:
        """
        The state that a layer above (a command group) keeps for this
        connection under C{key}, made by calling C{factory} when first asked
        for: an idle connection keeps none.

        @param factory: What makes the state, or C{None} to get C{None}
            rather than make it.
        """
        states = self._states
        if states is None:
            if factory is None:
                return None
            states = self._states = {}
        state = states.get(key)
        if state is None and factory is not None:
            state = states[key] = factory()
        return state

    @property
    def closing(self) -> bool:
        """
        Whether the connection is closing or closed: nothing more is read
        or sent.
        """
        return self._closing

    def push(self, status: str | bytes) -> Any:
        """
        Send one reply (or several, joined by CRLF) to the client now.

        @param status: The reply without its final CRLF.
        @return: An awaitable that is already complete, so that handlers
            written for aiosmtpd can C{await server.push(...)}.
        """
        self.reply(status)
        if not self._busy:
            self.flush()
        return DONE

    def reply(self, status: str | bytes) -> None:
        """
        Queue one reply (or several, joined by CRLF), with enhanced status
        codes when they are on; the replies of a batch go out together.

        @raise TypeError: For anything but C{str} or C{bytes}.
        """
        if status.__class__ is str:
            # encode(), inlined: this runs for every reply.
            if self.config.enable_SMTPUTF8:
                status = status.encode("utf-8")
            else:
                status = status.encode("ascii", "replace")
        else:
            status = encode(status, self.config.enable_SMTPUTF8)
        if self.enhancedStatusCodes:
            status = withEnhancedCodes(status)
        # A reply, even of several lines joined, is whole: an error counts.
        self._queue(status, status[:1] in _ERRORS)

    def replyPlain(self, status: str | bytes) -> None:
        """
        Queue one reply line exactly as given, without an enhanced status
        code: the lines of the EHLO and LHLO replies (RFC 2034 section 3).
        """
        status = encode(status, self.config.enable_SMTPUTF8)
        # A line followed by more (a hyphen after the code) is not a reply
        # of its own.
        self._queue(status, status[:1] in _ERRORS and status[3:4] != b"-")

    def _queue(self, status: bytes, error: bool) -> None:
        """
        Queue a reply (or a line of one) for the end of the batch; C{error}
        says whether it is an error reply that counts towards
        C{hard_error_limit} (unless L{uncounted}).
        """
        if self._closing:
            # Nothing goes out after the last reply of a closing connection.
            return
        if self._watcher is not None:
            self._watcher(status)
        out = self._out
        if out is None:
            self._out = [status + b"\r\n"]
        else:
            out.append(status + b"\r\n")
        if error and not self._uncounted:
            countError(self)

    def uncounted(self, call: Callable[..., Any], *args: Any) -> Any:
        """
        Call C{call} with C{args}, and have the error replies it queues
        not count as the client's errors towards C{hard_error_limit}: they
        report the server's own trouble (an exception's reply, a 421 as the
        connection closes), or the caller counts them itself (the end of
        the data, which counts once, whatever the number of its replies).

        @return: What C{call} returns.
        """
        if self._uncounted:
            return call(*args)
        self._uncounted = True
        try:
            return call(*args)
        finally:
            self._uncounted = False

    def watchReplies(self, watcher: Callable[[bytes], None] | None) -> None:
        """
        Have C{watcher} called with each reply queued from now on (as bytes,
        without CRLF), until called again with C{None}.
        """
        self._watcher = watcher

    def flush(self) -> None:
        """
        Write the queued replies now.
        """
        out = self._out
        if out:
            self._out = None
            send(self.transport, out[0] if len(out) == 1 else b"".join(out))

    def disconnect(self, reply: str, reason: str = "closed") -> None:
        """
        Send a last reply, such as C{421} when the service shuts down, and
        close the connection once it is written (or after L{closeTimeout}
        seconds if the client reads nothing). Replies of commands still in
        progress are not sent.

        @param reply: The reply, without its final CRLF.
        @param reason: Why, as C{handle_DISCONNECT} is told.
        """
        if self._closing:
            return
        self.closeReason = reason
        # The last reply reports the end, not an error of the client's;
        # nothing counts after it.
        self._uncounted = True
        self.reply(reply)
        self.flush()
        self._closing = True
        if self.config.idle is not None:
            self.config.idle.forget(self)
        # Twisted's TLS layer does not shut down while a producer is
        # registered.
        self.transport.unregisterProducer()
        if self._handshakePending:
            # The reply cannot go out before the handshake that never ends.
            self.transport.abortConnection()
            return
        if mayHoldWrites(self.transport):
            # loseConnection() waits for the replies to be written, which
            # is forever if the client reads nothing.
            self._closeTimer = self.config.reactor.callLater(
                self.closeTimeout, self.transport.abortConnection
            )
        self.transport.loseConnection()

    def abort(self, reason: str = "dropped") -> None:
        """
        Drop the connection without a word, as for a bad PROXY header.

        @param reason: Why, as C{handle_DISCONNECT} is told.
        """
        if self.closeReason is None:
            self.closeReason = reason
        self._closing = True
        self.transport.abortConnection()
