# -*- test-case-name: tests.test_service -*-
"""
Run an SMTP server as a Twisted service, on any number of endpoints.

L{makeService} is the short way: it builds one L{SMTPFactory} and returns an
L{SMTPService} listening on each endpoint description, ready to be started
by C{twistd} or attached to an existing application::

    from twisted.application.service import Application
    from twisted_smtpd.service import makeService

    application = Application("smtpd")
    smtp = makeService(MyHandler(), ["tcp:8025:interface=127.0.0.1"],
                       hostname="mx.example")
    smtp.setServiceParent(application)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint

from twisted_smtpd._endpoints import (
    DEFAULT_BACKLOG,
    Description,
    endpointDescription,
    endpointType,
    listeningService,
)
from twisted_smtpd._factory import SMTPFactory
from twisted_smtpd._inboxweb import inboxWebService

__all__ = [
    "DEFAULT_BACKLOG",
    "DEFAULT_ENDPOINTS",
    "SMTPService",
    "endpointDescription",
    "endpointType",
    "makeService",
]

#: Where the server listens when no endpoint is given: aiosmtpd's port,
#: loopback only.
DEFAULT_ENDPOINTS = ("tcp:8025:interface=127.0.0.1",)


class SMTPService(MultiService):
    """
    One L{SMTPFactory} listening on several endpoints.

    Each endpoint is a child L{StreamServerEndpointService}; starting this
    service starts listening on all of them; stopping it (as C{twistd} does
    on SIGTERM) stops listening, then shuts the open sessions down
    gracefully (see L{SMTPFactory.shutDown}): those waiting for a command
    are told C{421} at once, the messages being received and the hooks
    working get C{shutdown_timeout} seconds to finish and be answered.
    Attach it to an application or to any running L{MultiService} with
    C{setServiceParent}; a port that
    cannot be bound (e.g. already in use) makes C{startService} raise.

    Each port that listens is given to L{SMTPFactory.watchPort}, which
    deals with its failures to accept when file descriptors run out.

    @ivar factory: The factory shared by every endpoint.
    """

    def __init__(
        self,
        factory: SMTPFactory,
        endpoints: Iterable[str | IStreamServerEndpoint] = DEFAULT_ENDPOINTS,
        *,
        reactor: Any = None,
    ) -> None:
        """
        @param factory: The factory that builds a server per connection.
        @param endpoints: Endpoint descriptions (see L{endpointDescription})
            or L{IStreamServerEndpoint} providers.
        @param reactor: The reactor to listen with; the global one by
            default.
        @raise ValueError: For a description that cannot be parsed.
        """
        super().__init__()
        self.factory = factory
        # The Deferreds of the ports already given to the factory to watch.
        self._watched: list[Deferred[IListeningPort]] = []
        if reactor is None:
            from twisted.internet import reactor
        for endpoint in endpoints:
            if isinstance(endpoint, str):
                parsed = Description.parse(endpoint).endpoint(reactor)
                child = listeningService(parsed, factory)
            else:
                child = StreamServerEndpointService(endpoint, factory)
            child.setServiceParent(self)

    def privilegedStartService(self) -> None:
        """
        Listen on every endpoint (before C{twistd} gives up root).
        """
        super().privilegedStartService()
        self.watchPorts()

    def startService(self) -> None:
        """
        Listen on every endpoint that does not listen yet.
        """
        super().startService()
        self.watchPorts()

    def stopService(self) -> Deferred[None]:
        """
        Stop listening on every endpoint, then shut the open sessions down
        (see L{SMTPFactory.shutDown}), within the factory's
        C{shutdown_timeout}.

        @return: A L{Deferred} firing once the ports are closed and no
            session is left: C{twistd} waits for it before the process
            exits.
        """
        stopping = super().stopService()
        if stopping is None:
            stopping = succeed(None)
        return stopping.addBoth(lambda _: self.factory.shutDown())

    def watchPorts(self) -> None:
        """
        Have the factory watch over each port once it listens (see
        L{SMTPFactory.watchPort}), once.
        """
        for child in self.endpointServices():
            waiting = getattr(child, "_waitingForPort", None)
            if waiting is None or any(waiting is w for w in self._watched):
                continue
            self._watched.append(waiting)
            waiting.addCallback(self._watchPort)

    def _watchPort(self, port: IListeningPort) -> IListeningPort:
        self.factory.watchPort(port)
        return port

    def endpointServices(self) -> list[Any]:
        """
        The children that listen for SMTP clients, in the order of their
        endpoints: every child but the listener of the metrics (see
        L{makeService}'s C{metrics}).
        """
        return [
            child
            for child in self
            if not (
                getattr(child, "servesMetrics", False)
                or getattr(child, "servesWeb", False)
            )
        ]

    def whenListening(self) -> Deferred[list[IListeningPort | None]]:
        """
        Wait until every endpoint listens, for example to learn the port
        number the system chose for C{tcp:0}.

        @return: A L{Deferred} firing with the L{IListeningPort} of each
            endpoint, in the order given (C{None} for one that failed to
            listen; its error is logged).
        @raise RuntimeError: If the service has not been started.
        """
        waiting = [
            getattr(child, "_waitingForPort", None) for child in self.endpointServices()
        ]
        if not self.running or None in waiting:
            raise RuntimeError("the service is not started")
        return gatherResults(waiting)


def makeService(
    handler: Any,
    endpoints: Iterable[str | IStreamServerEndpoint] = DEFAULT_ENDPOINTS,
    *,
    reactor: Any = None,
    metrics: str | IStreamServerEndpoint | None = None,
    web: str | None = None,
    web_maildir: str | None = None,
    **options: Any,
) -> SMTPService:
    """
    Make a service that serves C{handler} over SMTP on each endpoint.

    @param handler: The handler object, as for L{SMTPFactory}.
    @param endpoints: Endpoint descriptions such as
        C{"tcp:8025:interface=127.0.0.1"}, C{"tcp6:25"}, C{"unix:PATH"},
        C{"ssl:465:privateKey=KEY:certKey=CERT"}, a bare port number, or
        L{IStreamServerEndpoint} providers.
    @param reactor: The reactor for listening and timers; the global one by
        default.
    @param metrics: Where to serve Prometheus metrics at C{/metrics} (see
        L{twisted_smtpd.metrics}): an endpoint description such as
        C{"tcp:9101:interface=127.0.0.1"} (a bare port listens on loopback)
        or an L{IStreamServerEndpoint}; C{None} (the default) for none.
    @param web: An endpoint description to serve a web inbox on (see
        C{docs/inbox.rst}; a bare port listens on loopback only): an
        L{Inbox <twisted_smtpd.handlers.Inbox>} handler is shown there, and
        any other handler is followed by an inbox that keeps every message
        whatever the handler replied.
    @param web_maildir: With C{web}, a Maildir the inbox keeps its
        messages in too, so that they survive a restart (see
        L{Inbox <twisted_smtpd.handlers.Inbox>}); C{None} (the default)
        keeps them in memory only.
    @param options: The options of L{SMTPFactory} (C{protocol=},
        C{hostname=}, C{data_size_limit=}...).
    @return: An L{SMTPService} to start, or to attach with
        C{setServiceParent}.
    @raise TypeError: For an unknown option or a value of the wrong type.
    @raise ValueError: For a bad option value or endpoint description.
    @raise ImportError: For C{metrics} without C{prometheus_client}.
    """
    inboxService = None
    if web is not None:
        handler, inboxService = inboxWebService(
            handler, web, reactor=reactor, maildir=web_maildir
        )
    factory = SMTPFactory(handler, reactor=reactor, **options)
    service = SMTPService(factory, endpoints, reactor=reactor)
    if metrics is not None:
        from twisted_smtpd._metrics import serveMetrics

        serveMetrics(service, metrics, reactor)
    if inboxService is not None:
        # Not an SMTP listener (see SMTPService.endpointServices).
        inboxService.servesWeb = True
        inboxService.setServiceParent(service)
    return service
