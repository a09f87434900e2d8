# -*- test-case-name: tests.test_proxyphase -*-
"""
The PROXY phase: the input mode of a connection that waits for its PROXY
protocol header, before anything else (TLS included).

The header must be complete within C{proxy_protocol_timeout}, the time
C{handle_PROXY} takes to decide included. A bad header, a refusal or the
timeout drop the connection without a word, as aiosmtpd does; otherwise
C{session.peer} becomes the client the proxy speaks for, the factory counts
the connection under that client (C{max_connections_per_client}: one too
many is told C{421} and closed), and the SMTP session begins, with the
bytes that followed the header.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from twisted_smtpd._channel import WAITING
from twisted_smtpd._connhooks import REFUSED
from twisted_smtpd._proxydata import ProxyData, ProxyError
from twisted_smtpd._proxyparser import ProxyParser

log = Logger(namespace="twisted_smtpd.server")


class ProxyHeader:
    """
    Read the PROXY header of one connection and decide on it.
    """

    reads = True
    # The idle timeout starts with the SMTP session; the header has its own.
    timed = False
    streamed = False

    def __init__(self, server: Any) -> None:
        """
        Start the header's timeout.

        @param server: The connection, a L{twisted_smtpd.SMTP}.
        """
        self._parser = ProxyParser()
        timer = server.config.reactor.callLater(
            server.config.proxy_protocol_timeout, self._timedOut, server
        )
        self._timer = timer
        server.atClose(self._stopTimer)

    def frame(self, data: bytes, start: int, config: Any) -> tuple[Any, int]:
        """
        Feed the parser; the unit is the header, or the L{ProxyError} that
        refuses it.
        """
        parser = self._parser
        try:
            header = parser.feed(data[start:] if start else data)
        except ProxyError as e:
            return e, len(data)
        if header is None:
            return None, len(data)
        return header, len(data) - len(parser.rest)

    def act(self, server: Any, unit: Any) -> None:
        """
        Refuse a bad header; have C{handle_PROXY} decide on a good one,
        reading nothing meanwhile.
        """
        if isinstance(unit, ProxyError):
            log.warn(
                "{peer} bad PROXY header: {error}", peer=server.session.peer, error=unit
            )
            server.abort()
            return
        server.session.proxy_data = unit
        server.setMode(WAITING)
        if "PROXY" not in server.config.hooks:
            self._decided(True, server, unit)
            return
        try:
            result = server.hook(
                "PROXY", lambda ok: self._decided(ok, server, unit), unit
            )
        except Exception:
            log.failure("{peer} error in handle_PROXY", peer=server.session.peer)
            server.abort()
            return
        if isinstance(result, Deferred):
            result.addErrback(self._hookFailed, server)

    def _decided(self, ok: Any, server: Any, header: ProxyData) -> None:
        """
        Begin the session if C{handle_PROXY} said so, else drop it.
        """
        if server.closing:
            return
        self._stopTimer()
        if not ok:
            log.info("{peer} refused by handle_PROXY", peer=server.session.peer)
            server.abort()
            return
        # Only now: while handle_PROXY decides, session.peer is the proxy
        # that connected, which is what a trust check needs.
        peer = header.peer()
        if peer is not None:
            server.session.peer = peer
        # The real client is known: count it against its limit.
        factory = server.factory
        refusal = None if factory is None else factory.screenClient(server)
        if refusal is not None:
            server.disconnect(refusal, REFUSED)
            return
        server.begin()

    def _hookFailed(self, failure: Failure, server: Any) -> None:
        log.failure("{peer} error in handle_PROXY", failure, peer=server.session.peer)
        server.abort()

    def _timedOut(self, server: Any) -> None:
        log.info("{peer} sent no PROXY header in time", peer=server.session.peer)
        server.abort()

    def _stopTimer(self) -> None:
        if self._timer.active():
            self._timer.cancel()
