"""
Tests for the deadline of TLS handshakes (C{tls_handshake_timeout}): after
STARTTLS's C{220}, on an C{ssl:} listener and with C{implicit_tls} on a
plain one, a handshake that does not complete in time drops the
connection, logged once; one that completes is not affected.

The unit tests use a L{Clock} and the pretend TLS transports of
L{tests.test_tls}; the integration tests listen on 127.0.0.1 with real TLS
(C{trustme} certificates) and talk to the server through raw sockets, which
can stop in the middle of a handshake as no TLS client library would.
"""

from __future__ import annotations

import ssl
import time
from typing import Any

from twisted.internet.error import ConnectionAborted
from twisted.internet.threads import deferToThread
from twisted.logger import formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.test_tls import (
    FakeSSLTransport,
    LineClient,
    Listening,
    Recorder,
    captureEvents,
    certificates,
    listenOn,
    tlsTester,
)
from twisted_smtpd import SMTP, SMTPFactory, testing
from twisted_smtpd.testing import Reply, SMTPTester

#: The deadline of the integration tests, in real seconds.
SHORT = 0.5

#: How long a raw client waits for the server to close, in real seconds:
#: far beyond L{SHORT}, so that only a server that never closes fails.
PATIENCE = 5.0

STARTTLS_READY = Reply(220, "Ready to start TLS")


def handshakeEvents(events: list[dict], what: str) -> list[str]:
    """
    The texts of the log events about TLS handshakes that contain C{what}.
    """
    texts = [formatEvent(e) for e in events]
    return [t for t in texts if "handshake" in t and what in t]


def clientHelloStart(length: int = 20) -> bytes:
    """
    The first C{length} bytes of a real ClientHello, as Python's TLS makes
    it: a handshake that has begun and stays incomplete.
    """
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    if hello[:1] != b"\x16" or len(hello) <= length:
        raise AssertionError(f"not a ClientHello: {hello[:8]!r}")
    return hello[:length]


class HandshakeDeadlineTests(SynchronousTestCase):
    """
    The deadline of a handshake, on a L{Clock} with pretend TLS transports.
    """

    def setUp(self) -> None:
        self.options = certificates(self).serverOptions()
        self.events = captureEvents(self)

    def starttls(self, **options: Any) -> SMTPTester:
        """
        A server whose client said STARTTLS and got C{220}.
        """
        tester = tlsTester(self, Recorder(), tls_context=self.options, **options)
        self.assertEqual(tester.command("STARTTLS"), STARTTLS_READY)
        self.assertEqual(tester.transport.startTLSCalls, 1)
        return tester

    def implicit(self, **options: Any) -> SMTPTester:
        """
        A server that starts TLS itself, with C{implicit_tls}, and gives
        handshakes two seconds.
        """
        return tlsTester(
            self,
            Recorder(),
            tls_context=self.options,
            implicit_tls=True,
            tls_handshake_timeout=2,
            **options,
        )

    def assertAbortedAt(
        self, tester: SMTPTester, deadline: float, peer: str = "127.0.0.1"
    ) -> None:
        """
        Advance to just before C{deadline}: the connection is open; then to
        it: it is aborted, without a reply (none can go out in the middle of
        a handshake), and the timeout is logged once with the client's
        address, C{peer}.
        """
        written = tester.transport.value()
        tester.clock.advance(deadline - 0.01 - tester.clock.seconds())
        self.assertFalse(tester.transport.disconnecting)
        self.assertEqual(handshakeEvents(self.events, "timed out"), [])
        tester.clock.advance(0.01)
        self.assertTrue(tester.transport.disconnected, "aborted")
        self.assertEqual(tester.transport.value(), written)
        [text] = handshakeEvents(self.events, "timed out")
        self.assertIn(peer, text)

    def test_defaultDeadline(self) -> None:
        """
        A handshake after STARTTLS has 60 seconds by default, even with a
        longer idle timeout.
        """
        tester = self.starttls(timeout=600)
        self.assertAbortedAt(tester, 60)

    def test_option(self) -> None:
        """
        C{tls_handshake_timeout} sets the deadline, from the C{220}.
        """
        tester = tlsTester(
            self, Recorder(), tls_context=self.options, tls_handshake_timeout=5
        )
        tester.clock.advance(3)
        self.assertEqual(tester.command("STARTTLS"), STARTTLS_READY)
        self.assertAbortedAt(tester, 8)

    def test_idleTimeoutWaits(self) -> None:
        """
        The idle timeout does not cut a handshake, which has its own
        deadline; it starts again from the end of the handshake.
        """
        tester = self.starttls(timeout=10, tls_handshake_timeout=60)
        tester.clock.advance(30)
        self.assertFalse(tester.transport.disconnecting)
        tester.server.handshakeCompleted()
        tester.clock.advance(9.9)
        self.assertFalse(tester.transport.disconnecting)
        tester.clock.advance(0.1)
        self.assertEqual(
            tester.replies(),
            [Reply(421, "4.4.2 mx.example.test Error: timeout exceeded")],
        )
        self.assertTrue(tester.transport.disconnecting)

    def test_completedHandshake(self) -> None:
        """
        A handshake that completes in time cancels its deadline: the
        session goes on, and no timer is left behind.
        """
        tester = self.starttls(timeout=None, tls_handshake_timeout=5)
        tester.clock.advance(4.9)
        tester.server.handshakeCompleted()
        self.assertEqual(tester.clock.getDelayedCalls(), [])
        tester.clock.advance(100)
        self.assertEqual(tester.command("EHLO client.example").code, 250)
        self.assertFalse(tester.transport.disconnecting)
        self.assertEqual(handshakeEvents(self.events, ""), [])

    def test_lostDuringHandshake(self) -> None:
        """
        A connection lost during its handshake leaves no deadline behind,
        and is logged as a failed handshake only.
        """
        tester = self.starttls(timeout=None, tls_handshake_timeout=5)
        tester.server.connectionLost(Failure(ConnectionAborted()))
        self.assertEqual(tester.clock.getDelayedCalls(), [])
        self.assertEqual(handshakeEvents(self.events, "timed out"), [])
        self.assertEqual(len(handshakeEvents(self.events, "failed")), 1)

    def test_loggedOnce(self) -> None:
        """
        A handshake that timed out is not logged again as failed when its
        connection is then lost.
        """
        tester = self.starttls(tls_handshake_timeout=5)
        self.assertAbortedAt(tester, 5)
        tester.server.connectionLost(Failure(ConnectionAborted()))
        self.assertEqual(handshakeEvents(self.events, "failed"), [])
        self.assertEqual(len(handshakeEvents(self.events, "timed out")), 1)

    def test_implicitTLSListener(self) -> None:
        """
        On an C{ssl:} listener the handshake has the deadline from the
        connection on.
        """
        self.patch(testing, "StringTransport", FakeSSLTransport)
        tester = SMTPTester(Recorder(), hostname="mx.example.test")
        self.assertAbortedAt(tester, 60)

    def test_implicitTLSOption(self) -> None:
        """
        With C{implicit_tls} on a plain listener, the handshake the server
        starts at once has the deadline too.
        """
        tester = self.implicit()
        self.assertEqual(tester.transport.startTLSCalls, 1)
        self.assertAbortedAt(tester, 2)

    def test_implicitTLSAfterProxyHeader(self) -> None:
        """
        Behind a PROXY header, the implicit handshake's deadline starts
        once the header is read, not before.
        """
        tester = self.implicit(proxy_protocol_timeout=30)
        tester.clock.advance(10)
        self.assertEqual(tester.transport.startTLSCalls, 0)
        tester.send(b"PROXY TCP4 192.0.2.1 192.0.2.2 4000 25\r\n")
        self.assertEqual(tester.transport.startTLSCalls, 1)
        self.assertAbortedAt(tester, 12, peer="192.0.2.1")


class RealHandshakeDeadlineTests(TestCase):
    """
    Handshakes that stop half-way, against real TLS: integration tests on
    127.0.0.1 (real TCP, port 0, trustme certificates, raw sockets in
    threads).
    """

    timeout = 60

    def setUp(self) -> None:
        self.certs = certificates(self)
        self.events = captureEvents(self)

    async def listen(self, description: str | None = None, **options: Any):
        """
        Listen with a short handshake deadline and a long idle timeout, so
        that only the deadline can close a connection in time.
        """
        options.setdefault("tls_handshake_timeout", SHORT)
        options.setdefault("timeout", 300)
        options.setdefault("tls_context", self.certs.serverOptions())
        if description is None:
            return await listenOn(self, Recorder(), **options)
        return await listenOn(self, Recorder(), description, **options)

    def sslDescription(self) -> str:
        return (
            "ssl:0:interface=127.0.0.1"
            f":privateKey={self.certs.keyFile}:certKey={self.certs.certFile}"
        )

    async def assertCutAfterDeadline(self, server: Listening, client: Any) -> None:
        """
        Run C{client} (a function of a L{LineClient} that stops in the
        middle of a handshake) in a thread, then read until the server
        closes: that must come after the deadline and well within
        L{PATIENCE}; the server logs the timeout once, with the client's
        address, and no failed handshake.
        """

        def run() -> float:
            c = LineClient(server.port)
            c.sock.settimeout(PATIENCE)
            try:
                client(c)
                began = time.monotonic()
                c.readToEnd()
                return time.monotonic() - began
            finally:
                c.close()

        try:
            waited = await deferToThread(run)
        except TimeoutError:
            self.fail(f"not closed within {PATIENCE} s of a {SHORT} s deadline")
        # The deadline started before the client's last step.
        self.assertGreater(waited, SHORT / 2)
        await server.whenClosed(server.servers[0])
        [text] = handshakeEvents(self.events, "timed out")
        self.assertIn("127.0.0.1", text)
        self.assertEqual(handshakeEvents(self.events, "failed"), [])

    async def test_silenceAfterSTARTTLS(self) -> None:
        """
        A client that says STARTTLS and then nothing is dropped.
        """
        server = await self.listen()

        def client(c: LineClient) -> None:
            c.reply()
            self.assertEqual(c.command("STARTTLS"), STARTTLS_READY)

        await self.assertCutAfterDeadline(server, client)

    async def test_halfClientHelloAfterSTARTTLS(self) -> None:
        """
        A client that sends the start of a ClientHello after STARTTLS, then
        nothing, is dropped.
        """
        server = await self.listen()

        def client(c: LineClient) -> None:
            c.reply()
            self.assertEqual(c.command("STARTTLS"), STARTTLS_READY)
            c.send(clientHelloStart())

        await self.assertCutAfterDeadline(server, client)

    async def test_silenceOnSSLListener(self) -> None:
        """
        A client of an C{ssl:} listener that sends nothing is dropped.
        """
        server = await self.listen(self.sslDescription())
        await self.assertCutAfterDeadline(server, lambda c: None)

    async def test_halfClientHelloOnSSLListener(self) -> None:
        """
        A client of an C{ssl:} listener that sends half a ClientHello is
        dropped.
        """
        server = await self.listen(self.sslDescription())
        await self.assertCutAfterDeadline(server, lambda c: c.send(clientHelloStart()))

    async def test_silenceWithImplicitTLS(self) -> None:
        """
        With C{implicit_tls} on a C{tcp:} listener, a client that sends
        nothing is dropped.
        """
        server = await self.listen(implicit_tls=True)
        await self.assertCutAfterDeadline(server, lambda c: None)

    async def assertServedAfter(self, server: Listening, handshake: Any) -> None:
        """
        Run C{handshake} (a function of a L{LineClient} that completes a
        handshake) in a thread, then wait three times the deadline: the
        session goes on, and no timeout is logged.
        """

        def client() -> Reply:
            c = LineClient(server.port)
            try:
                handshake(c)
                time.sleep(SHORT * 3)
                return c.command("NOOP")
            finally:
                c.close()

        self.assertEqual(await deferToThread(client), (250, "OK"))
        self.assertEqual(handshakeEvents(self.events, "timed out"), [])

    async def test_completedHandshakeUnaffected(self) -> None:
        """
        A client that completes its handshake after STARTTLS in time is
        served, however long it then takes (within the idle timeout) to
        speak.
        """
        server = await self.listen()
        context = self.certs.clientContext()

        def handshake(c: LineClient) -> None:
            c.reply()
            self.assertEqual(c.command("STARTTLS"), STARTTLS_READY)
            c.startTLS(context)
            self.assertEqual(c.command("EHLO client.example").code, 250)

        await self.assertServedAfter(server, handshake)

    async def test_completedImplicitHandshakeUnaffected(self) -> None:
        """
        On an C{ssl:} listener too, a handshake that completes in time
        leaves the session alone.
        """
        server = await self.listen(self.sslDescription())
        context = self.certs.clientContext()

        def handshake(c: LineClient) -> None:
            c.sock = context.wrap_socket(c.sock, server_hostname="localhost")
            self.assertEqual(c.reply().code, 220)

        await self.assertServedAfter(server, handshake)


class OptionTests(SynchronousTestCase):
    """
    The C{tls_handshake_timeout} option of L{SMTPFactory}.
    """

    def test_default(self) -> None:
        """
        The default is asyncio's (and so aiosmtpd's): 60 seconds.
        """
        factory = SMTPFactory(Recorder())
        self.assertEqual(factory.buildProtocol(None).config.tls_handshake_timeout, 60)

    def test_bad(self) -> None:
        """
        Zero, a negative number, C{None} and a non-number are refused.
        """
        for value, error in [
            (0, ValueError),
            (-1, ValueError),
            (None, TypeError),
            ("60", TypeError),
        ]:
            with self.assertRaises(error) as caught:
                SMTPFactory(Recorder(), tls_handshake_timeout=value)
            self.assertIn("tls_handshake_timeout", str(caught.exception))

    def test_protocolOption(self) -> None:
        """
        A protocol made without a factory takes the option too.
        """
        server = SMTP(Recorder(), tls_handshake_timeout=2.5)
        self.assertEqual(server.config.tls_handshake_timeout, 2.5)
