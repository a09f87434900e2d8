"""
Tests for L{twisted_smtpd._policy}: what is refused before a command runs
and the limits that end a session, driven in memory. No sockets, no real
time.
"""

from __future__ import annotations

from twisted.internet.task import Clock

from tests._protocolsupport import (
    HOST,
    OK,
    Collector,
    ProtocolTestCase,
    connect,
    parseReplies,
)
from twisted_smtpd import (
    SMTPFactory,
)
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
