"""
Tests for the C{Received:} header field of L{twisted_smtpd._received}:
its text, the protocol names of RFC 3848 and RFC 6531, the cleaning of the
client's text, and the field as handlers get it (option
C{received_header}, handler attribute C{received_header}); in memory,
with a L{Clock} (whose time is the epoch).
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests._protocolsupport import HOST, OK, Collector
from twisted_smtpd import LMTP, Envelope, Session
from twisted_smtpd._received import clean, protocolName, receivedHeader
from twisted_smtpd.testing import SMTPTester

EPOCH = "Thu, 01 Jan 1970 00:00:00 +0000"


class FakeServer:
    """
    What L{receivedHeader} reads of a server.
    """

    helloVerb = "HELO"

    def __init__(self, hostname: str = HOST) -> None:
        self.config = type("Config", (), {"hostname": hostname})()
        self._states: dict[Any, Any] = {}

    def stateOf(self, key: Any, factory: Any) -> Any:
        if key not in self._states:
            self._states[key] = factory()
        return self._states[key]


def session(
    helo: str | None = "client.example",
    peer: Any = ("192.0.2.1", 4321),
    extended: bool = True,
    ssl: Any = None,
    authenticated: Any = None,
) -> Session:
    """
    A session with the given facts.
    """
    s = Session()
    s.host_name, s.peer, s.extended_smtp = helo, peer, extended
    s.ssl, s.authenticated = ssl, authenticated
    return s


def envelope(*recipients: str, utf8: bool = False) -> Envelope:
    """
    An envelope for C{recipients}.
    """
    e = Envelope()
    e.mail_from = "a@example.com"
    e.rcpt_tos = list(recipients)
    e.smtp_utf8 = utf8
    return e


class CleanTests(SynchronousTestCase):
    """
    L{clean} keeps no byte that could end the field or a comment in it.
    """

    def test_controls(self) -> None:
        """
        CR, LF, NUL, TAB, DEL, spaces, C1 controls, parentheses and
        backslashes each become C{?}.
        """
        self.assertEqual(
            clean("a\r\nReceived: x\x00\t\x7f(b)\\c\x85"), "a??Received:?x????b??c?"
        )

    def test_utf8(self) -> None:
        """
        Beyond ASCII, letters stay only with SMTPUTF8, never a line
        separator or a lone surrogate.
        """
        self.assertEqual(clean("jürgen"), "j?rgen")
        self.assertEqual(clean("jürgen\u2028\u2029\udcff", utf8=True), "jürgen???")

    def test_long(self) -> None:
        """
        More than 255 characters are cut; nothing at all becomes C{?}.
        """
        self.assertEqual(clean("x" * 300), "x" * 255)
        self.assertEqual(clean(""), "?")


class ProtocolNameTests(SynchronousTestCase):
    """
    L{protocolName} follows RFC 3848 and RFC 6531 section 3.7.3.
    """

    def test_names(self) -> None:
        """
        HELO, EHLO, TLS, AUTH, SMTPUTF8 and LMTP combine into one name.
        """
        tls = {"protocol": "TLSv1.3"}
        smtp, lmtp = FakeServer(), FakeServer()
        lmtp.helloVerb = "LHLO"
        cases = [
            (smtp, session(extended=False), False, "SMTP"),
            (smtp, session(), False, "ESMTP"),
            (smtp, session(ssl=tls), False, "ESMTPS"),
            (smtp, session(authenticated=True), False, "ESMTPA"),
            (smtp, session(authenticated=False), False, "ESMTP"),
            (smtp, session(ssl=tls, authenticated=True), False, "ESMTPSA"),
            (smtp, session(), True, "UTF8SMTP"),
            (smtp, session(ssl=tls, authenticated=True), True, "UTF8SMTPSA"),
            (lmtp, session(), False, "LMTP"),
            (lmtp, session(ssl=tls), False, "LMTPS"),
            (lmtp, session(authenticated=True), True, "UTF8LMTPA"),
        ]
        for server, s, utf8, name in cases:
            self.assertEqual(protocolName(server, s, envelope(utf8=utf8)), name)


class ReceivedHeaderTests(SynchronousTestCase):
    """
    L{receivedHeader} writes RFC 5321 section 4.4's field.
    """

    def test_plain(self) -> None:
        """
        HELO name, address literal, host, protocol, id, recipient, date:
        one clause a line.
        """
        server = FakeServer()
        header = receivedHeader(server, session(), envelope("b@example.com"), 0)
        ident = server._states[next(iter(server._states))]
        self.assertRegex(ident, "^[0-9A-F]{10}$")
        self.assertEqual(
            header,
            "Received: from client.example ([192.0.2.1])\r\n"
            f"\tby {HOST} (twisted_smtpd)\r\n"
            f"\twith ESMTP id {ident}\r\n"
            f"\tfor <b@example.com>; {EPOCH}",
        )

    def test_tlsIPv6Recipients(self) -> None:
        """
        TLS version and cipher, an IPv6 literal, no C{for} for two
        recipients.
        """
        ssl = {"protocol": "TLSv1.3", "cipher": ("TLS_AES_256_GCM_SHA384", "x", 256)}
        server = FakeServer()
        s = session(peer=("2001:db8::1", 25, 0, 0), ssl=ssl, authenticated=True)
        header = receivedHeader(server, s, envelope("b@example", "c@example"), 0)
        lines = header.split("\r\n\t")
        self.assertEqual(lines[0], "Received: from client.example ([IPv6:2001:db8::1])")
        self.assertEqual(
            lines[1], "(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256 bits))"
        )
        self.assertRegex(lines[3], "^with ESMTPSA id [0-9A-F]{10};$")
        self.assertEqual(lines[4], EPOCH)
        self.assertTrue(all(len(line) <= 78 for line in lines))

    def test_hostileClient(self) -> None:
        """
        A HELO name and a recipient full of CR, LF and comment characters
        stay within their clause: the field has no line but its own.
        """
        s = session(helo="evil)\r\nX-Injected: yes (", peer="/run/smtp\r\n.sock")
        header = receivedHeader(
            FakeServer(), s, envelope("b\r\nX-Injected: 1@example"), 0
        )
        self.assertEqual(header.count("\r\n"), 3)
        for line in header.split("\r\n")[1:]:
            self.assertTrue(line.startswith("\t"), line)
        self.assertNotIn("\n", header.replace("\r\n\t", ""))
        self.assertTrue(header.startswith("Received: from evil???X-Injected:?yes?? "))
        self.assertIn("(unix socket /run/smtp??.sock)", header)
        self.assertTrue(all(31 < ord(c) < 127 for c in header.replace("\r\n\t", "")))


class Recorder(Collector):
    """
    A collector that asks for the field by attribute.
    """

    received_header = True


class OnTheWireTests(SynchronousTestCase):
    """
    What C{handle_DATA} gets with the field on, after a real session.
    """

    def send(
        self,
        handler: Any,
        message: bytes = b"Subject: hi\r\n\r\nbody\r\n",
        rcpts: int = 1,
        **options: Any,
    ) -> SMTPTester:
        """
        Send one message with C{rcpts} recipients; return the tester.
        """
        t = SMTPTester(handler, hostname=HOST, **options)
        greet = "LHLO" if options.get("protocol") is LMTP else "EHLO"
        self.assertEqual(t.command(f"{greet} client.example").code, 250)
        self.assertEqual(t.command("MAIL FROM:<a@example.com>").code, 250)
        for i in range(rcpts):
            self.assertEqual(t.command(f"RCPT TO:<b{i}@example.com>").code, 250)
        self.assertEqual(t.command("DATA").code, 354)
        t.send(message + b".\r\n")
        self.assertEqual(t.replies()[0].code, 250)
        return t

    def test_offByDefault(self) -> None:
        """
        Without the option or the attribute, the message is as sent.
        """
        handler = Collector()
        self.send(handler)
        self.assertEqual(
            handler.envelopes[0].original_content, b"Subject: hi\r\n\r\nbody\r\n"
        )

    def test_option(self) -> None:
        """
        With C{received_header=True}, C{content} and C{original_content}
        start with the field, and the rest is the message unchanged.
        """
        handler = Collector()
        self.send(handler, received_header=True)
        envelope = handler.envelopes[0]
        header, rest = envelope.original_content.split(b"\r\nSubject:", 1)
        self.assertEqual(rest, b" hi\r\n\r\nbody\r\n")
        self.assertTrue(
            header.startswith(
                b"Received: from client.example ([127.0.0.1])\r\n"
                b"\tby mx.example (twisted_smtpd)\r\n\twith ESMTP id "
            )
        )
        self.assertTrue(
            header.endswith(f"\r\n\tfor <b0@example.com>; {EPOCH}".encode())
        )
        self.assertEqual(envelope.content, envelope.original_content)

    def test_attribute(self) -> None:
        """
        A handler attribute C{received_header = True} asks for it too.
        """
        handler = Recorder()
        self.send(handler)
        self.assertTrue(handler.envelopes[0].original_content.startswith(b"Received: "))

    def test_decodeData(self) -> None:
        """
        With C{decode_data}, C{content} is a C{str} with the field too.
        """
        handler = Recorder()
        self.send(handler, decode_data=True)
        envelope = handler.envelopes[0]
        self.assertIsInstance(envelope.content, str)
        self.assertEqual(envelope.content.encode(), envelope.original_content)
        self.assertTrue(envelope.content.startswith("Received: "))

    def test_bareLF(self) -> None:
        """
        A message written with bare LFs gets a field ending in LF.
        """
        handler = Recorder()
        self.send(handler, b"Subject: hi\n\nbody\r\n", bare_newline="allow")
        content = handler.envelopes[0].original_content
        self.assertNotIn(b"\r\n\t", content)
        self.assertIn(b"\n\tby mx.example", content)
        self.assertTrue(content.endswith(b"\nSubject: hi\n\nbody\r\n"))

    def test_sessionId(self) -> None:
        """
        Two messages of a connection have the same id, another connection
        another one.
        """
        handler = Recorder()
        t = self.send(handler)
        self.assertEqual(t.command("MAIL FROM:<a@example.com>"), OK)
        self.assertEqual(t.command("RCPT TO:<c@example.com>"), OK)
        self.assertEqual(t.command("DATA").code, 354)
        t.send(b"x\r\n.\r\n")
        self.send(handler)
        ids = [m.original_content.split(b" id ")[1][:10] for m in handler.envelopes]
        self.assertEqual(ids[0], ids[1])
        self.assertNotEqual(ids[0], ids[2])

    def test_lmtp(self) -> None:
        """
        LMTP says so; two recipients give no C{for}.
        """
        handler = Recorder()
        self.send(handler, protocol=LMTP, rcpts=2)
        header = handler.envelopes[0].original_content.split(b"\r\n\r\n")[0]
        self.assertIn(b"\twith LMTP id ", header)
        self.assertNotIn(b"for <", header)

    def test_smtputf8(self) -> None:
        """
        A message with SMTPUTF8 says C{UTF8SMTP} and keeps a UTF-8
        recipient.
        """
        handler = Recorder()
        t = SMTPTester(handler, hostname=HOST, enable_SMTPUTF8=True)
        t.command("EHLO client.example")
        self.assertEqual(t.command("MAIL FROM:<a@example.com> SMTPUTF8"), OK)
        self.assertEqual(t.command("RCPT TO:<jürgen@example.com>"), OK)
        t.command("DATA")
        t.send(b"x\r\n.\r\n")
        content = handler.envelopes[0].original_content
        self.assertIn(b"\twith UTF8SMTP id ", content)
        self.assertIn("for <jürgen@example.com>;".encode(), content)
