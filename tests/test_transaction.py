"""
Tests for L{twisted_smtpd._transaction} and L{twisted_smtpd._datamode}:
MAIL, RCPT and DATA (their order, arguments and parameters, the
C{max_recipients} limit, exceptions in their hooks) and the message data,
driven in memory. No sockets, no real time.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred

from tests._protocolsupport import (
    GO_AHEAD,
    HOST,
    LOCAL_ERROR,
    MAIL_SYNTAX,
    NEED_MAIL,
    NEED_RCPT,
    OK,
    SECRET,
    SEND_HELO,
    Boom,
    Collector,
    ProtocolTestCase,
    assertSplitsAgree,
    parseReplies,
)
from twisted_smtpd import SMTP
from twisted_smtpd.testing import Reply, SMTPTester

MAIL_SYNTAX_EXT = Reply(501, "Syntax: MAIL FROM: <address> [SP <mail-parameters>]")
RCPT_SYNTAX = Reply(501, "Syntax: RCPT TO: <address>")
RCPT_SYNTAX_EXT = Reply(501, "Syntax: RCPT TO: <address> [SP <mail-parameters>]")


class MailRcptDataSequenceTests(ProtocolTestCase):
    """
    The order of MAIL, RCPT and DATA.
    """

    def test_mailBeforeHelo(self) -> None:
        """
        MAIL before HELO/EHLO gets C{503 Error: send HELO first}.
        """
        tester = self.makeTester()
        self.assertEqual(tester.command("MAIL FROM:<a@example.com>"), SEND_HELO)
        self.assertIsNone(tester.server.envelope.mail_from)

    def test_rcptBeforeHelo(self) -> None:
        """
        RCPT before HELO/EHLO gets C{503 Error: send HELO first}.
        """
        tester = self.makeTester()
        self.assertEqual(tester.command("RCPT TO:<a@example.com>"), SEND_HELO)

    def test_dataBeforeHelo(self) -> None:
        """
        DATA before HELO/EHLO gets C{503 Error: send HELO first}.
        """
        tester = self.makeTester()
        self.assertEqual(tester.command("DATA"), SEND_HELO)

    def test_nestedMail(self) -> None:
        """
        A second MAIL in a transaction gets C{503 Error: nested MAIL
        command} and keeps the first sender.
        """
        tester = self.ready()
        self.assertEqual(tester.command("MAIL FROM:<a@example.com>"), OK)
        self.assertEqual(
            tester.command("MAIL FROM:<z@example.com>"),
            Reply(503, "Error: nested MAIL command"),
        )
        self.assertEqual(tester.server.envelope.mail_from, "a@example.com")

    def test_rcptWithoutMail(self) -> None:
        """
        RCPT before MAIL gets C{503 Error: need MAIL command}.
        """
        tester = self.ready()
        self.assertEqual(tester.command("RCPT TO:<b@example.com>"), NEED_MAIL)
        self.assertEqual(tester.server.envelope.rcpt_tos, [])

    def test_dataWithoutMail(self) -> None:
        """
        DATA before MAIL gets aiosmtpd's C{503 Error: need RCPT command}.
        """
        tester = self.ready()
        self.assertEqual(tester.command("DATA"), NEED_RCPT)

    def test_dataArgumentWithoutRcpt(self) -> None:
        """
        DATA with an argument and no recipient gets the 503 of the missing
        recipient first, in aiosmtpd's order.
        """
        tester = self.ready()
        self.assertEqual(tester.command("DATA now"), NEED_RCPT)
        tester.command("MAIL FROM:<a@example.com>")
        tester.command("RCPT TO:<b@example.com>")
        self.assertEqual(tester.command("DATA now"), Reply(501, "Syntax: DATA"))

    def test_dataWithoutRcpt(self) -> None:
        """
        DATA after MAIL but before any RCPT gets C{503 Error: need RCPT
        command}, and the next line is a command again, not data.
        """
        tester = self.ready()
        tester.command("MAIL FROM:<a@example.com>")
        self.assertEqual(tester.command("DATA"), NEED_RCPT)
        self.assertEqual(tester.command("NOOP"), OK)

    def test_dataWithArgument(self) -> None:
        """
        DATA with an argument gets C{501 Syntax: DATA}.
        """
        tester = self.ready()
        tester.command("MAIL FROM:<a@example.com>")
        tester.command("RCPT TO:<b@example.com>")
        self.assertEqual(tester.command("DATA now"), Reply(501, "Syntax: DATA"))
        self.assertEqual(tester.command("DATA"), GO_AHEAD)

    def test_rcptOrder(self) -> None:
        """
        Recipients are kept in the order of the RCPT commands.
        """
        handler = Collector()
        tester = self.ready(handler)
        replies = tester.sendmail(
            "a@example.com",
            ["z@example.com", "b@example.com", "m@example.com"],
            b"Hi\r\n",
            helo=None,
        )
        self.assertEqual(replies[-1], OK)
        self.assertEqual(
            handler.messages[0][1], ["z@example.com", "b@example.com", "m@example.com"]
        )

    def test_duplicateRecipients(self) -> None:
        """
        The same recipient given twice is kept twice.
        """
        tester = self.ready()
        tester.command("MAIL FROM:<a@example.com>")
        tester.command("RCPT TO:<b@example.com>")
        tester.command("RCPT TO:<b@example.com>")
        self.assertEqual(
            tester.server.envelope.rcpt_tos, ["b@example.com", "b@example.com"]
        )


class MailSyntaxTests(ProtocolTestCase):
    """
    The argument and parameters of MAIL.
    """

    def test_mailWithoutArgumentAfterHelo(self) -> None:
        """
        MAIL without an argument after HELO gets the short syntax reply.
        """
        tester = self.ready(greet="HELO")
        self.assertEqual(tester.command("MAIL"), MAIL_SYNTAX)

    def test_mailWithoutArgumentAfterEhlo(self) -> None:
        """
        After EHLO the syntax reply mentions the parameters.
        """
        tester = self.ready()
        self.assertEqual(tester.command("MAIL"), MAIL_SYNTAX_EXT)

    def test_mailWithoutFrom(self) -> None:
        """
        MAIL whose argument does not start with C{FROM:} is a syntax error.
        """
        tester = self.ready()
        self.assertEqual(tester.command("MAIL <a@example.com>"), MAIL_SYNTAX_EXT)
        self.assertEqual(tester.command("MAIL TO:<a@example.com>"), MAIL_SYNTAX_EXT)
        self.assertIsNone(tester.server.envelope.mail_from)

    def test_mailEmptyPath(self) -> None:
        """
        C{MAIL FROM:} without a path is a syntax error.
        """
        tester = self.ready()
        self.assertEqual(tester.command("MAIL FROM:"), MAIL_SYNTAX_EXT)

    def test_mailParametersAfterHelo(self) -> None:
        """
        Parameters are a syntax error when the client greeted with HELO.
        """
        tester = self.ready(greet="HELO")
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> BODY=8BITMIME"), MAIL_SYNTAX
        )
        self.assertIsNone(tester.server.envelope.mail_from)

    def test_mailFromKeywordCase(self) -> None:
        """
        C{from:} is recognised in any case, and spaces after the colon are
        tolerated.
        """
        tester = self.ready()
        self.assertEqual(tester.command("mail from: <a@example.com>"), OK)
        self.assertEqual(tester.server.envelope.mail_from, "a@example.com")

    def test_mailWithoutBrackets(self) -> None:
        """
        A path without angle brackets is accepted.
        """
        tester = self.ready()
        self.assertEqual(tester.command("MAIL FROM:a@example.com"), OK)
        self.assertEqual(tester.server.envelope.mail_from, "a@example.com")
        self.assertEqual(tester.command("RCPT TO:b@example.com"), OK)
        self.assertEqual(tester.server.envelope.rcpt_tos, ["b@example.com"])

    def test_mailWithoutBracketsWithParameters(self) -> None:
        """
        A path without angle brackets may be followed by parameters.
        """
        tester = self.ready()
        self.assertEqual(tester.command("MAIL FROM:a@example.com SIZE=10"), OK)
        self.assertEqual(tester.server.envelope.mail_from, "a@example.com")
        self.assertEqual(tester.server.envelope.mail_options, ["SIZE=10"])

    def test_nullSender(self) -> None:
        """
        C{MAIL FROM:<>} is accepted and stored as C{"<>"}.
        """
        handler = Collector()
        tester = self.ready(handler)
        self.assertEqual(tester.command("MAIL FROM:<>"), OK)
        self.assertEqual(tester.server.envelope.mail_from, "<>")
        tester.command("RCPT TO:<b@example.com>")
        tester.command("DATA")
        tester.send(b"Bounce\r\n.\r\n")
        self.assertEqual(tester.replies(), [OK])
        self.assertEqual(handler.messages[0][0], "<>")

    def test_malformedAddress(self) -> None:
        """
        An address that is not a mailbox gets C{553 5.1.3 Error: malformed
        address}.
        """
        tester = self.ready()
        self.assertEqual(
            tester.command("MAIL FROM:<a@@example.com>"),
            Reply(553, "5.1.3 Error: malformed address"),
        )
        self.assertIsNone(tester.server.envelope.mail_from)

    def test_senderWithoutDomain(self) -> None:
        """
        A sender without a domain is refused.
        """
        tester = self.ready()
        self.assertEqual(
            tester.command("MAIL FROM:<user>"),
            Reply(553, "5.1.3 Error: address must have a domain"),
        )

    def test_sizeParameter(self) -> None:
        """
        C{SIZE=<n>} within the limit is accepted and stored.
        """
        tester = self.ready(data_size_limit=1000)
        self.assertEqual(tester.command("MAIL FROM:<a@example.com> SIZE=1000"), OK)
        self.assertEqual(tester.server.envelope.mail_options, ["SIZE=1000"])

    def test_sizeNotNumeric(self) -> None:
        """
        A non-numeric SIZE is a syntax error.
        """
        tester = self.ready()
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> SIZE=big"), MAIL_SYNTAX_EXT
        )
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> SIZE=-1"), MAIL_SYNTAX_EXT
        )
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> SIZE"), MAIL_SYNTAX_EXT
        )
        self.assertIsNone(tester.server.envelope.mail_from)

    def test_sizeOverLimit(self) -> None:
        """
        A declared SIZE over the limit gets 552 and no transaction starts.
        """
        tester = self.ready(data_size_limit=1000)
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> SIZE=1001"),
            Reply(552, "Error: message size exceeds fixed maximum message size"),
        )
        self.assertIsNone(tester.server.envelope.mail_from)
        self.assertEqual(tester.command("MAIL FROM:<a@example.com>"), OK)

    def test_sizeWithoutLimit(self) -> None:
        """
        Without a size limit any SIZE is accepted.
        """
        tester = self.ready(data_size_limit=None)
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> SIZE=99999999999999"), OK
        )

    def test_body7bit(self) -> None:
        """
        C{BODY=7BIT} is accepted.
        """
        tester = self.ready()
        self.assertEqual(tester.command("MAIL FROM:<a@example.com> BODY=7BIT"), OK)
        self.assertEqual(tester.server.envelope.mail_options, ["BODY=7BIT"])

    def test_body8bitmime(self) -> None:
        """
        C{BODY=8BITMIME} is accepted, in any case.
        """
        tester = self.ready()
        self.assertEqual(tester.command("MAIL FROM:<a@example.com> body=8bitmime"), OK)
        self.assertEqual(tester.server.envelope.mail_options, ["BODY=8BITMIME"])

    def test_bodyOther(self) -> None:
        """
        Any other BODY value gets C{501 Error: BODY can only be one of 7BIT,
        8BITMIME}.
        """
        tester = self.ready()
        for value in ("BINARY", "8BIT"):
            self.assertEqual(
                tester.command(f"MAIL FROM:<a@example.com> BODY={value}"),
                Reply(501, "Error: BODY can only be one of 7BIT, 8BITMIME"),
            )
        self.assertIsNone(tester.server.envelope.mail_from)

    def test_smtputf8WithValue(self) -> None:
        """
        C{SMTPUTF8=x} gets 501: the parameter takes no value.
        """
        tester = self.ready(enable_SMTPUTF8=True)
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> SMTPUTF8=yes"),
            Reply(501, "Error: SMTPUTF8 takes no arguments"),
        )
        self.assertIsNone(tester.server.envelope.mail_from)

    def test_smtputf8Disabled(self) -> None:
        """
        SMTPUTF8 while it is disabled gets C{501 Error: SMTPUTF8 disabled}.
        """
        tester = self.ready()
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> SMTPUTF8"),
            Reply(501, "Error: SMTPUTF8 disabled"),
        )

    def test_smtputf8Enabled(self) -> None:
        """
        SMTPUTF8 when enabled is accepted and marks the envelope.
        """
        tester = self.ready(enable_SMTPUTF8=True)
        self.assertEqual(tester.command("MAIL FROM:<a@example.com> SMTPUTF8"), OK)
        self.assertTrue(tester.server.envelope.smtp_utf8)
        self.assertEqual(tester.server.envelope.mail_options, ["SMTPUTF8"])

    def test_unknownMailParameter(self) -> None:
        """
        Any other MAIL parameter gets C{555 MAIL FROM parameters not
        recognized or not implemented}.
        """
        tester = self.ready(dsn=False)
        for parameter in ("RET=FULL", "ENVID=abc", "AUTH=<>", "XFOO", "REQUIRETLS"):
            self.assertEqual(
                tester.command(f"MAIL FROM:<a@example.com> {parameter}"),
                Reply(555, "MAIL FROM parameters not recognized or not implemented"),
            )
        self.assertIsNone(tester.server.envelope.mail_from)

    def test_mailOptionsUpperCased(self) -> None:
        """
        MAIL parameters are stored upper-cased, values included, in order,
        and given so to C{handle_MAIL}.
        """
        seen = []

        class Handler:
            def handle_MAIL(self, server, session, envelope, address, options):
                seen.append((address, list(options)))

        tester = self.ready(Handler())
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> size=100 body=8bitmime"), OK
        )
        self.assertEqual(
            tester.server.envelope.mail_options, ["SIZE=100", "BODY=8BITMIME"]
        )
        self.assertEqual(seen, [("a@example.com", ["SIZE=100", "BODY=8BITMIME"])])

    def test_utf8AddressWithSmtputf8(self) -> None:
        """
        A UTF-8 sender is accepted with C{enable_SMTPUTF8} and the SMTPUTF8
        parameter, and stored as text.
        """
        tester = self.ready(enable_SMTPUTF8=True)
        self.assertEqual(tester.command("MAIL FROM:<jürgen@exämple.de> SMTPUTF8"), OK)
        self.assertEqual(tester.server.envelope.mail_from, "jürgen@exämple.de")
        self.assertEqual(tester.command("RCPT TO:<zoë@exämple.de>"), OK)
        self.assertEqual(tester.server.envelope.rcpt_tos, ["zoë@exämple.de"])

    def test_utf8AddressWithoutParameter(self) -> None:
        """
        With SMTPUTF8 enabled but not asked for on MAIL, a UTF-8 sender is
        refused with 553 5.6.7.
        """
        tester = self.ready(enable_SMTPUTF8=True)
        reply = tester.command("MAIL FROM:<jürgen@exämple.de>")
        self.assertEqual(reply.code, 553)
        self.assertTrue(reply.text.startswith("5.6.7 "), reply)
        self.assertIsNone(tester.server.envelope.mail_from)

    def test_utf8RecipientWithoutParameter(self) -> None:
        """
        A UTF-8 recipient in a transaction started without SMTPUTF8 is
        refused with 553 5.6.7.
        """
        tester = self.ready(enable_SMTPUTF8=True)
        tester.command("MAIL FROM:<a@example.com>")
        reply = tester.command("RCPT TO:<zoë@exämple.de>")
        self.assertEqual(reply.code, 553)
        self.assertTrue(reply.text.startswith("5.6.7 "), reply)
        self.assertEqual(tester.server.envelope.rcpt_tos, [])

    def test_nonAsciiCommandStrict(self) -> None:
        """
        With SMTPUTF8 disabled a non-ASCII command line gets C{500 Error:
        strict ASCII mode}, whatever the parameters say.
        """
        tester = self.ready()
        self.assertEqual(
            tester.command("MAIL FROM:<jürgen@exämple.de> SMTPUTF8"),
            Reply(500, "Error: strict ASCII mode"),
        )
        self.assertIsNone(tester.server.envelope.mail_from)

    def test_nonUtf8Bytes(self) -> None:
        """
        A command with bytes that are not UTF-8 is refused with 500.
        """
        for enabled in (False, True):
            tester = self.ready(enable_SMTPUTF8=enabled)
            tester.send(b"MAIL FROM:<\xff@example.com>\r\n")
            [reply] = tester.replies()
            self.assertEqual(reply.code, 500)
            self.assertIsNone(tester.server.envelope.mail_from)


class RcptSyntaxTests(ProtocolTestCase):
    """
    The argument and parameters of RCPT.
    """

    def setUp(self) -> None:
        super().setUp()
        self.client = self.ready()
        self.assertEqual(self.client.command("MAIL FROM:<a@example.com>"), OK)

    def test_rcptWithoutArgument(self) -> None:
        """
        RCPT without an argument after EHLO gets the long syntax reply.
        """
        self.assertEqual(self.client.command("RCPT"), RCPT_SYNTAX_EXT)

    def test_rcptWithoutTo(self) -> None:
        """
        RCPT whose argument does not start with C{TO:} is a syntax error.
        """
        self.assertEqual(self.client.command("RCPT <b@example.com>"), RCPT_SYNTAX_EXT)
        self.assertEqual(
            self.client.command("RCPT FROM:<b@example.com>"), RCPT_SYNTAX_EXT
        )
        self.assertEqual(self.client.server.envelope.rcpt_tos, [])

    def test_rcptSyntaxAfterHelo(self) -> None:
        """
        After HELO the RCPT syntax reply does not mention parameters, and
        parameters are a syntax error.
        """
        tester = self.ready(greet="HELO")
        tester.command("MAIL FROM:<a@example.com>")
        self.assertEqual(tester.command("RCPT"), RCPT_SYNTAX)
        self.assertEqual(
            tester.command("RCPT TO:<b@example.com> NOTIFY=NEVER"), RCPT_SYNTAX
        )

    def test_rcptParameter(self) -> None:
        """
        Any RCPT parameter but DSN's gets C{555 RCPT TO parameters not
        recognized or not implemented}; DSN's too when C{dsn} is off.
        """
        self.assertEqual(
            self.client.command("RCPT TO:<b@example.com> SIZE=1"),
            Reply(555, "RCPT TO parameters not recognized or not implemented"),
        )
        self.client = self.ready(dsn=False)
        self.client.command("MAIL FROM:<a@example.com>")
        for parameter in ("NOTIFY=NEVER", "ORCPT=rfc822;b@example.com", "SIZE=1"):
            self.assertEqual(
                self.client.command(f"RCPT TO:<b@example.com> {parameter}"),
                Reply(555, "RCPT TO parameters not recognized or not implemented"),
            )
        self.assertEqual(self.client.server.envelope.rcpt_tos, [])

    def test_nullRecipient(self) -> None:
        """
        C{RCPT TO:<>} is refused with 553.
        """
        reply = self.client.command("RCPT TO:<>")
        self.assertEqual(reply.code, 553)
        self.assertEqual(self.client.server.envelope.rcpt_tos, [])

    def test_recipientWithoutDomain(self) -> None:
        """
        A recipient without a domain is refused with 553.
        """
        self.assertEqual(
            self.client.command("RCPT TO:<user>"),
            Reply(553, "5.1.3 Error: address must have a domain"),
        )
        self.assertEqual(self.client.server.envelope.rcpt_tos, [])

    def test_postmaster(self) -> None:
        """
        C{Postmaster} without a domain is accepted as a recipient, in any
        case.
        """
        self.assertEqual(self.client.command("RCPT TO:<Postmaster>"), OK)
        self.assertEqual(self.client.command("RCPT TO:<postmaster>"), OK)
        self.assertEqual(
            self.client.server.envelope.rcpt_tos, ["Postmaster", "postmaster"]
        )

    def test_malformedRecipient(self) -> None:
        """
        A malformed recipient gets C{553 5.1.3 Error: malformed address}.
        """
        self.assertEqual(
            self.client.command("RCPT TO:<b@ex ample.com>"),
            Reply(553, "5.1.3 Error: malformed address"),
        )

    def test_recipientAddedInOrder(self) -> None:
        """
        Accepted recipients are appended to C{rcpt_tos}.
        """
        self.assertEqual(self.client.command("RCPT TO:<b@example.com>"), OK)
        self.assertEqual(self.client.command("rcpt to:<c@example.com>"), OK)
        self.assertEqual(
            self.client.server.envelope.rcpt_tos, ["b@example.com", "c@example.com"]
        )


class DataTests(ProtocolTestCase):
    """
    The DATA phase.
    """

    def finish(self, tester: SMTPTester, data: bytes) -> list[Reply]:
        """
        Send C{data} (which should end the message) and return the replies.
        """
        tester.send(data)
        return tester.replies()

    def test_contentByteExact(self) -> None:
        """
        The handler gets the message as bytes, byte for byte, final CRLF
        kept, in C{content} and C{original_content}.
        """
        handler = Collector()
        tester = self.inData(handler)
        message = b"Subject: Hi\r\n\r\nBody \xc3\xa9\xff\x00 line\r\n\r\nlast\r\n"
        self.assertEqual(self.finish(tester, message + b".\r\n"), [OK])
        [(sender, rcpts, content, original)] = handler.messages
        self.assertEqual((sender, rcpts), ("a@example.com", ["b@example.com"]))
        self.assertIsInstance(content, bytes)
        self.assertEqual(content, message)
        self.assertEqual(original, message)

    def test_dotUnstuffing(self) -> None:
        """
        A leading dot is removed from every line that has one, the first
        line included.
        """
        handler = Collector()
        tester = self.inData(handler)
        self.finish(tester, b"..first\r\nmiddle\r\n..\r\n...three\r\n.x\r\n.\r\n")
        self.assertEqual(
            handler.messages[0][2], b".first\r\nmiddle\r\n.\r\n..three\r\nx\r\n"
        )
        self.assertEqual(handler.messages[0][3], handler.messages[0][2])

    def test_emptyMessage(self) -> None:
        """
        A lone dot right after 354 ends an empty message.
        """
        handler = Collector()
        tester = self.inData(handler)
        self.assertEqual(self.finish(tester, b".\r\n"), [OK])
        self.assertEqual(handler.messages[0][2], b"")

    def test_commandsInDataAreContent(self) -> None:
        """
        Lines that look like commands inside the data are content.
        """
        handler = Collector()
        tester = self.inData(handler)
        body = b"QUIT\r\nRSET\r\nMAIL FROM:<x@example.com>\r\n"
        self.assertEqual(self.finish(tester, body + b".\r\n"), [OK])
        self.assertEqual(handler.messages[0][2], body)
        self.assertFalse(tester.closed)

    def test_terminatorSplit(self) -> None:
        """
        The end of data is found when it is split across reads, and the
        content is the same as when sent at once.
        """
        handler = Collector()
        tester = self.inData(handler)
        message = b"a\r\n.b\r\n\r\nc\r\n.\r\n"
        for i in range(len(message)):
            tester.send(message[i : i + 1])
            if i < len(message) - 1:
                self.assertEqual(tester.replies(), [])
        self.assertEqual(tester.replies(), [OK])
        self.assertEqual(handler.messages[0][2], b"a\r\nb\r\n\r\nc\r\n")

    def test_decodeData(self) -> None:
        """
        With C{decode_data} the content is C{str} and C{original_content}
        stays bytes.
        """
        handler = Collector()
        tester = self.inData(handler, decode_data=True)
        self.finish(tester, b"Hello\r\n..dot\r\n.\r\n")
        [(_, _, content, original)] = handler.messages
        self.assertEqual(content, "Hello\r\n.dot\r\n")
        self.assertEqual(original, b"Hello\r\n.dot\r\n")

    def test_decodeDataStrictAscii(self) -> None:
        """
        With C{decode_data} and without SMTPUTF8, 8-bit data (which 8BITMIME,
        not offered then, would have allowed) gets C{500 Error: strict ASCII
        mode}, as in aiosmtpd, and no message.
        """
        handler = Collector()
        tester = self.inData(handler, decode_data=True)
        self.assertEqual(
            self.finish(tester, "naïve\r\n.\r\n".encode()),
            [Reply(500, "Error: strict ASCII mode")],
        )
        self.assertEqual(handler.messages, [])
        self.assertEqual(tester.command("NOOP"), OK)

    def test_decodeDataUtf8(self) -> None:
        """
        With C{decode_data} and SMTPUTF8 offered, 8-bit data is decoded as
        UTF-8 whether or not MAIL asked for SMTPUTF8 (as aiosmtpd does);
        bytes that are not UTF-8 become lone surrogates, so nothing is
        refused and C{original_content} is still exact.
        """
        handler = Collector()
        tester = self.inData(handler, decode_data=True, enable_SMTPUTF8=True)
        data = "naïve café\r\n".encode() + b"\xff\xfe\r\n"
        self.assertEqual(self.finish(tester, data + b".\r\n"), [OK])
        [(_, _, content, original)] = handler.messages
        self.assertEqual(content, "naïve café\r\n\udcff\udcfe\r\n")
        self.assertEqual(original, data)
        self.assertEqual(content.encode("utf-8", "surrogateescape"), original)

    def test_decodeDataSmtputf8Offers8BitMime(self) -> None:
        """
        With C{decode_data} and SMTPUTF8, EHLO offers 8BITMIME too, as RFC
        6531 section 3.1 requires, and MAIL takes C{BODY=8BITMIME}.
        """
        tester = self.makeTester(decode_data=True, enable_SMTPUTF8=True)
        keywords = tester.command("EHLO c.example").lines
        self.assertIn("8BITMIME", keywords)
        self.assertIn("SMTPUTF8", keywords)
        self.assertEqual(tester.command("MAIL FROM:<a@example.com> BODY=8BITMIME"), OK)
        self.assertEqual(tester.server.envelope.mail_options, ["BODY=8BITMIME"])

    def test_envelopeResetAfterData(self) -> None:
        """
        After the message, the server has a new empty envelope and the
        handler's envelope keeps its values.
        """
        handler = Collector()
        tester = self.inData(handler)
        old = tester.server.envelope
        self.finish(tester, b"x\r\n.\r\n")
        self.assertIsNot(tester.server.envelope, old)
        self.assertIsNone(tester.server.envelope.mail_from)
        self.assertEqual(tester.server.envelope.rcpt_tos, [])
        self.assertIs(handler.envelopes[0], old)
        self.assertEqual(old.mail_from, "a@example.com")
        self.assertEqual(tester.command("RCPT TO:<b@example.com>"), NEED_MAIL)

    def test_twoTransactions(self) -> None:
        """
        A second transaction on the same connection is independent of the
        first.
        """
        handler = Collector()
        tester = self.ready(handler)
        tester.sendmail("a@example.com", ["b@example.com"], b"one\r\n", helo=None)
        tester.sendmail("c@example.com", ["d@example.com"], b"two\r\n", helo=None)
        self.assertEqual(
            handler.messages,
            [
                ("a@example.com", ["b@example.com"], b"one\r\n", b"one\r\n"),
                ("c@example.com", ["d@example.com"], b"two\r\n", b"two\r\n"),
            ],
        )

    def test_sizeLimitAfterDot(self) -> None:
        """
        Data over the size limit is read to its end and answered with
        C{552 Error: Too much mail data} only after the final dot; the
        handler is not called.
        """
        handler = Collector()
        tester = self.inData(handler, data_size_limit=100)
        for _ in range(10):
            tester.send(b"0123456789" * 3 + b"\r\n")
            self.assertEqual(tester.replies(), [])
        tester.send(b"QUIT\r\n")
        self.assertEqual(tester.replies(), [])
        self.assertFalse(tester.closed)
        self.assertEqual(
            self.finish(tester, b".\r\n"), [Reply(552, "Error: Too much mail data")]
        )
        self.assertEqual(handler.messages, [])

    def test_sizeLimitResetsEnvelope(self) -> None:
        """
        After a 552 the envelope is new and the next transaction works.
        """
        handler = Collector()
        tester = self.inData(handler, data_size_limit=100)
        self.finish(tester, b"x" * 200 + b"\r\n.\r\n")
        self.assertIsNone(tester.server.envelope.mail_from)
        self.assertEqual(tester.command("RCPT TO:<b@example.com>"), NEED_MAIL)
        replies = tester.sendmail("a@example.com", ["b@example.com"], b"small\r\n")
        self.assertEqual(replies[-1], OK)
        self.assertEqual(handler.messages[0][2], b"small\r\n")

    def test_sizeLimitExact(self) -> None:
        """
        A message of exactly C{data_size_limit} octets (CRLFs counted) is
        accepted.
        """
        handler = Collector()
        tester = self.inData(handler, data_size_limit=100)
        message = b"x" * 98 + b"\r\n"
        self.assertEqual(self.finish(tester, message + b".\r\n"), [OK])
        self.assertEqual(handler.messages[0][2], message)

    def test_sizeLimitCountsUnstuffed(self) -> None:
        """
        The size is counted after dot-unstuffing.
        """
        handler = Collector()
        tester = self.inData(handler, data_size_limit=10)
        self.assertEqual(self.finish(tester, b"..1234\r\n..\r\n.\r\n"), [OK])
        self.assertEqual(handler.messages[0][2], b".1234\r\n.\r\n")

    def test_sizeLimitOneOver(self) -> None:
        """
        One octet over the limit is refused.
        """
        tester = self.inData(data_size_limit=100)
        self.assertEqual(
            self.finish(tester, b"x" * 99 + b"\r\n.\r\n"),
            [Reply(552, "Error: Too much mail data")],
        )

    def test_longDataLine(self) -> None:
        """
        A data line of 1000 octets plus CRLF gets C{500 Line too long (see
        RFC5321 4.5.3.1.6)} after the dot; 999 plus CRLF is fine.
        """
        handler = Collector()
        tester = self.inData(handler)
        self.assertEqual(self.finish(tester, b"x" * 999 + b"\r\n.\r\n"), [OK])
        tester.command("MAIL FROM:<a@example.com>")
        tester.command("RCPT TO:<b@example.com>")
        tester.command("DATA")
        tester.send(b"y" * 1000 + b"\r\nmore\r\n")
        self.assertEqual(tester.replies(), [])
        self.assertEqual(
            self.finish(tester, b".\r\n"),
            [Reply(500, "Line too long (see RFC5321 4.5.3.1.6)")],
        )
        self.assertEqual(len(handler.messages), 1)
        self.assertIsNone(tester.server.envelope.mail_from)
        self.assertOpen(tester)

    def test_longDataLineInChunks(self) -> None:
        """
        A long data line split across reads is detected too.
        """
        handler = Collector()
        tester = self.inData(handler)
        for _ in range(20):
            tester.send(b"z" * 60)
        self.assertEqual(
            self.finish(tester, b"\r\n.\r\n"),
            [Reply(500, "Line too long (see RFC5321 4.5.3.1.6)")],
        )
        self.assertEqual(handler.messages, [])

    def test_bareLfRejected(self) -> None:
        """
        By default a bare LF in the data gets 550 after the dot, and the
        handler is not called.
        """
        handler = Collector()
        tester = self.inData(handler)
        [reply] = self.finish(tester, b"one\ntwo\r\n.\r\n")
        self.assertEqual(reply.code, 550)
        self.assertEqual(handler.messages, [])
        self.assertIsNone(tester.server.envelope.mail_from)
        self.assertOpen(tester)

    def test_bareCrRejected(self) -> None:
        """
        By default a bare CR in the data gets 550.
        """
        handler = Collector()
        tester = self.inData(handler)
        [reply] = self.finish(tester, b"one\rtwo\r\n.\r\n")
        self.assertEqual(reply.code, 550)
        self.assertEqual(handler.messages, [])

    def test_bareNewlinesAllowed(self) -> None:
        """
        With C{bare_newline="allow"} bare CR and LF are kept byte for byte.
        """
        handler = Collector()
        tester = self.inData(handler, bare_newline="allow")
        message = b"one\ntwo\rthree\n\rfour\r\n"
        self.assertEqual(self.finish(tester, message + b".\r\n"), [OK])
        self.assertEqual(handler.messages[0][2], message)

    def smuggle(self, sequence: bytes, **options: Any) -> tuple[Collector, list]:
        """
        Send a message that tries to end early with C{sequence} and to
        smuggle a second transaction after it.
        """
        handler = Collector()
        tester = self.inData(handler, **options)
        tester.send(
            b"Subject: real\r\n\r\nbody"
            + sequence
            + b"MAIL FROM:<spoof@victim.example>\r\nRCPT TO:<x@example.com>\r\n"
            b"DATA\r\nSubject: forged\r\n\r\nforged\r\n.\r\n"
        )
        replies = tester.replies()
        self.assertIsNone(tester.server.envelope.mail_from)
        self.assertEqual(tester.command("RCPT TO:<x@example.com>"), NEED_MAIL)
        return handler, replies

    def test_smugglingAllowed(self) -> None:
        """
        With bare newlines allowed, none of C{LF.CRLF}, C{LF.LF},
        C{CR.CR}, C{CR.CRLF} ends the data: one message, one reply, the
        smuggled commands inside the content.
        """
        for sequence in (b"\n.\r\n", b"\n.\n", b"\r.\r", b"\r.\r\n"):
            handler, replies = self.smuggle(sequence, bare_newline="allow")
            self.assertEqual(replies, [OK], sequence)
            self.assertEqual(len(handler.messages), 1, sequence)
            content = handler.messages[0][2]
            self.assertIn(b"MAIL FROM:<spoof@victim.example>\r\n", content)
            self.assertTrue(content.endswith(b"forged\r\n"), sequence)

    def test_smugglingRejected(self) -> None:
        """
        With the default policy the smuggling sequences get one 550 and the
        handler is never called.
        """
        for sequence in (b"\n.\r\n", b"\n.\n", b"\r.\r", b"\r.\r\n"):
            handler, replies = self.smuggle(sequence)
            self.assertEqual([r.code for r in replies], [550], sequence)
            self.assertEqual(handler.messages, [], sequence)

    def test_pipelinedAfterDot(self) -> None:
        """
        Commands in the same read as the final dot are answered after the
        message's reply.
        """
        handler = Collector()
        tester = self.inData(handler)
        tester.send(b"body\r\n.\r\nNOOP\r\nQUIT\r\n")
        self.assertEqual(tester.replies(), [OK, OK, Reply(221, "Bye")])
        self.assertEqual(handler.messages[0][2], b"body\r\n")

    def test_handlerStatus(self) -> None:
        """
        The status returned by C{handle_DATA} is the reply to the data.
        """
        tester = self.inData(Collector("250 2.0.0 Queued as 42"))
        self.assertEqual(
            self.finish(tester, b"x\r\n.\r\n"), [Reply(250, "2.0.0 Queued as 42")]
        )

    def test_refusedStillResets(self) -> None:
        """
        A refused message also leaves a new envelope behind.
        """
        tester = self.inData(Collector("554 5.7.1 No thanks"))
        self.assertEqual(
            self.finish(tester, b"x\r\n.\r\n"), [Reply(554, "5.7.1 No thanks")]
        )
        self.assertIsNone(tester.server.envelope.mail_from)
        self.assertEqual(tester.command("MAIL FROM:<a@example.com>"), OK)


class MessageDataSplitTests(ProtocolTestCase):
    """
    The message data reads the same however the stream is cut into chunks,
    the end of the data included.
    """

    def transcript(self, chunks: list[bytes]) -> Any:
        """
        Feed a new server C{chunks}; return what it wrote, the contents its
        handler received and whether it closed.
        """
        handler = Collector()
        tester = self.makeTester(handler)
        for chunk in chunks:
            tester.send(chunk)
        contents = [message[2] for message in handler.messages]
        return tester.transport.value(), contents, tester.closed

    def test_dotStuffing(self) -> None:
        """
        Dot-stuffed lines, a line that is only a stuffed dot and the end of
        the data, followed by commands in the same stream, give the same
        message and replies in any split.
        """
        data = (
            b"EHLO c.example\r\nMAIL FROM:<a@example.com>\r\n"
            b"RCPT TO:<b@example.com>\r\nDATA\r\n"
            b"Subject: dots\r\n\r\n..one\r\n..\r\n...\r\n.x\r\nend.\r\n.\r\n"
            b"NOOP\r\nQUIT\r\n"
        )
        written, contents, closed = assertSplitsAgree(self, self.transcript, data)
        codes = [reply.code for reply in parseReplies(written)]
        self.assertEqual(codes, [220, 250, 250, 250, 354, 250, 250, 221])
        self.assertEqual(
            contents, [b"Subject: dots\r\n\r\n.one\r\n.\r\n..\r\nx\r\nend.\r\n"]
        )
        self.assertTrue(closed)

    def test_emptyMessageThenAnother(self) -> None:
        """
        An empty message (the end of the data right after the 354) and a
        second transaction read the same in any split.
        """
        data = (
            b"HELO c.example\r\nMAIL FROM:<>\r\nRCPT TO:<b@example.com>\r\n"
            b"DATA\r\n.\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<c@example.com>\r\n"
            b"DATA\r\nHi\r\n.\r\n"
        )
        written, contents, closed = assertSplitsAgree(self, self.transcript, data)
        codes = [reply.code for reply in parseReplies(written)]
        self.assertEqual(codes, [220, 250, 250, 250, 354, 250, 250, 250, 354, 250])
        self.assertEqual(contents, [b"", b"Hi\r\n"])
        self.assertFalse(closed)

    def test_smugglingInAnySplit(self) -> None:
        """
        A smuggled end of data (C{LF.LF}) and the commands after it stay in
        the refused message in any split: one 550, nothing run.
        """
        data = (
            b"EHLO c.example\r\nMAIL FROM:<a@example.com>\r\n"
            b"RCPT TO:<b@example.com>\r\nDATA\r\n"
            b"Hi\n.\nMAIL FROM:<spoof@victim.example>\r\n.\r\nNOOP\r\n"
        )
        written, contents, closed = assertSplitsAgree(self, self.transcript, data)
        codes = [reply.code for reply in parseReplies(written)]
        self.assertEqual(codes, [220, 250, 250, 250, 354, 550, 250])
        self.assertEqual(contents, [])


TOO_MANY_RECIPIENTS = Reply(452, "Too many recipients")


class EnhancedSMTP(SMTP):
    """
    A server that gives its replies enhanced status codes.
    """

    enhancedStatusCodes = True


class MaxRecipientsTests(ProtocolTestCase):
    """
    The C{max_recipients} option: a RCPT beyond it gets C{452} and the
    transaction goes on with the recipients accepted.
    """

    def recipients(self, count: int, start: int = 0) -> bytes:
        """
        C{count} RCPT commands, for distinct recipients.
        """
        return b"".join(
            b"RCPT TO:<r%d@example.com>\r\n" % i for i in range(start, start + count)
        )

    def test_overLimit(self) -> None:
        """
        The RCPT beyond the limit gets C{452 Too many recipients}; DATA
        delivers to those accepted.
        """
        handler = Collector()
        tester = self.ready(handler, max_recipients=100)
        self.assertEqual(tester.command("MAIL FROM:<a@example.com>"), OK)
        tester.send(self.recipients(102))
        self.assertEqual(tester.replies(), [OK] * 100 + [TOO_MANY_RECIPIENTS] * 2)
        self.assertEqual(tester.command("DATA"), GO_AHEAD)
        tester.send(b"x\r\n.\r\n")
        self.assertEqual(tester.replies(), [OK])
        [(sender, recipients, content, _)] = handler.messages
        self.assertEqual(recipients, [f"r{i}@example.com" for i in range(100)])

    def test_default(self) -> None:
        """
        By default, Postfix's C{smtpd_recipient_limit}: 1000 recipients.
        """
        tester = self.ready()
        self.assertEqual(tester.command("MAIL FROM:<a@example.com>"), OK)
        tester.send(self.recipients(1001))
        self.assertEqual(tester.replies(), [OK] * 1000 + [TOO_MANY_RECIPIENTS])
        self.assertEqual(len(tester.server.envelope.rcpt_tos), 1000)

    def test_zeroIsNoLimit(self) -> None:
        """
        C{max_recipients=0} sets no limit.
        """
        tester = self.ready(max_recipients=0)
        self.assertEqual(tester.command("MAIL FROM:<a@example.com>"), OK)
        tester.send(self.recipients(1500))
        self.assertEqual(tester.replies(), [OK] * 1500)

    def test_enhancedStatusCode(self) -> None:
        """
        With enhanced status codes, the reply is C{452 4.5.3 Too many
        recipients} (RFC 3463: too many recipients).
        """
        tester = self.ready(protocol=EnhancedSMTP, max_recipients=100)
        tester.command("MAIL FROM:<a@example.com>")
        tester.send(self.recipients(101))
        self.assertEqual(tester.replies()[-1], Reply(452, "4.5.3 Too many recipients"))

    def test_newTransaction(self) -> None:
        """
        The limit is per transaction: after the message, the next one takes
        as many recipients again.
        """
        handler = Collector()
        tester = self.ready(handler, max_recipients=100)
        for _ in range(2):
            tester.command("MAIL FROM:<a@example.com>")
            tester.send(self.recipients(101) + b"DATA\r\nx\r\n.\r\n")
            self.assertEqual(
                tester.replies(), [OK] * 100 + [TOO_MANY_RECIPIENTS, GO_AHEAD, OK]
            )
        self.assertEqual([len(m[1]) for m in handler.messages], [100, 100])

    def test_notCountedAsErrors(self) -> None:
        """
        The C{452}s do not count towards C{hard_error_limit} until the
        transaction has had as many again as the limit (Postfix's
        C{smtpd_recipient_overshoot_limit}); each one beyond counts.
        """
        tester = self.ready(max_recipients=100, hard_error_limit=3)
        tester.command("MAIL FROM:<a@example.com>")
        tester.send(self.recipients(200))
        self.assertEqual(tester.replies(), [OK] * 100 + [TOO_MANY_RECIPIENTS] * 100)
        self.assertFalse(tester.closed)
        tester.send(self.recipients(3, 200))
        self.assertEqual(
            tester.replies(),
            [TOO_MANY_RECIPIENTS] * 3
            + [Reply(421, f"4.7.0 {HOST} Error: too many errors")],
        )

    def test_overshootPerTransaction(self) -> None:
        """
        A new transaction starts the count of the recipients refused again.
        """
        tester = self.ready(max_recipients=100, hard_error_limit=1)
        for _ in range(3):
            tester.command("MAIL FROM:<a@example.com>")
            tester.send(self.recipients(200) + b"RSET\r\n")
            self.assertEqual(
                tester.replies(), [OK] * 100 + [TOO_MANY_RECIPIENTS] * 100 + [OK]
            )
        self.assertFalse(tester.closed)

    def test_syntaxFirst(self) -> None:
        """
        A malformed RCPT beyond the limit gets its syntax error, not C{452}.
        """
        tester = self.ready(max_recipients=100)
        tester.command("MAIL FROM:<a@example.com>")
        tester.send(self.recipients(100))
        tester.replies()
        self.assertEqual(tester.command("RCPT TO:"), RCPT_SYNTAX_EXT)
        self.assertEqual(tester.command("RCPT TO:<x@example.com>"), TOO_MANY_RECIPIENTS)


class ControlCharacterTests(ProtocolTestCase):
    """
    No control character reaches C{mail_from} or C{rcpt_tos}, nor the
    hooks: addresses and parameters holding one are refused.
    """

    CONTROLS = ["\x00", "\x1b", "\x7f", "\t", "\x01", "\x1f"]

    def assertRefused(self, tester: SMTPTester, forms: list[tuple[str, Reply]]) -> None:
        """
        Send each of C{forms} (a command line with C{{}} for the control
        character, and its reply) with each of L{CONTROLS}, and check the
        reply; a control character that is white space at the end of the
        line is left out, since it is stripped from the argument.
        """
        for form, reply in forms:
            for control in self.CONTROLS:
                if not (control.isspace() and form.endswith(" {}")):
                    line = form.format(control)
                    self.assertEqual(tester.command(line), reply, repr(line))

    def test_mail(self) -> None:
        """
        MAIL with a control character in its address gets C{553}, in its
        parameters C{501}.
        """
        handler = HookRecorder()
        tester = self.ready(handler, hard_error_limit=0)
        self.assertRefused(
            tester,
            [
                ("MAIL FROM:<a{}b@example.com>", ADDRESS_REFUSED),
                ("MAIL FROM:<ab@exa{}mple.com>", ADDRESS_REFUSED),
                ('MAIL FROM:<"a{}b"@example.com>', ADDRESS_REFUSED),
                ("MAIL FROM:<a@example.com{}>", ADDRESS_REFUSED),
                ("MAIL FROM:{}<a@example.com>", ADDRESS_REFUSED),
                ("MAIL FROM:<a@example.com> SIZE=1{}0", MAIL_SYNTAX_EXT),
                ("MAIL FROM:<a@example.com> BODY=8BIT{}MIME", MAIL_SYNTAX_EXT),
                ("MAIL FROM:<a@example.com>{}SIZE=10", MAIL_SYNTAX_EXT),
            ],
        )
        self.assertIsNone(tester.server.envelope.mail_from)
        self.assertEqual(handler.calls, [])

    def test_rcpt(self) -> None:
        """
        RCPT with a control character in its address gets C{553}, in its
        parameters C{501}.
        """
        handler = HookRecorder()
        tester = self.ready(handler, hard_error_limit=0)
        self.assertEqual(tester.command("MAIL FROM:<a@example.com>"), OK)
        self.assertRefused(
            tester,
            [
                ("RCPT TO:<a{}b@example.com>", ADDRESS_REFUSED),
                ('RCPT TO:<"a{}b"@example.com>', ADDRESS_REFUSED),
                ("RCPT TO:<postmaster{}>", ADDRESS_REFUSED),
                ("RCPT TO:<a@example.com> X{}=1", RCPT_SYNTAX_EXT),
                ("RCPT TO:<a@example.com> {}", RCPT_SYNTAX_EXT),
            ],
        )
        self.assertEqual(tester.server.envelope.rcpt_tos, [])
        self.assertEqual(handler.calls, [("MAIL", "a@example.com")])

    def test_rawBytes(self) -> None:
        """
        The same on the wire, as raw bytes: NUL, ESC and DEL in a path.
        """
        tester = self.ready()
        tester.send(
            b"MAIL FROM:<a\x00b@example.com>\r\nMAIL FROM:<a@example.com>\r\n"
            b"RCPT TO:<c\x1bd@example.com>\r\nRCPT TO:<e\x7ff@example.com>\r\n"
        )
        self.assertEqual(
            tester.transport.value().split(b"\r\n")[-5:],
            [
                b"553 5.1.3 Error: malformed address",
                b"250 OK",
                b"553 5.1.3 Error: malformed address",
                b"553 5.1.3 Error: malformed address",
                b"",
            ],
        )


ADDRESS_REFUSED = Reply(553, "5.1.3 Error: malformed address")


class HookRecorder(Collector):
    """
    A L{Collector} that records the calls of C{handle_MAIL} and
    C{handle_RCPT}, and raises L{Boom} from C{handle_RCPT} for the
    addresses in C{failing}.
    """

    def __init__(self, failing: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.failing = failing
        self.calls: list[tuple[str, str]] = []

    def handle_MAIL(self, server, session, envelope, address, options):
        self.calls.append(("MAIL", address))

    def handle_RCPT(self, server, session, envelope, address, options):
        self.calls.append(("RCPT", address))
        if address in self.failing:
            raise Boom(SECRET)


class HookExceptionTests(ProtocolTestCase):
    """
    An exception in C{handle_MAIL} or C{handle_RCPT} answers that command
    and keeps the transaction, as aiosmtpd does; one in C{handle_DATA}
    ends it (RFC 5321 section 4.1.1.4).
    """

    def test_rcptRaises(self) -> None:
        """
        After a C{handle_RCPT} that raised, later RCPTs get C{250} and DATA
        delivers to exactly the recipients accepted.
        """
        handler = HookRecorder(failing=("bad@example.com",))
        tester = self.ready(handler)
        tester.send(
            b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
            b"RCPT TO:<bad@example.com>\r\nRCPT TO:<c@example.com>\r\n"
            b"DATA\r\nHello\r\n.\r\n"
        )
        self.assertEqual(tester.replies(), [OK, OK, LOCAL_ERROR, OK, GO_AHEAD, OK])
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 1)
        self.assertEqual(
            handler.messages,
            [
                (
                    "a@example.com",
                    ["b@example.com", "c@example.com"],
                    b"Hello\r\n",
                    b"Hello\r\n",
                )
            ],
        )

    def test_onlyRecipientRaises(self) -> None:
        """
        When the only recipient's C{handle_RCPT} raised, the transaction is
        still there, without recipients: DATA wants a RCPT, not a MAIL.
        """
        tester = self.ready(HookRecorder(failing=("bad@example.com",)))
        self.assertEqual(tester.command("MAIL FROM:<a@example.com>"), OK)
        self.assertEqual(tester.command("RCPT TO:<bad@example.com>"), LOCAL_ERROR)
        self.assertEqual(tester.command("DATA"), NEED_RCPT)
        self.assertEqual(tester.command("MAIL FROM:<b@example.com>"), NESTED_MAIL)
        self.assertEqual(tester.server.envelope.mail_from, "a@example.com")
        self.flushLoggedErrors(Boom)

    def test_rcptRaisesLater(self) -> None:
        """
        A C{handle_RCPT} whose L{Deferred} fails later: the same, and the
        commands pipelined meanwhile are answered after its reply.
        """
        pending: list[Deferred] = []

        class Handler(Collector):
            def handle_RCPT(self, server, session, envelope, address, options):
                pending.append(Deferred())
                return pending[-1]

        handler = Handler()
        tester = self.ready(handler)
        tester.send(
            b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
            b"RCPT TO:<c@example.com>\r\nDATA\r\nHello\r\n.\r\n"
        )
        self.assertEqual(tester.replies(), [OK])
        pending[0].errback(Boom(SECRET))
        self.assertEqual(tester.replies(), [LOCAL_ERROR])
        pending[1].callback(None)
        self.assertEqual(tester.replies(), [OK, GO_AHEAD, OK])
        self.assertEqual(handler.messages[0][1], ["c@example.com"])
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 1)

    def test_handleExceptionAnswers(self) -> None:
        """
        C{handle_exception}'s reply answers the RCPT, even when it comes
        later, and the transaction goes on.
        """
        answer: list[Deferred] = []

        class Handler(HookRecorder):
            def handle_exception(self, error):
                answer.append(Deferred())
                return answer[-1]

        handler = Handler(failing=("bad@example.com",))
        tester = self.ready(handler)
        tester.send(
            b"MAIL FROM:<a@example.com>\r\nRCPT TO:<bad@example.com>\r\n"
            b"RCPT TO:<c@example.com>\r\n"
        )
        self.assertEqual(tester.replies(), [OK])
        answer[0].callback("450 4.2.0 Mailbox busy")
        self.assertEqual(tester.replies(), [Reply(450, "4.2.0 Mailbox busy"), OK])
        self.assertEqual(tester.server.envelope.rcpt_tos, ["c@example.com"])
        self.flushLoggedErrors(Boom)

    def test_mailRaises(self) -> None:
        """
        After a C{handle_MAIL} that raised, there is no transaction (none
        was started, as with aiosmtpd): RCPT wants a MAIL, and a new MAIL
        is not nested.
        """

        class Handler(Collector):
            def handle_MAIL(self, server, session, envelope, address, options):
                if address == "bad@example.com":
                    raise Boom(SECRET)

        tester = self.ready(Handler())
        tester.send(
            b"MAIL FROM:<bad@example.com>\r\nRCPT TO:<b@example.com>\r\n"
            b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
        )
        self.assertEqual(tester.replies(), [LOCAL_ERROR, NEED_MAIL, OK, OK])
        self.assertEqual(tester.server.envelope.mail_from, "a@example.com")
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 1)

    def test_hookChangesKept(self) -> None:
        """
        What a raising C{handle_RCPT} did to the envelope stays, as with
        aiosmtpd, which leaves the envelope alone.
        """

        class Handler(Collector):
            def handle_RCPT(self, server, session, envelope, address, options):
                envelope.rcpt_tos.append(address)
                raise Boom(SECRET)

        tester = self.ready(Handler())
        tester.command("MAIL FROM:<a@example.com>")
        self.assertEqual(tester.command("RCPT TO:<b@example.com>"), LOCAL_ERROR)
        self.assertEqual(tester.server.envelope.rcpt_tos, ["b@example.com"])
        self.flushLoggedErrors(Boom)

    def test_mailHookChangesKept(self) -> None:
        """
        What a raising C{handle_MAIL} did to the envelope stays too, as with
        aiosmtpd: here the sender it set, so the transaction is open.
        """

        class Handler(Collector):
            def handle_MAIL(self, server, session, envelope, address, options):
                envelope.mail_from = address
                raise Boom(SECRET)

        tester = self.ready(Handler())
        envelope = tester.server.envelope
        self.assertEqual(tester.command("MAIL FROM:<a@example.com>"), LOCAL_ERROR)
        self.assertIs(tester.server.envelope, envelope)
        self.assertEqual(envelope.mail_from, "a@example.com")
        self.assertEqual(tester.command("RCPT TO:<b@example.com>"), OK)
        self.flushLoggedErrors(Boom)

    def test_dataRaisesEndsTransaction(self) -> None:
        """
        An exception in C{handle_DATA} still ends the transaction: the next
        RCPT wants a MAIL.
        """

        class Handler(Collector):
            def handle_DATA(self, server, session, envelope):
                raise Boom(SECRET)

        tester = self.inData(Handler())
        tester.send(b"Hello\r\n.\r\nRCPT TO:<c@example.com>\r\n")
        self.assertEqual(tester.replies(), [LOCAL_ERROR, NEED_MAIL])
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 1)

    def test_thenFailsEndsTransaction(self) -> None:
        """
        A C{handle_RCPT} that returns something that is no reply is a bug of
        the handler that the error policy answers as before: C{451} and the
        transaction ended.
        """

        class Handler(Collector):
            def handle_RCPT(self, server, session, envelope, address, options):
                return 550

        tester = self.ready(Handler())
        tester.command("MAIL FROM:<a@example.com>")
        self.assertEqual(tester.command("RCPT TO:<b@example.com>"), LOCAL_ERROR)
        self.assertIsNone(tester.server.envelope.mail_from)
        self.assertEqual(len(self.flushLoggedErrors(TypeError)), 1)


NESTED_MAIL = Reply(503, "Error: nested MAIL command")
