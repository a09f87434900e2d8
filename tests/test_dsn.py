"""
Tests for L{twisted_smtpd._dsn}: the DSN parameters of MAIL and RCPT (RFC
3461), REQUIRETLS (RFC 8689) and the parameters accepted by name, on the
wire and on the envelope. In memory: no sockets, no real time.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests._protocolsupport import OK, Collector, ProtocolTestCase
from tests.test_tls import certificates, implicitTester
from twisted_smtpd import SMTPFactory
from twisted_smtpd._dsn import RecipientDSN, decodeXtext, xtext
from twisted_smtpd.testing import Reply

MAIL_UNKNOWN = Reply(555, "MAIL FROM parameters not recognized or not implemented")
RCPT_UNKNOWN = Reply(555, "RCPT TO parameters not recognized or not implemented")


def malformed(name: str, reason: str) -> Reply:
    """
    The reply to a malformed DSN parameter.
    """
    return Reply(501, f"5.5.4 Error: malformed {name} parameter: {reason}")


class AdvertisedTests(ProtocolTestCase):
    """
    The DSN and REQUIRETLS EHLO keywords.
    """

    def test_dsnByDefault(self) -> None:
        """
        EHLO lists DSN by default.
        """
        self.assertIn("DSN", self.makeTester().command("EHLO c.example").lines)

    def test_dsnOff(self) -> None:
        """
        With C{dsn=False} EHLO does not list DSN and its parameters are
        unknown.
        """
        tester = self.makeTester(dsn=False)
        self.assertNotIn("DSN", tester.command("EHLO c.example").lines)
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> RET=FULL"), MAIL_UNKNOWN
        )

    def test_requireTLSNotInPlaintext(self) -> None:
        """
        REQUIRETLS is not listed outside TLS, even when on.
        """
        tester = self.makeTester(
            requiretls=True, tls_context=certificates(self).serverOptions()
        )
        self.assertNotIn("REQUIRETLS", tester.command("EHLO c.example").lines)

    def test_requireTLSOverTLS(self) -> None:
        """
        On a TLS session REQUIRETLS is listed when on, and not when off.
        """
        context = certificates(self).serverOptions()
        tester = implicitTester(self, Collector(), tls_context=context, requiretls=True)
        self.assertIn("REQUIRETLS", tester.command("EHLO c.example").lines)
        tester = implicitTester(self, Collector(), tls_context=context)
        self.assertNotIn("REQUIRETLS", tester.command("EHLO c.example").lines)

    def test_requireTLSNeedsContext(self) -> None:
        """
        C{requiretls} without a C{tls_context} is a L{ValueError}.
        """
        error = self.assertRaises(ValueError, SMTPFactory, Collector(), requiretls=True)
        self.assertIn("requiretls needs a tls_context", str(error))


class MailParameterTests(ProtocolTestCase):
    """
    RET and ENVID on MAIL.
    """

    def test_ret(self) -> None:
        """
        C{RET=FULL} or C{RET=hdrs} is accepted, kept upper-cased in
        C{mail_options} and as C{dsn_ret}.
        """
        for value, expected in (("FULL", "FULL"), ("hdrs", "HDRS")):
            tester = self.ready()
            reply = tester.command(f"MAIL FROM:<a@example.com> ret={value}")
            self.assertEqual(reply, OK)
            envelope = tester.server.envelope
            self.assertEqual(envelope.mail_options, [f"RET={expected}"])
            self.assertEqual(envelope.dsn_ret, expected)
            self.assertEqual(envelope.mail_parameters, {"RET": value})

    def test_badRet(self) -> None:
        """
        Any other RET value, or none, gets C{501} and starts nothing.
        """
        tester = self.ready()
        for parameter in ("RET=PARTIAL", "RET"):
            self.assertEqual(
                tester.command(f"MAIL FROM:<a@example.com> {parameter}"),
                malformed("RET", "FULL or HDRS"),
            )
        self.assertIsNone(tester.server.envelope.mail_from)
        self.assertIsNone(tester.server.envelope.dsn_ret)

    def test_envidDecodedAsSent(self) -> None:
        """
        ENVID is decoded from xtext as sent, not from the upper-cased
        C{mail_options} copy.
        """
        tester = self.ready()
        reply = tester.command("MAIL FROM:<a@example.com> ENVID=QQ+2Bid+3Dx.y")
        self.assertEqual(reply, OK)
        envelope = tester.server.envelope
        self.assertEqual(envelope.dsn_envid, "QQ+id=x.y")
        self.assertEqual(envelope.mail_options, ["ENVID=QQ+2BID+3DX.Y"])
        self.assertEqual(envelope.mail_parameters, {"ENVID": "QQ+2Bid+3Dx.y"})

    def test_envidLength(self) -> None:
        """
        ENVID may be 100 characters, not 101.
        """
        tester = self.ready()
        value = "e" * 100
        self.assertEqual(tester.command(f"MAIL FROM:<a@example.com> ENVID={value}"), OK)
        self.assertEqual(tester.server.envelope.dsn_envid, value)
        tester.command("RSET")
        self.assertEqual(
            tester.command(f"MAIL FROM:<a@example.com> ENVID={value}e"),
            malformed("ENVID", "longer than 100 characters"),
        )

    def test_envidNotXtext(self) -> None:
        """
        An ENVID that is not xtext, or decodes to a control character,
        gets C{501}.
        """
        tester = self.ready()
        for value in ("a+", "a+zz", "a+4", "+2"):
            self.assertEqual(
                tester.command(f"MAIL FROM:<a@example.com> ENVID={value}"),
                malformed("ENVID", "not xtext"),
            )
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> ENVID=a+0D+0Ab"),
            malformed("ENVID", "control character"),
        )
        self.assertIsNone(tester.server.envelope.mail_from)

    def test_onceEach(self) -> None:
        """
        RET or ENVID given twice gets C{501}.
        """
        tester = self.ready()
        for parameters in ("RET=FULL ret=HDRS", "ENVID=a ENVID=b"):
            keyword = parameters.partition("=")[0]
            self.assertEqual(
                tester.command(f"MAIL FROM:<a@example.com> {parameters}"),
                Reply(501, f"5.5.4 Error: {keyword} parameter given twice"),
            )
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> RET=FULL ENVID=x SIZE=10"), OK
        )

    def test_hookSees(self) -> None:
        """
        C{handle_MAIL} sees the decoded values on the envelope; when it
        refuses the sender, they are forgotten.
        """
        seen = []

        class Handler(Collector):
            async def handle_MAIL(self, server, session, envelope, address, options):
                seen.append((envelope.dsn_ret, envelope.dsn_envid, options))
                return "550 no"

        tester = self.ready(Handler())
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> RET=HDRS ENVID=x+2By"),
            Reply(550, "no"),
        )
        self.assertEqual(seen, [("HDRS", "x+y", ["RET=HDRS", "ENVID=X+2BY"])])
        envelope = tester.server.envelope
        self.assertEqual(
            (envelope.dsn_ret, envelope.dsn_envid, envelope.mail_parameters),
            (None, None, {}),
        )

    def test_envidRoom(self) -> None:
        """
        With DSN, a MAIL line may be 100 characters longer for ENVID (RFC
        3461 section 4), beyond SIZE's 26.
        """
        tester = self.ready()
        prefix = "MAIL FROM:<a@example.com> ENVID=e "
        line = prefix + "SIZE=" + "0" * (512 + 26 + 100 - len(prefix) - 6) + "1"
        self.assertEqual(len(line), 638)
        self.assertEqual(tester.command(line), OK)
        tester.command("RSET")
        self.assertEqual(
            tester.command(line + "0"), Reply(500, "Command line too long")
        )


class RcptParameterTests(ProtocolTestCase):
    """
    NOTIFY and ORCPT on RCPT.
    """

    def rcpt(self, parameters: str, **options: Any) -> Any:
        """
        Greet, send MAIL and one RCPT with C{parameters}; return the tester
        and the reply to RCPT.
        """
        tester = self.ready(**options)
        tester.command("MAIL FROM:<a@example.com>")
        return tester, tester.command(f"RCPT TO:<b@example.com> {parameters}")

    def test_notify(self) -> None:
        """
        NOTIFY lists of SUCCESS, FAILURE and DELAY, or NEVER alone, in any
        case, are accepted and recorded for the recipient.
        """
        for value, expected in (
            ("NEVER", ("NEVER",)),
            ("never", ("NEVER",)),
            ("SUCCESS,failure,DELAY", ("SUCCESS", "FAILURE", "DELAY")),
            ("DELAY", ("DELAY",)),
        ):
            tester, reply = self.rcpt(f"notify={value}")
            self.assertEqual(reply, OK)
            envelope = tester.server.envelope
            self.assertEqual(envelope.rcpt_dsn, [RecipientDSN(notify=expected)])
            self.assertEqual(envelope.rcpt_options, [f"NOTIFY={value.upper()}"])

    def test_badNotify(self) -> None:
        """
        NEVER with another value, an unknown value or an empty item gets
        C{501}, and no recipient is added.
        """
        for value in ("NEVER,SUCCESS", "SOMETIMES", "SUCCESS,", "SUCCESS,,DELAY"):
            tester, reply = self.rcpt(f"NOTIFY={value}")
            self.assertEqual(
                reply, malformed("NOTIFY", "NEVER alone or SUCCESS, FAILURE, DELAY")
            )
            self.assertEqual(tester.server.envelope.rcpt_tos, [])
        tester, reply = self.rcpt("NOTIFY")
        self.assertEqual(reply, malformed("NOTIFY", "missing value"))

    def test_orcpt(self) -> None:
        """
        ORCPT's address is decoded from xtext as sent; its addr-type is
        kept as sent.
        """
        tester, reply = self.rcpt("ORCPT=rfc822;Bob+2Bx+20y@Example.com NOTIFY=NEVER")
        self.assertEqual(reply, OK)
        envelope = tester.server.envelope
        self.assertEqual(
            envelope.rcpt_dsn,
            [RecipientDSN(notify=("NEVER",), orcpt=("rfc822", "Bob+x y@Example.com"))],
        )
        self.assertEqual(
            envelope.rcpt_options,
            ["ORCPT=RFC822;BOB+2BX+20Y@EXAMPLE.COM", "NOTIFY=NEVER"],
        )
        self.assertEqual(
            envelope.rcpt_parameters,
            [{"ORCPT": "rfc822;Bob+2Bx+20y@Example.com", "NOTIFY": "NEVER"}],
        )

    def test_badOrcpt(self) -> None:
        """
        An ORCPT without an addr-type, with a bad one, or with an address
        that is not xtext gets C{501}.
        """
        shape = malformed("ORCPT", "expected addr-type;address")
        for value, expected in (
            ("b@example.com", shape),
            (";b@example.com", shape),
            ("rfc(822);b@example.com", shape),
            ("rfc822;", shape),
            ("rfc822;b+4@example.com", malformed("ORCPT", "not xtext")),
            ("rfc822;b+00@example.com", malformed("ORCPT", "control character")),
        ):
            tester, reply = self.rcpt(f"ORCPT={value}")
            self.assertEqual(reply, expected, value)
            self.assertEqual(tester.server.envelope.rcpt_tos, [])

    def test_orcptLength(self) -> None:
        """
        An ORCPT value may be 500 characters, and the RCPT line as many
        longer (RFC 3461 section 4); 501 characters get C{501}.
        """
        value = "rfc822;" + "b" * 481 + "@example.com"
        self.assertEqual(len(value), 500)
        tester, reply = self.rcpt(f"ORCPT={value}")
        self.assertEqual(reply, OK)
        self.assertEqual(
            tester.server.envelope.rcpt_dsn[0].orcpt[1][-12:], "@example.com"
        )
        tester, reply = self.rcpt(f"ORCPT=b{value}")
        self.assertEqual(reply, malformed("ORCPT", "missing or too long"))

    def test_onceEach(self) -> None:
        """
        NOTIFY or ORCPT given twice gets C{501}.
        """
        for parameters in ("NOTIFY=NEVER NOTIFY=NEVER", "ORCPT=a;b orcpt=a;b"):
            keyword = parameters.partition("=")[0]
            tester, reply = self.rcpt(parameters)
            self.assertEqual(
                reply, Reply(501, f"5.5.4 Error: {keyword} parameter given twice")
            )

    def test_utf8Orcpt(self) -> None:
        """
        In an SMTPUTF8 transaction, C{ORCPT=utf-8;} takes UTF-8 and
        C{\\x{HEX}} escapes (RFC 6533).
        """
        tester = self.ready(enable_SMTPUTF8=True)
        tester.command("MAIL FROM:<a@example.com> SMTPUTF8")
        reply = tester.command(
            "RCPT TO:<j\u00f6rg@example.com> ORCPT=UTF-8;J\u00f6rg\\x{2B}x@example.com"
        )
        self.assertEqual(reply, OK)
        self.assertEqual(
            tester.server.envelope.rcpt_dsn,
            [RecipientDSN(orcpt=("UTF-8", "J\u00f6rg+x@example.com"))],
        )

    def test_utf8OrcptWithoutSMTPUTF8(self) -> None:
        """
        Outside an SMTPUTF8 transaction, C{ORCPT=utf-8;} takes ASCII with
        escapes only; a bad escape or a C{+} gets C{501}.
        """
        tester = self.ready(enable_SMTPUTF8=True)
        tester.command("MAIL FROM:<a@example.com>")
        self.assertEqual(
            tester.command(
                "RCPT TO:<b@example.com> ORCPT=utf-8;J\\x{F6}rg@example.com"
            ),
            OK,
        )
        self.assertEqual(
            tester.server.envelope.rcpt_dsn[0].orcpt, ("utf-8", "J\u00f6rg@example.com")
        )
        for value in ("J\u00f6rg@example.com", "a\\x{D800}@x", "a+2B@x", "a\\x{0A}"):
            reply = tester.command(f"RCPT TO:<b@example.com> ORCPT=utf-8;{value}")
            self.assertEqual(reply.code, 501, value)
        self.assertEqual(len(tester.server.envelope.rcpt_tos), 1)

    def test_parallelToRecipients(self) -> None:
        """
        C{rcpt_dsn} and C{rcpt_parameters} are parallel to C{rcpt_tos}:
        C{None} and C{{}} for a recipient without parameters; a refused
        recipient's parameters are not recorded.
        """
        tester = self.ready(max_recipients=100)
        tester.command("MAIL FROM:<a@example.com>")
        self.assertEqual(tester.command("RCPT TO:<b@example.com>"), OK)
        self.assertEqual(tester.command("RCPT TO:<c@example.com> NOTIFY=DELAY"), OK)
        self.assertEqual(tester.command("RCPT TO:<> NOTIFY=SUCCESS").code, 553)
        envelope = tester.server.envelope
        self.assertEqual(envelope.rcpt_dsn, [None, RecipientDSN(notify=("DELAY",))])
        self.assertEqual(envelope.rcpt_parameters, [{}, {"NOTIFY": "DELAY"}])

    def test_hookAddsRecipient(self) -> None:
        """
        A C{handle_RCPT} that adds the recipient itself, as aiosmtpd's
        handlers do, gets its parameters recorded; one that refuses it
        does not.
        """

        class Handler(Collector):
            async def handle_RCPT(self, server, session, envelope, address, options):
                if address.startswith("no"):
                    return "550 5.1.1 no such user"
                envelope.rcpt_tos.append(address)
                envelope.rcpt_options.extend(options)
                return "250 OK"

        tester = self.ready(Handler())
        tester.command("MAIL FROM:<a@example.com>")
        self.assertEqual(
            tester.command("RCPT TO:<no@example.com> NOTIFY=NEVER"),
            Reply(550, "5.1.1 no such user"),
        )
        self.assertEqual(tester.command("RCPT TO:<b@example.com> NOTIFY=FAILURE"), OK)
        envelope = tester.server.envelope
        self.assertEqual(envelope.rcpt_tos, ["b@example.com"])
        self.assertEqual(envelope.rcpt_dsn, [RecipientDSN(notify=("FAILURE",))])

    def test_freshEnvelope(self) -> None:
        """
        A new transaction starts without the DSN facts of the last.
        """
        tester, reply = self.rcpt("NOTIFY=NEVER")
        tester.command("RSET")
        tester.command("MAIL FROM:<a@example.com>")
        tester.command("RCPT TO:<b@example.com>")
        self.assertEqual(tester.server.envelope.rcpt_dsn, [None])

    def test_orcptRoom(self) -> None:
        """
        RCPT may be 500 characters longer than C{command_size_limit} with
        DSN, and no more; without DSN not at all. (With the default
        C{line_length_limit}, no line exceeds 1000 octets.)
        """
        tester = self.ready(line_length_limit=2000)
        tester.command("MAIL FROM:<a@example.com>")
        prefix = "RCPT TO:<b@example.com> ORCPT=rfc822;"
        line = prefix + "x" * (1012 - len(prefix))
        self.assertEqual(
            tester.command(line), malformed("ORCPT", "missing or too long")
        )
        self.assertEqual(
            tester.command(line + "x"), Reply(500, "Command line too long")
        )
        tester = self.ready(dsn=False)
        tester.command("MAIL FROM:<a@example.com>")
        self.assertEqual(
            tester.command(line[:513]), Reply(500, "Command line too long")
        )


class RequireTLSTests(ProtocolTestCase):
    """
    REQUIRETLS on MAIL (RFC 8689).
    """

    def test_off(self) -> None:
        """
        Without C{requiretls}, the parameter is unknown.
        """
        tester = self.ready()
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> REQUIRETLS"), MAIL_UNKNOWN
        )

    def test_plaintext(self) -> None:
        """
        Outside TLS, REQUIRETLS gets C{530 5.7.10} and starts nothing.
        """
        tester = self.ready(
            requiretls=True, tls_context=certificates(self).serverOptions()
        )
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> REQUIRETLS"),
            Reply(530, "5.7.10 REQUIRETLS needs a TLS session"),
        )
        self.assertIsNone(tester.server.envelope.mail_from)
        self.assertFalse(tester.server.envelope.requiretls)

    def test_overTLS(self) -> None:
        """
        Over TLS, REQUIRETLS is accepted, in any case, and marks the
        envelope the handler gets.
        """
        handler = Collector()
        tester = implicitTester(
            self,
            handler,
            tls_context=certificates(self).serverOptions(),
            requiretls=True,
        )
        tester.command("EHLO c.example")
        self.assertEqual(tester.command("MAIL FROM:<a@example.com> requiretls"), OK)
        self.assertTrue(tester.server.envelope.requiretls)
        self.assertEqual(tester.server.envelope.mail_options, ["REQUIRETLS"])
        tester.command("RCPT TO:<b@example.com>")
        tester.command("DATA")
        self.assertEqual(tester.command("hi\r\n."), OK)
        self.assertTrue(handler.envelopes[0].requiretls)

    def test_value(self) -> None:
        """
        REQUIRETLS with a value gets C{501}.
        """
        tester = implicitTester(
            self,
            Collector(),
            tls_context=certificates(self).serverOptions(),
            requiretls=True,
        )
        tester.command("EHLO c.example")
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> REQUIRETLS=YES"),
            Reply(501, "5.5.4 Error: REQUIRETLS takes no value"),
        )


class ExtraParameterTests(ProtocolTestCase):
    """
    C{extra_mail_parameters} and C{extra_rcpt_parameters}: parameters a
    handler implements itself, accepted by name.
    """

    def test_names(self) -> None:
        """
        A parameter named is accepted, in any case, kept as aiosmtpd keeps
        parameters and as sent in C{mail_parameters}; others stay unknown.
        """
        tester = self.ready(extra_mail_parameters=["x-Prio"])
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> X-PRIO=high X-OTHER"),
            MAIL_UNKNOWN,
        )
        self.assertEqual(tester.command("MAIL FROM:<a@example.com> x-prio=high"), OK)
        envelope = tester.server.envelope
        self.assertEqual(envelope.mail_options, ["X-PRIO=HIGH"])
        self.assertEqual(envelope.mail_parameters, {"X-PRIO": "high"})

    def test_checker(self) -> None:
        """
        A checker's reply refuses the parameter; C{None} accepts it.
        """
        seen = []

        def check(session: Any, value: str | None) -> str | None:
            seen.append((session.host_name, value))
            return None if value == "ok" else "501 5.5.4 Bad X-TAG"

        tester = self.ready(extra_rcpt_parameters={"X-TAG": check})
        tester.command("MAIL FROM:<a@example.com>")
        self.assertEqual(
            tester.command("RCPT TO:<b@example.com> X-TAG=bad"),
            Reply(501, "5.5.4 Bad X-TAG"),
        )
        self.assertEqual(tester.command("RCPT TO:<b@example.com> X-TAG=ok"), OK)
        self.assertEqual(seen, [("client.example", "bad"), ("client.example", "ok")])
        envelope = tester.server.envelope
        self.assertEqual(envelope.rcpt_parameters, [{"X-TAG": "ok"}])
        self.assertEqual(envelope.rcpt_options, ["X-TAG=OK"])
        self.assertEqual(
            tester.command("RCPT TO:<c@example.com> X-TAG=ok X-TAG=ok"),
            Reply(501, "5.5.4 Error: X-TAG parameter given twice"),
        )

    def test_replacesDSN(self) -> None:
        """
        With DSN off, a handler may take RET by name; the built-in
        parameters are looked up first otherwise.
        """
        tester = self.ready(dsn=False, extra_mail_parameters=["RET"])
        self.assertEqual(tester.command("MAIL FROM:<a@example.com> RET=anything"), OK)
        self.assertIsNone(tester.server.envelope.dsn_ret)
        tester = self.ready(extra_mail_parameters=["RET"])
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> RET=anything"),
            malformed("RET", "FULL or HDRS"),
        )

    def test_afterHelo(self) -> None:
        """
        After HELO, a parameter accepted by name is a syntax error, as any.
        """
        tester = self.ready(greet="HELO", extra_mail_parameters=["X-PRIO"])
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> X-PRIO=1"),
            Reply(501, "Syntax: MAIL FROM: <address>"),
        )


class ExtraParameterOptionTests(SynchronousTestCase):
    """
    The values C{extra_mail_parameters} and C{extra_rcpt_parameters} take.
    """

    def test_str(self) -> None:
        """
        A single C{str} is a L{TypeError}: it would be read letter by letter.
        """
        self.assertRaises(
            TypeError, SMTPFactory, Collector(), extra_mail_parameters="X-PRIO"
        )

    def test_notKeyword(self) -> None:
        """
        A name that is not an ESMTP keyword is a L{ValueError}.
        """
        for name in ("-X", "X_Y", "", "X=1", "\u00e9"):
            self.assertRaises(
                ValueError, SMTPFactory, Collector(), extra_rcpt_parameters=[name]
            )

    def test_badChecker(self) -> None:
        """
        A checker that is not callable, or a name that is not a C{str}, is a
        L{TypeError}.
        """
        self.assertRaises(
            TypeError, SMTPFactory, Collector(), extra_mail_parameters={"X-A": 1}
        )
        self.assertRaises(
            TypeError, SMTPFactory, Collector(), extra_mail_parameters=[b"X-A"]
        )


class XtextTests(SynchronousTestCase):
    """
    L{xtext} and L{decodeXtext}.
    """

    def test_roundTrip(self) -> None:
        """
        Encoding escapes C{+}, C{=}, spaces and controls; decoding undoes it.
        """
        text = "a+b=c d@example.com"
        self.assertEqual(xtext(text), "a+2Bb+3Dc+20d@example.com")
        self.assertEqual(decodeXtext("ENVID", xtext(text)), text)

    def test_lowerCaseHex(self) -> None:
        """
        Lower-case hexadecimal digits are decoded too (as Postfix does).
        """
        self.assertEqual(decodeXtext("ENVID", "a+2bb"), "a+b")
