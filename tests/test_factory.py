"""
Tests for L{twisted_smtpd.SMTPFactory}: the validation of its own options,
the servers it builds, the connections it counts and limits, and the
graceful end of them with L{SMTPFactory.closeConnections}, in memory with
L{StringTransport} and a L{Clock}: no sockets, no real time.
"""

from __future__ import annotations

from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from twisted_smtpd import LMTP, SMTP, SMTPFactory

HOSTNAME = "mx.example.test"

GOODBYE = (
    f"421 4.3.2 {HOSTNAME} Service shutting down, closing transmission channel\r\n"
).encode()

TOO_MANY = b"421 4.3.2 Too many connections, try again later\r\n"


class Handler:
    """
    A handler with no hooks: the server's defaults decide everything.
    """


class OptionsTests(SynchronousTestCase):
    """
    L{SMTPFactory} checks the options it takes for itself (C{protocol} and
    C{max_connections}; the connection limits and the high-water mark are
    tested in C{test_clientlimit} and C{test_filelimit}) when it is made.
    """

    def test_protocolNotAClass(self) -> None:
        """
        A C{protocol} that is not a class is refused with a L{TypeError}
        naming it.
        """
        e = self.assertRaises(
            TypeError, SMTPFactory, Handler(), protocol=SMTP(Handler())
        )
        self.assertIn("protocol must be a subclass of SMTP", str(e))

    def test_protocolNotSMTP(self) -> None:
        """
        A C{protocol} class that is not L{SMTP} or a subclass of it is
        refused with a L{TypeError}.
        """
        e = self.assertRaises(TypeError, SMTPFactory, Handler(), protocol=Protocol)
        self.assertIn("not <class 'twisted.internet.protocol.Protocol'>", str(e))

    def test_protocolSubclass(self) -> None:
        """
        A subclass of L{SMTP}, such as L{LMTP}, is the class the factory
        builds servers of.
        """
        factory = SMTPFactory(Handler(), protocol=LMTP, reactor=Clock())
        self.assertIs(factory.protocol, LMTP)
        self.assertIsInstance(factory.buildProtocol(None), LMTP)

    def test_maxConnectionsInvalid(self) -> None:
        """
        C{max_connections} must be a positive C{int}: zero, a negative
        number, a C{bool}, a C{float} or a string are refused with a
        L{ValueError} naming the value.
        """
        for value in (0, -1, True, 1.5, "3"):
            e = self.assertRaises(
                ValueError, SMTPFactory, Handler(), max_connections=value
            )
            self.assertIn(f"not {value!r}", str(e))

    def test_maxConnectionsValid(self) -> None:
        """
        C{max_connections} is kept as L{SMTPFactory.maxConnections}; it is
        C{None}, no limit, by default.
        """
        self.assertIsNone(SMTPFactory(Handler()).maxConnections)
        self.assertEqual(SMTPFactory(Handler(), max_connections=1).maxConnections, 1)

    def test_unknownOption(self) -> None:
        """
        An option that L{SMTP} does not know either is refused with a
        L{TypeError}.
        """
        self.assertRaises(TypeError, SMTPFactory, Handler(), no_such_option=1)


class _FactoryTestCase(SynchronousTestCase):
    """
    Connections to an L{SMTPFactory} on a L{Clock}, made as a listening
    port makes them.
    """

    def makeFactory(self, **options: object) -> SMTPFactory:
        """
        Make the factory under test, with no idle timeout so that the
        clock holds only the timers of what is tested.
        """
        self.clock = Clock()
        self.factory = SMTPFactory(
            Handler(), reactor=self.clock, timeout=None, hostname=HOSTNAME, **options
        )
        return self.factory

    def connect(self) -> SMTP:
        """
        Build a server and connect it to a L{StringTransport}; return it
        with its greeting (or refusal) cleared from the transport.
        """
        server = self.factory.buildProtocol(None)
        server.makeConnection(StringTransport())
        server.transport.clear()
        return server

    def lose(self, server: Protocol) -> None:
        """
        Tell C{server} its connection ended, as the transport would.
        """
        server.connectionLost(Failure(ConnectionDone()))


class ConnectionsTests(_FactoryTestCase):
    """
    The servers of an L{SMTPFactory} tell it of each connection
    (C{admitConnection} and C{releaseConnection}), so that it counts them
    and enforces C{max_connections}.
    """

    def test_buildProtocol(self) -> None:
        """
        The server of each connection is new, has the factory's handler and
        knows its factory.
        """
        factory = self.makeFactory()
        first, second = factory.buildProtocol(None), factory.buildProtocol(None)
        self.assertIsNot(first, second)
        self.assertIs(first.factory, factory)
        self.assertIs(first.event_handler, factory.handler)

    def test_counted(self) -> None:
        """
        L{SMTPFactory.connections} goes up as connections open and down as
        they end.
        """
        factory = self.makeFactory()
        self.assertEqual(factory.connections, 0)
        first, second = self.connect(), self.connect()
        self.assertEqual(factory.connections, 2)
        self.lose(first)
        self.assertEqual(factory.connections, 1)
        self.lose(second)
        self.assertEqual(factory.connections, 0)

    def test_releaseTwice(self) -> None:
        """
        Releasing a connection twice, or one never admitted, changes
        nothing.
        """
        factory = self.makeFactory()
        server = self.connect()
        self.connect()
        factory.releaseConnection(server)
        factory.releaseConnection(server)
        factory.releaseConnection(factory.buildProtocol(None))
        self.assertEqual(factory.connections, 1)

    def test_overLimitRefused(self) -> None:
        """
        Over C{max_connections}, C{admitConnection} says no, the client is
        told C{421} and the connection is not counted; its end frees no
        slot.
        """
        factory = self.makeFactory(max_connections=1)
        self.connect()
        refused = factory.buildProtocol(None)
        refused.makeConnection(StringTransport())
        self.assertEqual(refused.transport.value(), TOO_MANY)
        self.assertEqual(factory.connections, 1)
        self.lose(refused)
        self.assertEqual(factory.connections, 1)
        self.assertFalse(factory.admitConnection(factory.buildProtocol(None)))

    def test_slotFreed(self) -> None:
        """
        Once a served connection ends, C{admitConnection} admits the next.
        """
        factory = self.makeFactory(max_connections=1)
        server = self.connect()
        self.assertFalse(factory.admitConnection(factory.buildProtocol(None)))
        self.lose(server)
        self.assertTrue(factory.admitConnection(factory.buildProtocol(None)))

    def test_screenConnection(self) -> None:
        """
        L{SMTPFactory.screenConnection} gives C{None} for a connection to
        serve and the reply refusing one too many, which is then not counted
        as served.
        """
        factory = self.makeFactory(max_connections=1)
        self.assertIsNone(factory.screenConnection(factory.buildProtocol(None)))
        self.assertEqual(
            factory.screenConnection(factory.buildProtocol(None)),
            TOO_MANY.decode().rstrip("\r\n"),
        )
        self.assertEqual(factory.connections, 1)

    def test_screenClientWithoutProxy(self) -> None:
        """
        L{SMTPFactory.screenClient} does nothing for a connection that is
        not open, or is already refused.
        """
        factory = self.makeFactory(max_connections=1)
        served, refused = self.connect(), self.connect()
        self.assertIsNone(factory.screenClient(factory.buildProtocol(None)))
        self.assertIsNone(factory.screenClient(refused))
        self.assertEqual(factory.connections, 1)
        self.assertFalse(served.transport.disconnecting)

    def test_nothingStoredOnServer(self) -> None:
        """
        Keeping track of a connection adds nothing to its server's
        attributes: the factory holds it, at the cost of one dict entry.
        """
        factory = self.makeFactory(max_connections=1)
        served, refused = factory.buildProtocol(None), factory.buildProtocol(None)
        before = (dict(vars(served)), dict(vars(refused)))
        self.assertTrue(factory.admitConnection(served))
        self.assertFalse(factory.admitConnection(refused))
        factory.releaseConnection(served)
        factory.releaseConnection(refused)
        self.assertEqual((vars(served), vars(refused)), before)


class CloseConnectionsTests(_FactoryTestCase):
    """
    L{SMTPFactory.closeConnections} waits for the open connections, then
    says C{421} and closes them, then cuts them off.
    """

    def setUp(self) -> None:
        self.makeFactory()

    def test_nothingOpen(self) -> None:
        """
        With no connection open, closing is done at once, with no timer.
        """
        self.assertIsNone(self.successResultOf(self.factory.closeConnections(5)))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_waitsForEveryConnection(self) -> None:
        """
        Closing waits until the last connection ends within the grace
        period, then leaves no timer behind; the clients heard nothing.
        """
        first, second = self.connect(), self.connect()
        done = self.factory.closeConnections(5)
        self.clock.advance(4)
        self.lose(first)
        self.assertNoResult(done)
        self.lose(second)
        self.successResultOf(done)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(first.transport.value(), b"")
        self.assertEqual(second.transport.value(), b"")

    def test_goodbyeAfterGrace(self) -> None:
        """
        When the grace period ends, a connection still open is sent C{421}
        with the server's name and closed once it is written, not cut off.
        """
        server = self.connect()
        done = self.factory.closeConnections(5)
        self.clock.advance(4.9)
        self.assertEqual(server.transport.value(), b"")
        self.clock.advance(0.1)
        self.assertEqual(server.transport.value(), GOODBYE)
        self.assertTrue(server.transport.disconnecting)
        self.assertFalse(server.transport.disconnected)
        self.assertNoResult(done)
        self.lose(server)
        self.successResultOf(done)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_abortAfter(self) -> None:
        """
        A connection still open C{abortAfter} seconds after its C{421} is
        cut off; C{abortAfter} is one second by default.
        """
        slow, slower = self.connect(), self.connect()
        done = self.factory.closeConnections(5)
        self.clock.advance(5.99)
        self.assertFalse(slow.transport.disconnected)
        self.clock.advance(0.01)
        self.assertTrue(slow.transport.disconnected)
        self.lose(slow)
        self.lose(slower)
        self.successResultOf(done)

        server = self.connect()
        done = self.factory.closeConnections(1, abortAfter=3)
        self.clock.advance(3.99)
        self.assertFalse(server.transport.disconnected)
        self.clock.advance(0.01)
        self.assertTrue(server.transport.disconnected)

    def test_refusedConnectionWaitedFor(self) -> None:
        """
        A connection refused for being over C{max_connections} is still
        closing; closing waits for it too.
        """
        self.makeFactory(max_connections=1)
        served = self.connect()
        refused = self.connect()
        done = self.factory.closeConnections(5)
        self.lose(served)
        self.assertNoResult(done)
        self.lose(refused)
        self.successResultOf(done)

    def test_connectionOpenedWhileClosing(self) -> None:
        """
        A connection that opens while closing waits (through another
        listener of the same factory) is waited for and told C{421} too.
        """
        first = self.connect()
        done = self.factory.closeConnections(5)
        second = self.connect()
        self.lose(first)
        self.assertNoResult(done)
        self.clock.advance(5)
        self.assertEqual(second.transport.value(), GOODBYE)
        self.lose(second)
        self.successResultOf(done)

    def test_closeTwice(self) -> None:
        """
        A second call while the first waits gives another L{Deferred} for
        the same end, on the first call's schedule.
        """
        server = self.connect()
        first = self.factory.closeConnections(5)
        self.clock.advance(1)
        second = self.factory.closeConnections(60)
        self.clock.advance(4)
        self.assertEqual(server.transport.value(), GOODBYE)
        self.lose(server)
        self.successResultOf(first)
        self.successResultOf(second)
        self.assertEqual(self.clock.getDelayedCalls(), [])
