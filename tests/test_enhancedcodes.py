# -*- test-case-name: tests.test_enhancedcodes -*-
"""
Tests for the C{enhanced_status_codes} option of SMTP (RFC 2034, RFC 3463):
the keyword, and an enhanced status code of the reply's class on every
2yz, 4yz and 5yz reply but the greeting and the HELO/EHLO reply, on the
wire. No sockets, no real time.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from twisted_smtpd import LMTP
from twisted_smtpd.testing import Reply, SMTPTester

#: An enhanced status code at the start of a reply line's text.
_CODE = re.compile(r"([245])\.\d{1,3}\.\d{1,3}(?: |$)")


class Handler:
    """
    Refuses one recipient without a code and another with its own, and
    accepts the message.
    """

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address == "nobody@example.com":
            return "550 No such user here"
        if address == "coded@example.com":
            return "550 5.1.1 Mailbox unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.content)
        return "250 Message accepted for delivery"


def tester(**options: Any) -> SMTPTester:
    options.setdefault("hostname", "mx.example")
    return SMTPTester(Handler(), **options)


def plainLines(reply: Reply) -> list[str]:
    """
    The lines of C{reply} that start with an enhanced status code.
    """
    return [line for line in reply.lines if _CODE.match(line)]


class KeywordTests(SynchronousTestCase):
    """
    The option, the EHLO keyword and the replies that never carry a code.
    """

    def test_offByDefault(self) -> None:
        """
        By default EHLO does not offer ENHANCEDSTATUSCODES and the replies
        keep aiosmtpd's texts.
        """
        client = tester()
        self.assertNotIn("ENHANCEDSTATUSCODES", client.command("EHLO c.example").lines)
        self.assertEqual(client.command("NOOP"), (250, "OK"))
        self.assertEqual(
            client.command("MAIL FROM:<a@>"),
            (553, "5.1.3 Error: malformed address"),
        )

    def test_keyword(self) -> None:
        """
        With the option, EHLO offers ENHANCEDSTATUSCODES; the greeting and
        the EHLO and HELO replies carry no code (RFC 2034 section 3).
        """
        client = tester(enhanced_status_codes=True)
        self.assertEqual(plainLines(client.greeting), [])
        ehlo = client.command("EHLO c.example")
        self.assertIn("ENHANCEDSTATUSCODES", ehlo.lines)
        self.assertEqual(plainLines(ehlo), [])
        self.assertEqual(client.command("HELO c.example"), (250, "mx.example"))

    def test_lmtpAlways(self) -> None:
        """
        LMTP has them with or without the option (RFC 2033 section 5).
        """
        client = tester(protocol=LMTP)
        self.assertIn("ENHANCEDSTATUSCODES", client.command("LHLO c.example").lines)
        self.assertEqual(client.command("NOOP"), (250, "2.0.0 OK"))


class EveryReplyTests(SynchronousTestCase):
    """
    Every 2yz, 4yz and 5yz reply of a session carries a code of its class;
    no 3yz reply does.
    """

    def assertCoded(self, replies: list[Reply]) -> None:
        for reply in replies:
            for line in reply.lines:
                match = _CODE.match(line)
                if reply.code // 100 == 3:
                    self.assertIsNone(match, reply)
                else:
                    self.assertIsNotNone(match, reply)
                    self.assertEqual(int(match.group(1)), reply.code // 100, reply)

    def test_session(self) -> None:
        """
        Commands right and wrong, out of sequence, unknown, refused by the
        handler, AUTH without TLS, a message and QUIT: each reply carries
        the code of its class.
        """
        client = tester(enhanced_status_codes=True, data_size_limit=1000)
        client.command("EHLO c.example")
        client.send(
            b"NOOP\r\nVRFY someone\r\nHELP\r\nHELP MAIL\r\nXYZZY\r\n"
            b"RCPT TO:<b@x.example>\r\n"
            b"DATA\r\nMAIL FROM:<a@>\r\nMAIL TO:<a@example.com>\r\n"
            b"MAIL FROM:<a@example.com> SIZE=5000\r\nMAIL FROM:<a@example.com> X=Y\r\n"
            b"AUTH PLAIN\r\nNOOP\n\r\n"
            b"MAIL FROM:<a@example.com>\r\nMAIL FROM:<a@example.com>\r\n"
            b"RCPT TO:<nobody@example.com>\r\nRCPT TO:<coded@example.com>\r\n"
            b"RCPT TO:<b@example.com>\r\nDATA\r\nHello\r\n.\r\n"
            b"RSET\r\nQUIT\r\n"
        )
        replies = client.replies()
        self.assertEqual(
            [r.code for r in replies],
            [250, 252, 214, 214, 500, 503, 503, 553, 501, 552, 555, 538, 500]
            + [250, 503, 550, 550, 250, 354, 250, 250, 221],
        )
        self.assertCoded(replies)
        self.assertIn(Reply(550, "5.1.1 Mailbox unknown"), replies)
        self.assertIn(Reply(550, "5.0.0 No such user here"), replies)
        self.assertTrue(replies[9].text.startswith("5.3.4 "), replies[9])
        self.assertEqual(replies[-3], (250, "2.0.0 Message accepted for delivery"))

    def test_auth(self) -> None:
        """
        AUTH's replies carry RFC 4954's codes; its 334 challenges none.
        """
        client = tester(
            enhanced_status_codes=True,
            auth_require_tls=False,
            authenticator=lambda *args: args[-1].password == b"right",
        )
        client.command("EHLO c.example")
        wrong = base64.b64encode(b"\0user\0wrong").decode()
        right = base64.b64encode(b"\0user\0right").decode()
        client.send(
            f"AUTH PLAIN\r\n{wrong}\r\nAUTH PLAIN\r\n*\r\nAUTH PLAIN\r\n"
            f"{'A' * 2000}\r\nAUTH NONE\r\nAUTH PLAIN {right}\r\n"
            f"AUTH PLAIN {right}\r\n"
        )
        replies = client.replies()
        self.assertEqual(
            [(r.code, r.text[:6]) for r in replies],
            [
                (334, ""),
                (535, "5.7.8 "),
                (334, ""),
                (501, "5.7.0 "),
                (334, ""),
                (500, "5.5.6 "),
                (504, "5.5.4 "),
                (235, "2.7.0 "),
                (503, "5.5.1 "),
            ],
        )
        self.assertCoded(replies)

    def test_limits(self) -> None:
        """
        The limits' replies carry theirs: C{452 4.5.3} for a recipient
        over C{max_recipients}, C{421 4.7.0} at the error limit.
        """
        client = tester(
            enhanced_status_codes=True, max_recipients=100, hard_error_limit=3
        )
        client.command("EHLO c.example")
        client.command("MAIL FROM:<a@example.com>")
        for n in range(100):
            client.command(f"RCPT TO:<r{n}@example.com>")
        self.assertEqual(
            client.command("RCPT TO:<r100@example.com>"),
            (452, "4.5.3 Too many recipients"),
        )
        client.send(b"XYZZY\r\nXYZZY\r\nXYZZY\r\n")
        replies = client.replies()
        self.assertEqual([r.code for r in replies], [500, 500, 500, 421])
        self.assertTrue(replies[-1].text.startswith("4.7.0 "), replies[-1])
        self.assertCoded(replies)
        self.assertTrue(client.closed)
