# -*- test-case-name: tests.test_factory -*-
"""
L{SMTPFactory}: one validated configuration, one protocol per connection.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.protocol import ServerFactory

from twisted_smtpd._config import makeConfig
from twisted_smtpd._smtp import SMTP


class SMTPFactory(ServerFactory):
    """
    Build an L{SMTP} server (or C{protocol}) for each connection, all sharing
    one handler and one set of options that are checked once, here.

    @ivar handler: The handler given to every connection.
    @ivar protocol: The protocol class, L{SMTP} or a subclass.
    @ivar connections: How many connections are being served.
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
        self.connections = 0
        self._config = makeConfig(handler, reactor=reactor, **options)

    def buildProtocol(self, addr: Any) -> SMTP:
        """
        Make the server of one connection.
        """
        p = self.protocol(self.handler, _config=self._config)
        p.factory = self
        return p

    def admitConnection(self, protocol: SMTP) -> bool:
        """
        Count a new connection; return C{False} when it is one too many.
        """
        if self.maxConnections is not None and self.connections >= self.maxConnections:
            return False
        protocol._counted = True
        self.connections += 1
        return True

    def releaseConnection(self, protocol: SMTP) -> None:
        """
        Forget a connection that ended.
        """
        if protocol.__dict__.pop("_counted", False):
            self.connections -= 1
