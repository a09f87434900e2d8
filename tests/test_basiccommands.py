"""
Tests for L{twisted_smtpd._basiccommands}: HELO, EHLO, NOOP, QUIT, RSET,
VRFY, EXPN and HELP, driven in memory. No sockets, no real time.
"""

from __future__ import annotations

from tests._protocolsupport import (
    EHLO_LINES,
    HELP_LIST,
    HOST,
    MAIL_SYNTAX,
    NEED_MAIL,
    OK,
    SEND_HELO,
    VRFY_OK,
    ProtocolTestCase,
)
from twisted_smtpd.testing import Reply


class HeloEhloTests(ProtocolTestCase):
    """
    HELO and EHLO.
    """

    def test_helo(self) -> None:
        """
        HELO is answered with C{250 <hostname>} and records the client's
        name in a session without extensions.
        """
        tester = self.makeTester()
        self.assertEqual(tester.command("HELO client.example"), Reply(250, HOST))
        self.assertEqual(tester.server.session.host_name, "client.example")
        self.assertFalse(tester.server.session.extended_smtp)

    def test_heloWithoutArgument(self) -> None:
        """
        HELO without an argument gets C{501 Syntax: HELO hostname} and
        leaves the client ungreeted.
        """
        tester = self.makeTester()
        self.assertEqual(tester.command("HELO"), Reply(501, "Syntax: HELO hostname"))
        self.assertIsNone(tester.server.session.host_name)
        self.assertEqual(tester.command("MAIL FROM:<a@example.com>"), SEND_HELO)

    def test_heloOnlySpaces(self) -> None:
        """
        HELO followed by spaces only counts as HELO without an argument.
        """
        tester = self.makeTester()
        self.assertEqual(tester.command("HELO   "), Reply(501, "Syntax: HELO hostname"))

    def test_controlCharacters(self) -> None:
        """
        A host name with a control character (NUL, TAB, ESC, US, DEL...)
        gets C{501}, which names the verb; the client stays ungreeted and
        the hook is not called.
        """
        seen = []

        class Handler:
            def handle_HELO(self, server, session, envelope, hostname):
                seen.append(hostname)

            def handle_EHLO(self, server, session, envelope, hostname, responses):
                seen.append(hostname)

        for control in "\x00\x01\t\x1b\x1f\x7f":
            tester = self.makeTester(Handler())
            for verb in ["HELO", "EHLO"]:
                self.assertEqual(
                    tester.command(f"{verb} client{control}.example"),
                    Reply(501, f"Syntax: {verb} hostname"),
                    repr(control),
                )
            self.assertIsNone(tester.server.session.host_name)
            self.assertFalse(tester.server.session.extended_smtp)
            self.assertEqual(tester.command("MAIL FROM:<a@example.com>"), SEND_HELO)
        self.assertEqual(seen, [])

    def test_controlCharactersRawBytes(self) -> None:
        """
        The same on the wire: the raw bytes of a NUL, an ESC sequence and a
        DEL in EHLO.
        """
        tester = self.makeTester()
        tester.transport.clear()
        tester.send(b"EHLO a\x00b\r\nEHLO \x1b[31mred\r\nHELO c\x7f\r\nNOOP\r\n")
        self.assertEqual(
            tester.transport.value(),
            b"501 Syntax: EHLO hostname\r\n501 Syntax: EHLO hostname\r\n"
            b"501 Syntax: HELO hostname\r\n250 OK\r\n",
        )
        self.assertIsNone(tester.server.session.host_name)

    def test_controlCharactersUTF8(self) -> None:
        """
        With SMTPUTF8, the C1 control characters (U+0080 to U+009F) are
        refused too; other letters are not.
        """
        tester = self.makeTester(enable_SMTPUTF8=True)
        self.assertEqual(
            tester.command("EHLO a\u009bb.example"), Reply(501, "Syntax: EHLO hostname")
        )
        self.assertEqual(tester.command("EHLO bücher.example").code, 250)
        self.assertEqual(tester.server.session.host_name, "bücher.example")

    def test_controlCharacterKeepsSession(self) -> None:
        """
        A refused HELO changes nothing: the name given before and the
        transaction stay.
        """
        tester = self.makeTester()
        tester.command("EHLO client.example")
        self.assertEqual(tester.command("MAIL FROM:<a@example.com>"), OK)
        self.assertEqual(
            tester.command("HELO evil\x00.example"), Reply(501, "Syntax: HELO hostname")
        )
        self.assertEqual(tester.server.session.host_name, "client.example")
        self.assertEqual(tester.server.envelope.mail_from, "a@example.com")

    def test_ehloWithoutArgument(self) -> None:
        """
        EHLO without an argument gets C{501 Syntax: EHLO hostname}.
        """
        tester = self.makeTester()
        self.assertEqual(tester.command("EHLO"), Reply(501, "Syntax: EHLO hostname"))
        self.assertIsNone(tester.server.session.host_name)
        self.assertFalse(tester.server.session.extended_smtp)

    def test_ehloDefaultKeywords(self) -> None:
        """
        By default EHLO lists the host name, SIZE with the default limit,
        8BITMIME, DSN, PIPELINING and HELP, in that order.
        """
        tester = self.makeTester()
        reply = tester.command("EHLO client.example")
        self.assertEqual(reply.code, 250)
        self.assertEqual(reply.lines, EHLO_LINES)
        self.assertTrue(tester.server.session.extended_smtp)
        self.assertEqual(tester.server.session.host_name, "client.example")

    def test_ehloWireFormat(self) -> None:
        """
        Every EHLO line but the last uses the C{250-} continuation form.
        """
        tester = self.makeTester()
        before = len(tester.transport.value())
        tester.command("EHLO client.example")
        self.assertEqual(
            tester.transport.value()[before:],
            b"250-mx.example\r\n250-SIZE 33554432\r\n250-8BITMIME\r\n"
            b"250-DSN\r\n250-CHUNKING\r\n250-BINARYMIME\r\n"
            b"250-PIPELINING\r\n250 HELP\r\n",
        )

    def test_ehloSizeOption(self) -> None:
        """
        SIZE advertises C{data_size_limit}.
        """
        tester = self.makeTester(data_size_limit=1000)
        self.assertEqual(
            tester.command("EHLO c.example").lines,
            [EHLO_LINES[0], "SIZE 1000", *EHLO_LINES[2:]],
        )

    def test_ehloNoSizeWhenUnlimited(self) -> None:
        """
        Without a size limit (C{None} or C{0}) SIZE is not advertised.
        """
        for limit in (None, 0):
            tester = self.makeTester(data_size_limit=limit)
            self.assertEqual(
                tester.command("EHLO c.example").lines,
                [EHLO_LINES[0], *EHLO_LINES[2:]],
            )

    def test_ehloDecodeData(self) -> None:
        """
        With C{decode_data} 8BITMIME is not advertised, nor BINARYMIME.
        """
        tester = self.makeTester(decode_data=True)
        self.assertEqual(
            tester.command("EHLO c.example").lines,
            ["mx.example", "SIZE 33554432", "DSN", "CHUNKING", "PIPELINING", "HELP"],
        )

    def test_ehloSMTPUTF8(self) -> None:
        """
        With C{enable_SMTPUTF8} SMTPUTF8 follows 8BITMIME.
        """
        tester = self.makeTester(enable_SMTPUTF8=True)
        self.assertEqual(
            tester.command("EHLO c.example").lines,
            [
                "mx.example",
                "SIZE 33554432",
                "8BITMIME",
                "SMTPUTF8",
                "DSN",
                "CHUNKING",
                "BINARYMIME",
                "PIPELINING",
            ]
            + ["HELP"],
        )

    def test_ehloMinimal(self) -> None:
        """
        With no size limit, C{decode_data} and no CHUNKING, EHLO lists only
        the host name, PIPELINING and HELP.
        """
        tester = self.makeTester(data_size_limit=None, decode_data=True, chunking=False)
        self.assertEqual(
            tester.command("EHLO c.example").lines,
            ["mx.example", "DSN", "PIPELINING", "HELP"],
        )

    def test_verbCaseInsensitive(self) -> None:
        """
        Verbs are recognised in any case.
        """
        tester = self.makeTester()
        self.assertEqual(tester.command("eHlO c.example").lines, EHLO_LINES)
        self.assertEqual(tester.command("helo c.example"), Reply(250, HOST))

    def test_nonAsciiVerb(self) -> None:
        """
        A verb with a non-ASCII letter is not a command, even if it
        upper-cases to one (dotless i: C{MAıL} becomes C{MAIL}).
        """
        tester = self.ready(enable_SMTPUTF8=True)
        self.assertEqual(
            tester.command("MAıL FROM:<a@example.com>"), Reply(500, "Error: bad syntax")
        )
        self.assertIsNone(tester.server.envelope.mail_from)

    def test_repeatedHelo(self) -> None:
        """
        A second HELO is allowed and replaces the recorded name.
        """
        tester = self.makeTester()
        self.assertEqual(tester.command("HELO one.example"), Reply(250, HOST))
        self.assertEqual(tester.command("HELO two.example"), Reply(250, HOST))
        self.assertEqual(tester.server.session.host_name, "two.example")

    def test_repeatedEhlo(self) -> None:
        """
        A second EHLO is answered like the first.
        """
        tester = self.makeTester()
        self.assertEqual(tester.command("EHLO one.example").lines, EHLO_LINES)
        self.assertEqual(tester.command("EHLO two.example").lines, EHLO_LINES)
        self.assertEqual(tester.server.session.host_name, "two.example")

    def test_ehloResetsEnvelope(self) -> None:
        """
        EHLO in the middle of a transaction aborts it: a new envelope, and
        RCPT then needs MAIL again.
        """
        tester = self.ready()
        tester.command("MAIL FROM:<a@example.com>")
        tester.command("RCPT TO:<b@example.com>")
        old = tester.server.envelope
        tester.command("EHLO again.example")
        self.assertIsNot(tester.server.envelope, old)
        self.assertIsNone(tester.server.envelope.mail_from)
        self.assertEqual(tester.server.envelope.rcpt_tos, [])
        self.assertEqual(tester.command("RCPT TO:<c@example.com>"), NEED_MAIL)

    def test_heloResetsEnvelope(self) -> None:
        """
        HELO in the middle of a transaction aborts it.
        """
        tester = self.ready(greet="HELO")
        tester.command("MAIL FROM:<a@example.com>")
        old = tester.server.envelope
        self.assertEqual(tester.command("HELO again.example"), Reply(250, HOST))
        self.assertIsNot(tester.server.envelope, old)
        self.assertEqual(tester.command("RCPT TO:<b@example.com>"), NEED_MAIL)

    def test_heloAfterEhloDropsExtensions(self) -> None:
        """
        HELO after EHLO ends extended mode: MAIL parameters become a syntax
        error again.
        """
        tester = self.ready()
        tester.command("HELO plain.example")
        self.assertFalse(tester.server.session.extended_smtp)
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> SIZE=10"), MAIL_SYNTAX
        )


class SimpleCommandTests(ProtocolTestCase):
    """
    RSET, NOOP, QUIT, VRFY, EXPN and HELP.
    """

    def test_rset(self) -> None:
        """
        RSET answers C{250 OK} and starts a new envelope.
        """
        tester = self.ready()
        tester.command("MAIL FROM:<a@example.com>")
        tester.command("RCPT TO:<b@example.com>")
        old = tester.server.envelope
        self.assertEqual(tester.command("RSET"), OK)
        self.assertIsNot(tester.server.envelope, old)
        self.assertIsNone(tester.server.envelope.mail_from)
        self.assertEqual(tester.command("RCPT TO:<b@example.com>"), NEED_MAIL)
        self.assertEqual(tester.command("MAIL FROM:<c@example.com>"), OK)

    def test_rsetKeepsSession(self) -> None:
        """
        RSET does not forget the greeting.
        """
        tester = self.ready()
        tester.command("RSET")
        self.assertEqual(tester.server.session.host_name, "client.example")
        self.assertTrue(tester.server.session.extended_smtp)

    def test_rsetWithArgument(self) -> None:
        """
        RSET with an argument gets C{501 Syntax: RSET} and keeps the
        transaction.
        """
        tester = self.ready()
        tester.command("MAIL FROM:<a@example.com>")
        self.assertEqual(tester.command("RSET now"), Reply(501, "Syntax: RSET"))
        self.assertEqual(tester.server.envelope.mail_from, "a@example.com")

    def test_rsetBeforeHelo(self) -> None:
        """
        RSET does not need a greeting.
        """
        self.assertEqual(self.makeTester().command("RSET"), OK)

    def test_noop(self) -> None:
        """
        NOOP answers C{250 OK}, with or without an argument, before or after
        the greeting, and changes nothing.
        """
        tester = self.makeTester()
        self.assertEqual(tester.command("NOOP"), OK)
        self.assertEqual(tester.command("NOOP whatever you say"), OK)
        self.assertIsNone(tester.server.session.host_name)

    def test_noopKeepsTransaction(self) -> None:
        """
        NOOP in a transaction keeps it.
        """
        tester = self.ready()
        tester.command("MAIL FROM:<a@example.com>")
        tester.command("NOOP")
        self.assertEqual(tester.server.envelope.mail_from, "a@example.com")

    def test_quit(self) -> None:
        """
        QUIT answers C{221 Bye} and closes the connection.
        """
        tester = self.makeTester()
        self.assertFalse(tester.closed)
        self.assertEqual(tester.command("QUIT"), Reply(221, "Bye"))
        self.assertTrue(tester.closed)

    def test_quitWithArgument(self) -> None:
        """
        QUIT with an argument gets C{501 Syntax: QUIT} and the connection
        stays open.
        """
        tester = self.makeTester()
        self.assertEqual(tester.command("QUIT now"), Reply(501, "Syntax: QUIT"))
        self.assertOpen(tester)

    def test_nothingAfterQuit(self) -> None:
        """
        Commands pipelined after QUIT are not answered.
        """
        tester = self.makeTester()
        tester.send(b"QUIT\r\nNOOP\r\nHELP\r\n")
        self.assertEqual(tester.replies(), [Reply(221, "Bye")])
        self.assertTrue(tester.closed)

    def test_inputAfterQuitIgnored(self) -> None:
        """
        Input that arrives after QUIT closed the connection is not handled.
        """
        tester = self.makeTester()
        tester.command("QUIT")
        tester.send(b"HELO c.example\r\nNOOP\r\n")
        self.assertEqual(tester.replies(), [])
        self.assertIsNone(tester.server.session.host_name)

    def test_vrfyWithoutArgument(self) -> None:
        """
        VRFY without an argument gets C{501 Syntax: VRFY <address>}.
        """
        self.assertEqual(
            self.makeTester().command("VRFY"), Reply(501, "Syntax: VRFY <address>")
        )

    def test_vrfyAddress(self) -> None:
        """
        VRFY of an address, with or without brackets, or of a user name,
        gets 252, even before the greeting.
        """
        tester = self.makeTester()
        for arg in ("user@example.com", "<user@example.com>", "postmaster", "bob"):
            self.assertEqual(tester.command(f"VRFY {arg}"), VRFY_OK)

    def test_vrfyGarbage(self) -> None:
        """
        VRFY of something that is no address gets C{502 Could not VRFY
        <arg>}.
        """
        tester = self.makeTester()
        for arg in ("<>", "a b", "<a@b", "@@"):
            self.assertEqual(
                tester.command(f"VRFY {arg}"), Reply(502, f"Could not VRFY {arg}")
            )

    def test_vrfyControlsNotEchoed(self) -> None:
        """
        Control characters of a refused VRFY argument are not echoed in the
        reply, whose text must be printable.
        """
        tester = self.makeTester()
        self.assertEqual(
            tester.command("VRFY a\x00b\x1b[31m\x7f"),
            Reply(502, "Could not VRFY a?b?[31m?"),
        )

    def test_vrfyLongArgumentShortened(self) -> None:
        """
        A long refused VRFY argument is echoed shortened.
        """
        tester = self.makeTester()
        arg = "a b" * 150
        self.assertEqual(
            tester.command(f"VRFY {arg}"), Reply(502, f"Could not VRFY {arg[:200]}...")
        )

    def test_vrfyLongUtf8Shortened(self) -> None:
        """
        A refused VRFY argument in UTF-8 is cut by octets, so the reply line
        stays within 512; C1 controls are not echoed either.
        """
        tester = self.makeTester(enable_SMTPUTF8=True)
        reply = tester.command("VRFY <" + "\U0001f600" * 126)
        self.assertEqual(reply.code, 502)
        line = tester.transport.value().split(b"\r\n")[-2]
        self.assertLessEqual(len(line) + 2, 512)
        self.assertEqual(
            tester.command("VRFY a\x85b c"), Reply(502, "Could not VRFY a?b c")
        )

    def test_vrfyHookAddress(self) -> None:
        """
        C{handle_VRFY} gets the address without brackets.
        """
        seen = []

        class Handler:
            def handle_VRFY(self, server, session, envelope, address):
                seen.append(address)

        tester = self.makeTester(Handler())
        self.assertEqual(tester.command("VRFY <user@example.com>"), VRFY_OK)
        self.assertEqual(seen, ["user@example.com"])

    def test_vrfyQuotedName(self) -> None:
        """
        VRFY of a full name in quotes (RFC 5321 sections 3.5.1 and 4.1.1.6)
        gets 252 and reaches C{handle_VRFY} as sent; a string with an
        unbalanced quote does not.
        """
        seen = []

        class Handler:
            def handle_VRFY(self, server, session, envelope, address):
                seen.append(address)

        tester = self.makeTester(Handler())
        self.assertEqual(tester.command('VRFY "John Smith"'), VRFY_OK)
        self.assertEqual(tester.command('VRFY "a \\" b"'), VRFY_OK)
        self.assertEqual(
            tester.command('VRFY "John Smith'),
            Reply(502, 'Could not VRFY "John Smith'),
        )
        self.assertEqual(seen, ['"John Smith"', '"a \\" b"'])

    def test_vrfySMTPUTF8(self) -> None:
        """
        With SMTPUTF8 offered, VRFY takes RFC 6531's C{SMTPUTF8} parameter,
        which C{handle_VRFY} does not see; without it, the word is part of
        the argument and the argument is refused.
        """
        seen = []

        class Handler:
            def handle_VRFY(self, server, session, envelope, address):
                seen.append(address)

        tester = self.makeTester(Handler(), enable_SMTPUTF8=True)
        self.assertEqual(tester.command("VRFY user SMTPUTF8"), VRFY_OK)
        self.assertEqual(tester.command("VRFY <jöe@example.com> smtputf8"), VRFY_OK)
        self.assertEqual(tester.command('VRFY "Jöe Smith" SMTPUTF8'), VRFY_OK)
        self.assertEqual(seen, ["user", "jöe@example.com", '"Jöe Smith"'])
        tester = self.makeTester(Handler())
        self.assertEqual(
            tester.command("VRFY user SMTPUTF8"),
            Reply(502, "Could not VRFY user SMTPUTF8"),
        )

    def test_expn(self) -> None:
        """
        EXPN is always refused with C{502 EXPN not implemented}.
        """
        tester = self.makeTester()
        self.assertEqual(tester.command("EXPN"), Reply(502, "EXPN not implemented"))
        self.assertEqual(
            tester.command("EXPN staff"), Reply(502, "EXPN not implemented")
        )

    def test_expnIsNotUnknown(self) -> None:
        """
        EXPN does not count towards the unknown-command limit.
        """
        tester = self.makeTester(max_unknown_commands=2)
        for _ in range(3):
            self.assertEqual(
                tester.command("EXPN x"), Reply(502, "EXPN not implemented")
            )
        self.assertOpen(tester)

    def test_help(self) -> None:
        """
        HELP lists the commands, sorted, with code 214.
        """
        self.assertEqual(self.makeTester().command("HELP"), Reply(214, HELP_LIST))

    def test_helpVerb(self) -> None:
        """
        HELP <verb> gives that command's syntax with code 214, the verb in
        any case.
        """
        tester = self.makeTester()
        expected = {
            "HELO": "HELO hostname",
            "EHLO": "EHLO hostname",
            "mail": "MAIL FROM: <address>",
            "Rcpt": "RCPT TO: <address>",
            "DATA": "DATA",
            "RSET": "RSET",
            "NOOP": "NOOP [ignored]",
            "QUIT": "QUIT",
            "VRFY": "VRFY <address>",
            "HELP": "HELP [command]",
        }
        for verb, text in expected.items():
            self.assertEqual(
                tester.command(f"HELP {verb}"), Reply(214, f"Syntax: {text}")
            )

    def test_helpMailAfterEhlo(self) -> None:
        """
        After EHLO, HELP MAIL and HELP RCPT mention the parameters.
        """
        tester = self.ready()
        self.assertEqual(
            tester.command("HELP MAIL"),
            Reply(214, "Syntax: MAIL FROM: <address> [SP <mail-parameters>]"),
        )
        self.assertEqual(
            tester.command("HELP RCPT"),
            Reply(214, "Syntax: RCPT TO: <address> [SP <mail-parameters>]"),
        )

    def test_helpUnknown(self) -> None:
        """
        HELP of an unknown command, or of EXPN, gets 504 with the list.
        """
        tester = self.makeTester()
        self.assertEqual(tester.command("HELP XYZZY"), Reply(504, HELP_LIST))
        self.assertEqual(tester.command("HELP EXPN"), Reply(504, HELP_LIST))
