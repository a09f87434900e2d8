# -*- test-case-name: tests.test_inboxweb -*-
"""
The service of C{twistd smtpd --web}: the server's service, plus the web
inbox, which it starts and stops with it.
"""

from __future__ import annotations

from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred
from twisted.logger import Logger

from twisted_smtpd._daemon import CommandLineService, StartupError

__all__ = ["WebInboxCommandLineService"]

log = Logger(namespace="twisted_smtpd.tap")


class WebInboxCommandLineService(CommandLineService):
    """
    A L{CommandLineService} that also serves the web inbox of C{--web}.

    The web inbox's service is not one of its children, which are its SMTP
    listeners: it is started after them, as they are (before C{twistd}
    gives up root, and again if that did not happen), and a port it cannot
    listen on is logged as one line and raises L{StartupError}, as theirs
    are.

    @ivar webService: The service of the web inbox.
    @ivar webDescription: Its endpoint, as given, for messages.
    """

    def __init__(
        self,
        *args: Any,
        webService: StreamServerEndpointService,
        webDescription: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.webService = webService
        self.webDescription = webDescription
        # Raise a failure to listen instead of logging it.
        webService._raiseSynchronously = True

    def privilegedStartService(self) -> None:
        """
        Listen on every endpoint, then on the web inbox's.

        @raise StartupError: For an endpoint that cannot listen.
        """
        super().privilegedStartService()
        self._listenWeb()

    def startService(self) -> None:
        """
        Start serving, on the web inbox's endpoint too.

        @raise StartupError: For an endpoint that cannot listen.
        """
        super().startService()
        self._listenWeb()
        if not self.webService.running:
            self.webService.startService()

    def stopService(self) -> Deferred[Any]:
        """
        Stop listening, on the web inbox's endpoint too.
        """
        stops = [maybeDeferred(super().stopService)]
        if self.webService.running:
            stops.append(maybeDeferred(self.webService.stopService))
        return gatherResults(stops)

    def _listenWeb(self) -> None:
        if getattr(self.webService, "_waitingForPort", None) is not None:
            return
        try:
            self.webService.privilegedStartService()
        except Exception as e:
            self.webService._waitingForPort = None
            reason = getattr(e, "socketError", None) or e
            reason = getattr(reason, "strerror", None) or reason
            line = "smtpd: {reason}: cannot listen on --web {endpoint}"
            fields = {"reason": str(reason), "endpoint": self.webDescription}
            log.critical(line, **fields)
            raise StartupError(line.format(**fields)) from None
