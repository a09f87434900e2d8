# -*- test-case-name: tests.test_factory -*-
"""
L{SMTPFactory}: one validated configuration, one protocol per connection,
and the set of connections open, to count and to close.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import ServerFactory
from twisted.logger import Logger

from twisted_smtpd._config import makeConfig
from twisted_smtpd._connections import OpenConnections
from twisted_smtpd._smtp import SMTP

log = Logger(namespace="twisted_smtpd.server")


class SMTPFactory(ServerFactory):
    """
    Build an L{SMTP} server (or C{protocol}) for each connection, all sharing
    one handler and one set of options that are checked once, here.

    The factory knows every connection its servers have open, from the
    C{connectionMade} to the C{connectionLost} of each (they call
    L{admitConnection} and L{releaseConnection}), so that it can limit
    them and, with L{closeConnections}, end them gracefully.

    @ivar handler: The handler given to every connection.
    @ivar protocol: The protocol class, L{SMTP} or a subclass.
    @ivar maxConnections: The most connections served at once, or C{None}.
    """

    noisy = False

    def __init__(
        self,
        handler: Any,
        *,
        protocol: type[SMTP] = SMTP,
        reactor: Any = None,
        max_connections: int | None = None,
        **options: Any,
    ) -> None:
        """
        @param handler: The object whose C{handle_*} hooks decide what
            happens; see L{SMTP}.
        @param protocol: L{SMTP}, or a subclass that adds or changes
            commands.
        @param reactor: The reactor for timers; the global one by default.
        @param max_connections: The most connections served at once; a
            client over the limit gets C{421} and is disconnected. C{None}
            for no limit.
        @param options: The options of L{SMTP}.
        @raise TypeError: For an unknown option or a value of the wrong type.
        @raise ValueError: For a value out of range or a bad combination.
        """
        if not (isinstance(protocol, type) and issubclass(protocol, SMTP)):
            raise TypeError(f"protocol must be a subclass of SMTP, not {protocol!r}")
        if max_connections is not None and (
            isinstance(max_connections, bool)
            or not isinstance(max_connections, int)
            or max_connections < 1
        ):
            raise ValueError(
                f"max_connections must be a positive int, not {max_connections!r}"
            )
        self.handler = handler
        self.protocol = protocol
        self.maxConnections = max_connections
        self._config = makeConfig(handler, reactor=reactor, **options)
        # Every open connection, served or refused; the refused ones, over
        # max_connections, are closing and are not counted as served.
        self._open = OpenConnections(self._config.reactor, log)
        self._refused: set[SMTP] = set()

    @property
    def connections(self) -> int:
        """
        How many connections are being served (not counting those refused
        for being over C{max_connections}, which are closing).
        """
        return len(self._open) - len(self._refused)

    def buildProtocol(self, addr: Any) -> SMTP:
        """
        Make the server of one connection.
        """
        p = self.protocol(self.handler, _config=self._config)
        p.factory = self
        return p

    def admitConnection(self, protocol: SMTP) -> bool:
        """
        Take note of a new connection, as its server's C{connectionMade}
        does; return C{False} when it is one too many, and the server
        should refuse it.

        @param protocol: The server of the connection.
        @return: Whether the connection is to be served.
        """
        full = (
            self.maxConnections is not None and self.connections >= self.maxConnections
        )
        self._open.add(protocol)
        if full:
            self._refused.add(protocol)
        return not full

    def releaseConnection(self, protocol: SMTP) -> None:
        """
        Forget a connection that ended, as its server's C{connectionLost}
        does; its slot is free for another. Forgetting it twice, or one
        that was never admitted, does nothing.

        @param protocol: The server of the connection.
        """
        self._refused.discard(protocol)
        self._open.discard(protocol)

    def closeConnections(self, grace: float, abortAfter: float = 1.0) -> Deferred[None]:
        """
        End every open connection gracefully, as a server that shuts down
        should (stop listening first, so that no new one comes): wait for
        the sessions in progress to end, at most C{grace} seconds; then send
        the clients still there C{421 4.3.2 <hostname> Service shutting
        down, closing transmission channel} and close each connection once
        its reply is written (see L{SMTP.disconnect}); cut off, C{abortAfter}
        seconds later, those that did not go.

        @param grace: Seconds the sessions in progress may take to end.
        @param abortAfter: Seconds the connections told to close may take
            before they are cut off.
        @return: A L{Deferred} firing with C{None} once no connection is
            left, at once if there is none.
        """
        return self._open.close(grace, abortAfter)
