# -*- test-case-name: tests.test_inbox -*-
"""
Tests for L{twisted_smtpd._inbox}: the L{Inbox} handler and L{InboxAfter},
driven through a real server in memory.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.trial.unittest import SynchronousTestCase

from tests.test_mailboxstream import FakeReactor, ManualPool
from twisted_smtpd._inbox import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_MESSAGES,
    NOT_STORED,
    InboxAfter,
)
from twisted_smtpd._maildir import ENVELOPE_FIELD
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


def maildirOrder(name: str) -> tuple[int, ...]:
    """
    The order in which this process made Maildir files: by the C{Q} count
    of their names.
    """
    return (int(name.split("Q", 1)[1].split(".", 1)[0]),)


class InboxMaildirTests(SynchronousTestCase):
    """
    L{Inbox} with a C{maildir} keeps its messages there too, durably, and
    loads them again when it is made.
    """

    def setUp(self) -> None:
        self.path = self.mktemp()

    def inbox(self, **options: Any) -> Inbox:
        """
        An inbox on C{self.path} whose files are written at once.
        """
        options.setdefault("reactor", FakeReactor())
        return Inbox(maildir=self.path, **options)

    def files(self) -> list[str]:
        """
        The names of the files in the Maildir's C{new/}, C{cur/} and C{tmp/}.
        """
        return sorted(
            name
            for sub in ("new", "cur", "tmp")
            for name in os.listdir(os.path.join(self.path, sub))
        )

    def test_madeAndStored(self) -> None:
        """
        The Maildir is made if missing; a message received over SMTP gets
        250 and is in C{new/}: an envelope field, then the exact bytes.
        """
        inbox = self.inbox(clock=lambda: 1234.5)
        tester = SMTPTester(inbox, peer=("192.0.2.1", 4321))
        replies = tester.sendmail("a@example.com", ["b@x", "c@x"], MESSAGE)
        self.assertEqual(replies[-1], Reply(250, "OK"))
        [message] = list(inbox)
        self.assertEqual(message.raw, MESSAGE)
        [name] = os.listdir(os.path.join(self.path, "new"))
        with open(os.path.join(self.path, "new", name), "rb") as f:
            data = f.read()
        self.assertTrue(data.startswith(ENVELOPE_FIELD), data)
        self.assertTrue(data.endswith(b"\r\n" + MESSAGE), data)
        self.assertEqual(data.count(b"\n"), MESSAGE.count(b"\n") + 1)

    def test_repliesOnceStored(self) -> None:
        """
        The client gets 250 only once the file is written; until then the
        message is not in the inbox.
        """
        pool = ManualPool()
        inbox = self.inbox(reactor=FakeReactor(pool))
        tester = SMTPTester(inbox)
        tester.sendmail("a@x", ["b@x"], MESSAGE)
        self.assertEqual((len(inbox), self.files()), (0, []))
        pool.runAll()
        self.assertEqual(tester.replies(), [Reply(250, "OK")])
        self.assertEqual((len(inbox), len(self.files())), (1, 1))

    def test_restart(self) -> None:
        """
        A new inbox on the same Maildir shows the same messages, oldest
        first, with the same envelope, peer, time and exact bytes.
        """
        times = iter([10.0, 20.0])
        first = self.inbox(clock=lambda: next(times))
        odd = ENVELOPE_FIELD + b"not ours\r\n\r\nx\n"
        SMTPTester(first, peer=("192.0.2.1", 25)).sendmail(
            "a@x", ["b@x", "c@x"], MESSAGE
        )
        first.add("", ["d@x"], odd, peer="/run/socket")
        # Modification times in order, whatever the file system's resolution.
        new = os.path.join(self.path, "new")
        for n, name in enumerate(sorted(os.listdir(new), key=maildirOrder)):
            os.utime(os.path.join(new, name), (1000 + n, 1000 + n))
        second = self.inbox()
        self.assertEqual(
            [(m.mail_from, m.rcpt_tos, m.peer, m.received, m.raw) for m in second],
            [
                ("", ("d@x",), "/run/socket", 20.0, odd),
                ("a@x", ("b@x", "c@x"), ("192.0.2.1", 25), 10.0, MESSAGE),
            ],
        )
        self.assertEqual([m.id for m in second], ["2", "1"])

    def test_oldestFirstByTime(self) -> None:
        """
        Loaded messages are in order of their files' modification times,
        from C{new/} and C{cur/}; a file without an envelope field is shown
        whole, with an empty envelope and its modification time.
        """
        self.inbox()
        for sub, name, mtime in (("new", "b", 300), ("cur", "a:2,S", 100)):
            path = os.path.join(self.path, sub, name)
            with open(path, "wb") as f:
                f.write(b"Subject: " + name.encode() + b"\r\n\r\n")
            os.utime(path, (mtime, mtime))
        inbox = self.inbox()
        self.assertEqual(
            [(m.raw, m.mail_from, m.rcpt_tos, m.peer, m.received) for m in inbox],
            [
                (b"Subject: b\r\n\r\n", "", (), None, 300.0),
                (b"Subject: a:2,S\r\n\r\n", "", (), None, 100.0),
            ],
        )

    def test_brokenEnvelope(self) -> None:
        """
        A file whose envelope field is not JSON is shown whole; one whose
        facts have the wrong types is shown without them.
        """
        self.inbox()
        broken = ENVELOPE_FIELD + b"{nope\r\n\r\nx"
        odd = ENVELOPE_FIELD + b'{"rcpt_tos": "b@x", "received": "soon"}\r\n'
        for name, data, mtime in (("a", broken, 100), ("b", odd + b"y", 200)):
            path = os.path.join(self.path, "new", name)
            with open(path, "wb") as f:
                f.write(data)
            os.utime(path, (mtime, mtime))
        self.assertEqual(
            [(m.raw, m.rcpt_tos, m.received) for m in self.inbox()],
            [(b"y", (), 200.0), (broken, (), 100.0)],
        )

    def test_deleteRemovesFiles(self) -> None:
        """
        Deleting a message removes its file; clearing removes them all.
        """
        inbox = self.inbox()
        for n in range(3):
            inbox.add("a@x", ["b@x"], b"%d" % n)
        self.assertEqual(len(self.files()), 3)
        self.assertTrue(inbox.delete("2"))
        self.assertEqual(len(self.files()), 2)
        self.assertEqual([m.raw for m in self.inbox()], [b"2", b"0"])
        inbox.clear()
        self.assertEqual((self.files(), len(self.inbox())), ([], 0))

    def test_boundRemovesFiles(self) -> None:
        """
        Messages dropped by the bound lose their files, when received and
        when loaded by an inbox with a smaller bound.
        """
        inbox = self.inbox(maxMessages=3)
        for n in range(4):
            inbox.add("a@x", ["b@x"], b"%d" % n)
        self.assertEqual(len(self.files()), 3)
        self.assertEqual([m.raw for m in self.inbox()], [b"3", b"2", b"1"])
        smaller = self.inbox(maxMessages=5, maxBytes=2)
        self.assertEqual([m.raw for m in smaller], [b"3", b"2"])
        self.assertEqual(len(self.files()), 2)

    def test_writeFailure(self) -> None:
        """
        A message that cannot be written gets 451, is not kept, leaves no
        file, and the failure is logged.
        """
        inbox = self.inbox()
        os.rmdir(os.path.join(self.path, "tmp"))
        tester = SMTPTester(inbox)
        reply = tester.sendmail("a@x", ["b@x"], MESSAGE)[-1]
        self.assertEqual(reply, Reply(451, NOT_STORED[4:]))
        self.assertEqual(len(inbox), 0)
        self.assertEqual(os.listdir(os.path.join(self.path, "new")), [])
        self.assertEqual(len(self.flushLoggedErrors(FileNotFoundError)), 1)
        self.assertRaises(FileNotFoundError, inbox.add, "a@x", ["b@x"], MESSAGE)
        self.assertEqual(len(inbox), 0)

    def test_after(self) -> None:
        """
        After another handler, the message is stored and the client gets
        that handler's reply once it is.
        """
        pool = ManualPool()
        inbox = self.inbox(reactor=FakeReactor(pool))
        tester = SMTPTester(InboxAfter(Refusing(), inbox))
        tester.sendmail("a@x", ["b@x"], MESSAGE)
        self.assertEqual(len(inbox), 0)
        pool.runAll()
        self.assertEqual(tester.replies(), [Reply(554, "5.7.1 No thanks")])
        self.assertEqual([m.raw for m in self.inbox()], [MESSAGE])
