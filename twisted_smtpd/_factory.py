# -*- test-case-name: tests.test_factory,tests.test_shedding,tests.test_clientlimit -*-
"""
L{SMTPFactory}: one validated configuration, one protocol per connection,
and the set of connections open, to count, to limit (in all, per client
address, and by the file descriptors the process has) and to close.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from twisted.internet import tcp
from twisted.logger import Logger

from twisted_smtpd._clientlimit import (
    DEFAULT_EXCEPTIONS,
    ClientCounts,
    exceptionNetworks,
)
from twisted_smtpd._config import makeConfig
from twisted_smtpd._connections import (
    SHUTDOWN_TIMEOUT,
    SHUTTING_DOWN,
    ClosingFactory,
    OpenConnections,
)
from twisted_smtpd._connhooks import SHED
from twisted_smtpd._filelimit import highWaterMark, softFileLimit
from twisted_smtpd._shedding import SHED_REPLY, AcceptGuard, room, sheddable
from twisted_smtpd._smtp import SMTP
from twisted_smtpd._tally import Tally
from twisted_smtpd._validate import checkInt, checkSeconds

log = Logger(namespace="twisted_smtpd.server")

#: The reply to a connection over C{max_connections}, or over the
#: high-water mark when no idle session can be closed to make room.
TOO_MANY = "421 4.3.2 Too many connections, try again later"

#: The reply to a connection over C{max_connections_per_client}, a format
#: string for the server's host name and the client's address (Postfix's).
TOO_MANY_FROM = "421 4.7.0 {hostname} Error: too many connections from {address}"

# The lines that sum up, once a second at most, what a flood makes the
# factory do.
_REFUSED_FROM_LOG = (
    "refused {count} connection(s) over max_connections_per_client ({limit}),"
    " the last from {address}"
)
_SHED_LOG = "closed {count} idle session(s) to make room for new clients"

#: The default C{max_connections_per_client}, Postfix's
#: C{smtpd_client_connection_count_limit}.
MAX_CONNECTIONS_PER_CLIENT = 50


class SMTPFactory(ClosingFactory):
    """
    Build an L{SMTP} server (or C{protocol}) for each connection, all sharing
    one handler and one set of options that are checked once, here.

    The factory knows every connection its servers have open, from the
    C{connectionMade} to the C{connectionLost} of each (they call
    L{screenConnection} and L{releaseConnection}), so that it can limit
    them and, with L{closeConnections} or L{shutDown}, end them gracefully.

    @ivar handler: The handler given to every connection.
    @ivar protocol: The protocol class, L{SMTP} or a subclass.
    @ivar maxConnections: The most connections served at once, or C{None}.
    @ivar maxConnectionsPerClient: The most connections served at once for
        one client address, or C{0} for no such limit.
    @ivar connectionLimitExceptions: The networks whose clients
        C{maxConnectionsPerClient} does not limit.
    @ivar highWaterMark: The number of connections served at which a new
        one makes the session idle longest close, or C{None} for never
        (as before the factory starts, when it is worked out from the file
        descriptor limit).
    """

    noisy = False

    def __init__(
        self,
        handler: Any,
        *,
        protocol: type[SMTP] = SMTP,
        reactor: Any = None,
        max_connections: int | None = None,
        max_connections_per_client: int = MAX_CONNECTIONS_PER_CLIENT,
        connection_limit_exceptions: Iterable[Any] = DEFAULT_EXCEPTIONS,
        high_water_mark: int | None = None,
        shutdown_timeout: float = SHUTDOWN_TIMEOUT,
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
        @param max_connections_per_client: The most connections served at
            once for one client address (behind a PROXY header, the client
            it names); one more gets C{421 4.7.0} and is disconnected, and
            the client's other sessions go on. C{0} for no limit.
        @param connection_limit_exceptions: The addresses and networks
            (strings such as C{"10.0.0.0/8"}, or L{ipaddress} objects) that
            C{max_connections_per_client} does not limit: loopback by
            default.
        @param high_water_mark: The number of connections served at which a
            new one makes the session idle longest (without a transaction
            in progress) close with C{421}, to keep file descriptors for
            new clients; C{None} to work it out from the file descriptor
            limit when the factory starts, C{0} never to close sessions
            for that.
        @param shutdown_timeout: Seconds that the messages being received
            and the hooks working when the service stops (see
            L{shutDown}) may take to finish; C{0} to close every session
            at once.
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
        checkInt("max_connections_per_client", max_connections_per_client, 0)
        checkInt("high_water_mark", high_water_mark, 0, allowNone=True)
        checkSeconds("shutdown_timeout", shutdown_timeout)
        self.handler = handler
        self.protocol = protocol
        self.maxConnections = max_connections
        self.maxConnectionsPerClient = max_connections_per_client
        self.connectionLimitExceptions = exceptionNetworks(connection_limit_exceptions)
        self._highWaterOption = high_water_mark
        self.highWaterMark = high_water_mark or None
        self.shutdownTimeout = shutdown_timeout
        self._config = config = makeConfig(handler, reactor=reactor, **options)
        # Every open connection, served or leaving; those leaving (refused,
        # or closed to make room) are closing and are not counted as served.
        self._open = OpenConnections(config.reactor, log)
        self._leaving: set[SMTP] = set()
        self._clients = ClientCounts(
            max_connections_per_client, self.connectionLimitExceptions
        )
        self._guards: list[AcceptGuard] = []
        self._refusedFrom = Tally(config.reactor, log, _REFUSED_FROM_LOG)
        self._shed = Tally(config.reactor, log, _SHED_LOG)

    @property
    def connections(self) -> int:
        """
        How many connections are being served (not counting those refused
        for being over a limit, or closed to make room, which are closing).
        """
        return len(self._open) - len(self._leaving)

    def buildProtocol(self, addr: Any) -> SMTP:
        """
        Make the server of one connection.
        """
        p = self.protocol(self.handler, _config=self._config)
        p.factory = self
        return p

    def startFactory(self) -> None:
        """
        Work out the high-water mark from the file descriptor limit, as the
        first endpoint starts listening, unless one was given.
        """
        if self._highWaterOption is None:
            self.highWaterMark = highWaterMark(softFileLimit())

    def stopFactory(self) -> None:
        """
        Log what the flood counters still hold and stop their timers, as
        the last endpoint stops listening.
        """
        for guard in self._guards:
            guard.stop()
        self._guards = []
        self._refusedFrom.flush()
        self._shed.flush()

    def watchPort(self, port: Any) -> None:
        """
        Watch over a port this factory listens on, so that it accepts no
        more connections than there are file descriptors for, and so that
        its failures to accept (out of file descriptors) pause it briefly,
        close idle sessions, and are logged once a second at most (see
        L{twisted_smtpd._shedding}). L{SMTPService
        <twisted_smtpd.service.SMTPService>} does this for its endpoints.

        @param port: The listening port; only Twisted's TCP ports (and
            those made from them: TLS, UNIX) are watched, others ignored.
        """
        if isinstance(port, tcp.Port):
            self._guards.append(
                AcceptGuard(
                    port, self._config.reactor, self._room, self._acceptFailed, log
                )
            )

    # The connections.

    def screenConnection(self, protocol: SMTP) -> str | None:
        """
        Take note of a new connection, as its server's C{connectionMade}
        does, and say whether to serve it. At the high-water mark, the
        session idle longest is closed to make room for it.

        @param protocol: The server of the connection.
        @return: C{None} to serve it, or the reply that refuses it, after
            which the server should close it.
        """
        refusal = client = None
        served = self.connections
        if self._shuttingDown:
            refusal = SHUTTING_DOWN.format(hostname=self._config.hostname)
        elif self.maxConnections is not None and served >= self.maxConnections:
            refusal = TOO_MANY
        elif not self._config.proxy_protocol_timeout:
            # Behind a proxy the client is known after the PROXY header.
            peer = getattr(protocol.session, "peer", None)
            client = self._clients.keyFor(peer)
            if client is not None and self._clients.full(client):
                refusal, client = self._tooManyFrom(client), None
        mark = self.highWaterMark
        if (
            refusal is None
            and mark is not None
            and served >= mark
            and not self._makeRoom()
        ):
            refusal, client = TOO_MANY, None
        if client is not None:
            self._clients.add(client)
        self._open.add(protocol, client)
        if refusal is not None:
            self._leaving.add(protocol)
        return refusal

    def screenClient(self, protocol: SMTP) -> str | None:
        """
        Count a connection under the client it comes from once a PROXY
        header has named it (C{session.peer}), and say whether to serve it.

        @param protocol: The server of a connection L{screenConnection}
            admitted.
        @return: C{None} to serve it, or the reply that refuses it, after
            which the server should close it.
        """
        if protocol not in self._open or protocol in self._leaving:
            return None
        client = self._clients.keyFor(protocol.session.peer)
        if client is None:
            return None
        if self._clients.full(client):
            self._leaving.add(protocol)
            return self._tooManyFrom(client)
        self._clients.add(client)
        self._open.setClient(protocol, client)
        return None

    def admitConnection(self, protocol: SMTP) -> bool:
        """
        Take note of a new connection, as L{screenConnection} does; return
        C{False} when it is one too many, and the server should refuse it.

        @param protocol: The server of the connection.
        @return: Whether the connection is to be served.
        """
        return self.screenConnection(protocol) is None

    def releaseConnection(self, protocol: SMTP) -> None:
        """
        Forget a connection that ended, as its server's C{connectionLost}
        does; its slot is free for another. Forgetting it twice, or one
        that was never admitted, does nothing.

        @param protocol: The server of the connection.
        """
        self._leaving.discard(protocol)
        client = self._open.discard(protocol)
        if client is not None:
            self._clients.release(client)
        for guard in self._guards:
            # A descriptor is free: a port that stopped for want of them
            # may accept again.
            guard.wake()

    def _tooManyFrom(self, client: Any) -> str:
        self._refusedFrom.add(limit=self.maxConnectionsPerClient, address=str(client))
        return TOO_MANY_FROM.format(hostname=self._config.hostname, address=client)

    # Making room: see twisted_smtpd._shedding.

    def shed(self, count: int) -> int:
        """
        Close up to C{count} sessions to make room for new clients: those
        idle longest, without a transaction in progress; each is told
        C{421 4.7.0 <hostname> Too many connections, try again later}.

        @return: How many were closed.
        """
        idle = self._config.idle
        chosen = sheddable(self._open if idle is None else idle.idlest(), count)
        reply = SHED_REPLY.format(hostname=self._config.hostname)
        for protocol in chosen:
            self._leaving.add(protocol)
            protocol.disconnect(reply, SHED)
        if chosen:
            self._shed.add({"count": len(chosen)})
        return len(chosen)

    def _makeRoom(self) -> bool:
        """
        Below the high-water mark, nothing to do; at it, close the session
        idle longest.

        @return: Whether a new connection may be served.
        """
        mark = self.highWaterMark
        return mark is None or self.connections < mark or self.shed(1) == 1

    def _room(self) -> int | None:
        """
        How many more connections the ports may accept now (see
        L{twisted_smtpd._shedding.room}).
        """
        return room(len(self._open), self.highWaterMark)

    def _acceptFailed(self) -> None:
        """
        A port could not accept for want of file descriptors: close a
        sixteenth of the sessions (at least one), the idle ones.
        """
        self.shed(max(1, self.connections // 16))
