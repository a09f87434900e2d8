"""
Tests for L{twisted_smtpd._smtp}: the dispatch of command lines (unknown
commands, bare CR and LF, the length of command lines) and subclasses of
L{SMTP} that add or replace commands, driven in memory. No sockets, no real
time.
"""

from __future__ import annotations

from twisted.internet.task import Clock

from tests._protocolsupport import (
    HELP_LIST,
    HOST,
    OK,
    Collector,
    PingSMTP,
    ProtocolTestCase,
    connect,
    parseReplies,
)
from twisted_smtpd import (
    SMTP,
    Envelope,
    Session,
    SMTPFactory,
    syntax,
)
from twisted_smtpd.testing import Reply

TOO_LONG = Reply(500, "Command line too long")


class UnknownCommandTests(ProtocolTestCase):
    """
    Commands the server does not know.
    """

    def test_unknownVerb(self) -> None:
        """
        An unknown verb gets C{500 Error: command "XYZ" not recognized},
        upper-cased.
        """
        tester = self.makeTester()
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
        After EHLO with SIZE offered, MAIL may be 26 characters longer.
        """
        tester = self.ready()
        self.assertEqual(tester.command(self.mailLine(538)), OK)
        tester.command("RSET")
        self.assertEqual(tester.command(self.mailLine(539)), TOO_LONG)
        self.assertIsNone(tester.server.envelope.mail_from)

    def test_mailAfterEhloWithSmtputf8(self) -> None:
        """
        With SMTPUTF8 enabled as well, MAIL may be 36 characters longer.
        """
        tester = self.ready(enable_SMTPUTF8=True)
        self.assertEqual(tester.command(self.mailLine(548)), OK)
        tester.command("RSET")
        self.assertEqual(tester.command(self.mailLine(549)), TOO_LONG)

    def test_mailAfterEhloWithoutSize(self) -> None:
        """
        Without a size limit, EHLO gives MAIL no extra length.
        """
        tester = self.ready(data_size_limit=None)
        self.assertEqual(tester.command(self.mailLine(512)), OK)
        tester.command("RSET")
        self.assertEqual(tester.command(self.mailLine(513)), TOO_LONG)

    def test_otherVerbsAfterEhlo(self) -> None:
        """
        The extra length is for MAIL only.
        """
        tester = self.ready()
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
        tester = self.makeTester()
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

    def test_bareLfNotExecuted(self) -> None:
        """
        A command ended by a bare LF gets 500 and is not executed.
        """
        tester = self.makeTester()
        tester.send(b"QUIT\n")
        [reply] = tester.replies()
        self.assertEqual(reply.code, 500)
        self.assertOpen(tester)

    def test_bareLfRsetKeepsTransaction(self) -> None:
        """
        RSET ended by a bare LF does not reset the transaction.
        """
        tester = self.ready()
        tester.command("MAIL FROM:<a@example.com>")
        tester.send(b"RSET\n")
        self.assertEqual(tester.replies()[0].code, 500)
        self.assertEqual(tester.server.envelope.mail_from, "a@example.com")

    def test_bareLfThenCrlf(self) -> None:
        """
        After a bare-LF line, the next CRLF line is answered normally.
        """
        tester = self.makeTester()
        tester.send(b"HELO c.example\nNOOP\r\n")
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
                "Supported commands: DATA EHLO HELO HELP MAIL NOOP PING QUIT"
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
