# -*- test-case-name: tests.test_tls -*-
"""
Tests for STARTTLS (RFC 3207), implicit TLS (RFC 8314) and
L{twisted_smtpd.tlsOptionsFromFiles}.

The unit tests drive the server in memory through a L{StringTransport} that
pretends to start TLS; the integration tests run real handshakes on
127.0.0.1 with certificates made by C{trustme}, and real clients: C{smtplib}
(in a thread), and C{openssl s_client} as a subprocess.

The helpers at the top are shared with C{tests.test_auth}.
"""

from __future__ import annotations

import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import threading
import warnings
from pathlib import Path
from typing import Any

import trustme
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL
from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import ISSLTransport, ITLSTransport
from twisted.internet.ssl import (
    Certificate,
    CertificateOptions,
    KeyPair,
    PrivateCertificate,
    TLSVersion,
)
from twisted.internet.testing import StringTransport
from twisted.internet.threads import deferToThread
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase
from zope.interface import implementer

from tests._support import closeTracked, trackedFactory
from twisted_smtpd import SMTP, SMTPFactory, testing, tlsOptionsFromFiles
from twisted_smtpd.testing import Reply, SMTPTester

#: The name our servers give in their greeting and EHLO replies.
HOSTNAME = "mx.example.test"

#: Seconds a blocking client waits for the server before giving up.
CLIENT_TIMEOUT = 10.0

#: Seconds a command-line client may run.
TOOL_TIMEOUT = 20.0

MUST_STARTTLS = (530, "Must issue a STARTTLS command first")
LACK_OF_SECURITY = (554, "Command refused due to lack of security")
SEND_HELO_FIRST = (503, "Error: send HELO first")
NEED_MAIL = (503, "Error: need MAIL command")


# Certificates.


class Certificates:
    """
    A test CA, a server certificate for C{localhost} and C{127.0.0.1}
    issued by it, and a client certificate, written as PEM files.

    @ivar directory: Where the files are.
    @ivar ca: The L{trustme.CA}.
    @ivar caFile: The CA certificate.
    @ivar combinedFile: The server key, certificate and chain in one file.
    @ivar certFile: The server certificate alone.
    @ivar keyFile: The server private key alone.
    @ivar clientCertFile: The client key and certificate in one file.
    """

    _ca: trustme.CA | None = None
    _server: trustme.LeafCert | None = None
    _client: trustme.LeafCert | None = None

    def __init__(self, directory: str) -> None:
        cls = type(self)
        if cls._ca is None:
            # Made once per process: key generation is the slow part.
            cls._ca = trustme.CA()
            cls._server = cls._ca.issue_cert("localhost", "127.0.0.1")
            cls._client = cls._ca.issue_cert("client@example.test")
        self.ca = cls._ca
        self.server = cls._server
        self.client = cls._client
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        self.directory = path
        self.caFile = str(path / "ca.pem")
        self.combinedFile = str(path / "server-combined.pem")
        self.certFile = str(path / "server-cert.pem")
        self.keyFile = str(path / "server-key.pem")
        self.clientCertFile = str(path / "client.pem")
        self.ca.cert_pem.write_to_path(self.caFile)
        self.server.private_key_and_cert_chain_pem.write_to_path(self.combinedFile)
        self.server.cert_chain_pems[0].write_to_path(self.certFile)
        self.server.private_key_pem.write_to_path(self.keyFile)
        self.client.private_key_and_cert_chain_pem.write_to_path(self.clientCertFile)

    def serverOptions(self) -> CertificateOptions:
        """
        The server's TLS options, from L{tlsOptionsFromFiles}.
        """
        return tlsOptionsFromFiles(self.combinedFile)

    def clientContext(self, certificate: bool = False) -> ssl.SSLContext:
        """
        A client context that trusts the test CA and checks the host name.

        @param certificate: Whether to present the client certificate.
        """
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        if certificate:
            context.load_cert_chain(self.clientCertFile)
        return context


def certificates(testCase: TestCase | SynchronousTestCase) -> Certificates:
    """
    Write the test certificates into a fresh directory of C{testCase}.
    """
    return Certificates(testCase.mktemp())


# In-memory STARTTLS.


class FakeTLSConnection:
    """
    What L{FakeTLSTransport.getHandle} returns: the few methods of
    C{OpenSSL.SSL.Connection} the server reads after a handshake.
    """

    def __init__(self, peerCertificate: Any = None) -> None:
        self._peerCertificate = peerCertificate

    def get_protocol_version_name(self) -> str:
        return "TLSv1.3"

    def get_cipher_name(self) -> str:
        return "TLS_AES_256_GCM_SHA384"

    def get_cipher_version(self) -> str:
        return "TLSv1.3"

    def get_cipher_bits(self) -> int:
        return 256

    def get_peer_certificate(self) -> Any:
        return self._peerCertificate


@implementer(ITLSTransport)
class FakeTLSTransport(StringTransport):
    """
    A L{StringTransport} that can "start TLS": it records the call and what
    had been written by then, and encrypts nothing.

    @ivar tlsOptions: The options given to C{startTLS}, or C{None}.
    @ivar writtenBeforeTLS: What the server had written when it called
        C{startTLS}.
    """

    tlsOptions: Any = None
    writtenBeforeTLS: bytes | None = None
    startTLSCalls = 0

    def startTLS(self, contextFactory: Any, normal: bool = True) -> None:
        self.startTLSCalls += 1
        self.tlsOptions = contextFactory
        self.writtenBeforeTLS = self.value()

    def getHandle(self) -> FakeTLSConnection:
        return FakeTLSConnection()


def tlsTester(
    testCase: TestCase | SynchronousTestCase, handler: Any, **options: Any
) -> SMTPTester:
    """
    Make an L{SMTPTester} whose transport is a L{FakeTLSTransport}.
    """
    testCase.patch(testing, "StringTransport", FakeTLSTransport)
    tester = SMTPTester(handler, hostname=HOSTNAME, **options)
    if not isinstance(tester.transport, FakeTLSTransport):
        raise AssertionError("SMTPTester did not use the patched transport")
    return tester


@implementer(ISSLTransport)
class FakeSSLTransport(StringTransport):
    """
    A L{StringTransport} that is TLS from the start, as the transport of an
    C{ssl:} listener is.
    """

    def getHandle(self) -> FakeTLSConnection:
        return FakeTLSConnection()

    def getPeerCertificate(self) -> Any:
        return None


def implicitTester(
    testCase: TestCase | SynchronousTestCase, handler: Any, **options: Any
) -> SMTPTester:
    """
    Make an L{SMTPTester} whose transport is TLS from the start, and tell
    the server its handshake is done, as Twisted does on an C{ssl:}
    listener.
    """
    testCase.patch(testing, "StringTransport", FakeSSLTransport)
    tester = SMTPTester(handler, hostname=HOSTNAME, **options)
    if not isinstance(tester.transport, FakeSSLTransport):
        raise AssertionError("SMTPTester did not use the patched transport")
    tester.server.handshakeCompleted()
    return tester


def startTLS(testCase: TestCase | SynchronousTestCase, tester: SMTPTester) -> None:
    """
    Send STARTTLS, check the 220, and complete the (pretend) handshake.
    """
    testCase.assertEqual(tester.command("STARTTLS"), (220, "Ready to start TLS"))
    testCase.assertEqual(tester.transport.startTLSCalls, 1)
    tester.server.handshakeCompleted()


class Recorder:
    """
    A handler that records what its hooks saw.

    @ivar calls: C{(verb, argument)} for each hook call.
    @ivar messages: C{(session, envelope)} for each message received.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.messages: list[tuple[Any, Any]] = []

    def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.calls.append(("MAIL", address))

    def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.calls.append(("RCPT", address))

    def handle_NOOP(self, server, session, envelope, arg):
        self.calls.append(("NOOP", arg))

    def handle_RSET(self, server, session, envelope):
        self.calls.append(("RSET", None))

    def handle_DATA(self, server, session, envelope):
        self.messages.append((session, envelope))
        return "250 OK"


def ehloKeywords(reply: Reply) -> list[str]:
    """
    The extension keywords of an EHLO reply (its lines after the first).
    """
    return reply.lines[1:]


# Real servers on 127.0.0.1.


class Listening:
    """
    A server listening on 127.0.0.1 for one test.

    @ivar port: The TCP port number, or the path of a UNIX socket.
    @ivar factory: The L{SMTPFactory}.
    @ivar servers: Every server protocol made so far, in connection order.
    """

    def __init__(
        self,
        port: int,
        factory: SMTPFactory,
        servers: list[SMTP],
        lost: dict[int, Deferred[None]],
    ):
        self.port = port
        self.factory = factory
        self.servers = servers
        self._lost = lost

    def whenClosed(self, server: SMTP) -> Deferred[None]:
        """
        A L{Deferred} firing once C{server}'s connection is lost (at once if
        it already is).
        """
        pending = self._lost.get(id(server))
        if pending is None:
            return succeed(None)
        closed: Deferred[None] = Deferred()

        def fire(result: Any) -> Any:
            closed.callback(None)
            return result

        pending.addBoth(fire)
        return closed


async def listenOn(
    testCase: TestCase,
    handler: Any,
    description: str = "tcp:0:interface=127.0.0.1",
    protocol: type[SMTP] = SMTP,
    **options: Any,
) -> Listening:
    """
    Listen with an L{SMTPFactory} on a server endpoint description (an
    C{ssl:} one for implicit TLS) with the global reactor, and register a
    cleanup that stops listening and waits until every server connection is
    gone (aborting those still open).
    """
    factory, servers, lost = trackedFactory(handler, protocol=protocol, **options)
    port = await serverFromString(reactor, description).listen(factory)
    testCase.addCleanup(closeTracked, port, servers, lost)
    host = port.getHost()
    # The TCP port number, or the path of a UNIX socket.
    address = getattr(host, "port", None) or host.name
    if isinstance(address, bytes):
        address = address.decode()
    return Listening(address, factory, servers, lost)


def captureEvents(testCase: TestCase | SynchronousTestCase) -> list[dict]:
    """
    Collect every log event emitted until the end of C{testCase}.
    """
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    testCase.addCleanup(globalLogPublisher.removeObserver, events.append)
    return events


def eventText(event: dict) -> str:
    """
    Everything a log event could show: its formatted text, its C{repr}, and
    the traceback of its failure, if any.
    """
    text = f"{formatEvent(event)}\n{event!r}"
    failure = event.get("log_failure")
    if failure is not None:
        text += "\n" + failure.getTraceback()
    return text


class LineClient:
    """
    A blocking SMTP client speaking raw lines, for threads; every read has a
    timeout.
    """

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), CLIENT_TIMEOUT)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed; unread: {self.buffer!r}")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def reply(self) -> Reply:
        """
        Read one whole reply.
        """
        lines = []
        while True:
            line = self._line().decode("utf-8", "replace")
            lines.append(line[4:])
            if line[3:4] != "-":
                return Reply(int(line[:3]), "\n".join(lines))

    def command(self, line: str) -> Reply:
        self.send(line.encode("utf-8") + b"\r\n")
        return self.reply()

    def startTLS(self, context: ssl.SSLContext, hostname: str = "localhost") -> None:
        """
        Wrap the connection in TLS; there must be no unread plaintext.
        """
        if self.buffer:
            raise AssertionError(f"plaintext after the 220: {self.buffer!r}")
        self.sock = context.wrap_socket(self.sock, server_hostname=hostname)

    def readToEnd(self) -> bytes:
        """
        Read until the server closes the connection (a reset counts as
        closed).

        @raise TimeoutError: If the server neither closes nor speaks in time.
        """
        data = self.buffer
        self.buffer = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLError, ssl.SSLEOFError):
                return data
            if not chunk:
                return data
            data += chunk

    def close(self) -> None:
        self.sock.close()


def commandLineTool(name: str, package: str | None = None) -> str:
    """
    Find a program, in C{PATH} or C{/usr/sbin} (where Postfix's test tools
    are, outside a normal user's C{PATH}); skip the test without it, except
    on CI (C{CI} set), where C{.ci/run} installs it and its absence is a
    failure.

    @param package: The Debian package that has it, if not named C{name}.
    """
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if path is None:
        reason = f"{name} is not installed (apt-get install {package or name})"
        if os.environ.get("CI"):
            raise AssertionError(reason + "; .ci/run should have installed it")
        raise SkipTest(reason)
    return path


def runTool(args: list[str], stdin: bytes = b"") -> Deferred:
    """
    Run a command-line client in a thread, bounded by L{TOOL_TIMEOUT}.

    @return: A L{Deferred} firing with the C{subprocess.CompletedProcess}.
    """
    return deferToThread(
        subprocess.run,
        args,
        input=stdin,
        capture_output=True,
        timeout=TOOL_TIMEOUT,
        check=False,
    )


def converse(args: list[str], script: list[tuple[bytes | None, bytes]]) -> bytes:
    """
    Run an interactive command-line client, writing each line of C{script}
    to its standard input and then reading its standard output until the
    expected bytes appear; stop it afterwards, whether or not it would have
    exited by itself. The whole exchange is bounded by L{TOOL_TIMEOUT}.

    @param script: C{(line to send or None, bytes to wait for)} pairs.
    @return: Everything the client printed on its standard output.
    @raise AssertionError: If the client ends, or the time runs out, before
        printing what was expected.
    """
    proc = subprocess.Popen(
        args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    timer = threading.Timer(TOOL_TIMEOUT, proc.kill)
    timer.start()
    out = b""
    try:
        for line, expected in script:
            if line is not None:
                proc.stdin.write(line)
                proc.stdin.flush()
            while expected not in out:
                chunk = proc.stdout.readline()
                if not chunk:
                    raise AssertionError(
                        f"{args[0]} ended before printing {expected!r}:"
                        f" {out[-400:]!r} {proc.stderr.read()[-400:]!r}"
                    )
                out += chunk
        return out
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


# Unit tests.


class STARTTLSAdvertisingTests(SynchronousTestCase):
    """
    When STARTTLS is offered in the EHLO reply (in memory).
    """

    def test_advertisedWithContext(self) -> None:
        """
        With a C{tls_context}, EHLO lists STARTTLS.
        """
        tester = tlsTester(
            self, Recorder(), tls_context=certificates(self).serverOptions()
        )
        reply = tester.command("EHLO client.example")
        self.assertEqual(reply.code, 250)
        self.assertIn("STARTTLS", ehloKeywords(reply))

    def test_notAdvertisedWithoutContext(self) -> None:
        """
        Without a C{tls_context}, EHLO does not list STARTTLS.
        """
        tester = tlsTester(self, Recorder())
        reply = tester.command("EHLO client.example")
        self.assertEqual(reply.code, 250)
        self.assertNotIn("STARTTLS", ehloKeywords(reply))

    def test_notAdvertisedOverTLS(self) -> None:
        """
        Once TLS is up, EHLO no longer lists STARTTLS.
        """
        tester = tlsTester(
            self, Recorder(), tls_context=certificates(self).serverOptions()
        )
        startTLS(self, tester)
        reply = tester.command("EHLO client.example")
        self.assertEqual(reply.code, 250)
        self.assertNotIn("STARTTLS", ehloKeywords(reply))


class STARTTLSCommandTests(SynchronousTestCase):
    """
    The replies to STARTTLS and what it does to the session (in memory).
    """

    def setUp(self) -> None:
        self.options = certificates(self).serverOptions()
        self.handler = Recorder()
        self.tester = tlsTester(self, self.handler, tls_context=self.options)

    def test_argument(self) -> None:
        """
        STARTTLS with an argument gets 501 and TLS does not start.
        """
        self.assertEqual(self.tester.command("STARTTLS x"), (501, "Syntax: STARTTLS"))
        self.assertEqual(self.tester.transport.startTLSCalls, 0)

    def test_noContext(self) -> None:
        """
        Without a C{tls_context}, STARTTLS gets 454 and TLS does not start.
        """
        tester = tlsTester(self, Recorder())
        self.assertEqual(tester.command("STARTTLS"), (454, "TLS not available"))
        self.assertEqual(tester.transport.startTLSCalls, 0)

    def test_starts(self) -> None:
        """
        STARTTLS gets 220, written before the transport starts TLS with the
        configured options.
        """
        transport = self.tester.transport
        self.tester.command("EHLO client.example")
        self.assertEqual(self.tester.command("STARTTLS"), (220, "Ready to start TLS"))
        self.assertEqual(transport.startTLSCalls, 1)
        self.assertIs(transport.tlsOptions, self.options)
        self.assertTrue(
            transport.writtenBeforeTLS.endswith(b"220 Ready to start TLS\r\n")
        )
        self.assertIsNone(self.tester.server.session.ssl)

    def test_startsWithoutEHLO(self) -> None:
        """
        STARTTLS is allowed before any greeting from the client.
        """
        self.assertEqual(self.tester.command("STARTTLS"), (220, "Ready to start TLS"))
        self.assertEqual(self.tester.transport.startTLSCalls, 1)

    def test_secondSTARTTLS(self) -> None:
        """
        STARTTLS inside TLS gets 503 and does not start TLS again.
        """
        startTLS(self, self.tester)
        self.tester.command("EHLO client.example")
        reply = self.tester.command("STARTTLS")
        self.assertEqual(reply.code, 503)
        self.assertEqual(self.tester.transport.startTLSCalls, 1)
        self.assertFalse(self.tester.closed)

    def test_sslDetails(self) -> None:
        """
        After the handshake C{session.ssl} holds the protocol, the cipher
        and the peer certificate (none here).
        """
        startTLS(self, self.tester)
        ssl = self.tester.server.session.ssl
        self.assertEqual(ssl["protocol"], "TLSv1.3")
        self.assertEqual(ssl["cipher"], ("TLS_AES_256_GCM_SHA384", "TLSv1.3", 256))
        self.assertIsNone(ssl["peercert"])

    def test_mustGreetAgain(self) -> None:
        """
        After TLS starts the client must EHLO again: MAIL gets 503.
        """
        self.tester.command("EHLO client.example")
        startTLS(self, self.tester)
        self.assertEqual(
            self.tester.command("MAIL FROM:<a@example.com>"), SEND_HELO_FIRST
        )
        self.assertEqual(self.tester.command("EHLO client.example").code, 250)
        self.assertEqual(self.tester.command("MAIL FROM:<a@example.com>"), (250, "OK"))

    def test_sessionForgotten(self) -> None:
        """
        The session after TLS is a new one: greeting forgotten, peer kept.
        """
        self.tester.command("EHLO client.example")
        before = self.tester.server.session
        startTLS(self, self.tester)
        after = self.tester.server.session
        self.assertIsNot(after, before)
        self.assertIsNone(after.host_name)
        self.assertFalse(after.extended_smtp)
        self.assertEqual(after.peer, ("127.0.0.1", 42424))
        self.assertIsNotNone(after.ssl)

    def test_envelopeForgotten(self) -> None:
        """
        A MAIL given before STARTTLS is forgotten: RCPT after the handshake
        and a new EHLO gets 503 need MAIL.
        """
        self.tester.command("EHLO client.example")
        self.assertEqual(self.tester.command("MAIL FROM:<a@example.com>"), (250, "OK"))
        startTLS(self, self.tester)
        self.assertIsNone(self.tester.server.envelope.mail_from)
        self.assertEqual(
            self.tester.command("RCPT TO:<b@example.com>"), SEND_HELO_FIRST
        )
        self.tester.command("EHLO client.example")
        self.assertEqual(self.tester.command("RCPT TO:<b@example.com>"), NEED_MAIL)

    def test_injectedMail(self) -> None:
        """
        A MAIL pipelined in the same plaintext write as STARTTLS is never
        run, neither before nor after the handshake, and gets no reply.
        """
        self.tester.command("EHLO client.example")
        self.tester.send(b"STARTTLS\r\nMAIL FROM:<evil@x>\r\n")
        self.assertEqual(self.tester.replies(), [(220, "Ready to start TLS")])
        self.tester.server.handshakeCompleted()
        self.assertEqual(self.tester.replies(), [])
        self.assertIsNone(self.tester.server.envelope.mail_from)
        self.assertEqual(self.handler.calls, [])
        self.tester.command("EHLO client.example")
        self.assertEqual(self.tester.command("RCPT TO:<b@example.com>"), NEED_MAIL)
        self.assertEqual(self.handler.calls, [])

    def test_injectedNoopRset(self) -> None:
        """
        NOOP and RSET pipelined after STARTTLS are not run and not answered.
        """
        self.tester.send(b"STARTTLS\r\nNOOP\r\nRSET\r\n")
        self.assertEqual(self.tester.replies(), [(220, "Ready to start TLS")])
        self.tester.server.handshakeCompleted()
        self.assertEqual(self.tester.replies(), [])
        self.assertEqual(self.handler.calls, [])
        self.assertEqual(self.tester.command("NOOP"), (250, "OK"))
        self.assertEqual(self.handler.calls, [("NOOP", None)])

    def test_handshakeTimeout(self) -> None:
        """
        A handshake that never completes is ended by
        C{tls_handshake_timeout} (see also L{tests.test_handshake}).
        """
        tester = tlsTester(
            self, Recorder(), tls_context=self.options, tls_handshake_timeout=0.5
        )
        self.assertEqual(tester.command("STARTTLS"), (220, "Ready to start TLS"))
        tester.clock.advance(0.4)
        self.assertFalse(tester.closed)
        tester.clock.advance(0.2)
        self.assertTrue(tester.closed)

    def test_helpListsSTARTTLS(self) -> None:
        """
        HELP lists STARTTLS only when a C{tls_context} is configured.
        """
        self.assertIn("STARTTLS", self.tester.command("HELP").text.split())
        plain = tlsTester(self, Recorder())
        self.assertNotIn("STARTTLS", plain.command("HELP").text.split())


class RequireSTARTTLSTests(SynchronousTestCase):
    """
    C{require_starttls=True} (in memory).
    """

    def setUp(self) -> None:
        self.options = certificates(self).serverOptions()
        self.tester = tlsTester(
            self, Recorder(), tls_context=self.options, require_starttls=True
        )

    def test_refusedBeforeTLS(self) -> None:
        """
        Every command but NOOP, EHLO, STARTTLS and QUIT gets 530 before TLS,
        unknown verbs included.
        """
        self.tester.command("EHLO client.example")
        for line in [
            "HELO client.example",
            "MAIL FROM:<a@example.com>",
            "RCPT TO:<b@example.com>",
            "DATA",
            "RSET",
            "VRFY postmaster",
            "EXPN list",
            "HELP",
            "AUTH PLAIN AGEAYg==",
            "XYZZY",
        ]:
            self.assertEqual(self.tester.command(line), MUST_STARTTLS, line)
        self.assertFalse(self.tester.closed)

    def test_allowedBeforeTLS(self) -> None:
        """
        NOOP, EHLO and QUIT are answered normally before TLS.
        """
        self.assertEqual(self.tester.command("NOOP"), (250, "OK"))
        reply = self.tester.command("EHLO client.example")
        self.assertEqual(reply.code, 250)
        self.assertIn("STARTTLS", ehloKeywords(reply))
        self.assertEqual(self.tester.command("QUIT"), (221, "Bye"))
        self.assertTrue(self.tester.closed)

    def test_allowedAfterTLS(self) -> None:
        """
        Once TLS is up, a whole transaction goes through.
        """
        startTLS(self, self.tester)
        replies = self.tester.sendmail("a@example.com", ["b@example.com"], b"Hi\r\n")
        self.assertEqual([r.code for r in replies], [250, 250, 250, 354, 250])

    def test_needsContext(self) -> None:
        """
        C{require_starttls} without a C{tls_context} is refused when the
        server is made.
        """
        self.assertRaises(ValueError, SMTPFactory, Recorder(), require_starttls=True)
        self.assertRaises(ValueError, SMTP, Recorder(), require_starttls=True)


class TLSContextOptionTests(SynchronousTestCase):
    """
    What C{tls_context} accepts.
    """

    def test_sslContextRefused(self) -> None:
        """
        An C{ssl.SSLContext} is refused with L{TypeError}.
        """
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.assertRaises(TypeError, SMTPFactory, Recorder(), tls_context=context)

    def test_certificateOptionsAccepted(self) -> None:
        """
        Twisted's L{CertificateOptions} are accepted.
        """
        options = certificates(self).serverOptions()
        factory = SMTPFactory(Recorder(), tls_context=options)
        self.assertIs(factory.buildProtocol(None).tls_context, options)


class STARTTLSHookTests(SynchronousTestCase):
    """
    The C{handle_STARTTLS} hook (in memory).
    """

    def makeTester(self, decision: Any) -> tuple[SMTPTester, list]:
        """
        A server whose C{handle_STARTTLS} records its arguments and returns
        C{decision()}.
        """
        calls: list = []

        class Handler(Recorder):
            def handle_STARTTLS(self, server, session, envelope):
                calls.append((server, session, envelope, session.ssl))
                return decision()

        tester = tlsTester(
            self, Handler(), tls_context=certificates(self).serverOptions()
        )
        return tester, calls

    def test_calledAfterHandshake(self) -> None:
        """
        The hook is called once the handshake is done, with the new session
        (whose C{ssl} is set) and envelope; a true result lets the session
        go on.
        """
        tester, calls = self.makeTester(lambda: True)
        self.assertEqual(tester.command("STARTTLS"), (220, "Ready to start TLS"))
        self.assertEqual(calls, [])
        tester.server.handshakeCompleted()
        [(server, session, envelope, sslInfo)] = calls
        self.assertIs(server, tester.server)
        self.assertIs(session, tester.server.session)
        self.assertIs(envelope, tester.server.envelope)
        self.assertEqual(sslInfo["protocol"], "TLSv1.3")
        self.assertEqual(tester.command("EHLO client.example").code, 250)
        self.assertEqual(tester.command("MAIL FROM:<a@example.com>"), (250, "OK"))

    def test_falsyRefuses(self) -> None:
        """
        A false result makes every command but QUIT get 554.
        """
        tester, calls = self.makeTester(lambda: False)
        startTLS(self, tester)
        for line in [
            "EHLO client.example",
            "NOOP",
            "MAIL FROM:<a@example.com>",
            "STARTTLS",
            "XYZZY",
        ]:
            self.assertEqual(tester.command(line), LACK_OF_SECURITY, line)
        self.assertEqual(tester.command("QUIT"), (221, "Bye"))

    def test_noneRefuses(self) -> None:
        """
        C{None} is falsy, so it refuses too.
        """
        tester, calls = self.makeTester(lambda: None)
        startTLS(self, tester)
        self.assertEqual(tester.command("NOOP"), LACK_OF_SECURITY)

    def test_deferredDecision(self) -> None:
        """
        A L{Deferred} result is waited for; commands sent meanwhile are
        answered after it, according to it.
        """
        pending: Deferred = Deferred()
        tester, calls = self.makeTester(lambda: pending)
        startTLS(self, tester)
        tester.send(b"NOOP\r\n")
        self.assertEqual(tester.replies(), [])
        pending.callback(False)
        self.assertEqual(tester.replies(), [LACK_OF_SECURITY])

    def test_coroutineDecision(self) -> None:
        """
        An C{async def} hook works; a true result lets the session go on.
        """

        async def decide() -> bool:
            return True

        tester, calls = self.makeTester(decide)
        startTLS(self, tester)
        self.assertEqual(tester.command("NOOP"), (250, "OK"))


class ImplicitTLSUnitTests(SynchronousTestCase):
    """
    A connection that is TLS from the start (implicit TLS, RFC 8314), in
    memory.
    """

    def test_sessionSSL(self) -> None:
        """
        C{session.ssl} is set before the client says anything.
        """
        tester = implicitTester(self, Recorder())
        self.assertEqual(tester.server.session.ssl["protocol"], "TLSv1.3")

    def test_noSTARTTLS(self) -> None:
        """
        STARTTLS is not offered, and gets 503, even with a C{tls_context}.
        """
        tester = implicitTester(
            self, Recorder(), tls_context=certificates(self).serverOptions()
        )
        reply = tester.command("EHLO client.example")
        self.assertNotIn("STARTTLS", ehloKeywords(reply))
        self.assertEqual(tester.command("STARTTLS").code, 503)

    def test_noSTARTTLSWithoutContext(self) -> None:
        """
        Without a C{tls_context}, STARTTLS inside implicit TLS gets 503 too:
        TLS is already active.
        """
        tester = implicitTester(self, Recorder())
        tester.command("EHLO client.example")
        self.assertEqual(tester.command("STARTTLS").code, 503)

    def test_requireSTARTTLSSatisfied(self) -> None:
        """
        C{require_starttls} is satisfied by implicit TLS.
        """
        tester = implicitTester(
            self,
            Recorder(),
            tls_context=certificates(self).serverOptions(),
            require_starttls=True,
        )
        replies = tester.sendmail("a@example.com", ["b@example.com"], b"Hi\r\n")
        self.assertEqual([r.code for r in replies], [250, 250, 250, 354, 250])


class TLSOptionsFromFilesTests(SynchronousTestCase):
    """
    L{tlsOptionsFromFiles}.
    """

    def setUp(self) -> None:
        self.certs = certificates(self)
        serverPEM = self.certs.server.cert_chain_pems[0].bytes()
        self.expectedCert = Certificate.loadPEM(serverPEM)

    def assertServerCertificate(self, options: CertificateOptions) -> None:
        """
        The options hold the server certificate and a matching key.
        """
        self.assertIsInstance(options, CertificateOptions)
        self.assertEqual(
            Certificate(options.certificate).dump(), self.expectedCert.dump()
        )
        key = KeyPair(options.privateKey)
        self.assertTrue(
            PrivateCertificate.fromCertificateAndKeyPair(self.expectedCert, key)
            .getPublicKey()
            .matches(key)
        )
        # A context can be made (OpenSSL checks the key matches).
        options.getContext()

    def test_combined(self) -> None:
        """
        One PEM file holding the key and the certificate is enough.
        """
        self.assertServerCertificate(tlsOptionsFromFiles(self.certs.combinedFile))

    def test_separateKey(self) -> None:
        """
        The key may be in a file of its own.
        """
        options = tlsOptionsFromFiles(self.certs.certFile, self.certs.keyFile)
        self.assertServerCertificate(options)

    def test_pathObjects(self) -> None:
        """
        L{Path} objects are accepted.
        """
        options = tlsOptionsFromFiles(
            Path(self.certs.certFile), Path(self.certs.keyFile)
        )
        self.assertServerCertificate(options)

    def test_missingCertificate(self) -> None:
        """
        A missing certificate file raises L{ValueError} naming it.
        """
        missing = os.path.join(self.mktemp(), "nope.pem")
        error = self.assertRaises(ValueError, tlsOptionsFromFiles, missing)
        self.assertIn(missing, str(error))

    def test_missingKey(self) -> None:
        """
        A missing key file raises L{ValueError} naming it.
        """
        missing = os.path.join(self.mktemp(), "key.pem")
        error = self.assertRaises(
            ValueError, tlsOptionsFromFiles, self.certs.certFile, missing
        )
        self.assertIn(missing, str(error))

    def test_missingChain(self) -> None:
        """
        A missing chain file raises L{ValueError} naming it.
        """
        missing = os.path.join(self.mktemp(), "chain.pem")
        error = self.assertRaises(
            ValueError, tlsOptionsFromFiles, self.certs.combinedFile, None, missing
        )
        self.assertIn(missing, str(error))

    def test_noKey(self) -> None:
        """
        A certificate file without a key, and no key file, raises
        L{ValueError}.
        """
        self.assertRaises(ValueError, tlsOptionsFromFiles, self.certs.certFile)

    def test_notPEM(self) -> None:
        """
        A file that is not PEM raises L{ValueError}.
        """
        junk = os.path.join(self.mktemp())
        Path(junk).write_bytes(b"not a certificate\n")
        self.assertRaises(ValueError, tlsOptionsFromFiles, junk)

    def test_chainFile(self) -> None:
        """
        The certificates of a chain file are sent after the server's.
        """
        root = trustme.CA()
        intermediate = root.create_child_ca()
        leaf = intermediate.issue_cert("localhost")
        directory = Path(self.mktemp())
        directory.mkdir()
        (directory / "leaf.pem").write_bytes(
            leaf.private_key_pem.bytes() + leaf.cert_chain_pems[0].bytes()
        )
        (directory / "chain.pem").write_bytes(leaf.cert_chain_pems[1].bytes())
        options = tlsOptionsFromFiles(
            directory / "leaf.pem", None, directory / "chain.pem"
        )
        chain = [Certificate(c).dump() for c in options.extraCertChain or []]
        self.assertEqual(
            chain, [Certificate.loadPEM(leaf.cert_chain_pems[1].bytes()).dump()]
        )

    def test_chainInCombinedFile(self) -> None:
        """
        Intermediate certificates after the server's in the certificate
        file are sent as the chain.
        """
        root = trustme.CA()
        intermediate = root.create_child_ca()
        leaf = intermediate.issue_cert("localhost")
        path = Path(self.mktemp())
        leaf.private_key_and_cert_chain_pem.write_to_path(str(path))
        options = tlsOptionsFromFiles(path)
        chain = [Certificate(c).dump() for c in options.extraCertChain or []]
        self.assertEqual(
            chain, [Certificate.loadPEM(leaf.cert_chain_pems[1].bytes()).dump()]
        )


# Integration tests.


class RealSTARTTLSTests(TestCase):
    """
    STARTTLS with real handshakes: integration tests on 127.0.0.1 (real TCP,
    port 0, trustme certificates, blocking clients in threads).
    """

    timeout = 60

    def setUp(self) -> None:
        self.certs = certificates(self)
        self.handler = Recorder()

    async def listen(self, **options: Any) -> Listening:
        options.setdefault("tls_context", self.certs.serverOptions())
        return await listenOn(self, self.handler, **options)

    async def test_smtplib(self) -> None:
        """
        C{smtplib} upgrades with C{starttls()} (checking the certificate)
        and sends a message; STARTTLS is no longer offered inside TLS, and
        the handler sees C{session.ssl}.
        """
        server = await self.listen()
        context = self.certs.clientContext()

        def client() -> tuple:
            with smtplib.SMTP(
                "127.0.0.1",
                server.port,
                local_hostname="client.example",
                timeout=CLIENT_TIMEOUT,
            ) as smtp:
                smtp.ehlo()
                before = smtp.has_extn("starttls")
                code, _ = smtp.starttls(context=context)
                smtp.ehlo()
                after = smtp.has_extn("starttls")
                version = smtp.sock.version()
                smtp.sendmail(
                    "a@example.com", ["b@example.com"], b"Subject: hi\r\n\r\nbody\r\n"
                )
                return before, code, after, version

        before, code, after, version = await deferToThread(client)
        self.assertEqual((before, code, after), (True, 220, False))
        [(session, envelope)] = self.handler.messages
        self.assertEqual(envelope.content, b"Subject: hi\r\n\r\nbody\r\n")
        self.assertEqual(session.ssl["protocol"], version)
        self.assertIn(version, ("TLSv1.2", "TLSv1.3"))
        name, protocol, bits = session.ssl["cipher"]
        self.assertTrue(name)
        self.assertIsInstance(bits, int)
        self.assertIsNone(session.ssl["peercert"])
        self.assertEqual(session.peer[0], "127.0.0.1")

    async def test_clientCertificate(self) -> None:
        """
        A client certificate the server asked for shows in
        C{session.ssl["peercert"]} as a C{cryptography} certificate.
        """
        serverPEM = self.certs.server.private_key_and_cert_chain_pem.bytes()
        options = CertificateOptions(
            privateKey=KeyPair.load(serverPEM, format=1).original,
            certificate=Certificate.loadPEM(serverPEM).original,
            trustRoot=Certificate.loadPEM(self.certs.ca.cert_pem.bytes()),
        )
        server = await self.listen(tls_context=options)
        context = self.certs.clientContext(certificate=True)

        def client() -> None:
            c = LineClient(server.port)
            try:
                c.reply()
                c.command("EHLO client.example")
                c.command("STARTTLS")
                c.startTLS(context)
                c.command("EHLO client.example")
            finally:
                c.close()

        await deferToThread(client)
        peercert = server.servers[0].session.ssl["peercert"]
        self.assertEqual(
            peercert.public_bytes(Encoding.PEM),
            self.certs.client.cert_chain_pems[0].bytes(),
        )

    async def test_injection(self) -> None:
        """
        MAIL pipelined with STARTTLS in one plaintext write is not run: no
        reply comes for it in plaintext or over TLS, the envelope is empty
        after the handshake, and a RCPT gets 503.
        """
        server = await self.listen()
        context = self.certs.clientContext()
        c = await deferToThread(LineClient, server.port)
        self.addCleanup(c.close)

        def handshake() -> list:
            replies = [c.reply(), c.command("EHLO client.example")]
            c.send(b"STARTTLS\r\nMAIL FROM:<evil@x>\r\n")
            replies.append(c.reply())
            c.startTLS(context)
            replies.append(c.command("NOOP"))
            return replies

        replies = await deferToThread(handshake)
        self.assertEqual(replies[2], (220, "Ready to start TLS"))
        self.assertEqual(replies[3], (250, "OK"))
        [protocol] = server.servers
        self.assertIsNone(protocol.envelope.mail_from)
        self.assertIsNotNone(protocol.session.ssl)
        self.assertEqual(self.handler.calls, [("NOOP", None)])
        rcpt = await deferToThread(c.command, "RCPT TO:<b@example.com>")
        self.assertEqual(rcpt, SEND_HELO_FIRST)
        self.assertEqual(self.handler.calls, [("NOOP", None)])

    async def test_secondSTARTTLS(self) -> None:
        """
        STARTTLS over TLS gets 503 and the session goes on.
        """
        server = await self.listen()
        context = self.certs.clientContext()

        def client() -> list:
            c = LineClient(server.port)
            try:
                c.reply()
                c.command("EHLO client.example")
                c.command("STARTTLS")
                c.startTLS(context)
                c.command("EHLO client.example")
                return [c.command("STARTTLS"), c.command("NOOP")]
            finally:
                c.close()

        second, noop = await deferToThread(client)
        self.assertEqual(second.code, 503)
        self.assertEqual(noop, (250, "OK"))

    async def test_failedHandshake(self) -> None:
        """
        Plaintext sent after the 220 instead of a ClientHello makes the
        handshake fail: the server closes the connection without sending a
        traceback and logs the failure.
        """
        events = captureEvents(self)
        server = await self.listen()

        def client() -> bytes:
            c = LineClient(server.port)
            try:
                c.reply()
                c.command("EHLO client.example")
                c.command("STARTTLS")
                c.send(b"MAIL FROM:<a@example.com>\r\n")
                return c.readToEnd()
            finally:
                c.close()

        rest = await deferToThread(client)
        self.assertNotIn(b"Traceback", rest)
        self.assertNotIn(b"250", rest)
        await server.whenClosed(server.servers[0])
        texts = [eventText(e) for e in events]
        self.assertTrue(
            any(
                "127.0.0.1" in t and ("TLS" in t or "handshake" in t.lower())
                for t in texts
            ),
            "no log event about the failed handshake:\n"
            + "\n".join(formatEvent(e) for e in events),
        )

    async def test_handshakeTimeout(self) -> None:
        """
        A client that says STARTTLS and then nothing is disconnected by
        C{tls_handshake_timeout}.
        """
        server = await self.listen(tls_handshake_timeout=0.5)

        def client() -> bytes:
            c = LineClient(server.port)
            c.sock.settimeout(5.0)
            try:
                c.reply()
                c.command("STARTTLS")
                return c.readToEnd()
            finally:
                c.close()

        try:
            await deferToThread(client)
        except TimeoutError:
            self.fail(
                "the server did not close the connection within 5 s of a 0.5 s timeout"
            )

    async def test_quitClosesOverTLS(self) -> None:
        """
        After STARTTLS, QUIT gets 221 and the server closes the connection.
        """
        server = await self.listen()
        context = self.certs.clientContext()

        def client() -> tuple[Reply, bytes]:
            c = LineClient(server.port)
            c.sock.settimeout(5.0)
            try:
                c.reply()
                c.command("STARTTLS")
                c.startTLS(context)
                c.command("EHLO client.example")
                return c.command("QUIT"), c.readToEnd()
            finally:
                c.close()

        try:
            quit, rest = await deferToThread(client)
        except TimeoutError:
            self.fail("the server did not close the TLS connection within 5 s of QUIT")
        self.assertEqual(quit, (221, "Bye"))
        self.assertEqual(rest, b"")

    async def test_requireSTARTTLS(self) -> None:
        """
        With C{require_starttls}, MAIL is refused in plaintext and accepted
        after STARTTLS and a new EHLO.
        """
        server = await self.listen(require_starttls=True)
        context = self.certs.clientContext()

        def client() -> list:
            c = LineClient(server.port)
            try:
                c.reply()
                c.command("EHLO client.example")
                replies = [c.command("MAIL FROM:<a@example.com>")]
                c.command("STARTTLS")
                c.startTLS(context)
                c.command("EHLO client.example")
                replies.append(c.command("MAIL FROM:<a@example.com>"))
                return replies
            finally:
                c.close()

        self.assertEqual(await deferToThread(client), [MUST_STARTTLS, (250, "OK")])

    async def test_minimumVersion(self) -> None:
        """
        The options from L{tlsOptionsFromFiles} refuse a TLS 1.1 client,
        while options allowing TLS 1.1 accept that same client (so the
        refusal comes from the options, not from this machine's OpenSSL
        defaults).
        """

        def lowerFloor(opts: CertificateOptions) -> CertificateOptions:
            context = opts.getContext()
            # Lower this machine's own floor (Debian's openssl.cnf says TLS
            # 1.2, security level 2): only the options' floor is left.
            context.set_min_proto_version(SSL.TLS1_1_VERSION)
            context.set_cipher_list(b"DEFAULT:@SECLEVEL=0")
            return opts

        strictOptions = tlsOptionsFromFiles(self.certs.combinedFile)
        lenientOptions = CertificateOptions(
            privateKey=strictOptions.privateKey,
            certificate=strictOptions.certificate,
            insecurelyLowerMinimumTo=TLSVersion.TLSv1_1,
        )

        def tls11Context() -> ssl.SSLContext:
            context = self.certs.clientContext()
            with warnings.catch_warnings():
                # Python deprecates TLS 1.1, which is the point here.
                warnings.simplefilter("ignore", DeprecationWarning)
                context.minimum_version = ssl.TLSVersion.TLSv1_1
                context.maximum_version = ssl.TLSVersion.TLSv1_1
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
            return context

        def handshake(port: int) -> str:
            c = LineClient(port)
            try:
                c.reply()
                c.command("STARTTLS")
                c.startTLS(tls11Context())
                return c.sock.version()
            finally:
                c.close()

        try:
            tls11Context()
        except (ValueError, ssl.SSLError) as e:
            raise SkipTest(f"this OpenSSL cannot make a TLS 1.1 client: {e}")
        lenient = await self.listen(tls_context=lowerFloor(lenientOptions))
        try:
            version = await deferToThread(handshake, lenient.port)
        except (ssl.SSLError, OSError) as e:
            raise SkipTest(f"the local OpenSSL refuses to offer TLS 1.1: {e}")
        self.assertEqual(version, "TLSv1.1")
        strict = await self.listen(tls_context=lowerFloor(strictOptions))
        with self.assertRaises(ssl.SSLError):
            await deferToThread(handshake, strict.port)

    async def test_chainSent(self) -> None:
        """
        With the intermediate CA in a chain file, a client that trusts only
        the root verifies the server.
        """
        root = trustme.CA()
        intermediate = root.create_child_ca()
        leaf = intermediate.issue_cert("localhost")
        directory = Path(self.mktemp())
        directory.mkdir()
        (directory / "cert.pem").write_bytes(leaf.cert_chain_pems[0].bytes())
        (directory / "key.pem").write_bytes(leaf.private_key_pem.bytes())
        (directory / "chain.pem").write_bytes(leaf.cert_chain_pems[1].bytes())
        options = tlsOptionsFromFiles(
            directory / "cert.pem", directory / "key.pem", directory / "chain.pem"
        )
        server = await self.listen(tls_context=options)
        context = ssl.create_default_context()
        root.configure_trust(context)

        def client() -> Reply:
            c = LineClient(server.port)
            try:
                c.reply()
                c.command("STARTTLS")
                c.startTLS(context)
                return c.command("EHLO client.example")
            finally:
                c.close()

        self.assertEqual((await deferToThread(client)).code, 250)

    async def test_opensslClient(self) -> None:
        """
        C{openssl s_client -starttls smtp} verifies the certificate, and an
        EHLO and a QUIT sent over the TLS session are answered.
        """
        openssl = commandLineTool("openssl")
        server = await self.listen()
        args = [
            openssl,
            "s_client",
            "-starttls",
            "smtp",
            "-connect",
            f"127.0.0.1:{server.port}",
            "-CAfile",
            self.certs.caFile,
            "-verify_return_error",
            "-verify_hostname",
            "localhost",
            "-servername",
            "localhost",
            "-crlf",
            "-ign_eof",
        ]
        out = await deferToThread(
            converse,
            args,
            [
                (None, b"Verify return code: 0 (ok)"),
                (b"EHLO after.tls.example\n", b"250 HELP"),
                (b"QUIT\n", b"221 Bye"),
            ],
        )
        tail = out.split(b"---")[-1]
        self.assertIn(f"250-{HOSTNAME}\r\n".encode(), tail)
        [protocol] = server.servers
        self.assertEqual(protocol.session.host_name, "after.tls.example")
        self.assertIsNotNone(protocol.session.ssl)


class ImplicitTLSTests(TestCase):
    """
    Implicit TLS (RFC 8314) through an C{ssl:} endpoint: integration tests
    on 127.0.0.1 (real TCP, port 0).
    """

    timeout = 60

    async def test_smtplibSSL(self) -> None:
        """
        C{smtplib.SMTP_SSL} connects and sends; STARTTLS is not offered,
        C{session.ssl} is set from the start, and STARTTLS gets 503.
        """
        certs = certificates(self)
        handler = Recorder()
        server = await listenOn(
            self,
            handler,
            f"ssl:0:interface=127.0.0.1:privateKey={certs.keyFile}:certKey={certs.certFile}",
            tls_context=certs.serverOptions(),
        )
        context = certs.clientContext()

        def client() -> tuple:
            with smtplib.SMTP_SSL(
                "127.0.0.1",
                server.port,
                local_hostname="client.example",
                context=context,
                timeout=CLIENT_TIMEOUT,
            ) as smtp:
                code, _ = smtp.ehlo()
                starttls = smtp.has_extn("starttls")
                again = smtp.docmd("STARTTLS")
                smtp.sendmail("a@example.com", ["b@example.com"], b"Hi\r\n")
                return code, starttls, again

        code, starttls, again = await deferToThread(client)
        self.assertEqual((code, starttls), (250, False))
        self.assertEqual(again[0], 503)
        [(session, envelope)] = handler.messages
        self.assertEqual(envelope.content, b"Hi\r\n")
        self.assertIn(session.ssl["protocol"], ("TLSv1.2", "TLSv1.3"))

    async def test_noContextNeeded(self) -> None:
        """
        Without a C{tls_context} the C{ssl:} listener still gives TLS, and
        STARTTLS is not offered and gets 503 (TLS is already active).
        """
        certs = certificates(self)
        handler = Recorder()
        server = await listenOn(
            self,
            handler,
            f"ssl:0:interface=127.0.0.1:privateKey={certs.keyFile}:certKey={certs.certFile}",
        )
        context = certs.clientContext()

        def client() -> tuple:
            with smtplib.SMTP_SSL(
                "127.0.0.1", server.port, context=context, timeout=CLIENT_TIMEOUT
            ) as smtp:
                smtp.ehlo()
                return smtp.has_extn("starttls"), smtp.docmd("STARTTLS")[0]

        self.assertEqual(await deferToThread(client), (False, 503))
        self.assertIsNotNone(server.servers[0].session.ssl)


__all__ = [
    "HOSTNAME",
    "CLIENT_TIMEOUT",
    "Certificates",
    "certificates",
    "FakeTLSTransport",
    "tlsTester",
    "implicitTester",
    "startTLS",
    "Recorder",
    "ehloKeywords",
    "Listening",
    "listenOn",
    "captureEvents",
    "eventText",
    "LineClient",
    "commandLineTool",
    "runTool",
    "converse",
]
