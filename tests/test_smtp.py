"""
Tests for L{twisted_smtpd._smtp}: the dispatch of command lines (unknown
commands, bare CR and LF, the length of command lines) and subclasses of
L{SMTP} that add or replace commands, driven in memory. No sockets, no real
time.
"""

from __future__ import annotations

import asyncio
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater

from tests._protocolsupport import (
    EHLO_LINES,
    GO_AHEAD,
    HELP_LIST,
    HOST,
    OK,
    Collector,
    PingSMTP,
    ProtocolTestCase,
    connect,
    parseReplies,
)
from twisted_smtpd import LMTP, SMTP, Envelope, Session, SMTPFactory, syntax
from twisted_smtpd.testing import Reply

TOO_LONG = Reply(500, "Command line too long")


class UnknownCommandTests(ProtocolTestCase):
    """
    Commands the server does not know.
    """

    def test_unknownVerb(self) -> None:
        """
        An unknown verb gets C{500 Error: command "XYZ" not recognized},
        upper-cased; so does an extension's verb that is not offered.
        """
        tester = self.makeTester(chunking=False)
        self.assertEqual(
            tester.command("XYZ"), Reply(500, 'Error: command "XYZ" not recognized')
        )
        self.assertEqual(
            tester.command("bdat 10 LAST"),
            Reply(500, 'Error: command "BDAT" not recognized'),
        )
        self.assertOpen(tester)

    def test_emptyLine(self) -> None:
        """
        An empty line gets C{500 Error: bad syntax}.
        """
        tester = self.makeTester()
        self.assertEqual(tester.command(""), Reply(500, "Error: bad syntax"))

    def test_fifthUnknownCloses(self) -> None:
        """
        The fifth unknown command of a connection gets 421 and the
        connection is closed; the first four get 500.
        """
        tester = self.makeTester()
        for i in range(4):
            self.assertEqual(tester.command(f"XCMD{i}").code, 500)
            tester.command("NOOP")
        self.assertFalse(tester.closed)
        reply = tester.command("XCMD5")
        self.assertEqual(reply.code, 421)
        self.assertIn("Too many unrecognized commands", reply.text)
        self.assertTrue(tester.closed)

    def test_longVerbShortened(self) -> None:
        """
        A long unknown verb is echoed shortened, so that the reply line stays
        within RFC 5321's 512 octets.
        """
        tester = self.makeTester()
        verb = "A" * 500
        self.assertEqual(
            tester.command(verb),
            Reply(500, f'Error: command "{"A" * 64}..." not recognized'),
        )
        self.assertLessEqual(len(tester.transport.value().split(b"\r\n")[1]), 510)

    def test_badSyntaxCounts(self) -> None:
        """
        Lines that are no command at all (HTTP request lines and headers
        sent to the wrong port) count towards the limit too; empty lines do
        not.
        """
        tester = self.makeTester()
        for line in ["GET / HTTP/1.1", "Host: mx.example", "", "", "User-Agent: x"]:
            self.assertEqual(tester.command(line).code, 500, line)
        self.assertEqual(tester.command("Accept: */*").code, 500)
        self.assertFalse(tester.closed)
        self.assertEqual(
            tester.command("Connection: close"),
            Reply(421, "4.7.0 Too many unrecognized commands, goodbye."),
        )
        self.assertTrue(tester.closed)

    def test_unknownPipelinedAfterLimit(self) -> None:
        """
        Nothing pipelined after the closing 421 is answered.
        """
        tester = self.makeTester(max_unknown_commands=2)
        tester.send(b"XA\r\nXB\r\nNOOP\r\n")
        replies = tester.replies()
        self.assertEqual([r.code for r in replies], [500, 421])
        self.assertTrue(tester.closed)

    def test_maxUnknownCommandsOption(self) -> None:
        """
        C{max_unknown_commands} sets the limit.
        """
        tester = self.makeTester(max_unknown_commands=1)
        self.assertEqual(tester.command("XYZ").code, 421)
        self.assertTrue(tester.closed)

    def test_perConnection(self) -> None:
        """
        Unknown commands are counted per connection.
        """
        factory = SMTPFactory(
            Collector(), reactor=Clock(), hostname=HOST, max_unknown_commands=2
        )
        first, firstTransport = connect(factory)
        first.dataReceived(b"XA\r\n")
        second, secondTransport = connect(factory)
        second.dataReceived(b"XB\r\n")
        self.assertEqual(
            parseReplies(secondTransport.value())[1].code, 500, secondTransport.value()
        )
        self.assertFalse(secondTransport.disconnecting)
        first.dataReceived(b"XC\r\n")
        self.assertEqual(parseReplies(firstTransport.value())[-1].code, 421)
        self.assertTrue(firstTransport.disconnecting)
        self.assertFalse(secondTransport.disconnecting)


class CommandLengthTests(ProtocolTestCase):
    """
    Limits on the length of command lines.
    """

    def mailLine(self, length: int) -> str:
        """
        Build a valid C{MAIL FROM} line of exactly C{length} characters.
        """
        head, tail = "MAIL FROM:<", "@example.com>"
        line = head + "a" * (length - len(head) - len(tail)) + tail
        self.assertEqual(len(line), length)
        return line

    def test_512Accepted(self) -> None:
        """
        A command of 512 characters (without CRLF) is accepted.
        """
        tester = self.makeTester()
        self.assertEqual(tester.command("NOOP " + "x" * 507), OK)

    def test_513Refused(self) -> None:
        """
        A command of 513 characters gets C{500 Command line too long} and is
        not executed.
        """
        tester = self.makeTester()
        self.assertEqual(tester.command("QUIT " + "x" * 508), TOO_LONG)
        self.assertOpen(tester)

    def test_commandSizeLimitOption(self) -> None:
        """
        C{command_size_limit} sets the limit.
        """
        tester = self.makeTester(command_size_limit=100)
        self.assertEqual(tester.command("NOOP " + "x" * 95), OK)
        self.assertEqual(tester.command("NOOP " + "x" * 96), TOO_LONG)

    def test_mailAfterHelo(self) -> None:
        """
        After HELO, MAIL has the plain limit.
        """
        tester = self.ready(greet="HELO")
        self.assertEqual(tester.command(self.mailLine(512)), OK)
        tester.command("RSET")
        self.assertEqual(tester.command(self.mailLine(513)), TOO_LONG)
        self.assertIsNone(tester.server.envelope.mail_from)

    def test_mailAfterEhloWithSize(self) -> None:
        """
        After EHLO with SIZE offered (and DSN not, whose room
        L{tests.test_dsn} shows), MAIL may be 26 characters longer.
        """
        tester = self.ready(dsn=False)
        self.assertEqual(tester.command(self.mailLine(538)), OK)
        tester.command("RSET")
        self.assertEqual(tester.command(self.mailLine(539)), TOO_LONG)
        self.assertIsNone(tester.server.envelope.mail_from)

    def test_mailAfterEhloWithSmtputf8(self) -> None:
        """
        With SMTPUTF8 enabled as well, MAIL may be 36 characters longer.
        """
        tester = self.ready(enable_SMTPUTF8=True, dsn=False)
        self.assertEqual(tester.command(self.mailLine(548)), OK)
        tester.command("RSET")
        self.assertEqual(tester.command(self.mailLine(549)), TOO_LONG)

    def test_mailAfterEhloWithoutSize(self) -> None:
        """
        Without a size limit (nor DSN), EHLO gives MAIL no extra length.
        """
        tester = self.ready(data_size_limit=None, dsn=False)
        self.assertEqual(tester.command(self.mailLine(512)), OK)
        tester.command("RSET")
        self.assertEqual(tester.command(self.mailLine(513)), TOO_LONG)

    def test_otherVerbsAfterEhlo(self) -> None:
        """
        The extra length of SIZE is for MAIL only.
        """
        tester = self.ready(dsn=False)
        tester.command("MAIL FROM:<a@example.com>")
        rcpt = (
            "RCPT TO:<" + "b" * (513 - len("RCPT TO:<@example.com>")) + "@example.com>"
        )
        self.assertEqual(len(rcpt), 513)
        self.assertEqual(tester.command(rcpt), TOO_LONG)
        self.assertEqual(tester.command("NOOP " + "x" * 508), TOO_LONG)

    def test_limitDoesNotGrow(self) -> None:
        """
        Repeating EHLO does not raise the MAIL limit further.
        """
        tester = self.makeTester(dsn=False)
        for _ in range(10):
            tester.command("EHLO client.example")
        self.assertEqual(tester.command(self.mailLine(539)), TOO_LONG)
        self.assertEqual(tester.command(self.mailLine(538)), OK)

    def test_connectionsIndependent(self) -> None:
        """
        EHLO on one connection does not raise the limit of another, and a
        new connection does not lower the limit of an existing one.
        """
        factory = SMTPFactory(Collector(), reactor=Clock(), hostname=HOST)
        first, firstTransport = connect(factory)
        first.dataReceived(b"EHLO one.example\r\n")
        second, secondTransport = connect(factory)
        second.dataReceived(b"HELO two.example\r\n")
        second.dataReceived(self.mailLine(513).encode() + b"\r\n")
        self.assertEqual(parseReplies(secondTransport.value())[-1], TOO_LONG)
        connect(factory)
        first.dataReceived(self.mailLine(538).encode() + b"\r\n")
        self.assertEqual(parseReplies(firstTransport.value())[-1], OK)

    def test_overlongLine(self) -> None:
        """
        A line longer than C{line_length_limit} gets one C{500 Command line
        too long} and the connection stays usable.
        """
        tester = self.makeTester()
        tester.send(b"NOOP " + b"x" * 2000 + b"\r\n")
        self.assertEqual(tester.replies(), [TOO_LONG])
        self.assertOpen(tester)

    def test_overlongLineNotExecuted(self) -> None:
        """
        Nothing of an overlong line is executed, even what looks like
        commands after bare CRs, and what is pipelined after it is answered.
        """
        tester = self.makeTester()
        line = b"QUIT\r" + b"x" * 1200 + b"\rQUIT\rRSET\r" + b"y" * 300
        tester.send(line + b"\r\nNOOP\r\nHELP QUIT\r\n")
        self.assertEqual(tester.replies(), [TOO_LONG, OK, Reply(214, "Syntax: QUIT")])
        self.assertFalse(tester.closed)

    def test_overlongLineInChunks(self) -> None:
        """
        An overlong line delivered in small chunks gets one 500 once its LF
        arrives, nothing of it is executed, and the commands after it are
        answered.
        """
        tester = self.makeTester()
        data = b"QUIT " + b"z" * 1500 + b"\rQUIT\r" + b"w" * 100
        data += b"\r\nNOOP\r\nRSET\r\n"
        for i in range(0, len(data), 7):
            tester.send(data[i : i + 7])
        self.assertEqual(tester.replies(), [TOO_LONG, OK, OK])
        self.assertFalse(tester.closed)

    def test_overlongLineNoReplyBeforeEnd(self) -> None:
        """
        While an overlong line goes on, nothing is answered.
        """
        tester = self.makeTester()
        for _ in range(30):
            tester.send(b"x" * 100)
        self.assertEqual(tester.replies(), [])
        tester.send(b"\r\nNOOP\r\n")
        self.assertEqual(tester.replies(), [TOO_LONG, OK])

    def test_partialCommand(self) -> None:
        """
        A command line split across several reads is executed once it is
        complete.
        """
        tester = self.makeTester()
        tester.send(b"NO")
        self.assertEqual(tester.replies(), [])
        tester.send(b"OP")
        tester.send(b"\r")
        self.assertEqual(tester.replies(), [])
        tester.send(b"\n")
        self.assertEqual(tester.replies(), [OK])

    def test_commandByteByByte(self) -> None:
        """
        A transaction sent one byte at a time works.
        """
        handler = Collector()
        tester = self.makeTester(handler)
        data = (
            b"EHLO c.example\r\nMAIL FROM:<a@example.com>\r\n"
            b"RCPT TO:<b@example.com>\r\nDATA\r\nHello\r\n.\r\nQUIT\r\n"
        )
        for i in range(len(data)):
            tester.send(data[i : i + 1])
        self.assertEqual(
            [r.code for r in tester.replies()], [250, 250, 250, 354, 250, 221]
        )
        self.assertEqual(handler.messages[0][2], b"Hello\r\n")


class NewlineTests(ProtocolTestCase):
    """
    Bare LF and bare CR in command lines.
    """

    def test_bareLfDoesNotEndLine(self) -> None:
        """
        A bare LF does not end a command line (RFC 5321 section 2.3.8):
        C{NOOP<LF>NOOP<CRLF>} is one line and gets exactly one reply.
        """
        tester = self.makeTester()
        tester.send(b"NOOP\n")
        self.assertEqual(tester.replies(), [])
        tester.send(b"NOOP\r\n")
        self.assertEqual(
            tester.transport.value().split(b"\r\n", 1)[1],
            b"500 5.5.2 Error: bare LF received\r\n",
        )

    def test_bareLfNotExecuted(self) -> None:
        """
        No part of a line holding a bare LF is executed.
        """
        tester = self.makeTester()
        tester.send(b"QUIT\nNOOP\r\n")
        [reply] = tester.replies()
        self.assertEqual(reply.code, 500)
        self.assertOpen(tester)

    def test_bareLfRsetKeepsTransaction(self) -> None:
        """
        RSET with a bare LF in its line does not reset the transaction.
        """
        tester = self.ready()
        tester.command("MAIL FROM:<a@example.com>")
        tester.send(b"RSET\nRSET\r\n")
        self.assertEqual([r.code for r in tester.replies()], [500])
        self.assertEqual(tester.server.envelope.mail_from, "a@example.com")

    def test_bareLfThenCrlf(self) -> None:
        """
        After a line with a bare LF, the next CRLF line is answered
        normally.
        """
        tester = self.makeTester()
        tester.send(b"HELO c.example\nNOOP\r\nNOOP\r\n")
        replies = tester.replies()
        self.assertEqual([r.code for r in replies], [500, 250])
        self.assertIsNone(tester.server.session.host_name)

    def test_bareCr(self) -> None:
        """
        A bare CR inside a command gets 500, and no part of the line is
        executed.
        """
        tester = self.makeTester()
        tester.send(b"QUIT\rNOOP\r\n")
        [reply] = tester.replies()
        self.assertEqual(reply.code, 500)
        self.assertOpen(tester)

    def test_doubleCr(self) -> None:
        """
        A line ending in CR CR LF is refused with 500.
        """
        tester = self.makeTester()
        tester.send(b"QUIT\r\r\n")
        self.assertEqual(tester.replies()[0].code, 500)
        self.assertFalse(tester.closed)


class SubclassTests(ProtocolTestCase):
    """
    Adding commands by subclassing L{SMTP}.
    """

    def test_extraCommand(self) -> None:
        """
        A subclass's C{smtp_PING} answers PING.
        """
        tester = self.makeTester(protocol=PingSMTP)
        self.assertIsInstance(tester.server, PingSMTP)
        self.assertEqual(tester.command("PING"), Reply(259, "Pong"))
        self.assertEqual(tester.command("ping with argument"), Reply(259, "Pong"))

    def test_helpListsExtra(self) -> None:
        """
        HELP lists the subclass's command, sorted with the others.
        """
        tester = self.makeTester(protocol=PingSMTP)
        self.assertEqual(
            tester.command("HELP"),
            Reply(
                214,
                "Supported commands: BDAT DATA EHLO HELO HELP MAIL NOOP PING QUIT"
                " RCPT RSET VRFY",
            ),
        )

    def test_helpExtraSyntax(self) -> None:
        """
        HELP PING gives the text of C{@syntax}.
        """
        tester = self.makeTester(protocol=PingSMTP)
        self.assertEqual(
            tester.command("HELP PING"), Reply(214, "Syntax: PING [ignored]")
        )

    def test_withoutSyntaxNotListed(self) -> None:
        """
        A command without C{@syntax} works but is not listed by HELP.
        """

        class Hidden(SMTP):
            def smtp_XHIDDEN(self, arg):
                self.push("250 hidden " + (arg or "-"))

        tester = self.makeTester(protocol=Hidden)
        self.assertEqual(tester.command("XHIDDEN a b"), Reply(250, "hidden a b"))
        self.assertEqual(tester.command("HELP"), Reply(214, HELP_LIST))

    def test_syntaxWhen(self) -> None:
        """
        C{@syntax(when=...)} lists the command only while that attribute is
        true.
        """

        class Conditional(SMTP):
            xtest_enabled = False

            @syntax("XTEST", when="xtest_enabled")
            def smtp_XTEST(self, arg):
                self.push("250 tested")

        tester = self.makeTester(protocol=Conditional)
        self.assertNotIn("XTEST", tester.command("HELP").text)
        tester.server.xtest_enabled = True
        self.assertIn(" XTEST", tester.command("HELP").text)

    def test_overrideCommand(self) -> None:
        """
        A subclass may replace a built-in command.
        """

        class Quiet(SMTP):
            def smtp_NOOP(self, arg):
                self.push("250 2.0.0 shh")

        tester = self.makeTester(protocol=Quiet)
        self.assertEqual(tester.command("NOOP"), Reply(250, "2.0.0 shh"))

    def test_createEnvelope(self) -> None:
        """
        C{_create_envelope} and C{_create_session} let a subclass use its
        own classes.
        """

        class MyEnvelope(Envelope):
            pass

        class MySession(Session):
            pass

        class Custom(SMTP):
            def _create_envelope(self):
                return MyEnvelope()

            def _create_session(self):
                return MySession(self.loop)

        handler = Collector()
        tester = self.makeTester(handler, protocol=Custom)
        self.assertIsInstance(tester.server.session, MySession)
        tester.sendmail("a@example.com", ["b@example.com"], b"x\r\n")
        self.assertIsInstance(handler.envelopes[0], MyEnvelope)
        self.assertIsInstance(tester.server.envelope, MyEnvelope)


class ReturningSMTP(SMTP):
    """
    Overrides of built-in commands that extend them with C{return
    super().smtp_<VERB>(arg)}.
    """

    def smtp_EHLO(self, arg):
        self.event_handler.seen.append(("EHLO", arg))
        return super().smtp_EHLO(arg)

    def smtp_MAIL(self, arg):
        self.event_handler.seen.append(("MAIL", arg))
        return super().smtp_MAIL(arg)

    def smtp_RCPT(self, arg):
        self.event_handler.seen.append(("RCPT", arg))
        return super().smtp_RCPT(arg)

    def smtp_DATA(self, arg):
        self.event_handler.seen.append(("DATA", arg))
        return super().smtp_DATA(arg)


class AwaitingSMTP(SMTP):
    """
    Overrides of built-in commands written as aiosmtpd documents them:
    C{async def} methods that C{await super().smtp_<VERB>(arg)}, then note
    what the built-in command did.
    """

    async def smtp_EHLO(self, arg):
        self.event_handler.seen.append(("EHLO", arg))
        await super().smtp_EHLO(arg)
        self.event_handler.seen.append(("EHLO done", self.session.host_name))

    async def smtp_MAIL(self, arg):
        self.event_handler.seen.append(("MAIL", arg))
        await super().smtp_MAIL(arg)
        self.event_handler.seen.append(("MAIL done", self.envelope.mail_from))

    async def smtp_RCPT(self, arg):
        self.event_handler.seen.append(("RCPT", arg))
        await super().smtp_RCPT(arg)
        self.event_handler.seen.append(("RCPT done", list(self.envelope.rcpt_tos)))

    async def smtp_DATA(self, arg):
        self.event_handler.seen.append(("DATA", arg))
        await super().smtp_DATA(arg)
        self.event_handler.seen.append(("DATA done", arg))


class OverrideHandler:
    """
    A handler whose hooks record what they were given and accept, with
    their result at once.

    @ivar seen: What the overrides and the hooks saw, in order.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.seen: list[tuple[Any, ...]] = []

    def result(self, value: Any) -> Any:
        return value

    def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.seen.append(("handle_EHLO", hostname))
        session.host_name = hostname
        return self.result(responses)

    def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.seen.append(("handle_MAIL", address, mail_options))
        return self.result(None)

    def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.seen.append(("handle_RCPT", address, rcpt_options))
        return self.result(None)

    def handle_DATA(self, server, session, envelope):
        self.seen.append(("handle_DATA", envelope.content))
        return self.result(None)


class PendingHandler(OverrideHandler):
    """
    An L{OverrideHandler} whose hooks return a L{Deferred} that fires a
    second later.
    """

    def result(self, value: Any) -> Any:
        d: Deferred[Any] = Deferred()
        self.clock.callLater(1, d.callback, value)
        return d


class CoroutineHandler(OverrideHandler):
    """
    An L{OverrideHandler} whose hooks are coroutines that wait a second.
    """

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        await deferLater(self.clock, 1, lambda: None)
        return super().handle_EHLO(server, session, envelope, hostname, responses)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        await deferLater(self.clock, 1, lambda: None)
        return super().handle_MAIL(server, session, envelope, address, mail_options)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        await deferLater(self.clock, 1, lambda: None)
        return super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server, session, envelope):
        await deferLater(self.clock, 1, lambda: None)
        return super().handle_DATA(server, session, envelope)


class OverrideMixin:
    """
    Subclasses of L{SMTP} that override MAIL, RCPT, DATA and EHLO and call
    the built-in command (issue 9, item 6), with each kind of hook.

    @ivar protocol: The server class.
    @ivar handlerClass: The handler class.
    """

    protocol: type[SMTP]
    handlerClass: type[OverrideHandler]

    def setUp(self) -> None:
        super().setUp()
        self.clock = Clock()
        self.handler = self.handlerClass(self.clock)
        self.tester = self.makeTester(
            self.handler, protocol=self.protocol, reactor=self.clock
        )
        self.awaits = self.protocol is AwaitingSMTP
        self.hookWaits = self.handlerClass is not OverrideHandler

    def answer(self, data: bytes) -> list[Reply]:
        """
        Send C{data}; check that the replies wait for a hook that waits,
        then let the hooks finish; return the replies.
        """
        self.tester.send(data)
        if self.hookWaits:
            self.assertEqual(self.tester.replies(), [])
        # Each hook waits a second, far less than the idle timeout.
        for _ in range(10):
            self.clock.advance(1)
        return self.tester.replies()

    def done(self, *entries: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """
        What an override notes after the built-in command, if it awaits it.
        """
        return list(entries) if self.awaits else []

    def greet(self) -> None:
        """
        Send EHLO and forget what was seen.
        """
        [reply] = self.answer(b"EHLO c.example\r\n")
        self.assertEqual(reply.code, 250)
        del self.handler.seen[:]

    def test_ehlo(self) -> None:
        """
        The EHLO override runs, then the built-in command, its hook and its
        reply, without CHUNKING: the server overrides C{smtp_DATA}, which
        BDAT would bypass.
        """
        replies = self.answer(b"EHLO c.example\r\n")
        lines = [line for line in EHLO_LINES if line not in ("CHUNKING", "BINARYMIME")]
        self.assertEqual(replies, [Reply(250, "\n".join(lines))])
        self.assertEqual(
            self.handler.seen,
            [("EHLO", "c.example"), ("handle_EHLO", "c.example")]
            + self.done(("EHLO done", "c.example")),
        )

    def test_mail(self) -> None:
        """
        The MAIL override gets the whole argument; the hook gets the
        address and parameters; the override's await ends after the hook.
        """
        self.greet()
        replies = self.answer(b"MAIL FROM:<a@example.com> SIZE=100\r\n")
        self.assertEqual(replies, [OK])
        self.assertEqual(
            self.handler.seen,
            [
                ("MAIL", "FROM:<a@example.com> SIZE=100"),
                ("handle_MAIL", "a@example.com", ["SIZE=100"]),
            ]
            + self.done(("MAIL done", "a@example.com")),
        )
        self.assertEqual(self.tester.server.envelope.mail_options, ["SIZE=100"])

    def test_rcpt(self) -> None:
        """
        The RCPT override runs before the built-in command and its hook.
        """
        self.greet()
        self.answer(b"MAIL FROM:<a@example.com>\r\n")
        del self.handler.seen[:]
        replies = self.answer(b"RCPT TO:<b@example.com>\r\n")
        self.assertEqual(replies, [OK])
        self.assertEqual(
            self.handler.seen,
            [("RCPT", "TO:<b@example.com>"), ("handle_RCPT", "b@example.com", [])]
            + self.done(("RCPT done", ["b@example.com"])),
        )

    def test_data(self) -> None:
        """
        The DATA override runs before the built-in command's 354; the
        message then goes to C{handle_DATA}.
        """
        self.greet()
        self.answer(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n")
        del self.handler.seen[:]
        self.tester.send(b"DATA\r\n")
        self.assertEqual(self.tester.replies(), [GO_AHEAD])
        self.assertEqual(
            self.handler.seen, [("DATA", None)] + self.done(("DATA done", None))
        )
        replies = self.answer(b"Hi\r\n.\r\n")
        self.assertEqual(replies, [OK])
        self.assertEqual(self.handler.seen[-1], ("handle_DATA", b"Hi\r\n"))

    def test_dataArgument(self) -> None:
        """
        The built-in command called by an override still refuses DATA with
        an argument.
        """
        self.greet()
        self.answer(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n")
        self.assertEqual(self.tester.command("DATA now"), Reply(501, "Syntax: DATA"))

    def test_pipelined(self) -> None:
        """
        A whole transaction in one chunk goes through the overrides and the
        hooks in order, with its replies in order.
        """
        replies = self.answer(
            b"EHLO c.example\r\nMAIL FROM:<a@example.com>\r\n"
            b"RCPT TO:<b@example.com>\r\nDATA\r\nHi\r\n.\r\nQUIT\r\n"
        )
        self.assertEqual([r.code for r in replies], [250, 250, 250, 354, 250, 221])
        self.assertEqual(
            [entry[0] for entry in self.handler.seen if "done" not in entry[0]],
            [
                "EHLO",
                "handle_EHLO",
                "MAIL",
                "handle_MAIL",
                "RCPT",
                "handle_RCPT",
                "DATA",
                "handle_DATA",
            ],
        )


class ReturnSuperTests(OverrideMixin, ProtocolTestCase):
    """
    Overrides that C{return super().smtp_<VERB>(arg)}, hooks that return.
    """

    protocol = ReturningSMTP
    handlerClass = OverrideHandler


class ReturnSuperPendingHookTests(OverrideMixin, ProtocolTestCase):
    """
    Overrides that C{return super().smtp_<VERB>(arg)}, hooks that return a
    L{Deferred} that fires later.
    """

    protocol = ReturningSMTP
    handlerClass = PendingHandler


class ReturnSuperCoroutineHookTests(OverrideMixin, ProtocolTestCase):
    """
    Overrides that C{return super().smtp_<VERB>(arg)}, hooks that are
    coroutines that wait.
    """

    protocol = ReturningSMTP
    handlerClass = CoroutineHandler


class AwaitSuperTests(OverrideMixin, ProtocolTestCase):
    """
    C{async def} overrides that C{await super().smtp_<VERB>(arg)}, hooks
    that return.
    """

    protocol = AwaitingSMTP
    handlerClass = OverrideHandler


class AwaitSuperPendingHookTests(OverrideMixin, ProtocolTestCase):
    """
    C{async def} overrides that C{await super().smtp_<VERB>(arg)}, hooks
    that return a L{Deferred} that fires later.
    """

    protocol = AwaitingSMTP
    handlerClass = PendingHandler


class AwaitSuperCoroutineHookTests(OverrideMixin, ProtocolTestCase):
    """
    C{async def} overrides that C{await super().smtp_<VERB>(arg)}, hooks
    that are coroutines that wait.
    """

    protocol = AwaitingSMTP
    handlerClass = CoroutineHandler


class AsyncioClock(Clock):
    """
    A L{Clock} that looks like Twisted's asyncio reactor to the server:
    coroutines then run as tasks of a real asyncio loop, which the test
    turns by hand.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._asyncioEventloop = loop


class AwaitSuperAsyncioTests(OverrideMixin, ProtocolTestCase):
    """
    C{async def} overrides that C{await super().smtp_<VERB>(arg)} run as
    asyncio tasks (under Twisted's asyncio reactor), with hooks that return
    a L{Deferred} that fires later: the built-in commands give the task an
    asyncio future to wait on, since a task cannot wait on a L{Deferred}.
    """

    protocol = AwaitingSMTP
    handlerClass = PendingHandler

    def setUp(self) -> None:
        ProtocolTestCase.setUp(self)
        self.loop = asyncio.new_event_loop()
        self.addCleanup(self.loop.close)
        self.clock = AsyncioClock(self.loop)
        self.handler = self.handlerClass(self.clock)
        self.tester = self.makeTester(
            self.handler, protocol=self.protocol, reactor=self.clock
        )
        self.awaits = True
        self.hookWaits = True

    def answer(self, data: bytes) -> list[Reply]:
        """
        Send C{data}, then let time pass and the asyncio tasks run, and
        return the replies.
        """
        self.tester.send(data)
        self.assertEqual(self.tester.replies(), [])
        for _ in range(10):
            self.loop.run_until_complete(asyncio.sleep(0))
            self.clock.advance(1)
            self.loop.run_until_complete(asyncio.sleep(0))
        return self.tester.replies()

    def settle(self, data: bytes) -> list[Reply]:
        """
        Send C{data} to an override that needs no hook, and let the asyncio
        tasks run; return the replies.
        """
        self.tester.send(data)
        for _ in range(3):
            self.loop.run_until_complete(asyncio.sleep(0))
        return self.tester.replies()

    def test_data(self) -> None:
        """
        The DATA override, run as a task, comes before the built-in
        command's 354; the message then goes to C{handle_DATA}.
        """
        self.greet()
        self.answer(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n")
        del self.handler.seen[:]
        self.assertEqual(self.settle(b"DATA\r\n"), [GO_AHEAD])
        self.assertEqual(self.handler.seen, [("DATA", None), ("DATA done", None)])
        self.assertEqual(self.answer(b"Hi\r\n.\r\n"), [OK])
        self.assertEqual(self.handler.seen[-1], ("handle_DATA", b"Hi\r\n"))

    def test_dataArgument(self) -> None:
        """
        The built-in command called by an override run as a task still
        refuses DATA with an argument.
        """
        self.greet()
        self.answer(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n")
        self.assertEqual(self.settle(b"DATA now\r\n"), [Reply(501, "Syntax: DATA")])


class OverridingLMTP(LMTP):
    """
    A subclass of L{LMTP} that overrides LHLO, RCPT and DATA and calls the
    built-in commands.
    """

    def smtp_LHLO(self, arg):
        self.event_handler.seen.append(("LHLO", arg))
        return super().smtp_LHLO(arg)

    async def smtp_RCPT(self, arg):
        self.event_handler.seen.append(("RCPT", arg))
        await super().smtp_RCPT(arg)
        self.event_handler.seen.append(("RCPT done", list(self.envelope.rcpt_tos)))

    def smtp_DATA(self, arg):
        self.event_handler.seen.append(("DATA", arg))
        return super().smtp_DATA(arg)


class LMTPOverrideTests(ProtocolTestCase):
    """
    Overrides of built-in commands in a subclass of L{LMTP}.
    """

    def test_overrides(self) -> None:
        """
        The overrides run and the built-in commands keep LMTP's behaviour:
        LHLO, one reply per recipient, enhanced codes, HELO unknown.
        """
        clock = Clock()
        handler = PendingHandler(clock)
        tester = self.makeTester(handler, protocol=OverridingLMTP, reactor=clock)
        tester.send(b"LHLO c.example\r\n")
        clock.advance(1)
        [lhlo] = tester.replies()
        self.assertEqual(lhlo.code, 250)
        self.assertEqual(
            tester.command("HELO c.example"),
            Reply(500, '5.5.2 Error: command "HELO" not recognized'),
        )
        tester.send(
            b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
            b"RCPT TO:<c@example.com>\r\nDATA\r\nHi\r\n.\r\n"
        )
        self.assertEqual(tester.replies(), [])
        for _ in range(10):
            clock.advance(1)
        self.assertEqual(
            tester.replies(),
            [
                Reply(250, "2.0.0 OK"),
                Reply(250, "2.0.0 OK"),
                Reply(250, "2.0.0 OK"),
                Reply(354, "End data with <CR><LF>.<CR><LF>"),
                Reply(250, "2.0.0 OK"),
                Reply(250, "2.0.0 OK"),
            ],
        )
        self.assertEqual(
            [e for e in handler.seen if e[0] in ("LHLO", "RCPT", "RCPT done", "DATA")],
            [
                ("LHLO", "c.example"),
                ("RCPT", "TO:<b@example.com>"),
                ("RCPT done", ["b@example.com"]),
                ("RCPT", "TO:<c@example.com>"),
                ("RCPT done", ["b@example.com", "c@example.com"]),
                ("DATA", None),
            ],
        )
        self.assertEqual(handler.seen[-1], ("handle_DATA", b"Hi\r\n"))
