# -*- test-case-name: tests.test_factory,tests.test_controller,tests.test_shutdown -*-
"""
L{OpenConnections}: the connections a server has open, and their graceful
end when it shuts down.

A shutdown (L{OpenConnections.shutDown}) closes at once, with
L{SHUTTING_DOWN}, every session that waits for its client's next command,
even between MAIL and DATA: nothing the client was told is lost, and it
will send the transaction again elsewhere or later. A session whose work
is under way (message data being received, a command or hook such as a
broker's confirm still working) is let finish and gets its real reply,
then L{SHUTTING_DOWN}; it starts no new transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.logger import Logger

from twisted_smtpd._connhooks import SHUTDOWN
from twisted_smtpd._lines import COMMAND
from twisted_smtpd._smtp import SMTP

__all__ = ["SHUTDOWN_TIMEOUT", "SHUTTING_DOWN", "ClosingFactory", "OpenConnections"]

#: The default C{shutdown_timeout}: seconds a message being received, or
#: a hook working, may take to finish as the service stops.
SHUTDOWN_TIMEOUT = 30.0

#: The last reply of a session closed as the service shuts down (RFC 5321
#: section 3.8), a format string for the server's host name.
SHUTTING_DOWN = (
    "421 4.3.2 {hostname} Service shutting down, closing transmission channel"
)


def _goodbye(protocol: SMTP) -> None:
    """
    Send L{SHUTTING_DOWN} and close, after the replies already queued.
    """
    protocol.disconnect(SHUTTING_DOWN.format(hostname=protocol.hostname), SHUTDOWN)


class _Draining:
    """
    The end of a session whose work is under way as the service shuts
    down: the work finishes and is answered, then the session is told
    L{SHUTTING_DOWN} and closed, before any new command runs.

    It watches the session through two attributes set on that one server
    instance, which shadow the class's C{setMode} and C{run}: the input
    mode going back to commands, and each command run. The sessions that
    do not shut down pay nothing for it.
    """

    def __init__(self, protocol: SMTP) -> None:
        self._protocol = protocol
        # The message data just ended: the next run is its end (the DATA
        # hook), not a new command.
        self._dataEnded = False
        protocol.setMode = self.setMode
        protocol.run = self.run

    def setMode(self, mode: Any) -> None:
        """
        Change the session's input mode; back to commands after a hook or
        command that worked, with nothing left under way, it is over.
        """
        protocol = self._protocol
        streamed = protocol.inputMode.streamed
        type(protocol).setMode(protocol, mode)
        if mode is not COMMAND:
            return
        if streamed:
            self._dataEnded = True
        elif not protocol.workInProgress:
            _goodbye(protocol)

    def run(self, call: Any, *args: Any, errorReplies: int = 1) -> None:
        """
        Run the end of the message data, or a step of the work under way
        (a BDAT command between chunks, a piece of the message); refuse a
        new command with L{SHUTTING_DOWN}, and close once nothing is left
        under way.
        """
        protocol = self._protocol
        if self._dataEnded:
            self._dataEnded = False
        elif not protocol.workInProgress:
            _goodbye(protocol)
            return
        type(protocol).run(protocol, call, *args, errorReplies=errorReplies)
        if not protocol.workInProgress:
            _goodbye(protocol)


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

    def shutDown(self, timeout: float, abortAfter: float) -> Deferred[None]:
        """
        End every open connection as a service that shuts down should (stop
        listening first): tell each L{SMTP} session that waits for a
        command L{SHUTTING_DOWN} and close it at once; let those whose work
        is under way (message data, a command or hook) finish within
        C{timeout} seconds, each getting its real reply and then
        L{SHUTTING_DOWN}; then go on as L{close} does when its grace
        period ends. Another protocol's connection is waited for, and
        closed when C{timeout} ends.

        @param timeout: Seconds the work under way may take.
        @param abortAfter: Seconds the connections told to close may take
            before they are cut off.
        @return: A L{Deferred} firing with C{None} once no connection is
            left (at once if there is none).
        """
        for protocol in list(self._open):
            if not isinstance(protocol, SMTP) or "run" in vars(protocol):
                continue
            try:
                if protocol.workInProgress:
                    _Draining(protocol)
                else:
                    _goodbye(protocol)
            except Exception:
                self._log.failure("error while closing a session; cutting it off")
                protocol.transport.abortConnection()
        return self.close(timeout, abortAfter)

    def _sayGoodbye(self) -> None:
        for protocol in list(self._open):
            try:
                if isinstance(protocol, SMTP):
                    _goodbye(protocol)
                elif protocol.transport is not None:
                    protocol.transport.loseConnection()
            except Exception:
                self._log.failure("error while closing a session; cutting it off")
                protocol.transport.abortConnection()

    def _abortAll(self) -> None:
        for protocol in list(self._open):
            if protocol.transport is not None:
                protocol.transport.abortConnection()


class ClosingFactory(ServerFactory):
    """
    A factory that keeps its open connections in an L{OpenConnections}
    (its subclass sets C{_open}), and ends them gracefully when the
    service stops.

    @ivar shutdownTimeout: The seconds L{shutDown} lets the work under way
        take, by default.
    """

    shutdownTimeout = SHUTDOWN_TIMEOUT
    _shuttingDown = False
    _open: OpenConnections

    def closeConnections(self, grace: float, abortAfter: float = 1.0) -> Deferred[None]:
        """
        End every open connection, as a server that shuts down should (stop
        listening first, so that no new one comes): wait for the sessions
        in progress to end, at most C{grace} seconds; then send the clients
        still there C{421 4.3.2 <hostname> Service shutting down, closing
        transmission channel} and close each connection once its reply is
        written (see L{SMTP.disconnect}); cut off, C{abortAfter} seconds
        later, those that did not go. L{shutDown} does not wait for the
        sessions that wait for a command.

        @param grace: Seconds the sessions in progress may take to end.
        @param abortAfter: Seconds the connections told to close may take
            before they are cut off.
        @return: A L{Deferred} firing with C{None} once no connection is
            left, at once if there is none.
        """
        return self._open.close(grace, abortAfter)

    def shutDown(
        self, timeout: float | None = None, abortAfter: float = 1.0
    ) -> Deferred[None]:
        """
        End every open connection as a server that shuts down should (stop
        listening first; L{SMTPService.stopService
        <twisted_smtpd.service.SMTPService.stopService>} does both): each
        session that waits for a command, even between MAIL and DATA, is
        sent C{421 4.3.2 <hostname> Service shutting down, closing
        transmission channel} and closed at once; a message being received
        or a hook working (a broker's confirm, say) may finish within
        C{timeout} seconds and gets its real reply, then the C{421}, and no
        new command runs. When C{timeout} ends, the sessions still there
        are sent the C{421} and closed, and cut off C{abortAfter} seconds
        later if they did not go. A connection that opens meanwhile is
        refused with the C{421}. See L{OpenConnections.shutDown}.

        @param timeout: Seconds the work under way may take; the factory's
            C{shutdown_timeout} by default.
        @param abortAfter: Seconds the connections told to close may take
            before they are cut off.
        @return: A L{Deferred} firing with C{None} once no connection is
            left, at once if there is none.
        """
        if timeout is None:
            timeout = self.shutdownTimeout
        self._shuttingDown = True
        return self._open.shutDown(timeout, abortAfter)
