# -*- test-case-name: tests.test_factory,tests.test_controller -*-
"""
L{OpenConnections}: the connections a server has open, and their graceful
end when it shuts down.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import Protocol
from twisted.logger import Logger

from twisted_smtpd._connhooks import SHUTDOWN
from twisted_smtpd._smtp import SMTP

__all__ = ["OpenConnections"]


class OpenConnections:
    """
    The protocols of the connections that are open, kept as the keys of a
    dict (one entry per connection, nothing more) in the order they opened,
    each with the key its client is counted under (see
    L{twisted_smtpd._clientlimit}), and the way to end them all: wait, then
    say C{421} and close, then cut off.

    Its owner tells it of each connection that opens (L{add}) and ends
    (L{discard}).
    """

    def __init__(self, reactor: Any, log: Logger) -> None:
        """
        @param reactor: The reactor for the timers of L{close}.
        @param log: Where an error in closing a connection is reported.
        """
        self._reactor = reactor
        self._log = log
        # A dict, not a set: with thousands of idle connections a set's
        # table takes up to four times the memory (about 105 bytes per
        # entry at 5,000 against 30), and a dict keeps the order too.
        self._open: dict[Protocol, Any] = {}
        self._waiting: list[Deferred[None]] = []
        self._timers: list[IDelayedCall] = []

    def __len__(self) -> int:
        """
        @return: How many connections are open.
        """
        return len(self._open)

    def __contains__(self, protocol: object) -> bool:
        """
        @return: Whether C{protocol}'s connection is open.
        """
        return protocol in self._open

    def __iter__(self) -> Iterator[Protocol]:
        """
        Go through the protocols, the oldest connection first.
        """
        return iter(self._open)

    def add(self, protocol: Protocol, client: Any = None) -> None:
        """
        Remember the protocol of a connection that opened.

        @param client: The key its client is counted under, if it is.
        """
        self._open[protocol] = client

    def setClient(self, protocol: Protocol, client: Any) -> None:
        """
        Remember the key the client of an open connection is counted under,
        once it is known (after a PROXY header).
        """
        if protocol in self._open:
            self._open[protocol] = client

    def discard(self, protocol: Protocol) -> Any:
        """
        Forget the protocol of a connection that ended (nothing happens if
        it was not remembered); when it was the last one and L{close} is
        waiting, the wait is over.

        @return: The key its client was counted under, or C{None}.
        """
        client = self._open.pop(protocol, None)
        if self._open or not self._waiting:
            return client
        for timer in self._timers:
            if timer.active():
                timer.cancel()
        self._timers = []
        waiting, self._waiting = self._waiting, []
        for done in waiting:
            done.callback(None)
        return client

    def close(self, grace: float, abortAfter: float) -> Deferred[None]:
        """
        Wait for every open connection to end, at most C{grace} seconds;
        then tell the clients still there that the service is shutting down
        (an L{SMTP} server replies C{421}, RFC 5321 section 3.8, and closes
        once the reply is written; another protocol's connection is just
        closed), and cut off, C{abortAfter} seconds later, those still
        open. Connections that open in the meantime are waited for too.

        Calling it again while it waits gives another L{Deferred} for the
        same end, on the first call's schedule.

        @param grace: Seconds the connections in progress may take to end.
        @param abortAfter: Seconds the connections told to close may take
            before they are cut off.
        @return: A L{Deferred} firing with C{None} once no connection is
            left (at once if there is none).
        """
        if not self._open:
            return succeed(None)
        done: Deferred[None] = Deferred()
        self._waiting.append(done)
        if not any(timer.active() for timer in self._timers):
            callLater = self._reactor.callLater
            self._timers = [
                callLater(grace, self._sayGoodbye),
                callLater(grace + abortAfter, self._abortAll),
            ]
        return done

    def _sayGoodbye(self) -> None:
        for protocol in list(self._open):
            try:
                if isinstance(protocol, SMTP):
                    protocol.disconnect(
                        f"421 4.3.2 {protocol.hostname} Service shutting down,"
                        " closing transmission channel",
                        SHUTDOWN,
                    )
                elif protocol.transport is not None:
                    protocol.transport.loseConnection()
            except Exception:
                self._log.failure("error while closing a session; cutting it off")
                protocol.transport.abortConnection()

    def _abortAll(self) -> None:
        for protocol in list(self._open):
            if protocol.transport is not None:
                protocol.transport.abortConnection()
