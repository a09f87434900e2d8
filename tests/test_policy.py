"""
Tests for L{twisted_smtpd._policy}: what is refused before a command runs
and the limits that end a session (C{command_call_limit},
C{max_unknown_commands}, C{hard_error_limit}, C{junk_command_limit}),
driven in memory. No sockets, no real time.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.ssl import CertificateOptions
from twisted.internet.task import Clock, deferLater
from twisted.trial.unittest import SynchronousTestCase

from tests._protocolsupport import (
    GO_AHEAD,
    HOST,
    LOCAL_ERROR,
    NEED_MAIL,
    NEED_RCPT,
    OK,
    SECRET,
    Boom,
    Collector,
    ProtocolTestCase,
    connect,
    parseReplies,
)
from twisted_smtpd import SMTP, Session, SMTPFactory
from twisted_smtpd._config import makeConfig
from twisted_smtpd._policy import (
    countError,
    dataAnswered,
    junkCommand,
    overCallLimit,
    refusal,
    refuseUnknown,
)
from twisted_smtpd.testing import Reply, SMTPTester

#: The last reply of a client that made too many errors.
TOO_MANY_ERRORS = Reply(421, f"4.7.0 {HOST} Error: too many errors")


class CallLimitTests(ProtocolTestCase):
    """
    The C{command_call_limit} option.
    """

    def test_intLimit(self) -> None:
        """
        An C{int} limit applies to each verb: going over gets C{421 4.7.0
        <VERB> sent too many times} and a close.
        """
        tester = self.makeTester(command_call_limit=3)
        for _ in range(3):
            self.assertEqual(tester.command("NOOP"), OK)
        self.assertEqual(
            tester.command("NOOP"), Reply(421, "4.7.0 NOOP sent too many times")
        )
        self.assertTrue(tester.closed)

    def test_verbsCountedSeparately(self) -> None:
        """
        Each verb has its own budget.
        """
        tester = self.makeTester(command_call_limit=2)
        for _ in range(2):
            self.assertEqual(tester.command("NOOP"), OK)
            self.assertEqual(tester.command("RSET"), OK)
        self.assertEqual(tester.command("HELP").code, 214)
        self.assertFalse(tester.closed)

    def test_caseInsensitive(self) -> None:
        """
        A verb is counted whatever its case.
        """
        tester = self.makeTester(command_call_limit=2)
        tester.command("noop")
        tester.command("NoOp")
        self.assertEqual(
            tester.command("NOOP"), Reply(421, "4.7.0 NOOP sent too many times")
        )

    def test_dictLimit(self) -> None:
        """
        A C{dict} sets per-verb limits, C{"*"} the default for the others.
        """
        tester = self.makeTester(command_call_limit={"NOOP": 1, "*": 3})
        self.assertEqual(tester.command("NOOP"), OK)
        for _ in range(3):
            self.assertEqual(tester.command("RSET"), OK)
        self.assertEqual(
            tester.command("RSET"), Reply(421, "4.7.0 RSET sent too many times")
        )

    def test_dictLimitOnVerb(self) -> None:
        """
        A verb named in the C{dict} is cut at its own limit.
        """
        tester = self.makeTester(command_call_limit={"NOOP": 1, "*": 3})
        self.assertEqual(tester.command("NOOP"), OK)
        self.assertEqual(
            tester.command("NOOP"), Reply(421, "4.7.0 NOOP sent too many times")
        )
        self.assertTrue(tester.closed)

    def test_dictDefault(self) -> None:
        """
        Without C{"*"}, verbs not named get aiosmtpd's default of 20.
        """
        tester = self.makeTester(command_call_limit={"NOOP": 1})
        for _ in range(20):
            self.assertEqual(tester.command("RSET"), OK)
        self.assertEqual(
            tester.command("RSET"), Reply(421, "4.7.0 RSET sent too many times")
        )

    def test_pipelinedOverLimit(self) -> None:
        """
        In a pipelined batch, the commands before the limit are answered,
        then the 421, then nothing.
        """
        tester = self.makeTester(command_call_limit=2)
        tester.send(b"NOOP\r\nNOOP\r\nNOOP\r\nHELP\r\n")
        self.assertEqual(
            tester.replies(), [OK, OK, Reply(421, "4.7.0 NOOP sent too many times")]
        )
        self.assertTrue(tester.closed)

    def test_perConnection(self) -> None:
        """
        Counts are per connection: a second connection of the same factory
        starts with a full budget.
        """
        factory = SMTPFactory(
            Collector(), reactor=Clock(), hostname=HOST, command_call_limit=2
        )
        first, firstTransport = connect(factory)
        first.dataReceived(b"NOOP\r\nNOOP\r\n")
        second, secondTransport = connect(factory)
        second.dataReceived(b"NOOP\r\nNOOP\r\n")
        self.assertEqual(parseReplies(secondTransport.value())[1:], [OK, OK])
        self.assertFalse(secondTransport.disconnecting)
        first.dataReceived(b"NOOP\r\n")
        self.assertEqual(
            parseReplies(firstTransport.value())[-1],
            Reply(421, "4.7.0 NOOP sent too many times"),
        )
        self.assertFalse(secondTransport.disconnecting)


class FakeServer:
    """
    The part of a server the policy functions read, with the options that
    matter to them.
    """

    beforeTLSVerbs = SMTP.beforeTLSVerbs

    def __init__(self, **options: Any) -> None:
        self.config = makeConfig(Collector(), hostname=HOST, **options)
        self.session = Session()
        self.securityRefused = False
        self.tlsActive = False
        self.replies: list[str] = []
        self.closedWith: list[str] = []
        self.states: dict[object, Any] = {}

    def stateOf(self, key: object, factory: Any) -> Any:
        if key not in self.states:
            self.states[key] = factory()
        return self.states[key]

    def reply(self, status: str) -> None:
        self.replies.append(status)

    def disconnect(self, reply: str, reason: str = "closed") -> None:
        self.closedWith.append(reply)

    def errors(self) -> int:
        """
        The errors counted so far.
        """
        return sum(getattr(state, "errors", 0) for state in self.states.values())


VERBS = ["HELO", "EHLO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT", "VRFY"]
VERBS += ["HELP", "STARTTLS", "AUTH", "EXPN", "PING"]


class RefusalTests(SynchronousTestCase):
    """
    L{refusal}: the commands refused before they run.
    """

    def test_nothingByDefault(self) -> None:
        """
        Without C{require_starttls} or C{auth_required}, nothing is refused.
        """
        server = FakeServer()
        self.assertEqual([refusal(server, verb) for verb in VERBS], [None] * len(VERBS))

    def test_securityRefused(self) -> None:
        """
        Once C{handle_STARTTLS} refused the session, every verb but QUIT
        gets 554, whatever else is configured.
        """
        server = FakeServer()
        server.securityRefused = True
        server.tlsActive = True
        for verb in VERBS:
            expected = (
                None
                if verb == "QUIT"
                else ("554 Command refused due to lack of security")
            )
            self.assertEqual(refusal(server, verb), expected, verb)

    def test_requireStartTLS(self) -> None:
        """
        With C{require_starttls}, only EHLO, NOOP, STARTTLS and QUIT are
        allowed before TLS; after it, everything.
        """
        server = FakeServer(require_starttls=True, tls_context=CertificateOptions())
        allowed = [verb for verb in VERBS if refusal(server, verb) is None]
        self.assertEqual(sorted(allowed), ["EHLO", "NOOP", "QUIT", "STARTTLS"])
        self.assertEqual(
            refusal(server, "MAIL"), "530 Must issue a STARTTLS command first"
        )
        server.tlsActive = True
        self.assertEqual([refusal(server, verb) for verb in VERBS], [None] * len(VERBS))

    def test_authRequired(self) -> None:
        """
        With C{auth_required}, MAIL, RCPT, DATA, VRFY and HELP get 530
        until the client authenticated.
        """
        server = FakeServer(auth_required=True)
        server.session.host_name = "c.example"
        refused = [verb for verb in VERBS if refusal(server, verb) is not None]
        self.assertEqual(sorted(refused), ["DATA", "HELP", "MAIL", "RCPT", "VRFY"])
        self.assertEqual(refusal(server, "MAIL"), "530 5.7.0 Authentication required")
        server.session.authenticated = True
        self.assertEqual([refusal(server, verb) for verb in VERBS], [None] * len(VERBS))

    def test_authRequiredBeforeHelo(self) -> None:
        """
        Before HELO, C{auth_required} leaves MAIL, RCPT and DATA to their
        own 503 (as aiosmtpd), and still refuses VRFY and HELP.
        """
        server = FakeServer(auth_required=True)
        refused = [verb for verb in VERBS if refusal(server, verb) is not None]
        self.assertEqual(sorted(refused), ["HELP", "VRFY"])

    def test_failedAuthStillRefused(self) -> None:
        """
        A failed AUTH (C{authenticated} false, not C{None}) does not lift
        C{auth_required}.
        """
        server = FakeServer(auth_required=True)
        server.session.host_name = "c.example"
        server.session.authenticated = False
        self.assertEqual(refusal(server, "MAIL"), "530 5.7.0 Authentication required")


class LimitTests(SynchronousTestCase):
    """
    L{overCallLimit} and L{refuseUnknown}, on their own.
    """

    def test_callLimit(self) -> None:
        """
        A verb is allowed as many times as its limit; one more closes the
        connection with a 421 naming it.
        """
        server = FakeServer(command_call_limit={"NOOP": 2, "*": 5})
        self.assertEqual(
            [overCallLimit(server, "NOOP") for _ in range(3)], [False, False, True]
        )
        self.assertEqual(server.closedWith, ["421 4.7.0 NOOP sent too many times"])

    def test_callLimitDefault(self) -> None:
        """
        A verb without its own limit has the C{"*"} one, counted on its own.
        """
        server = FakeServer(command_call_limit={"NOOP": 1, "*": 2})
        self.assertEqual(
            [overCallLimit(server, verb) for verb in ["RSET", "HELP", "RSET", "HELP"]],
            [False, False, False, False],
        )
        self.assertTrue(overCallLimit(server, "RSET"))
        self.assertEqual(server.closedWith, ["421 4.7.0 RSET sent too many times"])

    def test_unknownLimit(self) -> None:
        """
        Unknown lines are refused with the given reply until the
        C{max_unknown_commands}th, which closes the connection.
        """
        server = FakeServer(max_unknown_commands=3)
        for _ in range(3):
            refuseUnknown(server, "500 What?")
        self.assertEqual(server.replies, ["500 What?", "500 What?"])
        self.assertEqual(
            server.closedWith, ["421 4.7.0 Too many unrecognized commands, goodbye."]
        )

    def test_countsShared(self) -> None:
        """
        The counts of one connection are kept in its state, once.
        """
        server = FakeServer(max_unknown_commands=10, command_call_limit=5)
        overCallLimit(server, "NOOP")
        refuseUnknown(server, "500 What?")
        [counts] = server.states.values()
        self.assertEqual((counts.unknown, counts.calls), (1, {"NOOP": 1}))

    def test_countErrorLimit(self) -> None:
        """
        L{countError} closes the connection with C{421 4.7.0 <hostname>
        Error: too many errors} at the C{hard_error_limit}th error.
        """
        server = FakeServer(hard_error_limit=3)
        countError(server)
        countError(server)
        self.assertEqual(server.closedWith, [])
        countError(server)
        self.assertEqual(
            server.closedWith, [f"421 4.7.0 {HOST} Error: too many errors"]
        )

    def test_countErrorOff(self) -> None:
        """
        With C{hard_error_limit=0} nothing is counted, nor kept.
        """
        server = FakeServer(hard_error_limit=0)
        for _ in range(50):
            countError(server)
        self.assertEqual((server.closedWith, server.states), ([], {}))

    def test_junkCommand(self) -> None:
        """
        L{junkCommand} says whether a junk command is beyond
        C{junk_command_limit}; with C{0}, none ever is.
        """
        server = FakeServer(junk_command_limit=2)
        self.assertEqual(
            [junkCommand(server) for _ in range(4)], [False, False, True, True]
        )
        server = FakeServer(junk_command_limit=0)
        self.assertEqual([junkCommand(server) for _ in range(4)], [False] * 4)

    def test_dataAnswered(self) -> None:
        """
        L{dataAnswered}: a message delivered to any recipient forgives the
        errors and junk commands; refused with a 5yz (for any recipient
        and none delivered), it counts one error; a 4yz alone counts none.
        """
        server = FakeServer(hard_error_limit=10, junk_command_limit=1)
        for codes, errors in [
            ("550", 1),
            ("451", 1),
            ("550,550,550", 2),
            ("451,554", 3),
            ("451,451", 3),
            ("250", 0),
            ("552", 1),
            ("550,250", 0),
        ]:
            dataAnswered(server, codes)
            self.assertEqual(server.errors(), errors, codes)
        junkCommand(server)
        self.assertTrue(junkCommand(server))
        dataAnswered(server, "250")
        self.assertFalse(junkCommand(server))


def refusingRcpt(status: str) -> Any:
    """
    A L{Collector} whose C{handle_RCPT} refuses every recipient with
    C{status}.
    """

    class Handler(Collector):
        def handle_RCPT(self, server, session, envelope, address, options):
            return status

    return Handler()


class HardErrorLimitTests(ProtocolTestCase):
    """
    The C{hard_error_limit} option: the error replies to the client's
    commands, without a message delivered in between, after which the
    connection is closed; the server's own trouble does not count.
    """

    def sendErrors(self, tester: SMTPTester, count: int) -> None:
        """
        Send C{count} RCPT commands outside a transaction, each answered
        C{503}, and check the connection is still open.
        """
        for _ in range(count):
            self.assertEqual(tester.command("RCPT TO:<b@example.com>"), NEED_MAIL)
        self.assertFalse(tester.closed)

    def assertLastError(self, tester: SMTPTester, line: str, reply: Reply) -> None:
        """
        Assert that C{line} is answered with C{reply}, then C{421}, and
        that the connection is closed.
        """
        tester.send(line.encode() + b"\r\n")
        self.assertEqual(tester.replies(), [reply, TOO_MANY_ERRORS])
        self.assertTrue(tester.closed)

    def test_limitCloses(self) -> None:
        """
        The error that reaches the limit is answered, then followed by
        C{421 4.7.0 <hostname> Error: too many errors} and the close.
        """
        tester = self.ready(hard_error_limit=3)
        self.sendErrors(tester, 2)
        self.assertLastError(tester, "RCPT TO:<b@example.com>", NEED_MAIL)

    def test_default(self) -> None:
        """
        By default, Postfix's C{smtpd_hard_error_limit}: the 20th error
        closes the connection.
        """
        tester = self.ready()
        self.sendErrors(tester, 19)
        self.assertLastError(tester, "RCPT TO:<b@example.com>", NEED_MAIL)

    def test_zeroIsNoLimit(self) -> None:
        """
        C{hard_error_limit=0} counts no errors.
        """
        tester = self.ready(hard_error_limit=0)
        self.sendErrors(tester, 100)
        self.assertOpen(tester)

    def test_pipelined(self) -> None:
        """
        The commands pipelined after the one that reached the limit are
        neither run nor answered.
        """
        handler = Collector()
        tester = self.ready(handler, hard_error_limit=2)
        tester.send(
            b"DATA\r\nDATA\r\nMAIL FROM:<a@example.com>\r\n"
            b"RCPT TO:<b@example.com>\r\nDATA\r\nx\r\n.\r\n"
        )
        self.assertEqual(tester.replies(), [NEED_RCPT, NEED_RCPT, TOO_MANY_ERRORS])
        self.assertEqual(handler.messages, [])
        self.assertTrue(tester.closed)

    def test_kindsOfErrors(self) -> None:
        """
        Every error reply to a client's command counts: an unknown or
        malformed command, a syntax error, a command out of sequence, an
        address or parameter refused, a line too long, a bare LF, a command
        not implemented.
        """
        lines = [
            ("XYZZY", Reply(500, 'Error: command "XYZZY" not recognized')),
            ("<html>", Reply(500, "Error: bad syntax")),
            ("MAIL FROM:", Reply(501, "Syntax: MAIL FROM: <address>")),
            ("RCPT TO:<b@example.com>", NEED_MAIL),
            (
                "MAIL FROM:<a..b@example.com>",
                Reply(553, "5.1.3 Error: malformed address"),
            ),
            ("EXPN list", Reply(502, "EXPN not implemented")),
            ("NOOP\rNOOP", Reply(500, "5.5.2 Error: bare CR received")),
            ("x" * 1200, Reply(500, "Command line too long")),
        ]
        for line, reply in lines:
            tester = self.ready(greet="HELO", hard_error_limit=1)
            self.assertLastError(tester, line, reply)

    def test_bareLineFeed(self) -> None:
        """
        A command line holding a bare LF counts.
        """
        tester = self.ready(hard_error_limit=1)
        tester.send(b"NOOP\nNOOP\r\n")
        self.assertEqual(
            tester.replies(),
            [Reply(500, "5.5.2 Error: bare LF received"), TOO_MANY_ERRORS],
        )

    def test_parameterRefused(self) -> None:
        """
        A MAIL parameter refused counts.
        """
        tester = self.ready(hard_error_limit=1)
        self.assertLastError(
            tester,
            "MAIL FROM:<a@example.com> FOO=1",
            Reply(555, "MAIL FROM parameters not recognized or not implemented"),
        )

    def test_policyRefusalCounts(self) -> None:
        """
        A command refused by the security policy (C{auth_required}) counts.
        """
        tester = self.ready(hard_error_limit=1, auth_required=True)
        self.assertLastError(
            tester,
            "MAIL FROM:<a@example.com>",
            Reply(530, "5.7.0 Authentication required"),
        )

    def test_handlerRefusalCounts(self) -> None:
        """
        A recipient refused by C{handle_RCPT} counts, as in Postfix.
        """
        tester = self.ready(refusingRcpt("550 No such user"), hard_error_limit=2)
        self.assertEqual(tester.command("MAIL FROM:<a@example.com>"), OK)
        self.assertEqual(
            tester.command("RCPT TO:<b@example.com>"), Reply(550, "No such user")
        )
        self.assertLastError(
            tester, "RCPT TO:<c@example.com>", Reply(550, "No such user")
        )

    def test_refusedMessageCounts(self) -> None:
        """
        A message refused at the end of its data, by C{handle_DATA} or by
        the size limit, counts once.
        """
        for handler, options, reply in [
            (Collector("554 5.7.1 Rejected"), {}, Reply(554, "5.7.1 Rejected")),
            (
                Collector(),
                {"data_size_limit": 10},
                Reply(552, "Error: Too much mail data"),
            ),
        ]:
            tester = self.inData(handler, hard_error_limit=2, **options)
            tester.send(b"x" * 20 + b"\r\n.\r\n")
            self.assertEqual(tester.replies(), [reply])
            self.assertLastError(tester, "RCPT TO:<b@example.com>", NEED_MAIL)

    def test_temporaryFailureOfDataNotCounted(self) -> None:
        """
        A C{4yz} from C{handle_DATA} is the server's trouble: it does not
        count.
        """
        tester = self.ready(Collector("451 4.3.0 Try later"), hard_error_limit=1)
        for _ in range(3):
            replies = tester.sendmail(
                "a@example.com", ["b@example.com"], b"x", helo=None
            )
            self.assertEqual(replies[-1], Reply(451, "4.3.0 Try later"))
        self.assertFalse(tester.closed)

    def test_deliveredMessageForgives(self) -> None:
        """
        A message delivered forgives the errors so far, as in Postfix.
        """
        tester = self.ready(hard_error_limit=3)
        self.sendErrors(tester, 2)
        replies = tester.sendmail("a@example.com", ["b@example.com"], b"x", helo=None)
        self.assertEqual(replies[-1], OK)
        self.sendErrors(tester, 2)
        self.assertLastError(tester, "RCPT TO:<b@example.com>", NEED_MAIL)

    def test_exceptionsNotCounted(self) -> None:
        """
        The reply to an exception in a hook (here C{handle_NOOP}, and
        C{handle_RCPT}, whose transaction goes on) is the server's trouble:
        it does not count.
        """

        class Handler(Collector):
            def handle_NOOP(self, server, session, envelope, arg):
                raise Boom(SECRET)

            def handle_RCPT(self, server, session, envelope, address, options):
                raise Boom(SECRET)

        tester = self.ready(Handler(), hard_error_limit=1)
        self.assertEqual(tester.command("MAIL FROM:<a@example.com>"), OK)
        # RCPT first: an exception in handle_NOOP ends the transaction.
        for line in ["RCPT TO:<b@example.com>"] * 3 + ["NOOP"] * 3:
            self.assertEqual(tester.command(line), LOCAL_ERROR)
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 6)
        self.assertFalse(tester.closed)

    def test_handleExceptionRefusalNotCounted(self) -> None:
        """
        Whatever C{handle_exception} answers, even a C{5yz}, does not count.
        """

        class Handler(Collector):
            def handle_NOOP(self, server, session, envelope, arg):
                raise Boom(SECRET)

            def handle_exception(self, error):
                return "554 5.3.0 Broken"

        tester = self.ready(Handler(), hard_error_limit=1)
        for _ in range(3):
            self.assertEqual(tester.command("NOOP"), Reply(554, "5.3.0 Broken"))
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 3)
        self.assertFalse(tester.closed)

    def test_multilineReplyCountsOnce(self) -> None:
        """
        A refusal of several lines counts once, even when a hook gives its
        lines one by one (C{handle_EHLO}).
        """

        class Handler(Collector):
            def handle_EHLO(self, server, session, envelope, hostname, responses):
                return ["550-Not", "550 welcome"]

        tester = self.makeTester(Handler(), hard_error_limit=2)
        self.assertEqual(tester.command("EHLO c.example"), Reply(550, "Not\nwelcome"))
        self.assertFalse(tester.closed)
        self.assertLastError(tester, "EHLO c.example", Reply(550, "Not\nwelcome"))

    def test_unknownCommandsCountToo(self) -> None:
        """
        Unknown commands count towards both their own limit and this one.
        """
        tester = self.ready(hard_error_limit=3, max_unknown_commands=10)
        self.sendErrors(tester, 1)
        self.assertEqual(
            tester.command("XYZZY"), Reply(500, 'Error: command "XYZZY" not recognized')
        )
        self.assertLastError(
            tester, "XYZZY", Reply(500, 'Error: command "XYZZY" not recognized')
        )


class JunkCommandLimitTests(ProtocolTestCase):
    """
    The C{junk_command_limit} option: NOOP, VRFY, RSET and HELP beyond it
    count as errors towards C{hard_error_limit}.
    """

    def test_beyondLimit(self) -> None:
        """
        Each junk command beyond the limit is answered, then counted as an
        error: the one that reaches C{hard_error_limit} is followed by
        C{421}.
        """
        tester = self.ready(junk_command_limit=2, hard_error_limit=3)
        for _ in range(4):
            self.assertEqual(tester.command("NOOP"), OK)
        tester.send(b"NOOP\r\n")
        self.assertEqual(tester.replies(), [OK, TOO_MANY_ERRORS])
        self.assertTrue(tester.closed)

    def test_defaults(self) -> None:
        """
        With the defaults (Postfix's), the 120th NOOP in a row is answered
        and followed by C{421}.
        """
        tester = self.ready()
        tester.send(b"NOOP\r\n" * 119)
        self.assertEqual(tester.replies(), [OK] * 119)
        self.assertFalse(tester.closed)
        tester.send(b"NOOP\r\n")
        self.assertEqual(tester.replies(), [OK, TOO_MANY_ERRORS])

    def test_junkVerbs(self) -> None:
        """
        NOOP, VRFY, RSET and HELP are junk commands, counted together.
        """
        lines = ["NOOP", "VRFY a@example.com", "RSET", "HELP"]
        for line in lines:
            tester = self.ready(junk_command_limit=4, hard_error_limit=1)
            answers = [tester.command(each) for each in lines]
            self.assertFalse(tester.closed)
            tester.send(line.encode() + b"\r\n")
            self.assertEqual(
                tester.replies(), [answers[lines.index(line)], TOO_MANY_ERRORS]
            )

    def test_otherCommandsNotJunk(self) -> None:
        """
        Other commands (EHLO, MAIL, RCPT...) are not junk commands.
        """
        tester = self.ready(junk_command_limit=1, hard_error_limit=1)
        for _ in range(5):
            self.assertEqual(tester.command("EHLO c.example").code, 250)
            self.assertEqual(tester.command("MAIL FROM:<a@example.com>"), OK)
        self.assertFalse(tester.closed)

    def test_errorAndJunk(self) -> None:
        """
        A junk command beyond the limit that is itself refused counts twice,
        as in Postfix.
        """
        tester = self.ready(junk_command_limit=1, hard_error_limit=3)
        self.assertEqual(tester.command("NOOP"), OK)
        self.assertEqual(tester.command("VRFY"), Reply(501, "Syntax: VRFY <address>"))
        self.assertFalse(tester.closed)
        tester.send(b"NOOP\r\n")
        self.assertEqual(tester.replies(), [OK, TOO_MANY_ERRORS])

    def test_pendingHook(self) -> None:
        """
        When the junk command's hook answers later, its reply still comes
        before the C{421}.
        """

        class Handler(Collector):
            def handle_NOOP(self, server, session, envelope, arg):
                return deferLater(server.config.reactor, 1, lambda: "250 Later")

        tester = self.ready(Handler(), junk_command_limit=1, hard_error_limit=1)
        tester.send(b"NOOP\r\n")
        tester.clock.advance(1)
        self.assertEqual(tester.replies(), [Reply(250, "Later")])
        tester.send(b"NOOP\r\n")
        self.assertEqual(tester.replies(), [])
        tester.clock.advance(1)
        self.assertEqual(tester.replies(), [Reply(250, "Later"), TOO_MANY_ERRORS])
        self.assertTrue(tester.closed)

    def test_deliveredMessageResets(self) -> None:
        """
        A message delivered starts the count of junk commands again, as in
        Postfix.
        """
        tester = self.ready(junk_command_limit=2, hard_error_limit=1)
        for _ in range(2):
            self.assertEqual(tester.command("NOOP"), OK)
        replies = tester.sendmail("a@example.com", ["b@example.com"], b"x", helo=None)
        self.assertEqual(replies[-2:], [GO_AHEAD, OK])
        for _ in range(2):
            self.assertEqual(tester.command("RSET"), OK)
        tester.send(b"RSET\r\n")
        self.assertEqual(tester.replies(), [OK, TOO_MANY_ERRORS])

    def test_zeroIsNoLimit(self) -> None:
        """
        C{junk_command_limit=0} counts no junk command.
        """
        tester = self.ready(junk_command_limit=0, hard_error_limit=1)
        tester.send(b"NOOP\r\n" * 300)
        self.assertEqual(tester.replies(), [OK] * 300)
        self.assertFalse(tester.closed)
