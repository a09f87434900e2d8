# -*- test-case-name: tests.test_shutdown -*-
"""
Tests for the graceful shutdown of L{SMTPFactory.shutDown} and
L{SMTPService.stopService}: in memory, with a L{Clock}.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from tests._protocolsupport import (
    GO_AHEAD,
    HOST,
    OK,
    Collector,
    ProtocolTestCase,
    connect,
    parseReplies,
)
from twisted_smtpd import LMTP, SMTPFactory
from twisted_smtpd._connections import SHUTTING_DOWN
from twisted_smtpd.service import SMTPService
from twisted_smtpd.tap import Options
from twisted_smtpd.testing import Reply, SMTPTester

GOODBYE = Reply(421, SHUTTING_DOWN.format(hostname=HOST)[4:])
STORED = Reply(250, "OK")


class Pending:
    """
    A handler whose DATA and RCPT hooks answer when the test says, as one
    waiting for a broker's confirm does.
    """

    def __init__(self) -> None:
        self.waiting: list[Deferred[str]] = []
        self.delivered: list[bytes] = []
        self.holdRcpt = False

    def handle_RCPT(self, server, session, envelope, address, options):
        envelope.rcpt_tos.append(address)
        if not self.holdRcpt:
            return "250 OK"
        d: Deferred[str] = Deferred()
        self.waiting.append(d)
        return d

    def handle_DATA(self, server, session, envelope):
        d: Deferred[str] = Deferred()
        self.waiting.append(d)

        def delivered(reply: str) -> str:
            self.delivered.append(envelope.content)
            return reply

        return d.addCallback(delivered)


class ShutDownTests(ProtocolTestCase):
    """
    L{SMTPFactory.shutDown} on one session at a time, by what it was doing.
    """

    def shutDown(self, tester: SMTPTester, timeout: float = 30) -> Deferred[None]:
        """
        Shut the tester's factory down, as the service's C{stopService}
        does once it stopped listening.
        """
        return tester.server.factory.shutDown(timeout)

    def lose(self, tester: SMTPTester) -> None:
        """
        End the tester's connection, as the transport does once closed.
        """
        tester.server.connectionLost(Failure(ConnectionDone()))

    def test_idleSessionAtOnce(self) -> None:
        """
        A session waiting for a command is told C{421 4.3.2} and closed at
        once; shutting down is over once its connection is lost.
        """
        tester = self.ready()
        done = self.shutDown(tester)
        self.assertEqual(tester.replies(), [GOODBYE])
        self.assertTrue(tester.closed)
        self.assertNoResult(done)
        self.lose(tester)
        self.assertIsNone(self.successResultOf(done))
        self.assertEqual(tester.clock.getDelayedCalls(), [])

    def test_betweenMailAndDataAtOnce(self) -> None:
        """
        A session between MAIL and DATA is told C{421} at once; nothing is
        delivered.
        """
        handler = Collector()
        tester = self.ready(handler)
        self.assertEqual(tester.command("MAIL FROM:<a@example.com>"), OK)
        self.assertEqual(tester.command("RCPT TO:<b@example.com>"), OK)
        self.shutDown(tester)
        self.assertEqual(tester.replies(), [GOODBYE])
        self.assertTrue(tester.closed)
        self.assertEqual(handler.messages, [])

    def test_inDataFinishes(self) -> None:
        """
        A session in DATA keeps receiving its message, gets C{250} for it,
        then C{421}; the lines pipelined after it do not run.
        """
        handler = Collector()
        tester = self.inData(handler)
        done = self.shutDown(tester)
        tester.send("Subject: late\r\n\r\n")
        tester.clock.advance(29)
        self.assertEqual(tester.replies(), [])
        self.assertFalse(tester.closed)
        tester.send("Still here\r\n.\r\nMAIL FROM:<c@example.com>\r\n")
        self.assertEqual(tester.replies(), [STORED, GOODBYE])
        self.assertTrue(tester.closed)
        self.assertEqual(
            [m[2] for m in handler.messages], [b"Subject: late\r\n\r\nStill here\r\n"]
        )
        self.lose(tester)
        self.successResultOf(done)

    def test_pendingDataHook(self) -> None:
        """
        A message whose DATA hook still works gets the hook's reply, then
        C{421}; a MAIL pipelined after it is not run.
        """
        handler = Pending()
        tester = self.inData(handler)
        tester.send("Hi\r\n.\r\nMAIL FROM:<c@example.com>\r\n")
        self.assertEqual(tester.replies(), [])
        done = self.shutDown(tester)
        self.assertEqual(tester.replies(), [])
        self.assertFalse(tester.closed)
        handler.waiting.pop().callback("250 2.0.0 Queued")
        self.assertEqual(tester.replies(), [Reply(250, "2.0.0 Queued"), GOODBYE])
        self.assertTrue(tester.closed)
        self.assertEqual(handler.delivered, [b"Hi\r\n"])
        self.lose(tester)
        self.successResultOf(done)

    def test_pendingHookAfterCommand(self) -> None:
        """
        A hook working for a command that is not the end of a message
        (RCPT) is answered, then the session is told C{421} without
        waiting for the client.
        """
        handler = Pending()
        handler.holdRcpt = True
        tester = self.ready(handler)
        self.assertEqual(tester.command("MAIL FROM:<a@example.com>"), OK)
        tester.send("RCPT TO:<b@example.com>\r\n")
        self.shutDown(tester)
        self.assertEqual(tester.replies(), [])
        handler.waiting.pop().callback("250 Fine")
        self.assertEqual(tester.replies(), [Reply(250, "Fine"), GOODBYE])
        self.assertTrue(tester.closed)

    def test_newTransactionRefused(self) -> None:
        """
        Once the message under way is answered, the C{421} follows without
        waiting for the client: a MAIL it sends after reading the C{250}
        finds the session closed and starts nothing.
        """
        handler = Pending()
        tester = self.inData(handler)
        tester.send("Hi\r\n.\r\n")
        self.shutDown(tester)
        handler.waiting.pop().callback("250 OK")
        self.assertEqual(tester.replies(), [STORED, GOODBYE])
        tester.send("MAIL FROM:<c@example.com>\r\nRCPT TO:<d@example.com>\r\n")
        tester.send("DATA\r\nAgain\r\n.\r\n")
        self.assertEqual(tester.replies(), [])
        self.assertEqual(handler.waiting, [])
        self.assertEqual(handler.delivered, [b"Hi\r\n"])

    def test_bdatChunksFinish(self) -> None:
        """
        A transaction sending BDAT chunks goes on chunk by chunk; after
        the last one's reply it is told C{421}.
        """
        handler = Collector()
        tester = self.ready(handler)
        self.assertEqual(tester.command("MAIL FROM:<a@example.com>"), OK)
        self.assertEqual(tester.command("RCPT TO:<b@example.com>"), OK)
        tester.send("BDAT 4\r\nHi\r\n")
        self.assertEqual(tester.replies()[0].code, 250)
        self.shutDown(tester)
        self.assertEqual(tester.replies(), [])
        self.assertFalse(tester.closed)
        tester.send("BDAT 5 LAST\r\nBye\r\n")
        replies = tester.replies()
        self.assertEqual([r.code for r in replies], [250, 421])
        self.assertEqual(replies[1], GOODBYE)
        self.assertEqual([m[2] for m in handler.messages], [b"Hi\r\nBye\r\n"])

    def test_timeout(self) -> None:
        """
        A message still under way when the timeout ends is told C{421}
        and closed, and cut off a second later; nothing was delivered.
        """
        handler = Pending()
        tester = self.inData(handler)
        done = self.shutDown(tester, timeout=5)
        tester.send("Part of it\r\n")
        tester.clock.advance(4.99)
        self.assertFalse(tester.closed)
        tester.clock.advance(0.01)
        self.assertEqual(tester.replies(), [GOODBYE])
        self.assertTrue(tester.closed)
        self.assertFalse(tester.transport.disconnected)
        self.assertNoResult(done)
        self.assertEqual(handler.delivered, [])
        self.lose(tester)
        self.successResultOf(done)
        self.assertEqual(tester.clock.getDelayedCalls(), [])

    def test_zeroTimeout(self) -> None:
        """
        With a timeout of C{0}, a message under way is told C{421} as soon
        as the reactor runs the timer.
        """
        tester = self.inData()
        self.shutDown(tester, timeout=0)
        self.assertEqual(tester.replies(), [])
        tester.clock.advance(0)
        self.assertEqual(tester.replies(), [GOODBYE])

    def test_defaultTimeout(self) -> None:
        """
        Without a timeout, the factory's C{shutdown_timeout} applies: 30
        seconds by default.
        """
        tester = self.inData()
        tester.server.factory.shutDown()
        tester.clock.advance(29.9)
        self.assertEqual(tester.replies(), [])
        tester.clock.advance(0.1)
        self.assertEqual(tester.replies(), [GOODBYE])

        tester = self.inData(shutdown_timeout=2)
        tester.server.factory.shutDown()
        tester.clock.advance(2)
        self.assertEqual(tester.replies(), [GOODBYE])

    def test_lmtp(self) -> None:
        """
        An LMTP session in DATA gets its reply per recipient, then C{421}.
        """
        handler = Collector()
        tester = self.makeTester(handler, protocol=LMTP)
        tester.command("LHLO client.example")
        tester.command("MAIL FROM:<a@example.com>")
        tester.command("RCPT TO:<b@example.com>")
        tester.command("RCPT TO:<c@example.com>")
        self.assertEqual(tester.command("DATA"), GO_AHEAD)
        self.shutDown(tester)
        tester.send("Hi\r\n.\r\n")
        self.assertEqual([r.code for r in tester.replies()], [250, 250, 421])

    def test_connectionWhileShuttingDown(self) -> None:
        """
        A connection that opens once shutting down has begun is refused
        with the C{421}.
        """
        clock = Clock()
        factory = SMTPFactory(Collector(), reactor=clock, hostname=HOST)
        first, _ = connect(factory)
        first.transport.clear()
        factory.shutDown(5)
        second, transport = connect(factory)
        self.assertEqual(parseReplies(transport.value()), [GOODBYE])
        self.assertTrue(transport.disconnecting)

    def test_badTimeout(self) -> None:
        """
        C{shutdown_timeout} is a finite number of seconds, zero or more.
        """
        for bad, error in [
            (-1, ValueError),
            (float("inf"), ValueError),
            (float("nan"), ValueError),
            ("30", TypeError),
            (True, TypeError),
        ]:
            self.assertRaises(error, SMTPFactory, Collector(), shutdown_timeout=bad)


class ShutdownTimeoutOptionTests(SynchronousTestCase):
    """
    C{twistd smtpd --shutdown-timeout}.
    """

    def test_option(self) -> None:
        """
        C{--shutdown-timeout} sets the factory's C{shutdown_timeout}, 30
        seconds by default.
        """
        options = Options()
        options.parseOptions(["--shutdown-timeout", "2.5"])
        self.assertEqual(options["factory"].shutdownTimeout, 2.5)
        options = Options()
        options.parseOptions([])
        self.assertEqual(options["factory"].shutdownTimeout, 30.0)

    def test_bad(self) -> None:
        """
        C{--shutdown-timeout} takes a number of at least 0.
        """
        for value in ["-1", "x", "inf"]:
            options = Options()
            error = self.assertRaises(
                UsageError, options.parseOptions, ["--shutdown-timeout", value]
            )
            self.assertEqual(
                str(error),
                f"--shutdown-timeout must be a number of at least 0, not {value!r}",
            )


class StopServiceTests(ProtocolTestCase):
    """
    L{SMTPService.stopService} stops listening, then shuts the sessions
    down; its L{Deferred} fires only once they are gone.
    """

    def test_stopServiceWaits(self) -> None:
        """
        C{stopService}'s L{Deferred} fires once the last session, which
        was delivering a message, got its reply and its C{421} and has
        gone; the idle one was told C{421} at once.
        """
        clock = Clock()
        handler = Pending()
        factory = SMTPFactory(handler, reactor=clock, hostname=HOST)
        service = SMTPService(factory, [], reactor=clock)
        service.startService()
        idle, idleTransport = connect(factory)
        busy, busyTransport = connect(factory)
        idleTransport.clear()
        busy.dataReceived(
            b"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nHi\r\n.\r\n"
        )
        busyTransport.clear()
        stopped = service.stopService()
        self.assertEqual(parseReplies(idleTransport.value()), [GOODBYE])
        idle.connectionLost(Failure(ConnectionDone()))
        self.assertNoResult(stopped)
        handler.waiting.pop().callback("250 OK")
        self.assertEqual(parseReplies(busyTransport.value()), [STORED, GOODBYE])
        self.assertNoResult(stopped)
        busy.connectionLost(Failure(ConnectionDone()))
        self.successResultOf(stopped)
