# -*- test-case-name: tests.test_streaming -*-
"""
Tests for L{twisted_smtpd._streaming}: message bodies handed to a handler
in pieces (C{handle_DATA_CHUNK}, C{handle_DATA_END}, C{handle_DATA_ABORT}),
over DATA and BDAT, with back-pressure and every way a message may not
complete. In memory, with a L{Clock}; no sockets.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from twisted_smtpd import LMTP, SMTPFactory
from twisted_smtpd._streaming import PIECE_SIZE
from twisted_smtpd.testing import Reply, SMTPTester

TRANSACTION = (
    b"EHLO c.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
)


class Pieces:
    """
    A handler that takes messages in pieces and records the calls.

    @ivar calls: C{("chunk", data, size)}, C{("end", size)} and
        C{("abort", reason)}, in order.
    @ivar waiting: When set, C{handle_DATA_CHUNK} returns a new pending
        L{Deferred}, appended to L{pending}.
    """

    def __init__(self, end: Any = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.contents: list[Any] = []
        self.waiting = False
        self.pending: list[Deferred] = []
        self.endResult = end

    def handle_DATA_CHUNK(self, server, session, envelope, data, size):
        self.calls.append(("chunk", data, size))
        if self.waiting:
            d: Deferred[None] = Deferred()
            self.pending.append(d)
            return d
        return None

    async def handle_DATA_END(self, server, session, envelope, size):
        self.calls.append(("end", size))
        self.contents.append(envelope.content)
        return self.endResult

    def handle_DATA_ABORT(self, server, session, envelope, reason):
        self.calls.append(("abort", reason))

    def body(self) -> bytes:
        """
        The pieces received, joined.
        """
        return b"".join(call[1] for call in self.calls if call[0] == "chunk")

    def kinds(self) -> list[str]:
        return [call[0] for call in self.calls]


class Buffered:
    """
    A handler that takes messages whole, for comparison.
    """

    def __init__(self) -> None:
        self.contents: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):
        self.contents.append(envelope.content)
        return "250 OK"


def tester(handler: Any, **options: Any) -> SMTPTester:
    """
    A server for C{handler}, its transaction begun.
    """
    options.setdefault("hostname", "mx.example")
    t = SMTPTester(handler, **options)
    t.send(TRANSACTION)
    t.replies()
    return t


def dataStream(message: bytes) -> bytes:
    """
    C{message} (CRLF lines) dot-stuffed and ended for DATA.
    """
    lines = message.split(b"\r\n")[:-1]
    stuffed = b"".join((b"." + ln if ln[:1] == b"." else ln) + b"\r\n" for ln in lines)
    return b"DATA\r\n" + stuffed + b".\r\n"


def bdatStream(message: bytes, cuts: list[int]) -> bytes:
    """
    C{message} sent as BDAT chunks cut at C{cuts}, the last one LAST.
    """
    bounds = [0, *sorted(set(c for c in cuts if 0 < c < len(message))), len(message)]
    out = []
    for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False)):
        last = b" LAST" if i == len(bounds) - 2 else b""
        out.append(b"BDAT %d%s\r\n" % (b - a, last) + message[a:b])
    return b"".join(out)


def feedIn(t: SMTPTester, data: bytes, size: int = 65536) -> None:
    """
    Send C{data} in reads of C{size} octets, as a transport would.
    """
    for i in range(0, len(data), size):
        t.send(data[i : i + size])


MESSAGE = b"Subject: streamed\r\n\r\n" + b"".join(
    (b".dot %d\r\n" if n % 7 == 0 else b"line %d of the body\r\n") % n
    for n in range(20000)
)


class DataTests(SynchronousTestCase):
    """
    DATA with a handler that takes messages in pieces.
    """

    def test_pieces(self) -> None:
        """
        The pieces, in order, make the message as a buffered handler gets
        it; each comes with the size so far; then C{handle_DATA_END} with
        the size, whose reply answers the message; no C{content} is held.
        """
        handler = Pieces(end="250 2.0.0 Stored")
        t = tester(handler)
        feedIn(t, dataStream(MESSAGE))
        self.assertEqual(
            t.replies(),
            [Reply(354, "End data with <CR><LF>.<CR><LF>"), Reply(250, "2.0.0 Stored")],
        )
        buffered = Buffered()
        b = tester(buffered)
        feedIn(b, dataStream(MESSAGE))
        self.assertEqual(handler.body(), buffered.contents[0])
        self.assertEqual(handler.body(), MESSAGE)
        chunks = [call for call in handler.calls if call[0] == "chunk"]
        self.assertGreater(len(chunks), 2)
        total = 0
        for _, data, size in chunks:
            total += len(data)
            self.assertEqual(size, total)
            # A few reads at most: the message is never held whole.
            self.assertLessEqual(len(data), 2 * PIECE_SIZE + 65536)
        self.assertEqual(handler.calls[-1], ("end", len(MESSAGE)))
        self.assertEqual(handler.contents, [None])
        self.assertNotIn("abort", handler.kinds())

    def test_smallMessage(self) -> None:
        """
        A message smaller than a piece comes as one piece before the end;
        an empty message as no piece at all.
        """
        handler = Pieces()
        t = tester(handler)
        t.send(b"DATA\r\nHello\r\n.\r\n")
        self.assertEqual(t.replies()[-1], Reply(250, "OK"))
        self.assertEqual(handler.calls, [("chunk", b"Hello\r\n", 7), ("end", 7)])
        t.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n.\r\n")
        self.assertEqual(t.replies()[-1], Reply(250, "OK"))
        self.assertEqual(handler.calls[2:], [("end", 0)])

    def test_backPressure(self) -> None:
        """
        While C{handle_DATA_CHUNK}'s result is pending, the connection
        reads no more (the transport is paused) and no other piece is
        handed on; once it fires, the message goes on.
        """
        handler = Pieces()
        handler.waiting = True
        t = tester(handler)
        feedIn(t, dataStream(MESSAGE))
        self.assertEqual(len(handler.pending), 1)
        self.assertEqual(t.transport.producerState, "paused")
        self.assertEqual(handler.kinds(), ["chunk"])
        while handler.pending:
            handler.pending.pop(0).callback(None)
        self.assertEqual(t.transport.producerState, "producing")
        self.assertEqual(handler.body(), MESSAGE)
        self.assertEqual(handler.kinds()[-1], "end")
        self.assertEqual(t.replies()[-1], Reply(250, "OK"))

    def test_pipelinedAfterPending(self) -> None:
        """
        Commands pipelined after the end of the data wait for the pending
        pieces and the end, and are answered after the message.
        """
        handler = Pieces()
        handler.waiting = True
        t = tester(handler)
        t.send(b"DATA\r\nHello\r\n.\r\nNOOP\r\n")
        self.assertEqual(t.replies(), [Reply(354, "End data with <CR><LF>.<CR><LF>")])
        handler.pending.pop().callback(None)
        self.assertEqual(t.replies(), [Reply(250, "OK"), Reply(250, "OK")])

    def test_tooBig(self) -> None:
        """
        Over C{data_size_limit} after pieces were handed on:
        C{handle_DATA_ABORT} with C{"too big"}, no end, and the client gets
        552.
        """
        handler = Pieces()
        t = tester(handler, data_size_limit=300000)
        feedIn(t, dataStream(MESSAGE))
        self.assertEqual(t.replies()[-1].code, 552)
        self.assertEqual(handler.kinds()[0], "chunk")
        self.assertEqual(handler.calls[-1], ("abort", "too big"))
        self.assertNotIn("end", handler.kinds())

    def test_errorBeforeAnyPiece(self) -> None:
        """
        A message refused before any piece was handed on calls no hook: the
        handler has nothing to clean up.
        """
        handler = Pieces()
        t = tester(handler, data_size_limit=1000)
        feedIn(t, dataStream(MESSAGE))
        self.assertEqual(t.replies()[-1].code, 552)
        self.assertEqual(handler.calls, [])

    def test_lineTooLong(self) -> None:
        """
        A line over the limit: C{"line too long"} and the reply of DATA.
        """
        handler = Pieces()
        t = tester(handler)
        feedIn(t, b"DATA\r\n" + MESSAGE[:200000] + b"x" * 70000 + b"\r\n.\r\n")
        self.assertEqual(t.replies()[-1].code, 500)
        self.assertEqual(handler.calls[-1], ("abort", "line too long"))

    def test_clientGone(self) -> None:
        """
        The client going away in the middle of the data:
        C{"client gone"}, once.
        """
        handler = Pieces()
        t = tester(handler)
        feedIn(t, dataStream(MESSAGE)[:300000])
        t.server.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(handler.kinds().count("abort"), 1)
        self.assertEqual(handler.calls[-1], ("abort", "client gone"))

    def test_timeout(self) -> None:
        """
        A client that stops in the middle of the data is cut by the idle
        timeout: C{"timeout"}.
        """
        handler = Pieces()
        t = tester(handler, timeout=30)
        feedIn(t, dataStream(MESSAGE)[:300000])
        t.clock.advance(31)
        self.assertEqual(t.replies()[-1].code, 421)
        t.server.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(handler.calls[-1], ("abort", "timeout"))

    def test_pieceFails(self) -> None:
        """
        A piece the handler fails on ends the pieces: C{"error"}, the rest
        of the data is read and dropped, the client gets 451 after its
        end, and the next command is a command.
        """

        class Failing(Pieces):
            def handle_DATA_CHUNK(self, server, session, envelope, data, size):
                super().handle_DATA_CHUNK(server, session, envelope, data, size)
                raise OSError("disk full")

        handler = Failing()
        t = tester(handler)
        feedIn(t, dataStream(MESSAGE) + b"NOOP\r\n")
        replies = t.replies()
        self.assertEqual([r.code for r in replies], [354, 451, 250])
        self.assertEqual(handler.kinds(), ["chunk", "abort"])
        self.assertEqual(handler.calls[-1], ("abort", "error"))
        self.flushLoggedErrors(OSError)

    def test_pendingPieceFails(self) -> None:
        """
        The same when the piece's L{Deferred} fails later.
        """
        handler = Pieces()
        handler.waiting = True
        t = tester(handler)
        t.send(b"DATA\r\nHello\r\n.\r\nNOOP\r\n")
        handler.pending.pop().errback(OSError("disk full"))
        self.assertEqual([r.code for r in t.replies()], [354, 451, 250])
        self.assertEqual(handler.calls[-1], ("abort", "error"))
        self.flushLoggedErrors(OSError)

    def test_endFails(self) -> None:
        """
        An exception in C{handle_DATA_END} answers the message with 451,
        without C{handle_DATA_ABORT}: the handler knew the message was
        over.
        """

        class Failing(Pieces):
            async def handle_DATA_END(self, server, session, envelope, size):
                raise OSError("rename failed")

        handler = Failing()
        t = tester(handler)
        t.send(b"DATA\r\nHello\r\n.\r\n")
        self.assertEqual(t.replies()[-1].code, 451)
        self.assertNotIn("abort", handler.kinds())
        self.flushLoggedErrors(OSError)

    def test_needsEnd(self) -> None:
        """
        A handler with C{handle_DATA_CHUNK} but no C{handle_DATA_END} is
        refused when the server is made.
        """

        class Half:
            def handle_DATA_CHUNK(self, server, session, envelope, data, size):
                pass

        self.assertRaises(TypeError, SMTPFactory, Half())

    def test_receivedHeader(self) -> None:
        """
        With C{received_header}, the first piece starts with the
        C{Received:} field, counted in the sizes; an empty message gets a
        piece with the field alone.
        """
        handler = Pieces()
        t = tester(handler, received_header=True)
        t.send(b"DATA\r\nHello\r\n.\r\n")
        [(_, data, size), end] = handler.calls
        self.assertTrue(data.startswith(b"Received: from c.example "), data)
        self.assertTrue(data.endswith(b"\r\nHello\r\n"), data)
        self.assertEqual((size, end), (len(data), ("end", len(data))))
        t.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n.\r\n")
        [(_, field, _), _] = handler.calls[2:]
        self.assertTrue(field.startswith(b"Received: "), field)
        self.assertTrue(field.endswith(b"\r\n"), field)
        self.assertEqual(field.count(b"\r\n\t") + 1, field.count(b"\r\n"))


class BDATTests(SynchronousTestCase):
    """
    BDAT with a handler that takes messages in pieces.
    """

    def test_chunks(self) -> None:
        """
        The chunks' octets come as pieces, in order, each chunk answered
        once its octets were taken; C{handle_DATA_END} after the last one.
        """
        handler = Pieces()
        t = tester(handler)
        feedIn(t, bdatStream(MESSAGE, [1000, 200000, 300001]))
        replies = t.replies()
        self.assertEqual([r.code for r in replies], [250, 250, 250, 250])
        self.assertEqual(replies[0], Reply(250, "OK: 1000 octets received"))
        self.assertEqual(handler.body(), MESSAGE)
        self.assertEqual(handler.calls[-1], ("end", len(MESSAGE)))

    def test_backPressure(self) -> None:
        """
        A big chunk comes in pieces, with reading paused while a piece is
        pending.
        """
        handler = Pieces()
        handler.waiting = True
        t = tester(handler)
        feedIn(t, bdatStream(MESSAGE, []))
        self.assertEqual(t.transport.producerState, "paused")
        while handler.pending:
            handler.pending.pop(0).callback(None)
        self.assertEqual(handler.body(), MESSAGE)
        self.assertEqual(t.replies()[-1], Reply(250, "OK"))

    def test_resetBetweenChunks(self) -> None:
        """
        RSET between chunks: C{"reset"}, and the next message starts anew.
        """
        handler = Pieces()
        t = tester(handler)
        t.send(b"BDAT 5\r\nHello\r\nRSET\r\n")
        self.assertEqual(handler.calls, [("chunk", b"Hello", 5), ("abort", "reset")])
        t.send(TRANSACTION[16:] + b"BDAT 3 LAST\r\nBye")
        self.assertEqual(handler.calls[2:], [("chunk", b"Bye", 3), ("end", 3)])

    def test_tooBig(self) -> None:
        """
        A chunk over C{data_size_limit}: C{"too big"} and 552.
        """
        handler = Pieces()
        t = tester(handler, data_size_limit=10)
        t.send(b"BDAT 5\r\nHelloBDAT 6 LAST\r\nworld!")
        self.assertEqual([r.code for r in t.replies()], [250, 552])
        self.assertEqual(handler.calls, [("chunk", b"Hello", 5), ("abort", "too big")])


class SameAsBufferedTests(SynchronousTestCase):
    """
    Whatever the message and however it is cut, a handler that takes it in
    pieces gets the octets a buffered handler gets.
    """

    @settings(max_examples=60, deadline=None)
    @given(
        st.lists(
            st.binary(max_size=200).map(
                lambda b: b.replace(b"\r", b"").replace(b"\n", b"")
            ),
            max_size=40,
        ),
        st.lists(st.integers(0, 10000), max_size=5),
        st.integers(1, 5000),
    )
    def test_sameOctets(self, lines: list[bytes], cuts: list[int], read: int) -> None:
        """
        Over DATA and over BDAT, in reads of any size.
        """
        message = b"".join(line + b"\r\n" for line in lines)
        for stream in (
            dataStream(message),
            bdatStream(message, cuts) if message else b"",
        ):
            if not stream:
                continue
            pieces, buffered = Pieces(), Buffered()
            for handler in (pieces, buffered):
                t = tester(handler)
                feedIn(t, stream, read)
                self.assertEqual(t.replies()[-1].code, 250)
            self.assertEqual(pieces.body(), buffered.contents[0])


class LMTPTests(SynchronousTestCase):
    """
    LMTP with a handler that takes messages in pieces.
    """

    def test_perRecipient(self) -> None:
        """
        C{handle_DATA_END}'s list answers each recipient.
        """
        handler = Pieces(end=["250 2.1.5 Delivered", "452 4.2.2 Mailbox full"])
        t = SMTPTester(handler, protocol=LMTP, hostname="mx.example")
        t.send(
            b"LHLO c.example\r\nMAIL FROM:<a@example.com>\r\n"
            b"RCPT TO:<b@example.com>\r\n"
            b"RCPT TO:<c@example.com>\r\nDATA\r\nHello\r\n.\r\n"
        )
        self.assertEqual(
            t.replies()[-2:],
            [Reply(250, "2.1.5 Delivered"), Reply(452, "4.2.2 Mailbox full")],
        )
        self.assertEqual(handler.body(), b"Hello\r\n")
