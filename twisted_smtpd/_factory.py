# -*- test-case-name: tests.test_factory -*-
"""
L{SMTPFactory}: one validated configuration, one protocol per connection.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.protocol import ServerFactory

from twisted_smtpd._config import makeConfig
from twisted_smtpd._protocol import SMTP


class SMTPFactory(ServerFactory):
    """
    Build an L{SMTP} server (or C{protocol}) for each connection, all sharing
    one handler and one set of options that are checked once, here.

    @ivar handler: The handler given to every connection.
    @ivar protocol: The protocol class, L{SMTP} or a subclass.
    """

    noisy = False

    def __init__(
        self,
        handler: Any,
        *,
        protocol: type[SMTP] = SMTP,
        reactor: Any = None,
        **options: Any,
    ) -> None:
        """
        @param handler: The object whose C{handle_*} hooks decide what
            happens; see L{SMTP}.
        @param protocol: L{SMTP}, or a subclass that adds or changes
            commands.
        @param reactor: The reactor for timers; the global one by default.
        @param options: The options of L{SMTP}.
        @raise TypeError: For an unknown option or a value of the wrong type.
        @raise ValueError: For a value out of range or a bad combination.
        """
        if not (isinstance(protocol, type) and issubclass(protocol, SMTP)):
            raise TypeError(f"protocol must be a subclass of SMTP, not {protocol!r}")
        self.handler = handler
        self.protocol = protocol
        self._config = makeConfig(handler, reactor=reactor, **options)

    def buildProtocol(self, addr: Any) -> SMTP:
        """
        Make the server of one connection.
        """
        p = self.protocol(self.handler, _config=self._config)
        p.factory = self
        return p
