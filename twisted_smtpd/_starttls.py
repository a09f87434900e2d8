# -*- test-case-name: tests.test_tls,tests.test_handshake -*-
"""
STARTTLS (RFC 3207) as a command group.
"""

from __future__ import annotations

from typing import Any

from twisted_smtpd._interfaces import ServerCore
from twisted_smtpd._syntax import syntax
from twisted_smtpd._verbs import CommandGroup, verb


class StartTLS(CommandGroup):
    """
    The STARTTLS command and keyword, offered while the connection is in
    plaintext and C{tls_context} is given.
    """

    def keywords(self, server: ServerCore) -> list[str]:
        if server.config.tls_context is not None and not server.tlsActive:
            return ["STARTTLS"]
        return []

    @verb("STARTTLS")
    @syntax("STARTTLS", when="tls_context")
    def starttls(self, server: ServerCore, arg: str | None) -> None:
        """
        Start TLS on this connection (RFC 3207).
        """
        if arg:
            server.reply("501 Syntax: STARTTLS")
        elif server.tlsActive:
            server.reply("503 Error: TLS already active")
        elif server.config.tls_context is None:
            server.reply("454 TLS not available")
        else:
            server.reply("220 Ready to start TLS")
            server.startTLS().addCallback(self._started, server)

    def _started(self, details: dict[str, Any], server: ServerCore) -> None:
        """
        TLS is up: forget everything the plaintext session established (RFC
        3207 section 4.2) but the facts of the connection itself, then let
        C{handle_STARTTLS} decide whether the session may go on.
        """
        server.resetTransaction()
        server.resetSession()
        if "STARTTLS" in server.config.hooks:
            server.run(server.hook, "STARTTLS", self._decided(server))

    def _decided(self, server: ServerCore) -> Any:
        def decided(ok: Any) -> None:
            if not ok:
                # Every command but QUIT is refused from now on.
                server.refuseAll()

        return decided
