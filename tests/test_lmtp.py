"""
Tests for L{twisted_smtpd.LMTP} (RFC 2033): LHLO, one reply per accepted
recipient after the data, and enhanced status codes (RFC 2034, RFC 3463).

The unit tests drive the server in memory with L{SMTPTester}. The
integration tests run real clients against it: C{smtplib.LMTP} (in a
thread) over TCP on 127.0.0.1 and over a UNIX socket, and Postfix's
C{smtp-source -L} as a subprocess.
"""

from __future__ import annotations

import os
import re
import shutil
import smtplib
import socket
import tempfile
from typing import Any, NamedTuple

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests._support import CLIENT_TIMEOUT, HOSTNAME
from tests.test_tls import certificates, commandLineTool, runTool, tlsTester
from tests.test_tls import listenOn as tlsListenOn
from twisted_smtpd import LMTP, SMTP, __version__
from twisted_smtpd.testing import SMTPTester

GREETING = f"220 {HOSTNAME} twisted_smtpd {__version__}\r\n".encode()

LHLO_REPLY = (
    f"250-{HOSTNAME}\r\n"
    "250-SIZE 33554432\r\n"
    "250-8BITMIME\r\n"
    "250-DSN\r\n250-CHUNKING\r\n"
    "250-BINARYMIME\r\n"
    "250-PIPELINING\r\n"
    "250-ENHANCEDSTATUSCODES\r\n"
    "250 HELP\r\n"
).encode()

#: What HELP lists on an LMTP server without TLS or AUTH.
COMMANDS = "BDAT DATA HELP LHLO MAIL NOOP QUIT RCPT RSET VRFY"

OK = (250, "2.0.0 OK")
GO_AHEAD = (354, "End data with <CR><LF>.<CR><LF>")
SEND_LHLO_FIRST = (503, "5.5.1 Error: send LHLO first")
LOCAL_ERROR = (451, "4.3.0 Requested action aborted: local error in processing")
TOO_BIG = (552, "5.3.4 Error: Too much mail data")

#: A reply line that carries an enhanced status code (RFC 3463).
ENHANCED_LINE = re.compile(r"[245]\d\d[ -][245]\.\d{1,3}\.\d{1,3}( |$)")


class Received(NamedTuple):
    """
    What a handler saw of one message.
    """

    mail_from: str | None
    rcpt_tos: list[str]
    content: bytes | str | None
    peer: Any
    host_name: str | None


class Recorder:
    """
    A handler that keeps every message and answers the end of the data
    with C{statuses} (C{None}: the default reply). Recipients whose local
    part is C{nobody} are refused at RCPT time.

    @ivar messages: A L{Received} per message.
    """

    def __init__(self, statuses: Any = None) -> None:
        self.statuses = statuses
        self.messages: list[Received] = []

    def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str | None:
        if address.startswith("nobody@"):
            return "550 5.1.1 No such user"
        return None

    def handle_DATA(self, server: Any, session: Any, envelope: Any) -> Any:
        self.messages.append(
            Received(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                envelope.content,
                session.peer,
                session.host_name,
            )
        )
        return self.statuses


def lmtpTester(handler: Any, **options: Any) -> SMTPTester:
    """
    An in-memory LMTP server named L{HOSTNAME}.
    """
    return SMTPTester(handler, protocol=LMTP, hostname=HOSTNAME, **options)


def startTransaction(
    testCase: SynchronousTestCase, tester: SMTPTester, recipients: list[str]
) -> None:
    """
    Greet with LHLO and send MAIL, one RCPT per recipient and DATA, checking
    that each reply is the expected one (recipients named C{nobody@...} are
    refused by L{Recorder}).
    """
    testCase.assertEqual(tester.command("LHLO client.example").code, 250)
    testCase.assertEqual(tester.command("MAIL FROM:<alice@example.com>"), OK)
    for address in recipients:
        expected = (550, "5.1.1 No such user") if address.startswith("nobody@") else OK
        testCase.assertEqual(tester.command(f"RCPT TO:<{address}>"), expected)
    testCase.assertEqual(tester.command("DATA"), GO_AHEAD)


# Unit tests.


class LHLOTests(SynchronousTestCase):
    """
    The greeting, LHLO, and the refusal of HELO and EHLO (in memory).
    """

    def test_greeting(self) -> None:
        """
        The greeting is a plain 220 line without an enhanced status code.
        """
        tester = lmtpTester(Recorder())
        self.assertEqual(tester.transport.value(), GREETING)

    def test_lhloReply(self) -> None:
        """
        LHLO lists the extensions, PIPELINING and ENHANCEDSTATUSCODES
        included, on lines that carry no enhanced status code.
        """
        tester = lmtpTester(Recorder())
        tester.transport.clear()
        tester.send(b"LHLO client.example\r\n")
        self.assertEqual(tester.transport.value(), LHLO_REPLY)
        self.assertEqual(tester.server.session.host_name, "client.example")
        self.assertTrue(tester.server.session.extended_smtp)

    def test_lhloWithSTARTTLS(self) -> None:
        """
        With a C{tls_context}, LHLO offers STARTTLS among the extensions.
        """
        tester = tlsTester(
            self,
            Recorder(),
            protocol=LMTP,
            tls_context=certificates(self).serverOptions(),
        )
        reply = tester.command("LHLO client.example")
        self.assertEqual(
            reply,
            (
                250,
                f"{HOSTNAME}\nSIZE 33554432\n8BITMIME\nDSN\nCHUNKING\nBINARYMIME\n"
                "STARTTLS\nPIPELINING\n"
                "ENHANCEDSTATUSCODES\nHELP",
            ),
        )

    def test_lhloControlCharacters(self) -> None:
        """
        LHLO with a control character in the host name gets C{501} and
        greets nobody.
        """
        tester = lmtpTester(Recorder())
        for control in "\x00\t\x1b\x7f":
            self.assertEqual(
                tester.command(f"LHLO client{control}.example"),
                (501, "5.5.4 Syntax: LHLO hostname"),
            )
        self.assertIsNone(tester.server.session.host_name)

    def test_lhloWithoutArgument(self) -> None:
        """
        LHLO without a host name gets 501 and greets nobody.
        """
        tester = lmtpTester(Recorder())
        self.assertEqual(tester.command("LHLO"), (501, "5.5.4 Syntax: LHLO hostname"))
        self.assertIsNone(tester.server.session.host_name)
        self.assertEqual(
            tester.command("MAIL FROM:<alice@example.com>"), SEND_LHLO_FIRST
        )

    def test_heloEhloRefused(self) -> None:
        """
        HELO and EHLO get 500 with an enhanced status code, before and after
        LHLO, and change nothing.
        """
        tester = lmtpTester(Recorder())
        for verb in ("HELO", "EHLO"):
            self.assertEqual(
                tester.command(f"{verb} client.example"),
                (500, f'5.5.2 Error: command "{verb}" not recognized'),
            )
        self.assertIsNone(tester.server.session.host_name)
        tester.command("LHLO client.example")
        self.assertEqual(
            tester.command("EHLO other.example"),
            (500, '5.5.2 Error: command "EHLO" not recognized'),
        )
        self.assertEqual(tester.server.session.host_name, "client.example")
        self.assertEqual(tester.command("MAIL FROM:<alice@example.com>"), OK)

    def test_heloEhloNotCountedAsErrors(self) -> None:
        """
        HELO and EHLO do not count toward C{hard_error_limit} either.
        """
        tester = lmtpTester(Recorder(), hard_error_limit=2)
        for verb in ("HELO", "EHLO") * 3:
            self.assertEqual(tester.command(f"{verb} x").code, 500)
        self.assertFalse(tester.closed)

    def test_heloEhloNotCountedAsUnknown(self) -> None:
        """
        HELO and EHLO do not count toward C{max_unknown_commands}; unknown
        verbs still do.
        """
        tester = lmtpTester(Recorder(), max_unknown_commands=2)
        for verb in ("HELO", "EHLO", "HELO", "EHLO"):
            self.assertEqual(tester.command(f"{verb} x").code, 500)
        self.assertFalse(tester.closed)
        self.assertEqual(
            tester.command("XYZZY"),
            (500, '5.5.2 Error: command "XYZZY" not recognized'),
        )
        self.assertEqual(
            tester.command("XYZZY"),
            (421, "4.7.0 Too many unrecognized commands, goodbye."),
        )
        self.assertTrue(tester.closed)

    def test_transactionBeforeLHLO(self) -> None:
        """
        MAIL, RCPT and DATA before LHLO get 503 "send LHLO first".
        """
        tester = lmtpTester(Recorder())
        for line in (
            "MAIL FROM:<alice@example.com>",
            "RCPT TO:<bob@example.com>",
            "DATA",
        ):
            self.assertEqual(tester.command(line), SEND_LHLO_FIRST, line)
        self.assertEqual(tester.command("NOOP"), OK)

    def test_helpListsLHLO(self) -> None:
        """
        HELP lists LHLO and neither HELO nor EHLO.
        """
        tester = lmtpTester(Recorder())
        self.assertEqual(
            tester.command("HELP"),
            (214, "2.0.0 Supported commands: " + COMMANDS),
        )
        self.assertEqual(
            tester.command("HELP LHLO"), (214, "2.0.0 Syntax: LHLO hostname")
        )

    def test_ehloHookCalledForLHLO(self) -> None:
        """
        A handler's C{handle_EHLO} is called for LHLO with the host name and
        the LHLO reply lines, and what it returns is sent unchanged.
        """
        seen = []

        class Handler:
            def handle_EHLO(self, server, session, envelope, hostname, responses):
                seen.append((hostname, list(responses)))
                session.host_name = hostname
                return responses[:1] + ["250 ENHANCEDSTATUSCODES"]

        tester = lmtpTester(Handler())
        tester.transport.clear()
        tester.send(b"LHLO client.example\r\n")
        self.assertEqual(
            seen,
            [
                (
                    "client.example",
                    [
                        f"250-{HOSTNAME}",
                        "250-SIZE 33554432",
                        "250-8BITMIME",
                        "250-DSN",
                        "250-CHUNKING",
                        "250-BINARYMIME",
                        "250-PIPELINING",
                        "250-ENHANCEDSTATUSCODES",
                        "250 HELP",
                    ],
                )
            ],
        )
        self.assertEqual(
            tester.transport.value(),
            f"250-{HOSTNAME}\r\n250 ENHANCEDSTATUSCODES\r\n".encode(),
        )


class PerRecipientReplyTests(SynchronousTestCase):
    """
    One reply per accepted recipient after the data, in RCPT order (RFC
    2033 section 4.2), in memory.
    """

    def test_default(self) -> None:
        """
        Without a status from C{handle_DATA}, each accepted recipient gets
        250; a recipient refused at RCPT time gets no reply after the data.
        """
        handler = Recorder()
        tester = lmtpTester(handler)
        startTransaction(
            self, tester, ["bob@example.com", "nobody@example.com", "carol@example.com"]
        )
        tester.send(b"Hello\r\n.\r\n")
        self.assertEqual(tester.replies(), [OK, OK])
        self.assertEqual(
            handler.messages,
            [
                Received(
                    "alice@example.com",
                    ["bob@example.com", "carol@example.com"],
                    b"Hello\r\n",
                    ("127.0.0.1", 42424),
                    "client.example",
                )
            ],
        )

    def test_listInOrder(self) -> None:
        """
        A list from C{handle_DATA} gives each recipient its own reply, in
        RCPT order, exactly as given.
        """
        statuses = [
            "250 2.1.5 Delivered to bob",
            "552 5.2.2 Mailbox full",
            "450 4.2.1 Try carol later",
        ]
        tester = lmtpTester(Recorder(statuses))
        startTransaction(
            self, tester, ["bob@example.com", "dave@example.com", "carol@example.com"]
        )
        tester.transport.clear()
        tester.send(b"Hello\r\n.\r\n")
        self.assertEqual(
            tester.transport.value(),
            b"250 2.1.5 Delivered to bob\r\n"
            b"552 5.2.2 Mailbox full\r\n"
            b"450 4.2.1 Try carol later\r\n",
        )

    def test_listWithoutEnhancedCodes(self) -> None:
        """
        Statuses in the list that lack an enhanced code get a generic one.
        """
        tester = lmtpTester(Recorder(["250 Delivered", b"550 Unknown user"]))
        startTransaction(self, tester, ["bob@example.com", "dave@example.com"])
        tester.send(b"Hello\r\n.\r\n")
        self.assertEqual(
            tester.replies(),
            [(250, "2.0.0 Delivered"), (550, "5.0.0 Unknown user")],
        )

    def test_singleStatusForAll(self) -> None:
        """
        A single status from C{handle_DATA} is repeated for every accepted
        recipient.
        """
        tester = lmtpTester(Recorder("451 4.3.0 Try again later"))
        startTransaction(
            self, tester, ["bob@example.com", "nobody@example.com", "carol@example.com"]
        )
        tester.send(b"Hello\r\n.\r\n")
        self.assertEqual(
            tester.replies(),
            [(451, "4.3.0 Try again later"), (451, "4.3.0 Try again later")],
        )

    def test_singleRecipient(self) -> None:
        """
        With one recipient there is exactly one reply, from a one-element
        list as from a single status.
        """
        for statuses in (["250 2.0.0 Saved"], "250 2.0.0 Saved"):
            tester = lmtpTester(Recorder(statuses))
            startTransaction(self, tester, ["bob@example.com"])
            tester.send(b"Hello\r\n.\r\n")
            self.assertEqual(tester.replies(), [(250, "2.0.0 Saved")], statuses)

    def test_deferredList(self) -> None:
        """
        A L{Deferred} firing with a list gives the replies once it fires;
        a command pipelined after the data waits for them.
        """
        pending: Deferred[list[str]] = Deferred()
        handler = Recorder(pending)
        tester = lmtpTester(handler)
        startTransaction(self, tester, ["bob@example.com", "carol@example.com"])
        tester.send(b"Hello\r\n.\r\nNOOP\r\n")
        self.assertEqual(tester.replies(), [])
        pending.callback(["250 2.0.0 Bob", "550 5.1.1 Carol"])
        self.assertEqual(
            tester.replies(), [(250, "2.0.0 Bob"), (550, "5.1.1 Carol"), OK]
        )

    def test_coroutineList(self) -> None:
        """
        An C{async def handle_DATA} that waits and then returns a list gives
        one reply per recipient once it returns.
        """
        gate: Deferred[None] = Deferred()

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                await gate
                return [f"250 2.0.0 Saved for {r}" for r in envelope.rcpt_tos]

        tester = lmtpTester(Handler())
        startTransaction(self, tester, ["bob@example.com", "carol@example.com"])
        tester.send(b"Hello\r\n.\r\n")
        self.assertEqual(tester.replies(), [])
        gate.callback(None)
        self.assertEqual(
            tester.replies(),
            [
                (250, "2.0.0 Saved for bob@example.com"),
                (250, "2.0.0 Saved for carol@example.com"),
            ],
        )

    def test_listTooShort(self) -> None:
        """
        A list shorter than the recipients gives every recipient a 451 (and
        the error is logged); the next transaction works.
        """
        tester = lmtpTester(Recorder(["250 2.0.0 OK"]))
        startTransaction(
            self, tester, ["bob@example.com", "carol@example.com", "dave@example.com"]
        )
        tester.send(b"Hello\r\n.\r\n")
        self.assertEqual(tester.replies(), [LOCAL_ERROR] * 3)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self.assertEqual(tester.command("MAIL FROM:<alice@example.com>"), OK)

    def test_listTooLong(self) -> None:
        """
        A list longer than the recipients gives every recipient a 451, and
        none of the list's statuses is sent.
        """
        tester = lmtpTester(Recorder(["250 2.0.0 A", "250 2.0.0 B", "250 2.0.0 C"]))
        startTransaction(self, tester, ["bob@example.com", "carol@example.com"])
        tester.send(b"Hello\r\n.\r\n")
        self.assertEqual(tester.replies(), [LOCAL_ERROR] * 2)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_listWithNone(self) -> None:
        """
        C{None} in the list means the default reply for that recipient, as a
        hook's C{None} does elsewhere; every recipient still gets one reply.
        """
        tester = lmtpTester(Recorder([None, "450 4.2.1 Later", None]))
        startTransaction(
            self, tester, ["bob@example.com", "carol@example.com", "dave@example.com"]
        )
        tester.send(b"Hello\r\n.\r\n")
        self.assertEqual(tester.replies(), [OK, (450, "4.2.1 Later"), OK])
        self.assertEqual(tester.command("NOOP"), OK)

    def test_listWithBadStatus(self) -> None:
        """
        A list holding something that is not a reply gives every recipient
        a 451 and nothing else: the client must never get fewer replies than
        recipients.
        """
        tester = lmtpTester(Recorder(["250 2.0.0 Bob", 42, "250 2.0.0 Dave"]))
        startTransaction(
            self, tester, ["bob@example.com", "carol@example.com", "dave@example.com"]
        )
        tester.send(b"Hello\r\n.\r\n")
        self.assertEqual(tester.replies(), [LOCAL_ERROR] * 3)
        self.assertEqual(tester.command("NOOP"), OK)
        self.flushLoggedErrors()

    def test_badStatus(self) -> None:
        """
        A status that is neither a reply nor a list gives every recipient a
        451, not one 451 for all of them.
        """
        for status in (5, True, object()):
            tester = lmtpTester(Recorder(status))
            startTransaction(self, tester, ["bob@example.com", "carol@example.com"])
            tester.send(b"Hello\r\n.\r\n")
            self.assertEqual(tester.replies(), [LOCAL_ERROR] * 2)
            self.assertEqual(tester.command("NOOP"), OK)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 3)

    def test_hookRaises(self) -> None:
        """
        An exception in C{handle_DATA} gives every recipient a 451.
        """

        class Handler:
            def handle_DATA(self, server, session, envelope):
                raise RuntimeError("disk on fire")

        tester = lmtpTester(Handler())
        startTransaction(self, tester, ["bob@example.com", "carol@example.com"])
        tester.send(b"Hello\r\n.\r\n")
        self.assertEqual(tester.replies(), [LOCAL_ERROR] * 2)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_handleExceptionStatus(self) -> None:
        """
        The status C{handle_exception} gives for an error in C{handle_DATA}
        is sent once per recipient.
        """

        class Handler:
            def handle_DATA(self, server, session, envelope):
                raise RuntimeError("disk on fire")

            def handle_exception(self, error):
                return "554 5.3.0 Broken"

        tester = lmtpTester(Handler())
        startTransaction(self, tester, ["bob@example.com", "carol@example.com"])
        tester.send(b"Hello\r\n.\r\n")
        self.assertEqual(tester.replies(), [(554, "5.3.0 Broken")] * 2)
        self.flushLoggedErrors(RuntimeError)

    def test_sizeLimit(self) -> None:
        """
        A message over C{data_size_limit} gets one 552 per recipient, never
        reaches the handler, and ends the transaction.
        """
        handler = Recorder()
        tester = lmtpTester(handler, data_size_limit=100)
        startTransaction(
            self, tester, ["bob@example.com", "carol@example.com", "dave@example.com"]
        )
        tester.send(b"x" * 98 + b"\r\n" + b"y" * 98 + b"\r\n.\r\n")
        self.assertEqual(tester.replies(), [TOO_BIG] * 3)
        self.assertEqual(handler.messages, [])
        self.assertEqual(
            tester.command("RCPT TO:<bob@example.com>"),
            (503, "5.5.1 Error: need MAIL command"),
        )
        self.assertEqual(tester.command("MAIL FROM:<alice@example.com>"), OK)

    def test_bareNewline(self) -> None:
        """
        A bare LF in the message gets one 550 per recipient.
        """
        handler = Recorder()
        tester = lmtpTester(handler)
        startTransaction(self, tester, ["bob@example.com", "carol@example.com"])
        tester.send(b"bad\nline\r\n.\r\n")
        self.assertEqual(
            tester.replies(),
            [
                (
                    550,
                    "5.6.0 Error: bare CR or LF in message; lines must end with CRLF",
                )
            ]
            * 2,
        )
        self.assertEqual(handler.messages, [])

    def test_pipelinedTransaction(self) -> None:
        """
        A whole transaction pipelined in one write is answered in order,
        with one reply per recipient after the data, byte for byte.
        """
        handler = Recorder(["250 2.1.5 Bob OK", "452 4.2.2 Carol over quota"])
        tester = lmtpTester(handler)
        tester.transport.clear()
        tester.send(
            b"LHLO client.example\r\n"
            b"MAIL FROM:<alice@example.com>\r\n"
            b"RCPT TO:<bob@example.com>\r\n"
            b"RCPT TO:<nobody@example.com>\r\n"
            b"RCPT TO:<carol@example.com>\r\n"
            b"DATA\r\n"
            b"..dot\r\nbody\r\n.\r\n"
            b"QUIT\r\n"
        )
        self.assertEqual(
            tester.transport.value(),
            LHLO_REPLY + b"250 2.0.0 OK\r\n"
            b"250 2.0.0 OK\r\n"
            b"550 5.1.1 No such user\r\n"
            b"250 2.0.0 OK\r\n"
            b"354 End data with <CR><LF>.<CR><LF>\r\n"
            b"250 2.1.5 Bob OK\r\n"
            b"452 4.2.2 Carol over quota\r\n"
            b"221 2.0.0 Bye\r\n",
        )
        self.assertTrue(tester.closed)
        self.assertEqual(
            [(m.rcpt_tos, m.content) for m in handler.messages],
            [(["bob@example.com", "carol@example.com"], b".dot\r\nbody\r\n")],
        )

    def test_recipientsCountedAtEndOfData(self) -> None:
        """
        A handler that changes C{envelope.rcpt_tos} in C{handle_DATA} does
        not change how many replies are sent: one per recipient accepted.
        """

        class Handler:
            def handle_DATA(self, server, session, envelope):
                envelope.rcpt_tos.clear()
                return "250 2.0.0 Delivered"

        tester = lmtpTester(Handler())
        startTransaction(self, tester, ["bob@example.com", "carol@example.com"])
        tester.send(b"Hello\r\n.\r\n")
        self.assertEqual(tester.replies(), [(250, "2.0.0 Delivered")] * 2)


class LimitTests(SynchronousTestCase):
    """
    C{max_recipients}, C{hard_error_limit} and exceptions in
    C{handle_RCPT} under LMTP, in memory.
    """

    def test_maxRecipients(self) -> None:
        """
        The RCPT beyond C{max_recipients} gets C{452 4.5.3 Too many
        recipients}; the recipients accepted get their replies after the
        data.
        """
        handler = Recorder()
        tester = lmtpTester(handler, max_recipients=100)
        recipients = [f"r{i}@example.com" for i in range(101)]
        tester.command("LHLO client.example")
        tester.command("MAIL FROM:<alice@example.com>")
        tester.send("".join(f"RCPT TO:<{r}>\r\n" for r in recipients))
        self.assertEqual(
            tester.replies(), [OK] * 100 + [(452, "4.5.3 Too many recipients")]
        )
        tester.send(b"DATA\r\nHello\r\n.\r\n")
        self.assertEqual(tester.replies(), [GO_AHEAD] + [OK] * 100)
        self.assertEqual(handler.messages[0].rcpt_tos, recipients[:100])

    def test_refusedDataCountsOnce(self) -> None:
        """
        A message refused for every recipient gets one reply each, and
        counts as one error towards C{hard_error_limit}.
        """
        refused = (550, "5.7.1 Refused")
        tester = lmtpTester(Recorder("550 5.7.1 Refused"), hard_error_limit=2)
        startTransaction(self, tester, ["bob@example.com", "carol@example.com"])
        tester.send(b"Hello\r\n.\r\n")
        self.assertEqual(tester.replies(), [refused, refused])
        self.assertFalse(tester.closed)
        tester.send(b"DATA\r\n")
        self.assertEqual(
            tester.replies(),
            [
                (503, "5.5.1 Error: need RCPT command"),
                (421, f"4.7.0 {HOSTNAME} Error: too many errors"),
            ],
        )

    def test_partlyDeliveredForgives(self) -> None:
        """
        A message delivered to one recipient and refused for another
        forgives the errors so far (here a recipient refused at RCPT time).
        """
        statuses = ["250 2.1.5 Delivered", "550 5.2.1 Mailbox disabled"]
        tester = lmtpTester(Recorder(statuses), hard_error_limit=2)
        startTransaction(
            self, tester, ["nobody@example.com", "bob@example.com", "carol@example.com"]
        )
        tester.send(b"Hello\r\n.\r\n")
        self.assertEqual(
            tester.replies(),
            [(250, "2.1.5 Delivered"), (550, "5.2.1 Mailbox disabled")],
        )
        self.assertEqual(
            tester.command("RCPT TO:<dave@example.com>"),
            (503, "5.5.1 Error: need MAIL command"),
        )
        self.assertFalse(tester.closed)

    def test_rcptRaises(self) -> None:
        """
        An exception in C{handle_RCPT} answers that RCPT alone; the message
        goes to the others, with one reply each.
        """

        class Handler(Recorder):
            def handle_RCPT(self, server, session, envelope, address, options):
                if address == "bad@example.com":
                    raise ValueError("no")

        handler = Handler()
        tester = lmtpTester(handler)
        tester.command("LHLO client.example")
        tester.send(
            b"MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\n"
            b"RCPT TO:<bad@example.com>\r\nRCPT TO:<carol@example.com>\r\n"
            b"DATA\r\nHello\r\n.\r\n"
        )
        self.assertEqual(tester.replies(), [OK, OK, LOCAL_ERROR, OK, GO_AHEAD, OK, OK])
        self.assertEqual(
            handler.messages[0].rcpt_tos, ["bob@example.com", "carol@example.com"]
        )
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)


class EnhancedStatusCodeTests(SynchronousTestCase):
    """
    Every 2xx, 4xx and 5xx reply but the greeting and the LHLO reply carries
    an enhanced status code (RFC 2034 section 3, RFC 2033 section 5), in
    memory.
    """

    def test_serverReplies(self) -> None:
        """
        The server's own replies get the generic code of their reply code.
        """
        tester = lmtpTester(Recorder())
        tester.command("LHLO client.example")
        for line, expected in [
            ("NOOP", OK),
            ("RSET", OK),
            ("RSET x", (501, "5.5.4 Syntax: RSET")),
            (
                "VRFY bob@example.com",
                (
                    252,
                    "2.5.0 Cannot VRFY user, but will accept message and attempt"
                    " delivery",
                ),
            ),
            ("EXPN staff", (502, "5.5.1 EXPN not implemented")),
            ("XYZZY", (500, '5.5.2 Error: command "XYZZY" not recognized')),
            (
                "HELP XYZZY",
                (
                    504,
                    "5.5.4 Supported commands: " + COMMANDS,
                ),
            ),
            ("RCPT TO:<bob@example.com>", (503, "5.5.1 Error: need MAIL command")),
            (
                "MAIL FROM:<alice@example.com",
                (501, "5.5.4 Syntax: MAIL FROM: <address> [SP <mail-parameters>]"),
            ),
            (
                "MAIL FROM:<alice@example.com> FOO=BAR",
                (555, "5.5.4 MAIL FROM parameters not recognized or not implemented"),
            ),
            (
                "MAIL FROM:<alice@example.com> SIZE=99999999999",
                (552, "5.3.4 Error: message size exceeds fixed maximum message size"),
            ),
            ("MAIL FROM:<alice@example.com>", OK),
            (
                "MAIL FROM:<alice@example.com>",
                (503, "5.5.1 Error: nested MAIL command"),
            ),
            ("DATA", (503, "5.5.1 Error: need RCPT command")),
            ("QUIT", (221, "2.0.0 Bye")),
        ]:
            self.assertEqual(tester.command(line), expected, line)

    def test_hookReplies(self) -> None:
        """
        A hook's reply without an enhanced code gets the generic one of its
        reply code (X.0.0 for a code the server does not know); one with a
        code is sent unchanged.
        """
        replies = iter(
            [
                ("250 Fine", b"250 2.0.0 Fine\r\n"),
                (b"250 Bytes", b"250 2.0.0 Bytes\r\n"),
                ("250 2.1.0 Sender ok", b"250 2.1.0 Sender ok\r\n"),
                ("250 2.1.0", b"250 2.1.0\r\n"),
                ("450 Busy", b"450 4.2.0 Busy\r\n"),
                ("556 Odd", b"556 5.0.0 Odd\r\n"),
                ("250 1.2.3 not a code", b"250 2.0.0 1.2.3 not a code\r\n"),
            ]
        )
        current: list[Any] = []

        class Handler:
            def handle_NOOP(self, server, session, envelope, arg):
                return current[0]

        tester = lmtpTester(Handler())
        for status, wire in replies:
            current[:] = [status]
            tester.transport.clear()
            tester.send(b"NOOP\r\n")
            self.assertEqual(tester.transport.value(), wire, status)

    def test_codeOnly(self) -> None:
        """
        A hook's reply of a bare code (valid in RFC 5321: the text is
        optional) gets the generic enhanced code after a space.
        """

        class Handler:
            def handle_NOOP(self, server, session, envelope, arg):
                return "250"

        tester = lmtpTester(Handler())
        tester.transport.clear()
        tester.send(b"NOOP\r\n")
        # RFC 2034 says the enhanced code is followed by spaces; either form
        # parses.
        self.assertIn(tester.transport.value(), (b"250 2.0.0\r\n", b"250 2.0.0 \r\n"))

    def test_multilineHookReply(self) -> None:
        """
        Every line of a multi-line reply from a hook carries the enhanced
        code, as every line of the server's own replies does.
        """

        class Handler:
            def handle_NOOP(self, server, session, envelope, arg):
                return "250-first line\r\n250 second line"

        tester = lmtpTester(Handler())
        tester.transport.clear()
        tester.send(b"NOOP\r\n")
        self.assertEqual(
            tester.transport.value(),
            b"250-2.0.0 first line\r\n250 2.0.0 second line\r\n",
        )

    def test_noCodeOn354(self) -> None:
        """
        The 354 intermediate reply to DATA has no enhanced code.
        """
        tester = lmtpTester(Recorder())
        startTransaction(self, tester, ["bob@example.com"])
        self.assertTrue(
            tester.transport.value().endswith(
                b"\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
            )
        )

    def test_wholeSession(self) -> None:
        """
        In a whole session every reply line of class 2, 4 or 5 carries an
        enhanced code, except the greeting and the LHLO reply.
        """
        tester = lmtpTester(Recorder(["250 Delivered", "450 Later"]))
        tester.send(
            b"NOOP\r\nLHLO client.example\r\nVRFY bob\r\nMAIL FROM:<a@example.com>\r\n"
            b"RCPT TO:<b@example.com>\r\nRCPT TO:<nobody@example.com>\r\n"
            b"RCPT TO:<c@example.com>\r\nDATA\r\nHi\r\n.\r\nRSET\r\nHELP\r\nQUIT\r\n"
        )
        lines = tester.transport.value().decode("ascii").split("\r\n")
        self.assertEqual(lines[-1], "")
        lines = lines[:-1]
        lhlo = LHLO_REPLY.decode("ascii").split("\r\n")[:-1]
        self.assertEqual(lines[0], GREETING.decode("ascii")[:-2])
        self.assertEqual(lines[2 : 2 + len(lhlo)], lhlo)
        checked = [lines[1]] + lines[2 + len(lhlo) :]
        self.assertEqual(len(checked), 12)
        for line in checked:
            if line.startswith("354 "):
                continue
            self.assertTrue(ENHANCED_LINE.match(line), line)

    def test_timeoutReply(self) -> None:
        """
        The 421 sent to an idle client carries its enhanced code once.
        """
        tester = lmtpTester(Recorder(), timeout=30)
        tester.clock.advance(30)
        self.assertEqual(
            tester.replies(), [(421, f"4.4.2 {HOSTNAME} Error: timeout exceeded")]
        )
        self.assertTrue(tester.closed)


class RequireSTARTTLSTests(SynchronousTestCase):
    """
    LMTP with C{require_starttls=True}: LHLO is allowed before TLS (in
    memory, with a transport that pretends to start TLS).
    """

    def setUp(self) -> None:
        self.handler = Recorder(["250 2.0.0 Bob", "550 5.2.1 Carol disabled"])
        self.tester = tlsTester(
            self,
            self.handler,
            protocol=LMTP,
            tls_context=certificates(self).serverOptions(),
            require_starttls=True,
        )

    def test_allowedBeforeTLS(self) -> None:
        """
        LHLO and NOOP are answered normally before TLS.
        """
        self.assertEqual(self.tester.command("NOOP"), OK)
        reply = self.tester.command("LHLO client.example")
        self.assertEqual(reply.code, 250)
        self.assertIn("STARTTLS", reply.lines)
        self.assertIn("ENHANCEDSTATUSCODES", reply.lines)

    def test_refusedBeforeTLS(self) -> None:
        """
        Transaction commands get 530 with a security enhanced code before
        TLS, even after LHLO.
        """
        self.tester.command("LHLO client.example")
        for line in (
            "MAIL FROM:<alice@example.com>",
            "RCPT TO:<bob@example.com>",
            "DATA",
            "HELO x",
        ):
            self.assertEqual(
                self.tester.command(line),
                (530, "5.7.0 Must issue a STARTTLS command first"),
                line,
            )

    def test_transactionAfterTLS(self) -> None:
        """
        STARTTLS gets 220 with an enhanced code; after the handshake the
        client greets again with LHLO (STARTTLS no longer offered) and gets
        one reply per recipient.
        """
        self.tester.command("LHLO client.example")
        self.assertEqual(
            self.tester.command("STARTTLS"), (220, "2.0.0 Ready to start TLS")
        )
        self.assertEqual(self.tester.transport.startTLSCalls, 1)
        self.tester.server.handshakeCompleted()
        self.assertEqual(
            self.tester.command("MAIL FROM:<alice@example.com>"), SEND_LHLO_FIRST
        )
        reply = self.tester.command("LHLO client.example")
        self.assertNotIn("STARTTLS", reply.lines)
        self.assertEqual(self.tester.command("MAIL FROM:<alice@example.com>"), OK)
        self.assertEqual(self.tester.command("RCPT TO:<bob@example.com>"), OK)
        self.assertEqual(self.tester.command("RCPT TO:<carol@example.com>"), OK)
        self.assertEqual(self.tester.command("DATA"), GO_AHEAD)
        self.tester.send(b"Hi\r\n.\r\n")
        self.assertEqual(
            self.tester.replies(),
            [(250, "2.0.0 Bob"), (550, "5.2.1 Carol disabled")],
        )
        self.assertIsNotNone(self.handler.messages[0].peer)


# Integration tests.


class Server(NamedTuple):
    """
    An LMTP server listening for one test: C{address} is the TCP port or
    the UNIX socket path.
    """

    address: Any
    servers: list[SMTP]


async def listenOn(
    testCase: TestCase, handler: Any, description: str, **options: Any
) -> Server:
    """
    Listen with an LMTP L{SMTPFactory} on a server endpoint description,
    with the global reactor, as L{tests.test_tls.listenOn} does.
    """
    listening = await tlsListenOn(
        testCase, handler, description, protocol=LMTP, **options
    )
    return Server(listening.port, listening.servers)


def unixSocketPath(testCase: TestCase) -> str:
    """
    A path for a UNIX socket in a fresh directory, short enough for the
    108-byte limit of C{sun_path} (trial's own temporary paths may not be).
    """
    directory = tempfile.mkdtemp(prefix="tsmtpd-")
    testCase.addCleanup(shutil.rmtree, directory, True)
    return os.path.join(directory, "lmtp.sock")


def lmtpTransaction(
    client: smtplib.LMTP, sender: str, recipients: list[str], message: bytes
) -> tuple[dict[str, tuple[int, bytes]], list[tuple[int, bytes]]]:
    """
    Send one message with C{smtplib.LMTP}'s commands and read the one reply
    per accepted recipient that follows the data.

    C{smtplib.LMTP.sendmail} cannot be used for several recipients: it reads
    a single reply after the data (CPython issue gh-76984), leaving the
    others unread.

    @return: The refused recipients as C{sendmail} reports them (refused at
        RCPT or after the data), and the replies after the data in order.
    """
    client.ehlo_or_helo_if_needed()
    refused: dict[str, tuple[int, bytes]] = {}
    code, text = client.mail(sender)
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, text, sender)
    accepted = []
    for address in recipients:
        code, text = client.rcpt(address)
        if code == 250:
            accepted.append(address)
        else:
            refused[address] = (code, text)
    replies = [client.data(message)]
    replies.extend(client.getreply() for _ in accepted[1:])
    for address, (code, text) in zip(accepted, replies, strict=True):
        if code != 250:
            refused[address] = (code, text)
    return refused, replies


class SmtplibLMTPTests(TestCase):
    """
    C{smtplib.LMTP}, run in a thread, against an LMTP server listening on
    127.0.0.1 (real TCP, real reactor) and on a UNIX socket.
    """

    timeout = 30

    async def test_refusedAtDataTime(self) -> None:
        """
        A recipient refused by C{handle_DATA}'s list is reported with its own
        reply, like one refused at RCPT time; the others are delivered, and
        the connection stays in step for the next command.
        """
        handler = Recorder(
            ["250 2.1.5 Delivered", "552 5.2.2 Mailbox full", "250 2.1.5 Delivered"]
        )
        server = await listenOn(self, handler, "tcp:0:interface=127.0.0.1")

        def client() -> Any:
            with smtplib.LMTP(
                "127.0.0.1",
                server.address,
                local_hostname="client.example",
                timeout=CLIENT_TIMEOUT,
            ) as c:
                lhlo = c.ehlo()
                result = lmtpTransaction(
                    c,
                    "alice@example.com",
                    [
                        "bob@example.com",
                        "carol@example.com",
                        "nobody@example.com",
                        "dave@example.com",
                    ],
                    b"Subject: hi\r\n\r\nHello\r\n",
                )
                return lhlo, result, c.noop(), c.sock.getsockname()

        lhlo, (refused, replies), noop, local = await deferToThread(client)
        self.assertEqual(lhlo[0], 250)
        self.assertIn(b"ENHANCEDSTATUSCODES", lhlo[1].split(b"\n"))
        self.assertEqual(
            refused,
            {
                "carol@example.com": (552, b"5.2.2 Mailbox full"),
                "nobody@example.com": (550, b"5.1.1 No such user"),
            },
        )
        self.assertEqual(
            replies,
            [
                (250, b"2.1.5 Delivered"),
                (552, b"5.2.2 Mailbox full"),
                (250, b"2.1.5 Delivered"),
            ],
        )
        self.assertEqual(noop, (250, b"2.0.0 OK"))
        self.assertEqual(
            handler.messages,
            [
                Received(
                    "alice@example.com",
                    ["bob@example.com", "carol@example.com", "dave@example.com"],
                    b"Subject: hi\r\n\r\nHello\r\n",
                    tuple(local),
                    "client.example",
                )
            ],
        )

    async def test_sendmailOneRecipient(self) -> None:
        """
        C{smtplib.LMTP.sendmail} to one recipient works (LHLO, one reply
        after the data), twice on one connection.
        """
        handler = Recorder()
        server = await listenOn(self, handler, "tcp:0:interface=127.0.0.1")

        def client() -> Any:
            with smtplib.LMTP(
                "127.0.0.1",
                server.address,
                local_hostname="client.example",
                timeout=CLIENT_TIMEOUT,
            ) as c:
                return [
                    c.sendmail("alice@example.com", [f"r{i}@example.com"], f"n{i}\r\n")
                    for i in range(2)
                ]

        self.assertEqual(await deferToThread(client), [{}, {}])
        self.assertEqual(
            [(m.rcpt_tos, m.content) for m in handler.messages],
            [(["r0@example.com"], b"n0\r\n"), (["r1@example.com"], b"n1\r\n")],
        )

    async def test_unixSocket(self) -> None:
        """
        LMTP over a UNIX socket (C{unix:} endpoint): C{smtplib.LMTP} given
        the path delivers to two recipients and reads both replies; the
        handler sees the message and a session whose peer is C{""}.
        """
        handler = Recorder(["250 2.1.5 Bob", "450 4.2.1 Carol later"])
        path = unixSocketPath(self)
        server = await listenOn(self, handler, f"unix:{path}")
        self.assertEqual(server.address, path)

        def client() -> Any:
            with smtplib.LMTP(
                path, local_hostname="client.example", timeout=CLIENT_TIMEOUT
            ) as c:
                self.assertEqual(c.sock.family, socket.AF_UNIX)
                return lmtpTransaction(
                    c,
                    "alice@example.com",
                    ["bob@example.com", "carol@example.com"],
                    b"Hello\r\n",
                )

        refused, replies = await deferToThread(client)
        self.assertEqual(refused, {"carol@example.com": (450, b"4.2.1 Carol later")})
        self.assertEqual(replies, [(250, b"2.1.5 Bob"), (450, b"4.2.1 Carol later")])
        [message] = handler.messages
        self.assertEqual(
            message[:3],
            (
                "alice@example.com",
                ["bob@example.com", "carol@example.com"],
                b"Hello\r\n",
            ),
        )
        # The client's end of a UNIX connection is unnamed: its address is
        # "" (as aiosmtpd's peername is).
        self.assertEqual(message.peer, "")
        self.assertEqual(message.host_name, "client.example")


class SmtpSourceTests(TestCase):
    """
    Postfix's C{smtp-source -L} (Debian package C{postfix}) against an LMTP
    server on 127.0.0.1 (real TCP) and on a UNIX socket, as a subprocess.
    """

    timeout = 60

    def smtpSource(self) -> str:
        """
        The path of C{smtp-source}.
        """
        return commandLineTool("smtp-source", "postfix")

    def assertDelivered(self, result: Any, handler: Recorder, count: int) -> None:
        """
        Check that C{smtp-source} exited 0 and that the handler got C{count}
        messages of two recipients each, with the envelope given.
        """
        self.assertEqual(
            result.returncode,
            0,
            f"smtp-source failed: {result.stdout!r} {result.stderr!r}",
        )
        self.assertEqual(len(handler.messages), count)
        for message in handler.messages:
            self.assertEqual(message.mail_from, "alice@example.com")
            # smtp-source makes the second recipient's name by prefixing a
            # number to the one given.
            self.assertEqual(
                sorted(message.rcpt_tos), ["2bob@example.com", "bob@example.com"]
            )
            self.assertEqual(message.host_name, "client.example")
            self.assertTrue(
                message.content.startswith(
                    b"From: <alice@example.com>\r\nTo: <bob@example.com>\r\n"
                ),
                message.content[:200],
            )
            self.assertTrue(message.content.endswith(b"\r\n"))

    async def test_tcp(self) -> None:
        """
        Three messages to two recipients each, one connection per message:
        smtp-source exits 0 and the handler gets all three.
        """
        tool = self.smtpSource()
        handler = Recorder()
        server = await listenOn(self, handler, "tcp:0:interface=127.0.0.1")
        result = await runTool(
            [
                tool,
                "-L",
                "-m",
                "3",
                "-r",
                "2",
                "-s",
                "1",
                "-M",
                "client.example",
                "-f",
                "alice@example.com",
                "-t",
                "bob@example.com",
                f"127.0.0.1:{server.address}",
            ]
        )
        self.assertDelivered(result, handler, 3)
        self.assertEqual(len(server.servers), 3)

    async def test_tcpOneConnection(self) -> None:
        """
        With C{-d}, smtp-source sends its messages over one connection,
        which only works if exactly one reply per recipient follows each
        message; a list of statuses from the handler is fine with it.
        """
        tool = self.smtpSource()
        handler = Recorder(["250 2.1.5 One", "250 2.1.5 Two"])
        server = await listenOn(self, handler, "tcp:0:interface=127.0.0.1")
        result = await runTool(
            [
                tool,
                "-L",
                "-d",
                "-m",
                "4",
                "-r",
                "2",
                "-s",
                "1",
                "-l",
                "2000",
                "-M",
                "client.example",
                "-f",
                "alice@example.com",
                "-t",
                "bob@example.com",
                f"127.0.0.1:{server.address}",
            ]
        )
        self.assertDelivered(result, handler, 4)
        self.assertEqual(len(server.servers), 1)

    async def test_refusedAfterData(self) -> None:
        """
        smtp-source reads the per-recipient replies: a refusal of the second
        recipient after the data makes it report an error and exit non-zero.
        """
        tool = self.smtpSource()
        handler = Recorder(["250 2.1.5 One", "550 5.2.1 Mailbox disabled"])
        server = await listenOn(self, handler, "tcp:0:interface=127.0.0.1")
        result = await runTool(
            [
                tool,
                "-L",
                "-m",
                "1",
                "-r",
                "2",
                "-M",
                "client.example",
                "-f",
                "alice@example.com",
                "-t",
                "bob@example.com",
                f"127.0.0.1:{server.address}",
            ]
        )
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(b"550 5.2.1 Mailbox disabled", result.stderr)
        self.assertEqual(len(handler.messages), 1)

    async def test_unixSocket(self) -> None:
        """
        smtp-source over a UNIX socket (C{unix:PATH}) delivers its messages.
        """
        tool = self.smtpSource()
        handler = Recorder()
        path = unixSocketPath(self)
        await listenOn(self, handler, f"unix:{path}")
        result = await runTool(
            [
                tool,
                "-L",
                "-m",
                "2",
                "-r",
                "2",
                "-M",
                "client.example",
                "-f",
                "alice@example.com",
                "-t",
                "bob@example.com",
                f"unix:{path}",
            ]
        )
        self.assertDelivered(result, handler, 2)
