# -*- test-case-name: tests.test_service -*-
"""
Endpoint descriptions as this package reads them, split once.

A L{Description} is a description such as C{"tcp:8025:interface=127.0.0.1"}
split into its fields a single time; what L{SMTPService
<twisted_smtpd.service.SMTPService>} and C{twistd smtpd} need to know about
it (its type, its arguments, the text to give to L{serverFromString}) is
read from those fields. A L{Listener} keeps a description with the
endpoint made from it, so that the endpoint is made once and messages can
still name it as the user wrote it.
"""

from __future__ import annotations

import re
from typing import Any

from attrs import frozen
from twisted.application.internet import StreamServerEndpointService
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IProtocolFactory, IStreamServerEndpoint

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


def _unescape(text: str) -> str:
    """
    Remove the backslashes that escape characters of an endpoint
    description.
    """
    return _ESCAPED.sub(r"\1", text)


@frozen
class Description:
    """
    An endpoint description split into its fields, as L{serverFromString}
    splits it (a backslash escapes the next character).

    A bare port number such as C{"8025"} means C{"tcp:8025"}, which
    L{serverFromString} itself refuses.

    @ivar given: The description as written.
    @ivar fields: Its fields, still escaped, with C{"tcp"} first for a bare
        port number.
    """

    given: str
    fields: tuple[str, ...]

    @classmethod
    def parse(cls, given: str) -> Description:
        """
        Split a description.

        @param given: An endpoint description, e.g.
            C{"tcp:8025:interface=127.0.0.1"}, C{"unix:/run/smtpd.sock"}
            or C{"2525"}.
        """
        text = "tcp:" + given if given.isascii() and given.isdigit() else given
        return cls(given, tuple(_FIELD_SEPARATOR.split(text)))

    @property
    def proxied(self) -> bool:
        """
        Whether the description starts with C{haproxy:}, whose endpoint
        reads a PROXY header before the connection is handed on.
        """
        return self.fields[0] == "haproxy" and len(self.fields) > 1

    @property
    def kind(self) -> str:
        """
        The type of the listening socket, looking through a C{haproxy:}
        prefix: C{"tcp"} for C{"2525"} and for C{"haproxy:tcp:2525"}.
        """
        return self.fields[1] if self.proxied else self.fields[0]

    def arguments(self) -> tuple[list[str], dict[str, str]]:
        """
        Return the arguments of the listening socket's type, unescaped:
        C{"tcp:25:interface=127.0.0.1"} gives C{(["25"], {"interface":
        "127.0.0.1"})}.

        @return: The positional and the keyword arguments.
        """
        positional: list[str] = []
        keywords: dict[str, str] = {}
        for field in self.fields[2 if self.proxied else 1 :]:
            parts = _KEYWORD_SEPARATOR.split(field, maxsplit=1)
            if len(parts) == 2:
                keywords[_unescape(parts[0])] = _unescape(parts[1])
            else:
                positional.append(_unescape(field))
        return positional, keywords

    def forServer(self) -> str:
        """
        Return the description to give to L{serverFromString}: a bare port
        number completed to C{tcp:PORT}, and a C{tcp}, C{tcp6}, C{ssl} or
        C{unix} socket without C{backlog=} given L{DEFAULT_BACKLOG}.
        """
        text = ":".join(self.fields)
        if self.kind in _BACKLOG_TYPES and not any(
            f.startswith("backlog=") for f in self.fields
        ):
            text += f":backlog={DEFAULT_BACKLOG}"
        return text

    def endpoint(self, reactor: Any) -> IStreamServerEndpoint:
        """
        Make the endpoint of this description.

        @param reactor: The reactor to listen with.
        @raise ValueError: Or whatever L{serverFromString} raises for a
            description it cannot parse.
        """
        return serverFromString(reactor, self.forServer())


@frozen
class Listener:
    """
    An endpoint made once from its description, kept with the description
    so that a failure to listen can be reported as the user wrote it.

    @ivar description: The description.
    @ivar endpoint: The endpoint made from it.
    """

    description: Description
    endpoint: IStreamServerEndpoint

    @classmethod
    def make(cls, reactor: Any, given: str) -> Listener:
        """
        Parse a description and make its endpoint.

        @param reactor: The reactor to listen with.
        @param given: The description as written.
        @raise ValueError: Or whatever L{serverFromString} raises for a
            description it cannot parse.
        """
        description = Description.parse(given)
        return cls(description, description.endpoint(reactor))


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
    return Description.parse(description).forServer()


def endpointType(description: str) -> str:
    """
    Return the type of the listening socket of an endpoint description,
    looking through a C{haproxy:} prefix: C{"tcp"} for C{"2525"} and for
    C{"haproxy:tcp:2525"}, C{"ssl"} for C{"ssl:465:..."}.

    @param description: An endpoint description, as for
        L{endpointDescription}.
    """
    return Description.parse(description).kind


def endpointArguments(description: str) -> tuple[str, list[str], dict[str, str]]:
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
    parsed = Description.parse(description)
    positional, keywords = parsed.arguments()
    return parsed.kind, positional, keywords


def listeningService(
    endpoint: IStreamServerEndpoint, factory: IProtocolFactory
) -> StreamServerEndpointService:
    """
    Make the service that listens on C{endpoint}, whose
    C{privilegedStartService} raises at once when the endpoint cannot
    listen, as the services of L{twisted.application.strports.service} do
    (Twisted's service would otherwise only log the error).

    @param endpoint: Where to listen.
    @param factory: What to serve there.
    """
    service = StreamServerEndpointService(endpoint, factory)
    service._raiseSynchronously = True
    return service
