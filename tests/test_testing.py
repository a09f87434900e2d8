"""
Tests for L{twisted_smtpd.testing}, the public in-memory test double.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from twisted_smtpd import SMTP, syntax, testing
from twisted_smtpd.testing import Reply, SMTPTester

OK = Reply(250, "OK")


class Collector:
    """
    A handler that keeps the envelopes it is given.
    """

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)


class EchoSMTP(SMTP):
    """
    A server subclass with one extra command.
    """

    @syntax("XECHO text")
    def smtp_XECHO(self, arg):
        self.push(f"250 {arg}")


class ReplyTests(SynchronousTestCase):
    """
    Tests for L{Reply}.
    """

    def test_tuple(self) -> None:
        """
        A L{Reply} compares equal to the C{(code, text)} tuple.
        """
        self.assertEqual(Reply(250, "OK"), (250, "OK"))
        self.assertNotEqual(Reply(250, "OK"), (251, "OK"))
        code, text = Reply(221, "Bye")
        self.assertEqual((code, text), (221, "Bye"))

    def test_lines(self) -> None:
        """
        L{Reply.lines} splits a multi-line reply's text.
        """
        self.assertEqual(Reply(250, "a\nb\nc").lines, ["a", "b", "c"])
        self.assertEqual(Reply(250, "OK").lines, ["OK"])

    def test_all(self) -> None:
        """
        The module exports L{Reply} and L{SMTPTester}.
        """
        self.assertEqual(sorted(testing.__all__), ["Reply", "SMTPTester"])


class SMTPTesterSetupTests(SynchronousTestCase):
    """
    How L{SMTPTester} builds and connects its server.
    """

    def test_greeting(self) -> None:
        """
        C{greeting} is the server's 220 reply, consumed from C{replies}.
        """
        tester = SMTPTester(Collector(), hostname="mx.example", ident="Test 1")
        self.assertEqual(tester.greeting, Reply(220, "mx.example Test 1"))
        self.assertEqual(tester.replies(), [])

    def test_objects(self) -> None:
        """
        C{server} is an L{SMTP} connected to C{transport}, a
        L{StringTransport}.
        """
        handler = Collector()
        tester = SMTPTester(handler, hostname="mx.example")
        self.assertIsInstance(tester.server, SMTP)
        self.assertIsInstance(tester.transport, StringTransport)
        self.assertIs(tester.server.transport, tester.transport)
        self.assertIs(tester.server.event_handler, handler)

    def test_defaultPeer(self) -> None:
        """
        By default the server sees the client as C{127.0.0.1:42424}.
        """
        tester = SMTPTester(Collector(), hostname="mx.example")
        self.assertEqual(tester.server.session.peer, ("127.0.0.1", 42424))

    def test_peer(self) -> None:
        """
        C{peer} sets the client address the server sees.
        """
        tester = SMTPTester(Collector(), hostname="mx.example", peer=("10.1.2.3", 25))
        self.assertEqual(tester.server.session.peer, ("10.1.2.3", 25))

    def test_defaultClock(self) -> None:
        """
        By default the server's timers run on a new L{Clock}, C{clock}.
        """
        tester = SMTPTester(Collector(), hostname="mx.example", timeout=5)
        self.assertIsInstance(tester.clock, Clock)
        tester.clock.advance(5)
        self.assertEqual(
            tester.replies(), [Reply(421, "4.4.2 mx.example Error: timeout exceeded")]
        )
        self.assertTrue(tester.closed)

    def test_reactor(self) -> None:
        """
        A given C{reactor} is used for the timers and exposed as C{clock}.
        """
        clock = Clock()
        tester = SMTPTester(Collector(), hostname="mx.example", reactor=clock)
        self.assertIs(tester.clock, clock)
        clock.advance(300)
        self.assertTrue(tester.closed)

    def test_options(self) -> None:
        """
        Other keyword arguments are server options.
        """
        tester = SMTPTester(
            Collector(), hostname="mx.example", data_size_limit=1234, decode_data=True
        )
        self.assertEqual(
            tester.command("EHLO c.example").lines,
            ["mx.example", "SIZE 1234", "DSN", "CHUNKING", "PIPELINING", "HELP"],
        )

    def test_badOption(self) -> None:
        """
        An unknown option raises L{TypeError}, as for the factory.
        """
        self.assertRaises(TypeError, SMTPTester, Collector(), bogus=True)

    def test_protocol(self) -> None:
        """
        C{protocol} selects the server class.
        """
        tester = SMTPTester(Collector(), hostname="mx.example", protocol=EchoSMTP)
        self.assertIsInstance(tester.server, EchoSMTP)
        self.assertEqual(tester.command("XECHO hello"), Reply(250, "hello"))


class SMTPTesterCommandTests(SynchronousTestCase):
    """
    L{SMTPTester.command}, L{SMTPTester.send} and L{SMTPTester.replies}.
    """

    def setUp(self) -> None:
        self.tester = SMTPTester(Collector(), hostname="mx.example")

    def test_command(self) -> None:
        """
        C{command} sends one line with CRLF and returns its one reply.
        """
        self.assertEqual(self.tester.command("NOOP"), OK)
        self.assertTrue(self.tester.transport.value().endswith(b"\r\n250 OK\r\n"))

    def test_commandMultiline(self) -> None:
        """
        A multi-line reply comes back as one L{Reply}, its lines joined.
        """
        reply = self.tester.command("EHLO c.example")
        self.assertEqual(reply.code, 250)
        self.assertEqual(
            reply.text,
            "mx.example\nSIZE 33554432\n8BITMIME\nDSN\nCHUNKING\nBINARYMIME\nPIPELINING"
            "\nHELP",
        )

    def test_commandTwoReplies(self) -> None:
        """
        C{command} raises L{AssertionError} when the line got two replies.
        """
        error = self.assertRaises(AssertionError, self.tester.command, "NOOP\r\nRSET")
        self.assertIn("not one reply", str(error))

    def test_commandNoReplyYet(self) -> None:
        """
        C{command} raises L{AssertionError} while a hook is pending; the
        reply shows up in C{replies} once the hook is done.
        """
        gate = Deferred()

        class Handler:
            def handle_NOOP(self, server, session, envelope, arg):
                return gate

        tester = SMTPTester(Handler(), hostname="mx.example")
        self.assertRaises(AssertionError, tester.command, "NOOP")
        gate.callback("250 Later")
        self.assertEqual(tester.replies(), [Reply(250, "Later")])

    def test_sendBytes(self) -> None:
        """
        C{send} passes bytes unchanged; C{replies} returns all complete
        replies since the last call, then nothing.
        """
        self.tester.send(b"NOOP\r\nHELO c.example\r\n")
        self.assertEqual(self.tester.replies(), [OK, Reply(250, "mx.example")])
        self.assertEqual(self.tester.replies(), [])

    def test_sendStr(self) -> None:
        """
        C{send} encodes a C{str} as UTF-8.
        """
        seen = []

        class Handler:
            def handle_MAIL(self, server, session, envelope, address, options):
                seen.append(address)

        tester = SMTPTester(Handler(), hostname="mx.example", enable_SMTPUTF8=True)
        tester.command("EHLO c.example")
        tester.send("MAIL FROM:<jürgen@exämple.de> SMTPUTF8\r\n")
        self.assertEqual(tester.replies(), [OK])
        self.assertEqual(seen, ["jürgen@exämple.de"])

    def test_repliesWaitForCompleteReply(self) -> None:
        """
        C{replies} returns a multi-line reply only once its last line is
        there, and a line only once its CRLF is there.
        """
        transport = self.tester.transport
        transport.write(b"250-first\r\n")
        self.assertEqual(self.tester.replies(), [])
        transport.write(b"250-second\r\n250 la")
        self.assertEqual(self.tester.replies(), [])
        transport.write(b"st\r\n221 Bye\r\n")
        self.assertEqual(
            self.tester.replies(),
            [Reply(250, "first\nsecond\nlast"), Reply(221, "Bye")],
        )

    def test_closed(self) -> None:
        """
        C{closed} tells whether the server closed the connection.
        """
        self.assertFalse(self.tester.closed)
        self.tester.command("QUIT")
        self.assertTrue(self.tester.closed)


class SendmailTests(SynchronousTestCase):
    """
    L{SMTPTester.sendmail}.
    """

    def setUp(self) -> None:
        self.handler = Collector()
        self.tester = SMTPTester(self.handler, hostname="mx.example")

    def test_transaction(self) -> None:
        """
        C{sendmail} greets with EHLO, runs MAIL, RCPT for each recipient and
        DATA, and returns one reply per step, the last for the data.
        """
        replies = self.tester.sendmail(
            "a@example.com", ["b@example.com", "c@example.com"], b"Hi\r\n"
        )
        self.assertEqual([r.code for r in replies], [250, 250, 250, 250, 354, 250])
        self.assertEqual(replies[-1], OK)
        [envelope] = self.handler.envelopes
        self.assertEqual(envelope.mail_from, "a@example.com")
        self.assertEqual(envelope.rcpt_tos, ["b@example.com", "c@example.com"])
        self.assertEqual(envelope.content, b"Hi\r\n")
        self.assertEqual(self.tester.server.session.host_name, "tester.example")

    def test_dotStuffing(self) -> None:
        """
        C{sendmail} dot-stuffs the message, so that the handler gets it
        unchanged, lone dots and leading dots included.
        """
        message = b".first\r\nmiddle\r\n.\r\n..two\r\nlast\r\n"
        self.tester.sendmail("a@example.com", ["b@example.com"], message)
        self.assertEqual(self.handler.envelopes[0].content, message)

    def test_finalCrlfAdded(self) -> None:
        """
        A message without a final CRLF gets one.
        """
        self.tester.sendmail("a@example.com", ["b@example.com"], b"no newline")
        self.assertEqual(self.handler.envelopes[0].content, b"no newline\r\n")

    def test_strMessage(self) -> None:
        """
        A C{str} message is sent as UTF-8.
        """
        self.tester.sendmail("a@example.com", ["b@example.com"], "Grüße\r\n")
        self.assertEqual(self.handler.envelopes[0].content, "Grüße\r\n".encode())

    def test_heloName(self) -> None:
        """
        C{helo} names the client in EHLO.
        """
        self.tester.sendmail(
            "a@example.com", ["b@example.com"], b"x", helo="me.example"
        )
        self.assertEqual(self.tester.server.session.host_name, "me.example")

    def test_noHelo(self) -> None:
        """
        With C{helo=None} no EHLO is sent: without an earlier greeting, MAIL
        is refused and nothing more is sent.
        """
        replies = self.tester.sendmail(
            "a@example.com", ["b@example.com"], b"x", helo=None
        )
        self.assertEqual(replies, [Reply(503, "Error: send HELO first")])
        self.assertEqual(self.handler.envelopes, [])

    def test_noHeloAfterGreeting(self) -> None:
        """
        With C{helo=None} after the test greeted, the transaction runs
        without EHLO.
        """
        self.tester.command("HELO c.example")
        replies = self.tester.sendmail(
            "a@example.com", ["b@example.com"], b"x", helo=None
        )
        self.assertEqual([r.code for r in replies], [250, 250, 354, 250])
        self.assertEqual(self.tester.server.session.host_name, "c.example")

    def test_stopsAtRefusal(self) -> None:
        """
        C{sendmail} stops at the first refused command and returns the
        replies so far.
        """

        class Handler(Collector):
            def handle_RCPT(self, server, session, envelope, address, options):
                if address.startswith("bad"):
                    return "550 5.1.1 Unknown user"

        handler = Handler()
        tester = SMTPTester(handler, hostname="mx.example")
        replies = tester.sendmail(
            "a@example.com", ["b@example.com", "bad@example.com", "c@example.com"], b"x"
        )
        self.assertEqual(
            replies,
            [
                replies[0],
                OK,
                OK,
                Reply(550, "5.1.1 Unknown user"),
            ],
        )
        self.assertEqual(replies[0].code, 250)
        self.assertEqual(handler.envelopes, [])
        self.assertEqual(tester.server.envelope.rcpt_tos, ["b@example.com"])

    def test_docstringExample(self) -> None:
        """
        The example of the module docstring works as written.
        """
        tester = SMTPTester(Collector(), hostname="mx.example")
        self.assertEqual(tester.command("EHLO client.example").code, 250)
        replies = tester.sendmail("a@example.com", ["b@example.com"], b"Hi\r\n")
        self.assertEqual(replies[-1], (250, "OK"))
