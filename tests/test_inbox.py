# -*- test-case-name: tests.test_inbox -*-
"""
Tests for L{twisted_smtpd._inbox}: the L{Inbox} handler and L{InboxAfter},
driven through a real server in memory.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.trial.unittest import SynchronousTestCase

from twisted_smtpd._inbox import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_MESSAGES,
    InboxAfter,
)
from twisted_smtpd.handlers import Inbox
from twisted_smtpd.testing import Reply, SMTPTester

MESSAGE = b"Subject: hello\r\n\r\nBody\r\n"


class InboxTests(SynchronousTestCase):
    """
    L{Inbox} keeps what the server received, within its bound.
    """

    def test_defaults(self) -> None:
        """
        The bound is 1,000 messages and 256 MiB by default.
        """
        inbox = Inbox()
        self.assertEqual((inbox.maxMessages, inbox.maxBytes), (1000, 256 * 2**20))
        self.assertEqual((DEFAULT_MAX_MESSAGES, DEFAULT_MAX_BYTES), (1000, 256 * 2**20))

    def test_badBounds(self) -> None:
        """
        A bound below 1, or not an integer, is refused.
        """
        for options in ({"maxMessages": 0}, {"maxBytes": -1}, {"maxMessages": 1.5}):
            self.assertRaises(ValueError, Inbox, **options)

    def test_receivedOverSMTP(self) -> None:
        """
        A message sent over SMTP is kept with its envelope, the peer, the
        time and the exact bytes of the message, and gets 250.
        """
        inbox = Inbox(clock=lambda: 1234.5)
        tester = SMTPTester(inbox, peer=("192.0.2.1", 4321))
        replies = tester.sendmail("a@example.com", ["b@example.com", "c@x"], MESSAGE)
        self.assertEqual(replies[-1], Reply(250, "OK"))
        [message] = list(inbox)
        self.assertEqual(message.id, "1")
        self.assertEqual(message.mail_from, "a@example.com")
        self.assertEqual(message.rcpt_tos, ("b@example.com", "c@x"))
        self.assertEqual(message.peer, ("192.0.2.1", 4321))
        self.assertEqual(message.received, 1234.5)
        self.assertEqual(message.raw, MESSAGE)
        self.assertEqual(message.size, len(MESSAGE))

    def test_decodeData(self) -> None:
        """
        With C{decode_data}, the raw bytes are kept all the same.
        """
        inbox = Inbox()
        tester = SMTPTester(inbox, decode_data=True)
        tester.sendmail("a@example.com", ["b@example.com"], MESSAGE)
        self.assertEqual([m.raw for m in inbox], [MESSAGE])

    def test_newestFirst(self) -> None:
        """
        Iterating gives the newest message first; ids grow.
        """
        inbox = Inbox()
        for n in range(3):
            inbox.add("a@x", ["b@x"], b"%d" % n)
        self.assertEqual(
            [(m.id, m.raw) for m in inbox], [("3", b"2"), ("2", b"1"), ("1", b"0")]
        )

    def test_countBound(self) -> None:
        """
        Beyond C{maxMessages}, the oldest messages are dropped first.
        """
        inbox = Inbox(maxMessages=2)
        for n in range(4):
            inbox.add("a@x", ["b@x"], b"%d" % n)
        self.assertEqual([m.raw for m in inbox], [b"3", b"2"])
        self.assertIsNone(inbox.get("1"))

    def test_byteBound(self) -> None:
        """
        Beyond C{maxBytes}, the oldest messages are dropped first; the
        newest is kept even when it alone is larger.
        """
        inbox = Inbox(maxBytes=10)
        inbox.add("a@x", ["b@x"], b"x" * 4)
        inbox.add("a@x", ["b@x"], b"y" * 4)
        inbox.add("a@x", ["b@x"], b"z" * 4)
        self.assertEqual([m.raw for m in inbox], [b"zzzz", b"yyyy"])
        self.assertEqual(inbox.totalBytes, 8)
        inbox.add("a@x", ["b@x"], b"w" * 20)
        self.assertEqual([m.raw for m in inbox], [b"w" * 20])
        self.assertEqual(inbox.totalBytes, 20)

    def test_deleteAndClear(self) -> None:
        """
        L{Inbox.delete} forgets one message (and says whether it was
        there), L{Inbox.clear} all; ids are not reused.
        """
        inbox = Inbox()
        inbox.add("a@x", ["b@x"], b"one")
        inbox.add("a@x", ["b@x"], b"two")
        self.assertTrue(inbox.delete("1"))
        self.assertFalse(inbox.delete("1"))
        self.assertEqual((len(inbox), inbox.totalBytes), (1, 3))
        inbox.clear()
        self.assertEqual((len(inbox), inbox.totalBytes), (0, 0))
        self.assertEqual(inbox.add("a@x", [], b"").id, "3")

    def test_subscribers(self) -> None:
        """
        Subscribers get each new message until they unsubscribe; one that
        raises does not stop the others, and its error is logged.
        """
        inbox = Inbox()
        seen: list[str] = []

        def broken(message: Any) -> None:
            raise ZeroDivisionError()

        inbox.subscribe(broken)
        unsubscribe = inbox.subscribe(lambda m: seen.append(m.id))
        inbox.add("a@x", ["b@x"], b"one")
        unsubscribe()
        unsubscribe()
        inbox.add("a@x", ["b@x"], b"two")
        self.assertEqual(seen, ["1"])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 2)

    def test_fromCli(self) -> None:
        """
        The command line makes an inbox without arguments, and refuses
        any.
        """

        class Parser:
            def error(self, message: str) -> None:
                raise SystemExit(message)

        self.assertIsInstance(Inbox.from_cli(Parser()), Inbox)
        self.assertRaises(SystemExit, Inbox.from_cli, Parser(), "x")


class Refusing:
    """
    A handler that refuses every message.
    """

    def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "554 5.7.1 No thanks"

    def handle_RCPT(self, server: Any, session: Any, envelope: Any, address, opts):
        envelope.rcpt_tos.append(address)
        return "250 Recipient fine"


class InboxAfterTests(SynchronousTestCase):
    """
    L{InboxAfter} runs a handler, then keeps every message in the inbox
    whatever that handler replied.
    """

    def test_replyOfHandler(self) -> None:
        """
        The client gets the handler's reply (here a refusal); the message is
        in the inbox; the handler's other hooks still run.
        """
        inbox = Inbox()
        tester = SMTPTester(InboxAfter(Refusing(), inbox))
        replies = tester.sendmail("a@x", ["b@x"], MESSAGE)
        self.assertEqual(replies[2], Reply(250, "Recipient fine"))
        self.assertEqual(replies[-1], Reply(554, "5.7.1 No thanks"))
        self.assertEqual([m.raw for m in inbox], [MESSAGE])

    def test_handlerWithoutData(self) -> None:
        """
        A handler without C{handle_DATA} gets the server's 250 OK.
        """
        inbox = Inbox()
        tester = SMTPTester(InboxAfter(object(), inbox))
        self.assertEqual(tester.sendmail("a@x", ["b@x"], MESSAGE)[-1], (250, "OK"))
        self.assertEqual(len(inbox), 1)

    def test_pendingReply(self) -> None:
        """
        A handler whose reply comes later: the message is kept once it
        has replied, and the client gets that reply.
        """
        inbox = Inbox()
        waiting: Deferred[str] = Deferred()

        class Later:
            def handle_DATA(self, server: Any, session: Any, envelope: Any) -> Any:
                return waiting

        tester = SMTPTester(InboxAfter(Later(), inbox))
        tester.sendmail("a@x", ["b@x"], MESSAGE)
        self.assertEqual(len(inbox), 0)
        waiting.callback("250 Later")
        self.assertEqual(tester.replies(), [Reply(250, "Later")])
        self.assertEqual(len(inbox), 1)

    def test_coroutineReply(self) -> None:
        """
        An aiosmtpd coroutine C{handle_DATA} works as it does alone.
        """
        inbox = Inbox()

        class Async:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any):
                return "250 Async"

        tester = SMTPTester(InboxAfter(Async(), inbox))
        self.assertEqual(tester.sendmail("a@x", ["b@x"], MESSAGE)[-1], (250, "Async"))
        self.assertEqual(len(inbox), 1)

    def test_failingHandler(self) -> None:
        """
        A handler that raises, at once or later, still has its message
        kept; the client gets the server's error reply.
        """
        inbox = Inbox()

        class Raising:
            def handle_DATA(self, server: Any, session: Any, envelope: Any):
                raise ZeroDivisionError()

        class Failing:
            def handle_DATA(self, server: Any, session: Any, envelope: Any):
                return fail(ZeroDivisionError())

        for handler in (Raising(), Failing()):
            tester = SMTPTester(InboxAfter(handler, inbox))
            reply = tester.sendmail("a@x", ["b@x"], MESSAGE)[-1]
            self.assertEqual(reply.code // 100, 4, reply)
        self.assertEqual(len(inbox), 2)
        self.flushLoggedErrors(ZeroDivisionError)

    def test_authMechanisms(self) -> None:
        """
        The wrapped handler's own AUTH mechanisms are offered.
        """

        class Mechanism(Refusing):
            def auth_SECRET(self, server: Any, args: list[str]) -> Any:
                return None

        tester = SMTPTester(InboxAfter(Mechanism(), Inbox()), auth_require_tls=False)
        reply = tester.command("EHLO client.example")
        self.assertIn("AUTH SECRET", reply.lines)
