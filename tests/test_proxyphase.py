"""
Tests for the PROXY protocol on the server side (option
C{proxy_protocol_timeout}, hook C{handle_PROXY}) and for C{max_connections}.

The unit tests drive the server in memory with PROXY headers built here with
C{struct}, independently of the parser in L{twisted_smtpd._proxyparser}
(which C{tests.test_proxyparser} tests on its own). The integration tests
put a real HAProxy (Debian package C{haproxy}) on 127.0.0.1 in front of a
server listening on 127.0.0.1 and send mail through it with C{smtplib}.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import struct
import subprocess
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any, NamedTuple

from twisted.internet.address import IPv4Address as TwistedIPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests._protocolsupport import assertSplitsAgree
from tests._support import CLIENT_TIMEOUT, HOSTNAME, listen
from tests.test_tls import (
    captureEvents,
    certificates,
    commandLineTool,
    eventText,
    implicitTester,
    tlsTester,
)
from twisted_smtpd import SMTP, SMTPFactory, __version__
from twisted_smtpd._proxydata import AF, PROTO, V2_CMD
from twisted_smtpd.testing import SMTPTester

GREETING = f"220 {HOSTNAME} twisted_smtpd {__version__}\r\n".encode()

EHLO_REPLY = (
    f"250-{HOSTNAME}\r\n"
    "250-SIZE 33554432\r\n"
    "250-8BITMIME\r\n"
    "250-DSN\r\n250-CHUNKING\r\n"
    "250-BINARYMIME\r\n"
    "250-PIPELINING\r\n"
    "250 HELP\r\n"
).encode()

#: The peer the in-memory server sees without a PROXY header.
REAL_PEER = ("127.0.0.1", 42424)

#: The client address the headers of the unit tests carry.
CLIENT = ("192.0.2.10", 40000)
CLIENT6 = ("2001:db8::7", 40001)
PROXIED = ("198.51.100.1", 25)
PROXIED6 = ("2001:db8::1", 25)

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"

TOO_MANY = b"421 4.3.2 Too many connections, try again later\r\n"


def v2Header(
    source: tuple[str, int] = CLIENT,
    destination: tuple[str, int] = PROXIED,
    command: int = 1,
    tlvs: bytes = b"",
) -> bytes:
    """
    A version 2 PROXY header over TCP (IPv4 or IPv6, from the address).
    """
    if ":" in source[0]:
        family, size, familyByte = socket.AF_INET6, 16, 0x21
    else:
        family, size, familyByte = socket.AF_INET, 4, 0x11
    block = (
        socket.inet_pton(family, source[0])
        + socket.inet_pton(family, destination[0])
        + struct.pack("!HH", source[1], destination[1])
    )
    assert len(block) == 2 * size + 4
    return (
        SIGNATURE
        + struct.pack("!BBH", 0x20 | command, familyByte, len(block) + len(tlvs))
        + block
        + tlvs
    )


def v2Unaddressed(command: int) -> bytes:
    """
    A version 2 header of family UNSPEC without addresses (C{command} 0 is
    LOCAL, as HAProxy's health checks send; 1 is PROXY).
    """
    return SIGNATURE + struct.pack("!BBH", 0x20 | command, 0x00, 0)


def v1Header(
    source: tuple[str, int] = CLIENT, destination: tuple[str, int] = PROXIED
) -> bytes:
    """
    A version 1 PROXY header (TCP4 or TCP6, from the address).
    """
    protocol = "TCP6" if ":" in source[0] else "TCP4"
    return (
        f"PROXY {protocol} {source[0]} {destination[0]}"
        f" {source[1]} {destination[1]}\r\n"
    ).encode("ascii")


class Seen(NamedTuple):
    """
    What a hook saw: the session's peer and proxy data at that moment.
    """

    peer: Any
    proxy_data: Any


class Recorder:
    """
    A handler without C{handle_PROXY} that keeps what it saw of each
    message and each EHLO.
    """

    def __init__(self) -> None:
        self.messages: list[tuple[Seen, Any]] = []
        self.ehlos: list[str] = []

    def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.ehlos.append(hostname)
        session.host_name = hostname
        return responses

    def handle_DATA(self, server: Any, session: Any, envelope: Any) -> None:
        self.messages.append((Seen(session.peer, session.proxy_data), envelope.content))


class Decider(Recorder):
    """
    A L{Recorder} whose C{handle_PROXY} returns C{decision} (or calls it,
    when it is callable) and records its arguments.
    """

    def __init__(self, decision: Any) -> None:
        super().__init__()
        self.decision = decision
        self.calls: list[tuple[Any, Any, Any, Any, Seen]] = []

    def handle_PROXY(self, server, session, envelope, proxy_data):
        self.calls.append(
            (server, session, envelope, proxy_data, Seen(session.peer, proxy_data))
        )
        if callable(self.decision):
            return self.decision()
        return self.decision


def proxyTester(handler: Any, **options: Any) -> SMTPTester:
    """
    An in-memory server that waits 5 seconds for a PROXY header.
    """
    options.setdefault("proxy_protocol_timeout", 5)
    return SMTPTester(handler, hostname=HOSTNAME, **options)


def logged(events: list[dict], text: str) -> list[str]:
    """
    The texts of the log events that mention C{text}.
    """
    return [t for t in map(eventText, events) if text in t]


# Unit tests.


class HeaderTests(SynchronousTestCase):
    """
    The server reads one PROXY header before it greets (in memory).
    """

    def assertDropped(self, tester: SMTPTester) -> None:
        """
        The connection was aborted without a byte written.
        """
        self.assertTrue(tester.transport.disconnected)
        self.assertEqual(tester.transport.value(), b"")

    def test_noGreetingBeforeHeader(self) -> None:
        """
        Nothing is written before the header is complete, not even the
        greeting; the greeting follows the header's last byte.
        """
        tester = proxyTester(Recorder())
        self.assertIsNone(tester.greeting)
        header = v2Header()
        tester.send(header[:-1])
        self.assertEqual(tester.transport.value(), b"")
        tester.send(header[-1:])
        self.assertEqual(tester.transport.value(), GREETING)
        self.assertFalse(tester.closed)

    def test_v2IPv4(self) -> None:
        """
        A version 2 TCP/IPv4 header sets C{session.peer} to its source and
        C{session.proxy_data} to what it says.
        """
        tester = proxyTester(Recorder())
        tester.send(v2Header())
        self.assertEqual(
            tester.replies(), [(220, f"{HOSTNAME} twisted_smtpd {__version__}")]
        )
        session = tester.server.session
        self.assertEqual(session.peer, CLIENT)
        data = session.proxy_data
        self.assertEqual(
            (data.version, data.command, data.family, data.protocol),
            (2, V2_CMD.PROXY, AF.INET, PROTO.STREAM),
        )
        self.assertEqual(
            (data.src_addr, data.src_port, data.dst_addr, data.dst_port),
            (IPv4Address(CLIENT[0]), CLIENT[1], IPv4Address(PROXIED[0]), PROXIED[1]),
        )
        self.assertEqual(data.whole_raw, v2Header())

    def test_v2IPv6(self) -> None:
        """
        A version 2 TCP/IPv6 header sets C{session.peer} to its source.
        """
        tester = proxyTester(Recorder())
        tester.send(v2Header(CLIENT6, PROXIED6))
        self.assertEqual(tester.transport.value(), GREETING)
        self.assertEqual(tester.server.session.peer, CLIENT6 + (0, 0))
        self.assertEqual(
            tester.server.session.proxy_data.dst_addr, IPv6Address(PROXIED6[0])
        )

    def test_v2WithTLVs(self) -> None:
        """
        TLVs after the addresses are part of the header, not of the SMTP
        stream: EHLO right after them is answered normally.
        """
        tlvs = b"\x05\x00\x04abcd" + b"\x01\x00\x04smtp"
        tester = proxyTester(Recorder())
        tester.send(v2Header(tlvs=tlvs) + b"EHLO client.example\r\n")
        self.assertEqual(tester.transport.value(), GREETING + EHLO_REPLY)
        tlv = tester.server.session.proxy_data.tlv
        self.assertEqual((tlv["UNIQUE_ID"], tlv["ALPN"]), (b"abcd", b"smtp"))

    def test_v1IPv4(self) -> None:
        """
        A version 1 TCP4 header sets C{session.peer} to its source.
        """
        tester = proxyTester(Recorder())
        tester.send(v1Header())
        self.assertEqual(tester.transport.value(), GREETING)
        session = tester.server.session
        self.assertEqual(session.peer, CLIENT)
        self.assertEqual(
            (session.proxy_data.version, session.proxy_data.family), (1, AF.INET)
        )

    def test_v1IPv6(self) -> None:
        """
        A version 1 TCP6 header sets C{session.peer} to its source.
        """
        tester = proxyTester(Recorder())
        tester.send(v1Header(CLIENT6, PROXIED6))
        self.assertEqual(tester.transport.value(), GREETING)
        # asyncio's (and so aiosmtpd's) shape of an IPv6 peer.
        self.assertEqual(tester.server.session.peer, CLIENT6 + (0, 0))

    def test_byteByByte(self) -> None:
        """
        A header of either version arriving one byte at a time is read
        whole, with no reply before its last byte and one greeting after.
        """
        for header in (v1Header(), v2Header(), v2Header(CLIENT6, PROXIED6)):
            tester = proxyTester(Recorder())
            for i in range(len(header) - 1):
                tester.send(header[i : i + 1])
                self.assertEqual(tester.transport.value(), b"", (header, i))
            tester.send(header[-1:])
            self.assertEqual(tester.transport.value(), GREETING, header)
            self.assertIn(tester.server.session.peer, (CLIENT, CLIENT6 + (0, 0)))

    def test_headerAndCommandInOneChunk(self) -> None:
        """
        EHLO in the same chunk as the header is answered after the greeting.
        """
        for header in (v1Header(), v2Header()):
            tester = proxyTester(Recorder())
            tester.send(header + b"EHLO client.example\r\n")
            self.assertEqual(tester.transport.value(), GREETING + EHLO_REPLY)

    def test_headerAndWholeTransaction(self) -> None:
        """
        A whole pipelined transaction in the header's chunk reaches the
        handler, which sees the header's source as the peer.
        """
        handler = Recorder()
        tester = proxyTester(handler)
        tester.send(
            v2Header() + b"EHLO client.example\r\nMAIL FROM:<a@example.com>\r\n"
            b"RCPT TO:<b@example.com>\r\nDATA\r\nHi\r\n.\r\nQUIT\r\n"
        )
        self.assertEqual(
            tester.transport.value(),
            GREETING
            + EHLO_REPLY
            + b"250 OK\r\n250 OK\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
            b"250 OK\r\n221 Bye\r\n",
        )
        [(seen, content)] = handler.messages
        self.assertEqual(seen.peer, CLIENT)
        self.assertEqual(seen.proxy_data.src_port, CLIENT[1])
        self.assertEqual(content, b"Hi\r\n")

    def test_localKeepsPeer(self) -> None:
        """
        A version 2 LOCAL header (a health check) keeps the connection's
        own peer, and the session goes on.
        """
        tester = proxyTester(Recorder())
        tester.send(v2Unaddressed(0) + b"NOOP\r\n")
        self.assertEqual(tester.transport.value(), GREETING + b"250 OK\r\n")
        session = tester.server.session
        self.assertEqual(session.peer, REAL_PEER)
        self.assertEqual(session.proxy_data.command, V2_CMD.LOCAL)

    def test_localWithAddressesKeepsPeer(self) -> None:
        """
        A LOCAL header that carries addresses anyway keeps the real peer.
        """
        tester = proxyTester(Recorder())
        tester.send(v2Header(command=0))
        self.assertEqual(tester.transport.value(), GREETING)
        self.assertEqual(tester.server.session.peer, REAL_PEER)

    def test_unspecKeepsPeer(self) -> None:
        """
        A version 2 PROXY header of family UNSPEC keeps the real peer.
        """
        tester = proxyTester(Recorder())
        tester.send(v2Unaddressed(1))
        self.assertEqual(tester.transport.value(), GREETING)
        self.assertEqual(tester.server.session.peer, REAL_PEER)
        self.assertEqual(tester.server.session.proxy_data.family, AF.UNSPEC)

    def test_unknownKeepsPeer(self) -> None:
        """
        A version 1 UNKNOWN header keeps the real peer.
        """
        for header in (b"PROXY UNKNOWN\r\n", b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"):
            tester = proxyTester(Recorder())
            tester.send(header + b"NOOP\r\n")
            self.assertEqual(tester.transport.value(), GREETING + b"250 OK\r\n")
            session = tester.server.session
            self.assertEqual(session.peer, REAL_PEER)
            self.assertEqual(
                (session.proxy_data.version, session.proxy_data.family),
                (1, AF.UNSPEC),
            )

    def test_garbageDropped(self) -> None:
        """
        A client that speaks SMTP instead of sending a header is dropped
        without a reply, no hook runs, and the bad header is logged.
        """
        events = captureEvents(self)
        handler = Recorder()
        tester = proxyTester(handler)
        tester.send(b"EHLO client.example\r\n")
        self.assertDropped(tester)
        self.assertEqual(handler.ehlos, [])
        self.assertEqual(len(logged(events, "bad PROXY header")), 1)
        tester.send(b"NOOP\r\n")
        self.assertEqual(tester.transport.value(), b"")

    def test_malformedHeadersDropped(self) -> None:
        """
        Headers that start well and go wrong are dropped without a reply.
        """
        for garbage in [
            b"PROXY TCP4 192.0.2.10 198.51.100.1 40000 99999\r\n",
            b"PROXY TCP5 192.0.2.10 198.51.100.1 40000 25\r\n",
            b"PROXY TCP4 " + b"1" * 200,
            b"PROXY TCP4 192.0.2.10 198.51.100.1 40000 25\n",
            SIGNATURE + b"\x31\x11\x00\x0c",
            SIGNATURE + b"\x21\x11\x00\x04" + bytes(4),
            SIGNATURE[:-1] + b"X",
        ]:
            tester = proxyTester(Recorder())
            tester.send(garbage)
            self.assertTrue(tester.transport.disconnected, garbage)
            self.assertEqual(tester.transport.value(), b"", garbage)

    def test_timeout(self) -> None:
        """
        A client that sends no header within C{proxy_protocol_timeout}
        seconds is dropped without a reply, and that is logged.
        """
        events = captureEvents(self)
        tester = proxyTester(Recorder(), proxy_protocol_timeout=5)
        tester.clock.advance(4.9)
        self.assertFalse(tester.closed)
        tester.clock.advance(0.1)
        self.assertTrue(tester.transport.disconnected)
        self.assertEqual(tester.transport.value(), b"")
        self.assertEqual(len(logged(events, "sent no PROXY header in time")), 1)

    def test_timeoutPartialHeader(self) -> None:
        """
        Half a header does not stop the clock.
        """
        tester = proxyTester(Recorder(), proxy_protocol_timeout=5)
        tester.send(v2Header()[:20])
        tester.clock.advance(5)
        self.assertTrue(tester.transport.disconnected)
        self.assertEqual(tester.transport.value(), b"")

    def test_timerStopsAtHeader(self) -> None:
        """
        Once the header is in, the header timer no longer runs: the session
        lasts past it (until the ordinary idle timeout).
        """
        events = captureEvents(self)
        tester = proxyTester(Recorder(), proxy_protocol_timeout=5, timeout=60)
        tester.clock.advance(4)
        tester.send(v1Header())
        self.assertEqual(len(tester.replies()), 1)
        tester.clock.advance(50)
        self.assertFalse(tester.closed)
        self.assertEqual(tester.command("NOOP"), (250, "OK"))
        self.assertEqual(logged(events, "PROXY header in time"), [])

    def test_timerStopsAtConnectionLost(self) -> None:
        """
        A client that leaves before sending a header leaves no timer behind.
        """
        events = captureEvents(self)
        tester = proxyTester(Recorder(), proxy_protocol_timeout=5, timeout=None)
        tester.server.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(tester.clock.getDelayedCalls(), [])
        tester.clock.advance(10)
        self.assertEqual(logged(events, "PROXY header in time"), [])

    def test_withoutOption(self) -> None:
        """
        Without C{proxy_protocol_timeout} the server greets at once and a
        PROXY line is just an unknown command.
        """
        tester = SMTPTester(Recorder(), hostname=HOSTNAME)
        self.assertEqual(tester.transport.value(), GREETING)
        self.assertEqual(
            tester.command(v1Header().decode()[:-2]),
            (500, 'Error: command "PROXY" not recognized'),
        )
        self.assertEqual(tester.server.session.peer, REAL_PEER)
        self.assertIsNone(tester.server.session.proxy_data)


class HookTests(SynchronousTestCase):
    """
    The optional C{handle_PROXY(server, session, envelope, proxy_data)}
    hook decides whether a proxied connection goes on (in memory).
    """

    def test_noHookAccepts(self) -> None:
        """
        Without C{handle_PROXY} every valid header is accepted.
        """
        tester = proxyTester(Recorder())
        tester.send(v2Header())
        self.assertEqual(tester.transport.value(), GREETING)

    def test_arguments(self) -> None:
        """
        The hook gets the server, its session, an envelope and the parsed
        header; while it decides, C{session.peer} is still the proxy that
        connected (what a trusted-proxy check needs), and the header's
        source only once it accepted.
        """
        handler = Decider(True)
        tester = proxyTester(handler)
        tester.send(v2Header())
        [(server, session, envelope, data, seen)] = handler.calls
        self.assertIs(server, tester.server)
        self.assertIs(session, tester.server.session)
        self.assertIsNone(envelope.mail_from)
        self.assertIs(data, session.proxy_data)
        self.assertEqual(seen.peer, REAL_PEER)
        self.assertEqual(data.src_port, CLIENT[1])
        self.assertEqual(session.peer, CLIENT)

    def test_trueAccepts(self) -> None:
        """
        A true result lets the session begin with the greeting.
        """
        tester = proxyTester(Decider(True))
        tester.send(v2Header() + b"NOOP\r\n")
        self.assertEqual(tester.transport.value(), GREETING + b"250 OK\r\n")

    def test_falsyRefuses(self) -> None:
        """
        C{False}, C{None}, C{0} and C{""} refuse: the connection is dropped
        without a reply and the commands after the header never run.
        """
        for decision in (False, None, 0, ""):
            events = captureEvents(self)
            handler = Decider(decision)
            tester = proxyTester(handler)
            tester.send(v2Header() + b"EHLO client.example\r\n")
            self.assertTrue(tester.transport.disconnected, decision)
            self.assertEqual(tester.transport.value(), b"", decision)
            self.assertEqual(handler.ehlos, [], decision)
            self.assertEqual(len(logged(events, "refused by handle_PROXY")), 1)

    def test_deferred(self) -> None:
        """
        A L{Deferred} result holds the greeting back until it fires true.
        """
        decision: Deferred[bool] = Deferred()
        tester = proxyTester(Decider(decision))
        tester.send(v2Header() + b"EHLO client.example\r\n")
        self.assertEqual(tester.transport.value(), b"")
        decision.callback(True)
        self.assertEqual(tester.transport.value(), GREETING + EHLO_REPLY)

    def test_deferredRefuses(self) -> None:
        """
        A L{Deferred} firing false drops the connection without a reply.
        """
        decision: Deferred[bool] = Deferred()
        handler = Decider(decision)
        tester = proxyTester(handler)
        tester.send(v2Header() + b"EHLO client.example\r\n")
        decision.callback(False)
        self.assertTrue(tester.transport.disconnected)
        self.assertEqual(tester.transport.value(), b"")
        self.assertEqual(handler.ehlos, [])

    def test_coroutine(self) -> None:
        """
        An C{async def} hook that waits is awaited: its true result lets
        the session begin, its false result drops the connection.
        """
        for verdict, expected in ((True, GREETING + EHLO_REPLY), (False, b"")):
            gate: Deferred[None] = Deferred()

            class Handler(Recorder):
                async def handle_PROXY(
                    self, server, session, envelope, data, gate=gate, verdict=verdict
                ):
                    await gate
                    return verdict

            tester = proxyTester(Handler())
            tester.send(v1Header() + b"EHLO client.example\r\n")
            self.assertEqual(tester.transport.value(), b"")
            gate.callback(None)
            self.assertEqual(tester.transport.value(), expected, verdict)
            self.assertEqual(tester.transport.disconnected, not verdict)

    def test_raises(self) -> None:
        """
        A hook that raises drops the connection without a reply; the error
        is logged.
        """

        def explode() -> bool:
            raise RuntimeError("no database")

        tester = proxyTester(Decider(explode))
        tester.send(v2Header() + b"NOOP\r\n")
        self.assertTrue(tester.transport.disconnected)
        self.assertEqual(tester.transport.value(), b"")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_coroutineRaises(self) -> None:
        """
        An C{async def} hook that raises after waiting drops the connection
        without a reply; the error is logged.
        """
        gate: Deferred[None] = Deferred()

        class Handler(Recorder):
            async def handle_PROXY(self, server, session, envelope, data):
                await gate
                raise RuntimeError("no database")

        tester = proxyTester(Handler())
        tester.send(v2Header())
        gate.callback(None)
        self.assertTrue(tester.transport.disconnected)
        self.assertEqual(tester.transport.value(), b"")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_bytesWhileHookPending(self) -> None:
        """
        Commands that arrive while the hook is still deciding wait for its
        decision: nothing is answered before the greeting, and the replies
        come in the order the commands were sent.
        """
        decision: Deferred[bool] = Deferred()
        handler = Decider(decision)
        tester = proxyTester(handler)
        tester.send(v2Header() + b"EHLO client.example\r\n")
        tester.send(b"NOOP\r\n")
        self.assertEqual(tester.transport.value(), b"")
        decision.callback(True)
        self.assertEqual(
            tester.transport.value(), GREETING + EHLO_REPLY + b"250 OK\r\n"
        )

    def test_hookNeverDecides(self) -> None:
        """
        A hook that never decides does not keep the connection (and its
        C{max_connections} slot) forever: it is closed once the timeouts
        have run out, without a greeting.
        """
        handler = Decider(Deferred())
        tester = proxyTester(handler, proxy_protocol_timeout=5, timeout=60)
        tester.send(v2Header() + b"EHLO client.example\r\n")
        tester.clock.advance(61)
        self.assertTrue(tester.closed)
        self.assertNotIn(b"220 ", tester.transport.value())
        self.assertEqual(handler.ehlos, [])

    def test_bytesWhileHookPendingRefused(self) -> None:
        """
        Commands that arrive while the hook is still deciding never run
        when it refuses.
        """
        decision: Deferred[bool] = Deferred()
        handler = Decider(decision)
        tester = proxyTester(handler)
        tester.send(v2Header())
        tester.send(b"EHLO client.example\r\n")
        decision.callback(False)
        self.assertEqual(handler.ehlos, [])
        self.assertEqual(tester.transport.value(), b"")
        self.assertTrue(tester.transport.disconnected)


class ProxyAndTLSTests(SynchronousTestCase):
    """
    The PROXY header with STARTTLS and with implicit TLS, in memory with a
    transport that pretends to start TLS.
    """

    def test_keptAfterSTARTTLS(self) -> None:
        """
        After STARTTLS the new session keeps the header's peer and the same
        C{proxy_data}, and the handler sees them with the message.
        """
        handler = Recorder()
        tester = tlsTester(
            self,
            handler,
            tls_context=certificates(self).serverOptions(),
            proxy_protocol_timeout=5,
        )
        self.assertEqual(tester.transport.value(), b"")
        tester.send(v2Header())
        self.assertEqual(tester.transport.value(), GREETING)
        self.assertEqual(len(tester.replies()), 1)
        data = tester.server.session.proxy_data
        tester.command("EHLO client.example")
        before = tester.server.session
        self.assertEqual(tester.command("STARTTLS"), (220, "Ready to start TLS"))
        tester.server.handshakeCompleted()
        after = tester.server.session
        self.assertIsNot(after, before)
        self.assertEqual(after.peer, CLIENT)
        self.assertIs(after.proxy_data, data)
        self.assertIsNotNone(after.ssl)
        replies = tester.sendmail("a@example.com", ["b@example.com"], b"Hi\r\n")
        self.assertEqual(replies[-1], (250, "OK"))
        self.assertEqual(handler.messages, [(Seen(CLIENT, data), b"Hi\r\n")])

    def test_implicitTLSStartsAfterHeader(self) -> None:
        """
        With C{implicit_tls} on a plain listener, TLS starts right after the
        header, before anything is written (the greeting goes out through
        TLS).
        """
        options = certificates(self).serverOptions()
        tester = tlsTester(
            self,
            Recorder(),
            tls_context=options,
            implicit_tls=True,
            proxy_protocol_timeout=5,
        )
        transport = tester.transport
        self.assertEqual(transport.startTLSCalls, 0)
        tester.send(v2Header())
        self.assertEqual(transport.startTLSCalls, 1)
        self.assertIs(transport.tlsOptions, options)
        self.assertEqual(transport.writtenBeforeTLS, b"")
        self.assertEqual(transport.value(), GREETING)
        self.assertEqual(len(tester.replies()), 1)
        tester.server.handshakeCompleted()
        session = tester.server.session
        self.assertEqual(session.peer, CLIENT)
        self.assertIsNotNone(session.ssl)
        reply = tester.command("EHLO client.example")
        self.assertNotIn("STARTTLS", reply.lines)

    def test_implicitTLSEarlyBytes(self) -> None:
        """
        Bytes after the header in the same chunk (the client's TLS hello)
        go to the TLS layer, never to the SMTP command parser.
        """
        tester = tlsTester(
            self,
            Recorder(),
            tls_context=certificates(self).serverOptions(),
            implicit_tls=True,
            proxy_protocol_timeout=5,
        )
        received: list[bytes] = []

        class TLSLayer:
            def dataReceived(self, data: bytes) -> None:
                received.append(data)

        # What Twisted's startTLS makes the transport's protocol.
        tester.transport.protocol = TLSLayer()
        hello = b"\x16\x03\x01\x00\xc4\x01\x00\x00\xc0\x03\x03" + bytes(32)
        tester.send(v2Header() + hello)
        self.assertEqual(received, [hello])
        self.assertEqual(tester.transport.value(), GREETING)

    def test_implicitTLSListener(self) -> None:
        """
        On a listener that is TLS from the start (C{ssl:}) the header is
        still read first and TLS is not started a second time.
        """
        tester = implicitTester(self, Recorder(), proxy_protocol_timeout=5)
        tester.send(v1Header() + b"NOOP\r\n")
        self.assertEqual(tester.transport.value(), GREETING + b"250 OK\r\n")
        self.assertEqual(tester.server.session.peer, CLIENT)


class Connections:
    """
    Connections made by hand to one factory, in memory.
    """

    def __init__(self, factory: SMTPFactory) -> None:
        self.factory = factory
        self.port = 50000

    def connect(self) -> tuple[SMTP, StringTransport]:
        """
        Connect one more client.
        """
        self.port += 1
        peer = TwistedIPv4Address("TCP", "127.0.0.1", self.port)
        server = self.factory.buildProtocol(peer)
        transport = StringTransport(
            hostAddress=TwistedIPv4Address("TCP", "127.0.0.1", 25), peerAddress=peer
        )
        server.makeConnection(transport)
        return server, transport

    def disconnect(self, server: SMTP) -> None:
        """
        Tell C{server} its connection is gone.
        """
        server.connectionLost(Failure(ConnectionDone()))


class MaxConnectionsTests(SynchronousTestCase):
    """
    C{SMTPFactory(max_connections=N)} (in memory).
    """

    def makeConnections(self, **options: Any) -> Connections:
        options.setdefault("max_connections", 2)
        return Connections(
            SMTPFactory(Recorder(), reactor=Clock(), hostname=HOSTNAME, **options)
        )

    def test_oneTooMany(self) -> None:
        """
        The connection over the limit gets 421 4.3.2 and is closed after
        it; those under the limit are greeted.
        """
        connections = self.makeConnections()
        for _ in range(2):
            _, transport = connections.connect()
            self.assertEqual(transport.value(), GREETING)
            self.assertFalse(transport.disconnecting)
        server, transport = connections.connect()
        self.assertEqual(transport.value(), TOO_MANY)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(connections.factory.connections, 2)
        server.dataReceived(b"NOOP\r\n")
        self.assertEqual(transport.value(), TOO_MANY)

    def test_slotFreedOnDisconnect(self) -> None:
        """
        When a served client leaves, its slot is free for the next one; a
        refused client leaving frees nothing.
        """
        connections = self.makeConnections()
        first, _ = connections.connect()
        connections.connect()
        refused, transport = connections.connect()
        self.assertEqual(transport.value(), TOO_MANY)
        connections.disconnect(refused)
        self.assertEqual(connections.factory.connections, 2)
        _, transport = connections.connect()
        self.assertEqual(transport.value(), TOO_MANY)
        connections.disconnect(first)
        self.assertEqual(connections.factory.connections, 1)
        _, transport = connections.connect()
        self.assertEqual(transport.value(), GREETING)
        self.assertEqual(connections.factory.connections, 2)

    def test_quitFreesSlot(self) -> None:
        """
        A client that QUITs frees its slot once the connection is gone.
        """
        connections = self.makeConnections(max_connections=1)
        server, transport = connections.connect()
        server.dataReceived(b"QUIT\r\n")
        self.assertTrue(transport.value().endswith(b"221 Bye\r\n"))
        connections.disconnect(server)
        _, transport = connections.connect()
        self.assertEqual(transport.value(), GREETING)

    def test_overLimitBeforeProxyHeader(self) -> None:
        """
        With the PROXY protocol, the connection over the limit gets its 421
        at once, without waiting for a header.
        """
        connections = self.makeConnections(max_connections=1, proxy_protocol_timeout=5)
        server, transport = connections.connect()
        self.assertEqual(transport.value(), b"")
        _, over = connections.connect()
        self.assertEqual(over.value(), TOO_MANY)
        server.dataReceived(v2Header())
        self.assertEqual(transport.value(), GREETING)

    def test_droppedProxyFreesSlot(self) -> None:
        """
        A connection dropped for a bad PROXY header frees its slot.
        """
        connections = self.makeConnections(max_connections=1, proxy_protocol_timeout=5)
        server, transport = connections.connect()
        server.dataReceived(b"GET / HTTP/1.0\r\n")
        self.assertTrue(transport.disconnected)
        connections.disconnect(server)
        self.assertEqual(connections.factory.connections, 0)
        _, transport = connections.connect()
        self.assertEqual(transport.value(), b"")
        self.assertFalse(transport.disconnecting)

    def test_invalid(self) -> None:
        """
        A C{max_connections} that is not a positive int is refused when the
        factory is made.
        """
        for value in (0, -1, True, 2.0, "2"):
            self.assertRaises(
                ValueError, SMTPFactory, Recorder(), max_connections=value
            )


class HeaderSplitTests(SynchronousTestCase):
    """
    A PROXY header and the commands after it read the same however the
    stream is cut into chunks.
    """

    def transcript(self, chunks: list[bytes]) -> Any:
        """
        Feed a new server waiting for a PROXY header C{chunks}; return what
        it wrote, the peers and contents its handler saw, the names it was
        greeted with, and whether it closed.
        """
        handler = Recorder()
        tester = proxyTester(handler)
        for chunk in chunks:
            tester.send(chunk)
        seen = [(seen.peer, content) for seen, content in handler.messages]
        return tester.transport.value(), seen, handler.ehlos, tester.closed

    def assertTransaction(self, header: bytes) -> None:
        """
        Send C{header}, then a transaction and QUIT, in every split; check
        that the session ran with the proxied peer.
        """
        data = header + (
            b"EHLO c.example\r\nMAIL FROM:<a@example.com>\r\n"
            b"RCPT TO:<b@example.com>\r\nDATA\r\nHi\r\n.\r\nQUIT\r\n"
        )
        written, seen, ehlos, closed = assertSplitsAgree(self, self.transcript, data)
        self.assertTrue(written.startswith(GREETING + EHLO_REPLY))
        self.assertTrue(written.endswith(b"250 OK\r\n221 Bye\r\n"))
        self.assertEqual(ehlos, ["c.example"])
        self.assertEqual(seen, [(CLIENT, b"Hi\r\n")])
        self.assertTrue(closed)

    def test_v1(self) -> None:
        """
        A version 1 header and the commands after it give the same replies
        and the same peer in any split.
        """
        self.assertTransaction(v1Header())

    def test_v2(self) -> None:
        """
        A version 2 header with a TLV, and the commands after it, give the
        same replies and the same peer in any split.
        """
        self.assertTransaction(v2Header(tlvs=b"\x01\x00\x04smtp"))


# Integration tests with HAProxy.


#: The HAProxy configuration: a TCP frontend on a socket the test made and
#: passes down as a file descriptor, and the server as the one backend.
HAPROXY_CONFIG = """\
global
    maxconn 64

defaults
    mode tcp
    timeout connect 5s
    timeout client 20s
    timeout server 20s

frontend smtp_in
    bind fd@{fd}
    default_backend smtp_servers

backend smtp_servers
    server twisted_smtpd 127.0.0.1:{backend} {sendProxy}
"""


class HAProxy:
    """
    A HAProxy process in front of a server on 127.0.0.1.

    @ivar port: The port HAProxy accepts clients on.
    """

    def __init__(self, port: int, process: subprocess.Popen, log: Path) -> None:
        self.port = port
        self.process = process
        self.log = log

    def describe(self) -> str:
        """
        HAProxy's exit status (if it exited) and output, for failures.
        """
        return (
            f"haproxy exit status {self.process.poll()},"
            f" output {self.log.read_bytes()[-2000:]!r}"
        )


def startHAProxy(testCase: TestCase, backendPort: int, sendProxy: str) -> HAProxy:
    """
    Start HAProxy in the foreground (C{-db}) in front of 127.0.0.1:
    C{backendPort}, sending PROXY headers as C{sendProxy} says
    (C{send-proxy} or C{send-proxy-v2}), and stop it when the test ends.

    The frontend socket is bound and listening here, on 127.0.0.1 port 0,
    and handed to HAProxy (C{bind fd@N}), so that no other process can take
    the port between choosing it and HAProxy binding it, and clients can
    connect at once: the kernel queues them until HAProxy accepts.
    """
    haproxy = commandLineTool("haproxy")
    directory = Path(testCase.mktemp())
    directory.mkdir(parents=True)
    frontend = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        frontend.bind(("127.0.0.1", 0))
        frontend.listen(16)
        config = directory / "haproxy.cfg"
        config.write_text(
            HAPROXY_CONFIG.format(
                fd=frontend.fileno(), backend=backendPort, sendProxy=sendProxy
            )
        )
        log = directory / "haproxy.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [haproxy, "-f", str(config), "-db"],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                pass_fds=[frontend.fileno()],
            )
        port = frontend.getsockname()[1]
    finally:
        # HAProxy has its own copy; if it dies, the port closes with it.
        frontend.close()

    def stop() -> Deferred[Any]:
        process.terminate()

        def wait() -> None:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

        return deferToThread(wait)

    testCase.addCleanup(stop)
    return HAProxy(port, process, log)


class Seer:
    """
    A handler that keeps, for each message, the session's peer, proxy data
    and TLS state, and the content.
    """

    def __init__(self) -> None:
        self.messages: list[tuple[Any, Any, bool, bytes]] = []

    def handle_DATA(self, server: Any, session: Any, envelope: Any) -> None:
        self.messages.append(
            (
                session.peer,
                session.proxy_data,
                session.ssl is not None,
                envelope.content,
            )
        )


class HAProxyTests(TestCase):
    """
    A real HAProxy on 127.0.0.1 (Debian package C{haproxy}) in front of a
    server listening on 127.0.0.1 (real TCP, real reactor), with C{smtplib}
    in a thread as the client.
    """

    timeout = 60

    async def sendThrough(
        self,
        proxy: HAProxy,
        count: int = 1,
        implicit: ssl.SSLContext | None = None,
        starttls: ssl.SSLContext | None = None,
    ) -> list[tuple[Any, Any]]:
        """
        Send C{count} messages through C{proxy}, one connection each, with
        C{smtplib}: in plaintext, over implicit TLS (C{SMTP_SSL}) with the
        context C{implicit}, or after STARTTLS with the context C{starttls}.

        @return: For each, the client's own address and what C{sendmail}
            returned.
        """

        def connect() -> smtplib.SMTP:
            options = {"local_hostname": "client.example", "timeout": CLIENT_TIMEOUT}
            if implicit is not None:
                return smtplib.SMTP_SSL(
                    "127.0.0.1", proxy.port, context=implicit, **options
                )
            return smtplib.SMTP("127.0.0.1", proxy.port, **options)

        def client(i: int) -> tuple[Any, Any]:
            with connect() as c:
                local = c.sock.getsockname()
                if starttls is not None:
                    code, text = c.starttls(context=starttls)
                    if code != 220:
                        raise AssertionError(f"STARTTLS got {code} {text!r}")
                return local, c.sendmail(
                    "alice@example.com", ["bob@example.com"], f"Message {i}\r\n"
                )

        results = []
        for i in range(count):
            try:
                results.append(await deferToThread(client, i))
            except Exception as e:
                raise AssertionError(f"{e!r}; {proxy.describe()}") from e
        return results

    def assertProxied(
        self,
        handler: Seer,
        results: list[tuple[Any, Any]],
        proxy: HAProxy,
        version: int,
        tls: bool = False,
    ) -> None:
        """
        Check that each message arrived with the original client's address
        as the peer and a header of C{version}.
        """
        self.assertEqual([refused for _, refused in results], [{}] * len(results))
        self.assertEqual(len(handler.messages), len(results))
        for i, ((local, _), message) in enumerate(
            zip(results, handler.messages, strict=True)
        ):
            peer, data, secure, content = message
            self.assertEqual(peer, ("127.0.0.1", local[1]))
            self.assertIsNotNone(data)
            self.assertEqual(data.version, version)
            self.assertEqual(data.command, V2_CMD.PROXY)
            self.assertEqual(
                (data.src_addr, data.src_port, data.dst_addr, data.dst_port),
                (
                    IPv4Address("127.0.0.1"),
                    local[1],
                    IPv4Address("127.0.0.1"),
                    proxy.port,
                ),
            )
            self.assertEqual(secure, tls)
            self.assertEqual(content, f"Message {i}\r\n".encode())

    async def test_sendProxyV2(self) -> None:
        """
        Through HAProxy with C{send-proxy-v2}, each message's session has
        the original client's address (not HAProxy's) as its peer and a
        version 2 header.
        """
        handler = Seer()
        listening = listen(self, handler, proxy_protocol_timeout=5)
        proxy = startHAProxy(self, listening.port, "send-proxy-v2")
        results = await self.sendThrough(proxy, count=2)
        self.assertProxied(handler, results, proxy, version=2)
        self.assertNotEqual(results[0][0], results[1][0])

    async def test_sendProxyV1(self) -> None:
        """
        Through HAProxy with C{send-proxy}, the session has the original
        client's address as its peer and a version 1 header.
        """
        handler = Seer()
        listening = listen(self, handler, proxy_protocol_timeout=5)
        proxy = startHAProxy(self, listening.port, "send-proxy")
        results = await self.sendThrough(proxy)
        self.assertProxied(handler, results, proxy, version=1)

    async def test_implicitTLS(self) -> None:
        """
        With C{implicit_tls} behind HAProxy in TCP mode (passing TLS through
        and sending a version 2 header), C{smtplib.SMTP_SSL} delivers and
        the session has TLS and the original client's address.
        """
        certs = certificates(self)
        handler = Seer()
        listening = listen(
            self,
            handler,
            proxy_protocol_timeout=5,
            implicit_tls=True,
            tls_context=certs.serverOptions(),
        )
        proxy = startHAProxy(self, listening.port, "send-proxy-v2")
        results = await self.sendThrough(proxy, implicit=certs.clientContext())
        self.assertProxied(handler, results, proxy, version=2, tls=True)

    async def test_STARTTLS(self) -> None:
        """
        Behind HAProxy, STARTTLS replaces the session but keeps the original
        client's address and the header.
        """
        certs = certificates(self)
        handler = Seer()
        listening = listen(
            self, handler, proxy_protocol_timeout=5, tls_context=certs.serverOptions()
        )
        proxy = startHAProxy(self, listening.port, "send-proxy-v2")
        results = await self.sendThrough(proxy, starttls=certs.clientContext())
        self.assertProxied(handler, results, proxy, version=2, tls=True)

    async def test_withoutHeaderDropped(self) -> None:
        """
        A client that connects to the server directly, bypassing HAProxy,
        and speaks SMTP at once is dropped without a reply.
        """
        handler = Seer()
        listening = listen(self, handler, proxy_protocol_timeout=5)

        def client() -> bytes:
            with socket.create_connection(
                ("127.0.0.1", listening.port), CLIENT_TIMEOUT
            ) as sock:
                sock.sendall(b"EHLO client.example\r\n")
                data = b""
                while True:
                    try:
                        chunk = sock.recv(4096)
                    except ConnectionResetError:
                        return data
                    if not chunk:
                        return data
                    data += chunk

        self.assertEqual(await deferToThread(client), b"")
        self.assertEqual(handler.messages, [])
