# -*- test-case-name: tests.test_handshake -*-
"""
The deadline of a TLS handshake, and the one log line of a handshake that
did not complete.

A client that says STARTTLS and then nothing, or sends half a ClientHello
and stops, would otherwise hold its connection for as long as the idle
timeout, or for ever without one: no SMTP reply can be sent in the middle
of a handshake to tell it off. L{Handshake} gives each handshake
C{tls_handshake_timeout} seconds and then aborts the connection. A
L{DelayedCall} per handshake is cheap: handshakes are few and short, unlike
the idle connections that share one L{IdleTimer
<twisted_smtpd._idle.IdleTimer>}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

log = Logger(namespace="twisted_smtpd.server")


class Handshake:
    """
    One TLS handshake under way on a connection: its deadline, and what is
    logged if it never completes. The idle clock of the connection waits
    while it is under way: the handshake has its own time.
    """

    __slots__ = ("_connection", "_call", "_timedOut", "waiter")

    def __init__(self, connection: Any, waiter: Deferred | None = None) -> None:
        """
        Start the deadline of a handshake that begins now.

        @param connection: The L{ServerCore
            <twisted_smtpd._interfaces.ServerCore>} whose transport does the
            handshake; it provides the options and is aborted when the time
            is up.
        @param waiter: A L{Deferred} to fire with the TLS details once the
            handshake is complete (STARTTLS waits on it), or C{None}.
        """
        self.waiter = waiter
        config = connection.config
        if config.idle is not None:
            config.idle.forget(connection)
        self._connection = connection
        self._timedOut = False
        self._call = config.reactor.callLater(
            config.tls_handshake_timeout, self._expired
        )

    def completed(self, details: Any = None) -> None:
        """
        The handshake is complete: the deadline no longer applies, and the
        waiter, if any, gets C{details}.
        """
        if self._call.active():
            self._call.cancel()
        waiter, self.waiter = self.waiter, None
        if waiter is not None:
            waiter.callback(details)

    def lost(self, reason: Any) -> None:
        """
        The connection was lost before the handshake completed: log why,
        unless the deadline said so already.

        @param reason: The L{Failure <twisted.python.failure.Failure>} of
            the loss, or C{None}.
        """
        # The waiter is left waiting: nothing is to be done over TLS.
        if self._call.active():
            self._call.cancel()
        if not self._timedOut:
            log.info(
                "{peer} TLS handshake failed: {reason}",
                peer=self._connection.session.peer,
                reason=reason.getErrorMessage() if reason is not None else None,
            )

    def _expired(self) -> None:
        connection = self._connection
        if connection.closing:
            # Being closed already, for another reason.
            return
        self._timedOut = True
        log.info(
            "{peer} TLS handshake timed out after {timeout} seconds",
            peer=connection.session.peer,
            timeout=connection.config.tls_handshake_timeout,
        )
        connection.abort()
