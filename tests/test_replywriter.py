"""
Tests for L{twisted_smtpd._replywriter}: replies as they go on the wire,
queued, batched and flushed, driven in memory. No sockets, no real time.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from tests._protocolsupport import (
    HOST,
    LOCAL_ERROR,
    Collector,
    ProtocolTestCase,
    RecordingTransport,
    connect,
)
from twisted_smtpd import SMTP, SMTPFactory
from twisted_smtpd.testing import Reply


class PushTests(ProtocolTestCase):
    """
    L{SMTP.push}.
    """

    def test_pushWritesAtOnce(self) -> None:
        """
        Outside a batch, C{push} writes its line (with CRLF) at once.
        """
        tester = self.makeTester()
        tester.server.push("250 hello")
        self.assertTrue(tester.transport.value().endswith(b"\r\n250 hello\r\n"))

    def test_pushBytes(self) -> None:
        """
        C{push} accepts bytes.
        """
        tester = self.makeTester()
        tester.server.push(b"250 bytes")
        self.assertEqual(tester.replies(), [Reply(250, "bytes")])

    def test_pushAwaitableDone(self) -> None:
        """
        C{push} returns an awaitable that is already complete.
        """
        tester = self.makeTester()

        async def use() -> str:
            await tester.server.push("250 one")
            await tester.server.push("250 two")
            return "done"

        d = Deferred.fromCoroutine(use())
        self.assertEqual(self.successResultOf(d), "done")
        self.assertEqual(tester.replies(), [Reply(250, "one"), Reply(250, "two")])


class EnhancedSMTP(SMTP):
    """
    L{SMTP} with enhanced status codes on.
    """

    enhancedStatusCodes = True


class ReplyWriterTests(ProtocolTestCase):
    """
    L{ReplyWriter}: queueing, enhanced codes, watching, closing.
    """

    def connected(self, **options: Any) -> tuple[Any, RecordingTransport, Clock]:
        clock = Clock()
        factory = SMTPFactory(Collector(), reactor=clock, hostname=HOST, **options)
        server, transport = connect(factory)
        del transport.writes[:]
        transport.clear()
        return server, transport, clock

    def test_queuedUntilFlush(self) -> None:
        """
        Replies are queued and go out together, in one write, on flush.
        """
        server, transport, _ = self.connected()
        server.reply("250 one")
        server.reply(b"250 two")
        self.assertEqual(transport.writes, [])
        server.flush()
        self.assertEqual(transport.writes, [b"250 one\r\n250 two\r\n"])
        server.flush()
        self.assertEqual(len(transport.writes), 1)

    def test_enhancedCodes(self) -> None:
        """
        With enhanced status codes on, C{reply} adds them and
        C{replyPlain} does not.
        """
        server, transport, _ = self.connected(protocol=EnhancedSMTP)
        server.reply("250 OK")
        server.replyPlain("250 mx.example")
        server.flush()
        self.assertEqual(transport.value(), b"250 2.0.0 OK\r\n250 mx.example\r\n")

    def test_encoding(self) -> None:
        """
        Replies are ASCII with C{?} for the rest, or UTF-8 with SMTPUTF8.
        """
        server, transport, _ = self.connected()
        server.reply("250 Grüße")
        server.flush()
        self.assertEqual(transport.value(), b"250 Gr??e\r\n")
        server, transport, _ = self.connected(enable_SMTPUTF8=True)
        server.reply("250 Grüße")
        server.flush()
        self.assertEqual(transport.value(), "250 Grüße\r\n".encode())

    def test_notAReply(self) -> None:
        """
        A hook that returns neither C{str} nor C{bytes} gets 451, the
        L{TypeError} logged.
        """

        class Handler:
            def handle_NOOP(self, server, session, envelope, arg):
                return 250

        tester = self.makeTester(Handler())
        self.assertEqual(tester.command("NOOP"), LOCAL_ERROR)
        self.assertEqual(len(self.flushLoggedErrors(TypeError)), 1)

    def test_watchReplies(self) -> None:
        """
        A watcher sees each reply queued, as bytes without CRLF and with its
        enhanced code, until it is removed.
        """
        server, transport, _ = self.connected(protocol=EnhancedSMTP)
        seen: list[bytes] = []
        server.watchReplies(seen.append)
        server.reply("250 OK")
        server.replyPlain("250 plain")
        server.watchReplies(None)
        server.reply("250 unseen")
        self.assertEqual(seen, [b"250 2.0.0 OK", b"250 plain"])

    def test_disconnect(self) -> None:
        """
        C{disconnect} writes its reply, with those queued before it, closes
        the connection and lets no later reply out.
        """
        server, transport, _ = self.connected()
        server.reply("250 queued")
        server.disconnect("421 Going away")
        self.assertEqual(transport.value(), b"250 queued\r\n421 Going away\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertTrue(server.closing)
        self.assertIsNone(transport.producer)
        server.push("250 too late")
        server.disconnect("421 Again")
        self.assertEqual(transport.value(), b"250 queued\r\n421 Going away\r\n")

    def test_closeTimeout(self) -> None:
        """
        A client that reads nothing is dropped L{ReplyWriter.closeTimeout}
        seconds after C{disconnect}, and not before.
        """
        server, transport, clock = self.connected()
        server.disconnect("421 Going away")
        clock.advance(server.closeTimeout - 0.1)
        self.assertFalse(transport.disconnected)
        clock.advance(0.1)
        self.assertTrue(transport.disconnected)

    def test_closeTimerCancelled(self) -> None:
        """
        A connection lost in time cancels the drop.
        """
        server, transport, clock = self.connected()
        server.disconnect("421 Going away")
        server.connectionLost(None)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_abort(self) -> None:
        """
        C{abort} drops the connection without a word.
        """
        server, transport, _ = self.connected()
        server.reply("250 queued")
        server.abort()
        self.assertTrue(transport.disconnected)
        self.assertTrue(server.closing)
        self.assertEqual(transport.value(), b"")


class ErrorCountTests(ProtocolTestCase):
    """
    Error replies count towards C{hard_error_limit} where they are queued,
    unless the server sends them through L{ReplyWriter.uncounted}.
    """

    TOO_MANY = Reply(421, f"4.7.0 {HOST} Error: too many errors")

    def test_errorRepliesCount(self) -> None:
        """
        A 4yz or 5yz reply, even one a handler pushes itself, counts; at
        the limit the C{421} follows it and the connection closes.
        """
        tester = self.makeTester(hard_error_limit=2)
        tester.server.push("450 busy")
        self.assertFalse(tester.closed)
        tester.server.push(b"550 no")
        self.assertEqual(
            tester.replies(), [Reply(450, "busy"), Reply(550, "no"), self.TOO_MANY]
        )
        self.assertTrue(tester.closed)

    def test_otherRepliesNotCounted(self) -> None:
        """
        Other replies (2yz, 3yz) do not count.
        """
        tester = self.makeTester(hard_error_limit=1)
        for status in ["250 OK", "354 Go", "221 later", "334 VXNlcg=="] * 10:
            tester.server.push(status)
        self.assertFalse(tester.closed)

    def test_uncounted(self) -> None:
        """
        The replies queued by a call made through C{uncounted} do not count,
        and it returns what the call returns; later ones count again.
        """
        tester = self.makeTester(hard_error_limit=1)
        server = tester.server

        def troubles() -> str:
            for _ in range(5):
                server.push("451 trouble")
            return "done"

        self.assertEqual(server.uncounted(troubles), "done")
        self.assertFalse(tester.closed)
        server.push("550 no")
        self.assertEqual(tester.replies()[-2:], [Reply(550, "no"), self.TOO_MANY])

    def test_uncountedNestedAndRaising(self) -> None:
        """
        C{uncounted} may be nested, and an exception in the call ends it
        too.
        """
        tester = self.makeTester(hard_error_limit=1)
        server = tester.server

        def fails() -> None:
            server.uncounted(server.push, "451 inner")
            server.push("451 outer")
            raise ValueError("no")

        self.assertRaises(ValueError, server.uncounted, fails)
        self.assertFalse(tester.closed)
        server.push("550 counted")
        self.assertTrue(tester.closed)

    def test_plainLinesCountOnce(self) -> None:
        """
        Reply lines queued one by one (C{replyPlain}, as EHLO's) count once,
        at the last line.
        """
        tester = self.makeTester(hard_error_limit=2)
        server = tester.server
        for line in ["550-one", "550-two", "550 three"]:
            server.replyPlain(line)
        server.flush()
        self.assertFalse(tester.closed)
        server.replyPlain("550-again")
        self.assertFalse(tester.closed)
        server.replyPlain("550 last")
        self.assertTrue(tester.closed)

    def test_closingReplyNotCounted(self) -> None:
        """
        The last reply of a closing connection is not counted: it is sent
        alone.
        """
        tester = self.makeTester(hard_error_limit=1)
        tester.server.disconnect("421 4.3.2 Shutting down")
        self.assertEqual(tester.replies(), [Reply(421, "4.3.2 Shutting down")])
