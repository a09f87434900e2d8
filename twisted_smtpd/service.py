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

import re
from collections.abc import Iterable
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.application.strports import service as strportsService
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint

from twisted_smtpd._factory import SMTPFactory

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

#: The listen queue given to C{tcp}, C{tcp6}, C{ssl} and C{unix} endpoints
#: that do not set C{backlog=}; Twisted's own default of 50 makes a burst of
#: a hundred clients see refused or stalled connections.
DEFAULT_BACKLOG = 1024

_BACKLOG_TYPES = frozenset(["tcp", "tcp6", "ssl", "unix"])

# A colon not escaped by a backslash separates the fields of a description.
_FIELD_SEPARATOR = re.compile(r"(?<!\\):")
# And an equals sign not escaped, a keyword from its value.
_KEYWORD_SEPARATOR = re.compile(r"(?<!\\)=")
_ESCAPED = re.compile(r"\\(.)")


def endpointDescription(description: str) -> str:
    """
    Complete a server endpoint description as this package reads it.

    A bare port number such as C{"8025"} means C{"tcp:8025"} (all
    interfaces), which L{serverFromString
    <twisted.internet.endpoints.serverFromString>} itself refuses; and a
    C{tcp}, C{tcp6}, C{ssl} or C{unix} endpoint (also behind C{haproxy:})
    without a C{backlog=} gets C{backlog=1024} (L{DEFAULT_BACKLOG}).

    @param description: An endpoint description, e.g.
        C{"tcp:8025:interface=127.0.0.1"}, C{"unix:/run/smtpd.sock"} or
        C{"2525"}.
    @return: The description to give to C{serverFromString}.
    """
    if description.isascii() and description.isdigit():
        description = "tcp:" + description
    fields = _FIELD_SEPARATOR.split(description)
    if endpointType(description) in _BACKLOG_TYPES and not any(
        f.startswith("backlog=") for f in fields
    ):
        description += f":backlog={DEFAULT_BACKLOG}"
    return description


def endpointType(description: str) -> str:
    """
    Return the type of the listening socket of an endpoint description,
    looking through a C{haproxy:} prefix: C{"tcp"} for C{"2525"} and for
    C{"haproxy:tcp:2525"}, C{"ssl"} for C{"ssl:465:..."}.

    @param description: An endpoint description, as for
        L{endpointDescription}.
    """
    if description.isascii() and description.isdigit():
        return "tcp"
    fields = _FIELD_SEPARATOR.split(description)
    if fields[0] == "haproxy" and len(fields) > 1:
        return fields[1]
    return fields[0]


def _endpointArguments(description: str) -> tuple[str, list[str], dict[str, str]]:
    """
    Split an endpoint description into its type, positional arguments and
    keyword arguments, as L{serverFromString
    <twisted.internet.endpoints.serverFromString>} reads it (a backslash
    escapes the next character), looking through a C{haproxy:} prefix:
    C{"tcp:2525:interface=127.0.0.1"} gives C{("tcp", ["2525"],
    {"interface": "127.0.0.1"})}, and C{"2525"} gives C{("tcp", ["2525"],
    {})}.

    @param description: An endpoint description, as for
        L{endpointDescription}.
    @return: The type, and the positional and keyword arguments, unescaped.
    """
    if description.isascii() and description.isdigit():
        description = "tcp:" + description
    fields = _FIELD_SEPARATOR.split(description)
    if fields[0] == "haproxy" and len(fields) > 1:
        fields = fields[1:]
    positional: list[str] = []
    keywords: dict[str, str] = {}
    for field in fields[1:]:
        parts = _KEYWORD_SEPARATOR.split(field, maxsplit=1)
        if len(parts) == 2:
            keywords[_unescape(parts[0])] = _unescape(parts[1])
        else:
            positional.append(_unescape(field))
    return fields[0], positional, keywords


def _unescape(text: str) -> str:
    """
    Remove the backslashes that escape characters of an endpoint
    description.
    """
    return _ESCAPED.sub(r"\1", text)


class SMTPService(MultiService):
    """
    One L{SMTPFactory} listening on several endpoints.

    Each endpoint is a child L{StreamServerEndpointService}; starting this
    service starts listening on all of them, stopping it stops listening
    (connections already open are not cut). Attach it to an application or
    to any running L{MultiService} with C{setServiceParent}; a port that
    cannot be bound (e.g. already in use) makes C{startService} raise.

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
        if reactor is None:
            from twisted.internet import reactor
        for endpoint in endpoints:
            if isinstance(endpoint, str):
                child = strportsService(endpointDescription(endpoint), factory, reactor)
            else:
                child = StreamServerEndpointService(endpoint, factory)
            child.setServiceParent(self)

    def whenListening(self) -> Deferred[list[IListeningPort | None]]:
        """
        Wait until every endpoint listens, for example to learn the port
        number the system chose for C{tcp:0}.

        @return: A L{Deferred} firing with the L{IListeningPort} of each
            endpoint, in the order given (C{None} for one that failed to
            listen; its error is logged).
        @raise RuntimeError: If the service has not been started.
        """
        waiting = [getattr(child, "_waitingForPort", None) for child in self]
        if not self.running or None in waiting:
            raise RuntimeError("the service is not started")
        return gatherResults(waiting)


def makeService(
    handler: Any,
    endpoints: Iterable[str | IStreamServerEndpoint] = DEFAULT_ENDPOINTS,
    *,
    reactor: Any = None,
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
    @param options: The options of L{SMTPFactory} (C{protocol=},
        C{hostname=}, C{data_size_limit=}...).
    @return: An L{SMTPService} to start, or to attach with
        C{setServiceParent}.
    @raise TypeError: For an unknown option or a value of the wrong type.
    @raise ValueError: For a bad option value or endpoint description.
    """
    factory = SMTPFactory(handler, reactor=reactor, **options)
    return SMTPService(factory, endpoints, reactor=reactor)
