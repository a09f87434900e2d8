# -*- test-case-name: tests.test_shutdown -*-
"""
Tests for the graceful shutdown of L{SMTPFactory.shutDown} and
L{SMTPService.stopService}: in memory, with a L{Clock}; and of C{twistd
smtpd} stopped by SIGTERM in the middle of a load, as a child process.
"""

from __future__ import annotations

import contextlib
import mailbox
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import (
    ConnectionDone,
    ProcessExitedAlready,
    ProcessTerminated,
)
from twisted.internet.task import Clock
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests._protocolsupport import (
    GO_AHEAD,
    HOST,
    OK,
    Collector,
    ProtocolTestCase,
    connect,
    parseReplies,
)
from tests.test_service import _TWISTD, _Twistd, _twistdEnvironment
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

    def test_shutDownTwice(self) -> None:
        """
        A second call while the first waits gives another L{Deferred} for
        the same end: the session in DATA still gets its one reply and one
        C{421}.
        """
        tester = self.inData()
        first = self.shutDown(tester)
        second = self.shutDown(tester)
        tester.send("Hi\r\n.\r\n")
        self.assertEqual(tester.replies(), [STORED, GOODBYE])
        self.lose(tester)
        self.successResultOf(first)
        self.successResultOf(second)

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


def _reply(stream: Any) -> int:
    """
    Read one whole reply from C{stream}; return its code.

    @raise ConnectionError: If the connection ends before it.
    """
    while True:
        line = stream.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("the connection ended")
        if line[3:4] != b"-":
            return int(line[:3])


def _message(tag: str) -> bytes:
    """
    A message of about a kilobyte that names C{tag} in its C{Subject}.
    """
    return f"Subject: {tag}\r\n\r\n".encode() + b"x" * 76 + b"\r\n" * 12


class _Load:
    """
    Clients sending messages over raw loopback sockets, each on one
    session until it is refused or closed, then on a new one until the
    server no longer accepts; and what each message's end got: its reply's
    code, or C{"unknown"} when the connection ended before a reply.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.outcomes: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.inData = threading.Event()
        self.signalled = threading.Event()
        self.slow: list[int] = []

    def connect(self) -> tuple[socket.socket, Any]:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        stream = sock.makefile("rb")
        if _reply(stream) != 220:
            raise ConnectionError("not greeted")
        sock.sendall(b"EHLO client.example\r\n")
        if _reply(stream) != 250:
            raise ConnectionError("EHLO refused")
        return sock, stream

    def envelope(self, sock: socket.socket, stream: Any) -> bool:
        for command in [b"MAIL FROM:<a@example.com>", b"RCPT TO:<b@example.com>"]:
            sock.sendall(command + b"\r\n")
            if _reply(stream) != 250:
                return False
        sock.sendall(b"DATA\r\n")
        return _reply(stream) == 354

    def end(self, tag: str, sock: socket.socket, stream: Any, rest: bytes) -> int:
        sock.sendall(rest + b".\r\n")
        with self.lock:
            self.outcomes[tag] = "unknown"
        code = _reply(stream)
        with self.lock:
            self.outcomes[tag] = code
        return code

    def client(self, index: int) -> None:
        """
        Send messages until the server stops accepting.
        """
        count = 0
        while True:
            try:
                sock, stream = self.connect()
            except OSError:
                return
            try:
                while self.envelope(sock, stream):
                    count += 1
                    tag = f"load-{index}-{count}"
                    if self.end(tag, sock, stream, _message(tag)) != 250:
                        break
            except OSError:
                pass
            finally:
                sock.close()

    def slowClient(self) -> None:
        """
        Send one message, half of it before the server is signalled and
        the rest a little after; then read what follows its reply.
        """
        sock, stream = self.connect()
        try:
            self.envelope(sock, stream)
            whole = _message("slow")
            sock.sendall(whole[:20])
            self.inData.set()
            self.signalled.wait(10)
            time.sleep(0.5)
            self.slow.append(self.end("slow", sock, stream, whole[20:]))
            sock.sendall(b"MAIL FROM:<a@example.com>\r\n")
            self.slow.append(_reply(stream))
            self.slow.append(len(stream.read()))
        finally:
            sock.close()


class TwistdShutdownTests(TestCase):
    """
    Integration test: C{twistd -n smtpd} with the Mailbox handler, run as
    a child process on loopback TCP, stopped with SIGTERM while raw socket
    clients send messages from several threads.
    """

    timeout = 60

    async def test_sigtermMidLoad(self) -> None:
        """
        After SIGTERM mid-load, every message that got C{250} is in the
        Maildir, every message in the Maildir got C{250}, no message was
        left without a reply, a message in DATA when the signal came got
        C{250} then C{421}, and twistd stopped cleanly well within
        C{--shutdown-timeout}.
        """
        maildir = os.path.abspath(self.mktemp())
        process = _Twistd()
        directory = self.mktemp()
        os.makedirs(directory)
        transport = reactor.spawnProcess(
            process,
            sys.executable,
            [
                sys.executable, *_TWISTD, "-n", "--pidfile=", "smtpd",
                "--listen", "tcp:0:interface=127.0.0.1", "--hostname", "mx.example",
                "--shutdown-timeout", "10", "--handler", "mailbox", maildir,
            ],
            env=_twistdEnvironment(),
            path=directory,
        )  # fmt: skip

        async def kill() -> None:
            if not process.ended.called:
                with contextlib.suppress(ProcessExitedAlready):
                    transport.signalProcess("KILL")
                await process.ended

        self.addCleanup(lambda: Deferred.fromCoroutine(kill()))
        match = await process.waitFor(rb"SMTPFactory starting on (\d+)")
        load = _Load(int(match.group(1)))
        signalled: list[float] = []

        def drive() -> None:
            threads = [threading.Thread(target=load.slowClient)]
            threads += [
                threading.Thread(target=load.client, args=(i,)) for i in range(4)
            ]
            for thread in threads:
                thread.daemon = True
                thread.start()
            load.inData.wait(10)
            time.sleep(0.5)
            reactor.callFromThread(transport.signalProcess, "TERM")
            signalled.append(time.monotonic())
            load.signalled.set()
            deadline = time.monotonic() + 20
            for thread in threads:
                thread.join(max(0, deadline - time.monotonic()))

        await deferToThread(drive)
        reason = await process.ended.addTimeout(20, reactor)
        took = time.monotonic() - signalled[0]
        self.assertIsInstance(reason, ProcessTerminated)
        self.assertEqual(reason.signal, signal.SIGTERM)
        self.assertIn(b"Server Shut Down.", process.output)
        self.assertNotIn(b"Traceback", process.output)
        self.assertLess(took, 8)

        self.assertEqual(load.slow, [250, 421, 0])
        accepted = {tag for tag, code in load.outcomes.items() if code == 250}
        self.assertGreater(len(accepted), 10)
        self.assertEqual(
            [tag for tag, code in load.outcomes.items() if code == "unknown"], []
        )
        box = mailbox.Maildir(maildir, create=False)
        delivered = [message["Subject"] for message in box]
        self.assertEqual(len(delivered), len(set(delivered)))
        self.assertEqual(set(delivered), accepted)
