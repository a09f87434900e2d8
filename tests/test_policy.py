"""
Tests for L{twisted_smtpd._policy}: what is refused before a command runs
and the limits that end a session, driven in memory. No sockets, no real
time.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.ssl import CertificateOptions
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests._protocolsupport import (
    HOST,
    OK,
    Collector,
    ProtocolTestCase,
    connect,
    parseReplies,
)
from twisted_smtpd import SMTP, Session, SMTPFactory
from twisted_smtpd._config import makeConfig
from twisted_smtpd._policy import overCallLimit, refusal, refuseUnknown
from twisted_smtpd.testing import Reply


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

    def disconnect(self, reply: str) -> None:
        self.closedWith.append(reply)


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
