"""
Tests for L{twisted_smtpd._shedding} and the factory's high-water mark:
which sessions are closed to make room (in memory, with L{StringTransport}
and a L{Clock}), how a listening port is kept from accepting more than
there is room for and how its failures to accept are summed up (a real
Twisted TCP port on an in-memory reactor, with a stand-in for its
listening socket, so that C{accept()} fails as asked), and shedding over
real loopback TCP with raw sockets.

The slow test of a whole flood against a child C{twistd} is in
L{tests.test_floods}.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

from twisted.internet import tcp
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.internet.threads import deferToThread
from twisted.logger import Logger, capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests._support import HOSTNAME, listen, rawConnect, readReplies, readToEnd
from twisted_smtpd import SMTP, SMTPFactory
from twisted_smtpd._idle import IdleTimer
from twisted_smtpd._shedding import (
    ACCEPT_PAUSE,
    AcceptGuard,
    room,
    sheddable,
)

SHED = f"421 4.7.0 {HOSTNAME} Too many connections, try again later\r\n".encode()
TOO_MANY = b"421 4.3.2 Too many connections, try again later\r\n"
GREETING_START = f"220 {HOSTNAME} ".encode()


class Handler:
    """
    A handler with no hooks.
    """


class Stalling:
    """
    A handler whose C{handle_EHLO} does not answer until told to.
    """

    def __init__(self) -> None:
        self.waiting: list[Deferred[Any]] = []

    def handle_EHLO(self, server, session, envelope, hostname, responses):
        d: Deferred[Any] = Deferred()
        self.waiting.append(d)
        return d


class Candidate:
    """
    A stand-in for a server, as L{sheddable} sees it.
    """

    def __init__(self, name: str, busy: bool = False, closing: bool = False):
        self.name = name
        self.transactionInProgress = busy
        self.closing = closing

    def __repr__(self) -> str:
        return self.name


class SheddableTests(SynchronousTestCase):
    """
    L{sheddable} picks the sessions to close, in the order given.
    """

    def test_order(self) -> None:
        """
        Those first in the order are picked, as many as asked.
        """
        a, b, c = Candidate("a"), Candidate("b"), Candidate("c")
        self.assertEqual(sheddable([a, b, c], 2), [a, b])
        self.assertEqual(sheddable([a, b, c], 5), [a, b, c])
        self.assertEqual(sheddable([a, b, c], 0), [])

    def test_skipped(self) -> None:
        """
        A session with a transaction in progress, one closing, and
        anything that does not say whether it is busy, are passed over.
        """
        busy, closing = Candidate("busy", busy=True), Candidate("x", closing=True)
        idle = Candidate("idle")
        self.assertEqual(sheddable([busy, closing, Protocol(), idle], 2), [idle])

    def test_stopsEarly(self) -> None:
        """
        Candidates after the last one needed are not looked at (an idle
        timer's live order may go on for thousands).
        """

        def candidates():
            yield Candidate("a")
            raise AssertionError("looked too far")

        self.assertEqual(len(sheddable(candidates(), 1)), 1)


class IdleOrderTests(SynchronousTestCase):
    """
    L{IdleTimer.idlest} gives the order in which sessions are closed.
    """

    def test_idlestFirst(self) -> None:
        """
        Connections come in the order of their last activity, the oldest
        first; those forgotten are gone.
        """
        clock = Clock()
        timer = IdleTimer(clock, 300)
        a, b, c = Candidate("a"), Candidate("b"), Candidate("c")
        for connection in (a, b, c):
            timer.touch(connection)
            clock.advance(1)
        timer.touch(a)
        timer.forget(b)
        self.assertEqual(list(timer.idlest()), [c, a])
        timer.forget(a)
        timer.forget(c)


class RoomTests(SynchronousTestCase):
    """
    L{room} leaves a margin above the high-water mark.
    """

    def test_room(self) -> None:
        """
        The margin is a sixteenth of the mark, at least 32; with no mark,
        there is no limit.
        """
        self.assertEqual(room(0, 896), 896 + 56)
        self.assertEqual(room(950, 896), 2)
        self.assertEqual(room(960, 896), -8)
        self.assertEqual(room(10, 100), 100 + 32 - 10)
        self.assertIsNone(room(10**6, None))


class _ShedTestCase(SynchronousTestCase):
    """
    Connections to a factory with a high-water mark, in memory.
    """

    def makeFactory(self, handler: Any = None, **options: Any) -> SMTPFactory:
        """
        Make the factory under test on a L{Clock}.
        """
        self.clock = Clock()
        options.setdefault("high_water_mark", 2)
        self.factory = SMTPFactory(
            handler or Handler(), reactor=self.clock, hostname=HOSTNAME, **options
        )
        return self.factory

    def connect(self, host: str = "192.0.2.1") -> SMTP:
        """
        Connect a client and clear its greeting from the transport.
        """
        peer = IPv4Address("TCP", host, 40000)
        server = self.factory.buildProtocol(peer)
        server.makeConnection(StringTransport(peerAddress=peer))
        self.assertTrue(server.transport.value().startswith(GREETING_START))
        server.transport.clear()
        return server

    def send(self, server: SMTP, data: bytes) -> bytes:
        """
        Send C{data} and return what the server answered.
        """
        server.transport.clear()
        server.dataReceived(data)
        return server.transport.value()

    def assertShed(self, server: SMTP) -> None:
        """
        C{server} was told it is closed to make room, and is closing.
        """
        self.assertEqual(server.transport.value(), SHED)
        self.assertTrue(server.transport.disconnecting)

    def assertKept(self, *servers: SMTP) -> None:
        """
        C{servers} were told nothing and stay open.
        """
        for server in servers:
            self.assertEqual(server.transport.value(), b"")
            self.assertFalse(server.transport.disconnecting)


class ShedTests(_ShedTestCase):
    """
    At the high-water mark a new connection makes the session idle longest
    close, unless a transaction is in progress there.
    """

    def setUp(self) -> None:
        self.makeFactory()

    def test_idlestShed(self) -> None:
        """
        The session idle longest (not the first connected) gets C{421
        4.7.0} and is closed; the new one is served; it reads nothing more.
        """
        first, second = self.connect(), self.connect()
        self.clock.advance(10)
        self.assertEqual(self.send(first, b"NOOP\r\n"), b"250 OK\r\n")
        first.transport.clear()
        third = self.connect()
        self.assertShed(second)
        self.assertKept(first, third)
        self.assertEqual(self.factory.connections, 2)
        second.dataReceived(b"NOOP\r\n")
        self.assertShed(second)

    def test_belowTheMark(self) -> None:
        """
        Below the mark nobody is closed.
        """
        self.makeFactory(high_water_mark=3)
        servers = [self.connect() for _ in range(3)]
        self.assertKept(*servers)

    def test_noMark(self) -> None:
        """
        With C{high_water_mark=0}, nobody is ever closed to make room.
        """
        self.makeFactory(high_water_mark=0)
        self.assertIsNone(self.factory.highWaterMark)
        servers = [self.connect(f"192.0.2.{n}") for n in range(100)]
        self.assertKept(*servers)

    def test_transactionKept(self) -> None:
        """
        A session that gave MAIL, or is in the middle of its message data,
        is not closed, however long idle: the next idle one is.
        """
        self.makeFactory(high_water_mark=3)
        mail, data, idle = self.connect(), self.connect(), self.connect()
        self.send(mail, b"EHLO c.example\r\nMAIL FROM:<a@example.com>\r\n")
        self.send(
            data,
            b"EHLO c.example\r\nMAIL FROM:<a@example.com>\r\n"
            b"RCPT TO:<b@example.com>\r\nDATA\r\nSubject: half",
        )
        self.send(idle, b"NOOP\r\n")
        for server in (mail, data, idle):
            server.transport.clear()
        self.clock.advance(10)
        new = self.connect()
        self.assertShed(idle)
        self.assertKept(mail, data, new)
        self.assertEqual(self.send(data, b" message\r\n.\r\n"), b"250 OK\r\n")

    def test_transactionOverKeepsNothing(self) -> None:
        """
        Once its transaction is over (the message is received, or RSET), a
        session may be closed again.
        """
        self.makeFactory(high_water_mark=1)
        server = self.connect()
        self.send(server, b"EHLO c\r\nMAIL FROM:<a@example.com>\r\n")
        self.assertTrue(server.transactionInProgress)
        self.send(server, b"RSET\r\n")
        self.assertFalse(server.transactionInProgress)
        server.transport.clear()
        self.connect()
        self.assertShed(server)

    def test_hookPendingKept(self) -> None:
        """
        A session whose hook is still working is not closed.
        """
        handler = Stalling()
        self.makeFactory(handler, high_water_mark=2)
        working, idle = self.connect(), self.connect()
        self.send(working, b"EHLO c.example\r\n")
        self.assertTrue(working.transactionInProgress)
        self.clock.advance(10)
        self.connect()
        self.assertShed(idle)
        self.assertKept(working)

    def test_nothingToShed(self) -> None:
        """
        When every session is busy, the new connection is the one refused,
        with C{421 4.3.2}, and the others are left alone.
        """
        self.makeFactory(high_water_mark=1)
        busy = self.connect()
        self.send(busy, b"EHLO c\r\nMAIL FROM:<a@example.com>\r\n")
        busy.transport.clear()
        peer = IPv4Address("TCP", "192.0.2.9", 1)
        refused = self.factory.buildProtocol(peer)
        refused.makeConnection(StringTransport(peerAddress=peer))
        self.assertEqual(refused.transport.value(), TOO_MANY)
        self.assertTrue(refused.transport.disconnecting)
        self.assertKept(busy)
        self.assertEqual(self.factory.connections, 1)

    def test_withoutIdleTimer(self) -> None:
        """
        Without a C{timeout} there is no idle order: the session connected
        first (and not busy) is closed.
        """
        self.makeFactory(timeout=None)
        first, second = self.connect(), self.connect()
        self.send(first, b"NOOP\r\n")
        first.transport.clear()
        self.connect()
        self.assertShed(first)
        self.assertKept(second)

    def test_shedReleased(self) -> None:
        """
        A session closed to make room no longer counts once it is told so,
        and is forgotten when its connection ends.
        """
        first, second = self.connect(), self.connect()
        self.connect()
        self.assertEqual(self.factory.connections, 2)
        first.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.factory.connections, 2)
        self.assertKept(second)

    def test_shedLoggedOnceASecond(self) -> None:
        """
        Sessions closed to make room are summed up in one warning a second
        at most.
        """
        self.makeFactory(high_water_mark=1)
        with capturedLogs() as events:
            for _ in range(6):
                self.connect()
            self.clock.advance(1)
        self.assertEqual(
            [formatEvent(e) for e in events if "to make room" in formatEvent(e)],
            [
                "closed 1 idle session(s) to make room for new clients",
                "closed 4 idle session(s) to make room for new clients",
            ],
        )

    def test_shedCount(self) -> None:
        """
        L{SMTPFactory.shed} closes as many idle sessions as asked and as
        there are, and says how many.
        """
        self.makeFactory(high_water_mark=0)
        servers = [self.connect() for _ in range(3)]
        self.assertEqual(self.factory.shed(2), 2)
        self.assertEqual(self.factory.shed(5), 1)
        for server in servers:
            self.assertShed(server)
        self.assertEqual(self.factory.connections, 0)


class FakeListener:
    """
    A listening socket whose C{accept()} gives what it is told: a client
    socket, or an error; C{EAGAIN} when there is nothing left.

    @ivar accepts: How many times C{accept()} was called.
    """

    def __init__(self, real: socket.socket, outcomes: list[Any]) -> None:
        self.real = real
        self.outcomes = outcomes
        self.accepts = 0

    def accept(self) -> tuple[socket.socket, tuple[str, int]]:
        self.accepts += 1
        if not self.outcomes:
            raise BlockingIOError(errno.EAGAIN, "no client")
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, OSError):
            raise outcome
        return outcome

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class AcceptGuardTests(SynchronousTestCase):
    """
    L{AcceptGuard} over a real Twisted TCP port on an in-memory reactor,
    whose listening socket fails as told.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.accepted: list[Protocol] = []
        factory = Factory.forProtocol(Protocol)
        original = factory.buildProtocol

        def build(addr: Any) -> Protocol:
            protocol = original(addr)
            self.accepted.append(protocol)
            return protocol

        factory.buildProtocol = build  # type: ignore[method-assign]
        self.port = tcp.Port(0, factory, interface="127.0.0.1", reactor=self.reactor)
        self.port.startListening()
        self.addCleanup(self.stopListening)
        self.listener = FakeListener(self.port.socket, [])
        self.port.socket = self.listener
        self.room: int | None = None
        self.exhausted = 0
        self.guard = AcceptGuard(
            self.port,
            self.reactor,
            lambda: self.room,
            self.exhaust,
            Logger(namespace="tests.guard"),
        )
        self.number = self.port.getHost().port

    def stopListening(self) -> None:
        self.guard.stop()
        self.port.socket = self.listener.real
        self.port.connectionLost(Failure(ConnectionDone()))
        for protocol in self.accepted:
            protocol.transport.socket.close()

    def exhaust(self) -> None:
        self.exhausted += 1

    def client(self) -> tuple[socket.socket, tuple[str, int]]:
        """
        A connected socket, as C{accept()} returns one.
        """
        ours, theirs = socket.socketpair()
        self.addCleanup(theirs.close)
        self.addCleanup(ours.close)
        return ours, ("192.0.2.1", 40000)

    def reading(self) -> bool:
        """
        Whether the reactor would call the port to accept.
        """
        return self.port in self.reactor.getReaders()

    def lines(self, events: list[dict]) -> list[str]:
        return [formatEvent(e) for e in events if e["log_namespace"] == "tests.guard"]

    def test_enfileSummedUpAndPaused(self) -> None:
        """
        An C{accept()} that fails with ENFILE (which Twisted would retry on
        every reactor pass) stops the port for L{ACCEPT_PAUSE} seconds,
        makes room once, and gives one warning; Twisted's own line is not
        logged.
        """
        self.listener.outcomes = [OSError(errno.ENFILE, "Too many open files")]
        with capturedLogs() as events:
            self.port.doRead()
        self.assertFalse(self.reading())
        self.assertEqual(self.exhausted, 1)
        self.assertEqual(
            self.lines(events),
            [
                f"could not accept connections on {self.number} (ENFILE) 1"
                " time(s); 0 client(s) closed unserved for want of file"
                " descriptors"
            ],
        )
        self.assertEqual([e for e in events if "acceptError" in e], [])
        self.reactor.advance(ACCEPT_PAUSE - 0.01)
        self.assertFalse(self.reading())
        self.reactor.advance(0.01)
        self.assertTrue(self.reading())

    def test_atMostOnceASecond(self) -> None:
        """
        Failures that go on for seconds give a line a second at most, whose
        counts add up to every failure.
        """
        failures = 0
        with capturedLogs() as events:
            for _ in range(50):
                self.listener.outcomes = [OSError(errno.EMFILE, "Too many")]
                self.port.socket = self.listener
                # No reserve: Twisted reports the error itself.
                self.patch(tcp._reservedFD, "_fileDescriptor", None)
                self.port.doRead()
                failures += 1
                self.reactor.advance(ACCEPT_PAUSE)
            self.guard.stop()
        lines = self.lines(events)
        self.assertEqual(len(lines), 6)
        self.assertEqual(sum(int(line.split()[7]) for line in lines), failures, lines)
        self.assertIn("(EMFILE)", lines[0])

    def test_emfileWithReserve(self) -> None:
        """
        On EMFILE Twisted frees its reserved descriptor and closes the
        clients waiting: they are counted as closed unserved in the same
        line, not logged one by one.
        """
        self.listener.outcomes = [
            OSError(errno.EMFILE, "Too many open files"),
            self.client(),
            self.client(),
        ]
        with capturedLogs() as events:
            self.port.doRead()
        self.assertEqual(
            self.lines(events),
            [
                f"could not accept connections on {self.number} (EMFILE) 1"
                " time(s); 2 client(s) closed unserved for want of file"
                " descriptors"
            ],
        )
        self.assertEqual(
            [formatEvent(e) for e in events if "EMFILE" in formatEvent(e)],
            self.lines(events),
        )
        self.assertEqual(self.exhausted, 1)
        self.assertEqual(self.accepted, [])

    def test_abortedOnlyLogged(self) -> None:
        """
        A client gone before it was accepted (ECONNABORTED) is counted, but
        is no reason to stop accepting or to close sessions.
        """
        self.listener.outcomes = [OSError(errno.ECONNABORTED, "aborted")]
        with capturedLogs() as events:
            self.port.doRead()
        self.assertTrue(self.reading())
        self.assertEqual(self.exhausted, 0)
        self.assertIn("(ECONNABORTED)", self.lines(events)[0])

    def test_otherEventsForwarded(self) -> None:
        """
        What else the port logs reaches the log as before.
        """
        with capturedLogs() as events:
            self.port._logger.info("something {what}", what="else")
        self.assertEqual([formatEvent(e) for e in events], ["something else"])
        self.assertEqual(events[0]["log_namespace"], "twisted.internet.tcp.Port")

    def test_acceptsNoMoreThanRoom(self) -> None:
        """
        The port accepts no more connections in one go than there is room
        for, however many wait.
        """
        self.listener.outcomes = [self.client() for _ in range(10)]
        self.room = 3
        self.port.doRead()
        self.assertEqual(len(self.accepted), 3)
        self.assertTrue(self.reading())
        self.room = None
        self.port.doRead()
        self.assertEqual(len(self.accepted), 10)

    def test_noRoomPauses(self) -> None:
        """
        With no room, the port accepts nothing and stops, until a
        connection ends (L{AcceptGuard.wake}) or the pause is over.
        """
        self.listener.outcomes = [self.client()]
        self.room = 0
        self.port.doRead()
        self.assertEqual((self.listener.accepts, self.reading()), (0, False))
        self.guard.wake()
        self.assertTrue(self.reading())
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.port.doRead()
        self.assertFalse(self.reading())
        self.reactor.advance(ACCEPT_PAUSE)
        self.assertTrue(self.reading())
        self.room = 1
        self.port.doRead()
        self.assertEqual(len(self.accepted), 1)

    def test_notResumedOnceStopped(self) -> None:
        """
        A port that stopped listening during the pause is not made to read
        again.
        """
        self.room = 0
        self.port.doRead()
        self.port.connected = False
        self.reactor.advance(ACCEPT_PAUSE)
        self.assertFalse(self.reading())
        self.port.connected = True

    def test_stop(self) -> None:
        """
        L{AcceptGuard.stop} cancels the pause's timer and logs what is
        still counted.
        """
        self.listener.outcomes = [OSError(errno.ENOBUFS, "no buffers")]
        self.port.doRead()
        self.listener.outcomes = [OSError(errno.ECONNABORTED, "aborted")]
        self.port.doRead()
        with capturedLogs() as events:
            self.guard.stop()
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.assertEqual(len(self.lines(events)), 1)
        self.assertIn("(ECONNABORTED) 1 time(s)", self.lines(events)[0])


class FactoryGuardTests(SynchronousTestCase):
    """
    L{SMTPFactory.watchPort} guards Twisted's TCP ports with the factory's
    room and sessions.
    """

    def test_onlyTCPPorts(self) -> None:
        """
        A port that is not a Twisted TCP port is left alone.
        """
        factory = SMTPFactory(Handler(), reactor=Clock())
        port = object()
        factory.watchPort(port)
        factory.doStart()
        factory.doStop()

    def test_guarded(self) -> None:
        """
        A TCP port is given an L{AcceptGuard}, which accepts up to the room
        the factory's high-water mark leaves, makes room on failures and is
        stopped with the factory.
        """
        reactor = MemoryReactorClock()
        factory = SMTPFactory(
            Handler(), reactor=reactor, hostname=HOSTNAME, high_water_mark=2
        )
        port = tcp.Port(0, factory, interface="127.0.0.1", reactor=reactor)
        port.startListening()
        self.addCleanup(port.connectionLost, Failure(ConnectionDone()))
        factory.watchPort(port)
        self.assertIsInstance(port.doRead.__self__, AcceptGuard)
        self.assertEqual(factory._room(), 2 + 32)
        servers = []
        for n in range(3):
            peer = IPv4Address("TCP", f"192.0.2.{n}", 1)
            server = factory.buildProtocol(peer)
            server.makeConnection(StringTransport(peerAddress=peer))
            servers.append(server)
        self.assertEqual(factory._room(), 2 + 32 - 3)
        real = port.socket
        port.socket = FakeListener(real, [OSError(errno.ENFILE, "full")])
        self.addCleanup(setattr, port, "socket", real)
        with capturedLogs():
            port.doRead()
        self.assertTrue(servers[1].transport.value().endswith(SHED))
        self.assertNotIn(port, reactor.getReaders())
        servers[0].connectionLost(Failure(ConnectionDone()))
        self.assertIn(port, reactor.getReaders())
        port.doRead()
        with capturedLogs():
            factory.doStop()
        self.assertEqual(
            [c for c in reactor.getDelayedCalls() if "AcceptGuard" in repr(c)], []
        )


class ShedIntegrationTests(TestCase):
    """
    Integration tests: a server with a high-water mark of 2 listening on
    127.0.0.1, with raw sockets as clients.
    """

    async def test_idlestShedOnTheWire(self) -> None:
        """
        A third client makes the session idle longest get C{421 4.7.0} and
        a closed connection; a session in the middle of its message data
        is kept, and its message is accepted.
        """
        server = listen(self, Handler(), high_water_mark=2)

        def clients():
            sending, idle = rawConnect(server.port), rawConnect(server.port)
            try:
                readReplies(sending, 1)
                readReplies(idle, 1)
                sending.sendall(
                    b"EHLO c.example\r\nMAIL FROM:<a@example.com>\r\n"
                    b"RCPT TO:<b@example.com>\r\nDATA\r\n"
                )
                readReplies(sending, 4)
                sending.sendall(b"Subject: kept\r\n\r\nhalf")
                with rawConnect(server.port) as third:
                    greeting = readReplies(third, 1)
                    shed = readToEnd(idle)
                    sending.sendall(b" of it.\r\n.\r\n")
                    done = readReplies(sending, 1)
                    third.sendall(b"NOOP\r\n")
                    noop = readReplies(third, 1)
                return greeting, shed, done, noop
            finally:
                sending.close()
                idle.close()

        greeting, shed, done, noop = await deferToThread(clients)
        self.assertTrue(greeting.startswith(GREETING_START), greeting)
        self.assertEqual(shed, SHED)
        self.assertEqual((done, noop), (b"250 OK\r\n", b"250 OK\r\n"))
