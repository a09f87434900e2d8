"""
Helpers shared by the unit tests of the server protocol: the replies they
expect, a handler that collects messages, a watchdog against endless loops,
and L{ProtocolTestCase}, which drives a server in memory through
L{twisted_smtpd.testing.SMTPTester} or a L{StringTransport} and a L{Clock}.
No sockets, no real time.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from twisted_smtpd import SMTP, Envelope, Session, SMTPFactory, syntax
from twisted_smtpd.testing import Reply, SMTPTester

HOST = "mx.example"
EHLO_LINES = [
    "mx.example",
    "SIZE 33554432",
    "8BITMIME",
    "DSN",
    "CHUNKING",
    "BINARYMIME",
    "PIPELINING",
    "HELP",
]
HELP_LIST = "Supported commands: BDAT DATA EHLO HELO HELP MAIL NOOP QUIT RCPT RSET VRFY"
OK = Reply(250, "OK")
GO_AHEAD = Reply(354, "End data with <CR><LF>.<CR><LF>")
LOCAL_ERROR = Reply(451, "Requested action aborted: local error in processing")
SEND_HELO = Reply(503, "Error: send HELO first")
NEED_MAIL = Reply(503, "Error: need MAIL command")
NEED_RCPT = Reply(503, "Error: need RCPT command")
MAIL_SYNTAX = Reply(501, "Syntax: MAIL FROM: <address>")
VRFY_OK = Reply(252, "Cannot VRFY user, but will accept message and attempt delivery")
SECRET = "Sekr1t-exception-text"


class Hang(BaseException):
    """
    Raised by the watchdog when the code under test does not return.

    It is a L{BaseException} so that the server's C{except Exception}
    clauses cannot turn it into a 451 reply.
    """


class Boom(Exception):
    """
    The exception hooks raise in these tests.
    """


class WatchdogMixin:
    """
    Turn an endless loop in the server into a test error instead of a hung
    test run, with a C{SIGALRM} timer armed for every test.
    """

    watchdogSeconds = 5

    def setUp(self) -> None:
        super().setUp()
        if not hasattr(signal, "setitimer"):
            return
        if threading.current_thread() is not threading.main_thread():
            return

        def alarm(signum: int, frame: Any) -> None:
            raise Hang(f"no return within {self.watchdogSeconds} seconds")

        previous = signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, self.watchdogSeconds)

        def disarm() -> None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

        self.addCleanup(disarm)


class RecordingTransport(StringTransport):
    """
    A L{StringTransport} that remembers every C{write} call separately.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        super().write(data)


class Collector:
    """
    A handler that keeps a copy of every message it is given.

    @ivar messages: C{(mail_from, rcpt_tos, content, original_content)}
        for each call of C{handle_DATA}.
    """

    def __init__(self, status: str | None = None) -> None:
        self.status = status
        self.messages: list[tuple[Any, list[str], Any, Any]] = []
        self.envelopes: list[Envelope] = []

    def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> Any:
        self.envelopes.append(envelope)
        self.messages.append(
            (
                envelope.mail_from,
                list(envelope.rcpt_tos),
                envelope.content,
                envelope.original_content,
            )
        )
        return self.status


def connect(
    factory: SMTPFactory, peer: tuple[str, int] = ("127.0.0.1", 42424)
) -> tuple[SMTP, RecordingTransport]:
    """
    Connect a new server of C{factory} to a L{RecordingTransport}.
    """
    address = IPv4Address("TCP", *peer)
    transport = RecordingTransport(
        hostAddress=IPv4Address("TCP", "127.0.0.1", 25), peerAddress=address
    )
    server = factory.buildProtocol(address)
    server.makeConnection(transport)
    return server, transport


def parseReplies(data: bytes) -> list[Reply]:
    """
    Split raw server output into replies (all of them complete).
    """
    replies = []
    lines: list[str] = []
    for raw in data.split(b"\r\n")[:-1]:
        line = raw.decode("utf-8")
        lines.append(line[4:])
        if line[3:4] != "-":
            replies.append(Reply(int(line[:3]), "\n".join(lines)))
            lines = []
    return replies


def splits(data: bytes) -> Iterator[list[bytes]]:
    """
    The ways the split tests cut a stream: a byte at a time, and in two at
    every point.
    """
    yield [data[i : i + 1] for i in range(len(data))]
    for i in range(1, len(data)):
        yield [data[:i], data[i:]]


def assertSplitsAgree(
    testCase: SynchronousTestCase, run: Callable[[list[bytes]], Any], data: bytes
) -> Any:
    """
    Assert that C{run}, which feeds a fresh server the chunks it is given
    and returns what it observed, observes the same for every way of
    cutting C{data} (see L{splits}) as for C{data} in one chunk.

    @return: What C{run} observed for C{data} in one chunk, for the caller
        to check.
    """
    whole = run([data])
    for chunks in splits(data):
        testCase.assertEqual(
            run(chunks), whole, f"chunks of {[len(c) for c in chunks]} octets"
        )
    return whole


class ProtocolTestCase(WatchdogMixin, SynchronousTestCase):
    """
    Helpers shared by the tests of the server protocol.
    """

    def makeTester(self, handler: Any = None, **options: Any) -> SMTPTester:
        """
        Connect a server named L{HOST} to C{handler} (a L{Collector} by
        default).
        """
        if handler is None:
            handler = Collector()
        options.setdefault("hostname", HOST)
        return SMTPTester(handler, **options)

    def ready(self, handler: Any = None, greet: str = "EHLO", **options: Any):
        """
        Connect and greet with C{greet}; return the tester.
        """
        tester = self.makeTester(handler, **options)
        reply = tester.command(f"{greet} client.example")
        self.assertEqual(reply.code, 250)
        return tester

    def inData(self, handler: Any = None, **options: Any) -> SMTPTester:
        """
        Connect and go as far as the 354 reply to DATA.
        """
        tester = self.ready(handler, **options)
        self.assertEqual(tester.command("MAIL FROM:<a@example.com>"), OK)
        self.assertEqual(tester.command("RCPT TO:<b@example.com>"), OK)
        self.assertEqual(tester.command("DATA"), GO_AHEAD)
        return tester

    def assertOpen(self, tester: SMTPTester) -> None:
        """
        Assert that the connection is open and answers a NOOP.
        """
        self.assertFalse(tester.closed)
        self.assertEqual(tester.command("NOOP"), OK)


class PingSMTP(SMTP):
    """
    A server with an extra command, as users write them.
    """

    @syntax("PING [ignored]")
    async def smtp_PING(self, arg):
        await self.push("259 Pong")
