# -*- test-case-name: tests.test_controller -*-
"""
The sessions of a L{Controller <twisted_smtpd.controller.Controller>}: the
factory wrapper that tracks them while it listens, and their graceful
shutdown when it stops.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.interfaces import ILoggingContext
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper
from twisted.python.failure import Failure

from twisted_smtpd._connections import OpenConnections
from twisted_smtpd._factory import SMTPFactory

__all__ = ["DROP_WAIT", "Sessions", "TrackingFactory", "Watched"]

#: Seconds C{stop()} gives the sessions still open after the grace period
#: to take their C{421} reply and close, before it cuts them off.
DROP_WAIT = 1.0

log = Logger(namespace="twisted_smtpd.controller")


class Sessions:
    """
    The open connections of one listening period, and the graceful end of
    them: wait, then say C{421} and close, then cut off.

    An L{SMTPFactory} keeps its own connections, and this asks it to end
    them (all of them: those it serves on other ports too, if C{factory()}
    shares one); the connections of another factory are watched here,
    through the L{Watched} wrappers of L{TrackingFactory}.
    """

    def __init__(self, reactor: Any, controller: Any) -> None:
        self._controller = controller
        self._factories: list[SMTPFactory] = []
        self._others = OpenConnections(reactor, log)

    def watch(self, factory: ServerFactory) -> bool:
        """
        Take note of a factory of this period.

        @return: Whether it keeps its connections itself (an
            L{SMTPFactory}); if not, they are to be reported to L{opened}
            and L{closed}.
        """
        if not isinstance(factory, SMTPFactory):
            return False
        if factory not in self._factories:
            self._factories.append(factory)
        return True

    def built(self, protocol: Protocol) -> None:
        """
        Take note of the protocol of the latest connection.
        """
        self._controller.smtpd = protocol

    def opened(self, protocol: Protocol) -> None:
        """
        Watch the protocol of a connection, of a factory that does not keep
        its own, until L{closed}.
        """
        self._others.add(protocol)

    def closed(self, protocol: Protocol) -> None:
        """
        Forget the protocol of a connection that ended.
        """
        self._others.discard(protocol)

    def close(self, grace: float) -> Deferred[None]:
        """
        Shut the sessions down (see L{SMTPFactory.shutDown}): those waiting
        for a command are told that the service is shutting down (RFC 5321
        section 3.8) and closed at once, the work under way may take
        C{grace} seconds to finish and be answered; then the sessions
        still there are told so and closed, and those still open cut off
        L{DROP_WAIT} seconds later. Another factory's connections are
        waited for, at most C{grace} seconds, then closed.

        @return: A L{Deferred} firing once no connection is left.
        """
        closing = [f.shutDown(grace, DROP_WAIT) for f in self._factories]
        closing.append(self._others.close(grace, DROP_WAIT))
        d = gatherResults(closing, consumeErrors=True)
        return d.addCallback(lambda _: None)


class Watched(ProtocolWrapper):
    """
    The protocol of a connection made by a factory other than
    L{SMTPFactory}, wrapped so that L{Sessions} hears when it ends. The
    wrapped protocol sees its C{connectionLost} before L{Sessions} does.
    """

    def logPrefix(self) -> str:
        # The transport's log lines name the wrapped protocol, as unwrapped.
        inner = self.wrappedProtocol
        if ILoggingContext.providedBy(inner):
            return inner.logPrefix()
        return inner.__class__.__name__

    def connectionLost(self, reason: Failure) -> None:
        try:
            self.wrappedProtocol.connectionLost(reason)
        finally:
            self.factory.unregisterProtocol(self)
            self.wrappedProtocol = None


class TrackingFactory(ServerFactory):
    """
    Serve with another factory while keeping the connections it makes, so
    that L{Sessions} can wait for them and end them.

    The protocols of an L{SMTPFactory}, which keeps its own connections,
    are served as they are; those of another factory are wrapped in a
    L{Watched}.
    """

    noisy = False

    def __init__(self, wrapped: ServerFactory, sessions: Sessions) -> None:
        self.wrapped = wrapped
        self._sessions = sessions
        self._keepsItsOwn = sessions.watch(wrapped)

    def doStart(self) -> None:
        self.wrapped.doStart()

    def doStop(self) -> None:
        self.wrapped.doStop()

    def logPrefix(self) -> str:
        return self.wrapped.logPrefix()

    def buildProtocol(self, addr: Any) -> Protocol | None:
        protocol = self.wrapped.buildProtocol(addr)
        if protocol is None:
            return None
        self._sessions.built(protocol)
        if self._keepsItsOwn:
            return protocol
        return Watched(self, protocol)

    def registerProtocol(self, wrapper: ProtocolWrapper) -> None:
        """
        Watch a connection that opened, as its L{Watched} says.
        """
        self._sessions.opened(wrapper.wrappedProtocol)

    def unregisterProtocol(self, wrapper: ProtocolWrapper) -> None:
        """
        Forget a connection that ended, as its L{Watched} says.
        """
        self._sessions.closed(wrapper.wrappedProtocol)
