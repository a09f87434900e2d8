# -*- test-case-name: tests.test_chunking -*-
"""
Tests for L{twisted_smtpd._chunking}: CHUNKING, BDAT and BINARYMIME (RFC
3030), in memory (L{SMTPTester}, a L{Clock}), then on real TCP connections
with raw sockets (L{WireTests}), and with Postfix relaying to the server
(L{PostfixTests}).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.logger import capturedLogs
from twisted.trial.unittest import TestCase

from tests._postfix import PostfixRelay
from tests._protocolsupport import (
    LOCAL_ERROR,
    NEED_MAIL,
    NEED_RCPT,
    OK,
    Boom,
    Collector,
    ProtocolTestCase,
    assertSplitsAgree,
)
from tests._support import listen, rawConnect, readReplies, readToEnd
from tests.test_tls import certificates
from twisted_smtpd import LMTP, SMTP
from twisted_smtpd._chunking import ChunkData, parseBDAT
from twisted_smtpd.testing import Reply, SMTPTester

SYNTAX = Reply(501, "5.5.4 Syntax: BDAT <size> [LAST]")
TOO_BIG = Reply(552, "Error: Too much mail data")
SEND_EHLO = Reply(503, "Error: send HELO first")
DATA_AFTER_BDAT = Reply(503, "5.5.1 Error: DATA after BDAT")
BINARYMIME_NEEDS_BDAT = Reply(503, "5.5.1 Error: BODY=BINARYMIME requires BDAT")
TRANSACTION = b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"


def received(size: int) -> Reply:
    """
    The reply to a chunk of C{size} octets that is not the last.
    """
    return Reply(250, f"OK: {size} octets received")


def bdat(chunk: bytes, last: bool = False) -> bytes:
    """
    A BDAT command with its chunk.
    """
    return b"BDAT %d%s\r\n" % (len(chunk), b" LAST" if last else b"") + chunk


def chunked(message: bytes, cuts: list[int]) -> bytes:
    """
    C{message} as BDAT commands cut at C{cuts}, the last one marked LAST.
    """
    bounds = [0, *sorted(set(cuts)), len(message)]
    pieces = [message[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
    commands = [bdat(piece) for piece in pieces]
    return b"".join(commands) + bdat(b"", last=True)


class DataOverride(SMTP):
    """
    A server whose own DATA runs before the built-in one.
    """

    async def smtp_DATA(self, arg: str | None) -> None:
        await super().smtp_DATA(arg)


class ParseTests(ProtocolTestCase):
    """
    L{parseBDAT}, the argument of BDAT.
    """

    def test_valid(self) -> None:
        """
        A size, with or without C{LAST} in any case.
        """
        self.assertEqual(parseBDAT("10"), (10, False))
        self.assertEqual(parseBDAT("0 LAST"), (0, True))
        self.assertEqual(parseBDAT("007 last"), (7, True))

    def test_badMarker(self) -> None:
        """
        A size followed by anything but C{LAST} parses as a size only.
        """
        self.assertEqual(parseBDAT("10 FIRST"), (10, None))
        self.assertEqual(parseBDAT("10 LAST LAST"), (10, None))

    def test_badSize(self) -> None:
        """
        No size, a negative one, one with a sign or non-ASCII digits, does
        not parse.
        """
        for arg in (None, "", "-1", "+1", "x", "1e3", "\u0661"):
            self.assertEqual(parseBDAT(arg), (None, None), arg)


class ChunkDataTests(ProtocolTestCase):
    """
    L{ChunkData}, the framer of one chunk.
    """

    def test_whole(self) -> None:
        """
        The chunk's octets are taken, whatever they are; what follows is
        left.
        """
        mode = ChunkData(5, None)
        unit, end = mode.frame(b"XX\r\n.\r\nNOOP\r\n", 2, None)
        self.assertIs(unit, mode)
        self.assertEqual(end, 7)
        self.assertEqual(mode._parts, [b"\r\n.\r\n"])

    def test_byteByByte(self) -> None:
        """
        Fed a byte at a time, the unit comes with the last octet.
        """
        mode = ChunkData(3, None)
        results = [mode.frame(bytes([b]), 0, None) for b in b"a\nc"]
        self.assertEqual(results[:2], [(None, 1), (None, 1)])
        self.assertEqual(results[2], (mode, 1))
        self.assertEqual(b"".join(mode._parts), b"a\nc")

    def test_dropped(self) -> None:
        """
        A chunk not kept is counted, not held.
        """
        mode = ChunkData(4, None, keep=False)
        self.assertEqual(mode.frame(b"abcdef", 0, None), (mode, 4))
        self.assertIsNone(mode._parts)

    def test_streamed(self) -> None:
        """
        The idle clock runs per 64 KiB received, as for DATA.
        """
        self.assertTrue(ChunkData.streamed)
        self.assertTrue(ChunkData.timed)


class KeywordTests(ProtocolTestCase):
    """
    When CHUNKING and BINARYMIME are offered.
    """

    def keywords(self, tester: SMTPTester) -> list[str]:
        """
        The EHLO keywords offered by C{tester}'s server.
        """
        return tester.command("EHLO c.example").lines[1:]

    def test_default(self) -> None:
        """
        EHLO offers CHUNKING and BINARYMIME after 8BITMIME and DSN; HELP
        lists BDAT.
        """
        tester = self.makeTester()
        keywords = self.keywords(tester)
        self.assertEqual(keywords[1:5], ["8BITMIME", "DSN", "CHUNKING", "BINARYMIME"])
        self.assertEqual(
            tester.command("HELP BDAT"), Reply(214, "Syntax: BDAT <size> [LAST]")
        )

    def test_decodeData(self) -> None:
        """
        Without 8-bit data (C{decode_data} without SMTPUTF8), no BINARYMIME.
        """
        keywords = self.keywords(self.makeTester(decode_data=True))
        self.assertIn("CHUNKING", keywords)
        self.assertNotIn("BINARYMIME", keywords)

    def off(self, tester: SMTPTester) -> None:
        """
        Assert that CHUNKING is not offered by C{tester}'s server.
        """
        keywords = self.keywords(tester)
        self.assertNotIn("CHUNKING", keywords)
        self.assertNotIn("BINARYMIME", keywords)
        self.assertNotIn("BDAT", tester.command("HELP").text)
        self.assertEqual(
            tester.command("BDAT 3 LAST"),
            Reply(500, 'Error: command "BDAT" not recognized'),
        )
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> BODY=BINARYMIME"),
            Reply(501, "Error: BODY can only be one of 7BIT, 8BITMIME"),
        )

    def test_optionOff(self) -> None:
        """
        With C{chunking=False}, neither keyword, BDAT is an unknown command
        and C{BODY=BINARYMIME} is refused.
        """
        self.off(self.makeTester(chunking=False))

    def test_dataOverridden(self) -> None:
        """
        A server class with its own C{smtp_DATA}, which BDAT would bypass,
        does not offer CHUNKING.
        """
        self.off(self.makeTester(protocol=DataOverride))

    def test_badOption(self) -> None:
        """
        C{chunking} must be a bool.
        """
        self.assertRaises(TypeError, SMTPTester, Collector(), chunking="yes")


class BDATTests(ProtocolTestCase):
    """
    Messages sent with BDAT.
    """

    def transaction(self, handler: Any = None, **options: Any) -> SMTPTester:
        """
        Greet, and open a transaction with one recipient.
        """
        tester = self.ready(handler, **options)
        tester.send(TRANSACTION)
        self.assertEqual(tester.replies(), [OK, OK])
        return tester

    def test_chunks(self) -> None:
        """
        Each chunk gets its reply; after LAST, the handler gets the
        chunks together, as sent, and the transaction is over.
        """
        handler = Collector()
        tester = self.transaction(handler)
        tester.send(bdat(b"Subject: x\r\n"))
        tester.send(bdat(b"\r\nbody\r\n", last=True))
        self.assertEqual(tester.replies(), [received(12), OK])
        body = b"Subject: x\r\n\r\nbody\r\n"
        self.assertEqual(
            handler.messages, [("a@example.com", ["b@example.com"], body, body)]
        )
        self.assertEqual(tester.command("BDAT 0 LAST"), NEED_MAIL)

    def test_rawOctets(self) -> None:
        """
        A chunk's octets are taken as they are: no dot-unstuffing, no end at
        C{<CRLF>.<CRLF>}, bare CR and LF, NUL, lines longer than 1000
        octets, and no CRLF added at the end.
        """
        handler = Collector()
        tester = self.transaction(handler)
        body = b"..a\r\n.\r\nb\nc\rd\x00\xff" + b"x" * 3000
        tester.send(bdat(body, last=True))
        self.assertEqual(tester.replies(), [OK])
        self.assertEqual(handler.messages[0][2], body)

    def test_emptyLast(self) -> None:
        """
        C{BDAT 0 LAST} ends the message; alone, it sends an empty one.
        """
        handler = Collector()
        tester = self.transaction(handler)
        tester.send(bdat(b"abc") + b"BDAT 0 LAST\r\n")
        tester.send(TRANSACTION + b"BDAT 0 LAST\r\n")
        self.assertEqual(tester.replies(), [received(3), OK, OK, OK, OK])
        self.assertEqual([m[2] for m in handler.messages], [b"abc", b""])

    def test_pipelined(self) -> None:
        """
        A whole session in one packet, and in any split: each chunk ends
        where its size says, and the commands after it are read.
        """
        stream = (
            b"EHLO c.example\r\n"
            + TRANSACTION
            + bdat(b"BDAT 9\r\nNOOP\r\n")
            + bdat(b"QUIT\r\n", last=True)
            + b"NOOP\r\n"
        )

        def run(chunks: list[bytes]) -> Any:
            handler = Collector()
            tester = self.makeTester(handler)
            for chunk in chunks:
                tester.send(chunk)
            return [r.code for r in tester.replies()], handler.messages

        codes, messages = assertSplitsAgree(self, run, stream)
        self.assertEqual(codes, [250, 250, 250, 250, 250, 250])
        self.assertEqual(messages[0][2], b"BDAT 9\r\nNOOP\r\nQUIT\r\n")

    def test_decodeData(self) -> None:
        """
        With C{decode_data}, the content is decoded as after DATA.
        """
        handler = Collector()
        tester = self.transaction(handler, decode_data=True)
        tester.send(bdat(b"abc\r\n", last=True))
        self.assertEqual(tester.replies(), [OK])
        self.assertEqual(handler.messages[0][2:], ("abc\r\n", b"abc\r\n"))
        tester.send(TRANSACTION + bdat(b"\xe9\r\n", last=True))
        self.assertEqual(
            tester.replies(), [OK, OK, Reply(500, "Error: strict ASCII mode")]
        )

    def test_hookReply(self) -> None:
        """
        C{handle_DATA}'s reply answers the last chunk.
        """
        tester = self.transaction(Collector("554 no thanks"))
        tester.send(bdat(b"a") + bdat(b"b", last=True))
        self.assertEqual(tester.replies(), [received(1), Reply(554, "no thanks")])

    def test_hookPending(self) -> None:
        """
        While C{handle_DATA} is pending, the commands pipelined after the
        last chunk wait, and are answered after it.
        """
        waiting: list[Deferred] = []

        class Handler:
            def handle_DATA(self, server, session, envelope):
                waiting.append(Deferred())
                return waiting[-1]

        tester = self.transaction(Handler())
        tester.send(bdat(b"abc", last=True) + b"NOOP\r\n")
        self.assertEqual(tester.replies(), [])
        waiting[0].callback("250 done")
        self.assertEqual(tester.replies(), [Reply(250, "done"), OK])

    def test_hookRaises(self) -> None:
        """
        An exception in C{handle_DATA} gets a 451 and ends the transaction.
        """

        class Handler:
            def handle_DATA(self, server, session, envelope):
                raise Boom()

        tester = self.transaction(Handler())
        tester.send(bdat(b"abc", last=True) + b"BDAT 1 LAST\r\nx")
        self.assertEqual(tester.replies(), [LOCAL_ERROR, NEED_MAIL])
        self.assertOpen(tester)
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 1)

    def test_dataAfterBDAT(self) -> None:
        """
        DATA after a chunk of the same transaction gets 503; the
        transaction goes on with BDAT.
        """
        handler = Collector()
        tester = self.transaction(handler)
        tester.send(bdat(b"ab") + b"DATA\r\n" + bdat(b"c", last=True))
        self.assertEqual(tester.replies(), [received(2), DATA_AFTER_BDAT, OK])
        self.assertEqual(handler.messages[0][2], b"abc")

    def test_rset(self) -> None:
        """
        RSET discards the chunks received; the next transaction starts
        empty, and may use DATA.
        """
        handler = Collector()
        tester = self.transaction(handler)
        tester.send(bdat(b"old") + b"RSET\r\n" + TRANSACTION + bdat(b"new", True))
        self.assertEqual(tester.replies(), [received(3), OK, OK, OK, OK])
        self.assertEqual(handler.messages[0][2], b"new")
        tester.send(TRANSACTION + bdat(b"x") + b"RSET\r\n" + TRANSACTION + b"DATA\r\n")
        self.assertEqual([r.code for r in tester.replies()], [250] * 6 + [354])

    def test_logged(self) -> None:
        """
        The transaction log has one event per message, with the octets of
        all its chunks, as for DATA; a message refused as too big too.
        """
        tester = self.ready(data_size_limit=10)
        with capturedLogs() as events:
            tester.send(TRANSACTION + bdat(b"12345") + bdat(b"678", last=True))
            tester.send(TRANSACTION + bdat(b"12345") + bdat(b"678901"))
        logged = [
            (e["size"], e["result"])
            for e in events
            if e.get("log_namespace") == "twisted_smtpd.server"
        ]
        self.assertEqual(logged, [(8, "250"), (11, "552")])


class RefusedBDATTests(ProtocolTestCase):
    """
    A refused BDAT whose size parses still reads its chunk, so that none of
    its octets is taken for a command; one whose size does not parse closes
    the connection.
    """

    #: A chunk that would run commands if it were read as commands.
    CHUNK = b"RSET\r\nQUIT\r\n"

    def refused(self, tester: SMTPTester, reply: Reply) -> None:
        """
        Assert that a BDAT of L{CHUNK} gets C{reply} and that its octets
        are no commands.
        """
        tester.send(bdat(self.CHUNK) + b"NOOP\r\n")
        self.assertEqual(tester.replies(), [reply, OK])
        self.assertFalse(tester.closed)

    def test_beforeSTARTTLS(self) -> None:
        """
        Refused by C{require_starttls} before it runs: 530, and the chunk is
        still read and dropped.
        """
        tester = self.makeTester(
            require_starttls=True, tls_context=certificates(self).serverOptions()
        )
        tester.command("EHLO c.example")
        self.refused(tester, Reply(530, "Must issue a STARTTLS command first"))

    def test_noValidSession(self) -> None:
        """
        After a 554 greeting from C{handle_CONNECT}: 503, and the chunk is
        still read and dropped.
        """

        class Refusing(Collector):
            def handle_CONNECT(self, server, session, envelope):
                return "554 No service here"

        tester = self.makeTester(Refusing())
        tester.send(bdat(self.CHUNK) + b"NOOP\r\n")
        # The QUIT in the chunk is not run: NOOP gets the 503 of the state.
        self.assertEqual(
            tester.replies(), [Reply(503, "5.5.1 Error: no valid session")] * 2
        )
        self.assertFalse(tester.closed)

    def test_refusedBeforeRunningBadSize(self) -> None:
        """
        Refused before it runs and without a size that parses: the refusal
        is the last reply, and the connection closes.
        """
        tester = self.makeTester(
            require_starttls=True, tls_context=certificates(self).serverOptions()
        )
        tester.send(b"BDAT x\r\nNOOP\r\n")
        self.assertEqual(
            tester.replies(), [Reply(530, "Must issue a STARTTLS command first")]
        )
        self.assertTrue(tester.closed)

    def test_beforeHello(self) -> None:
        """
        Before EHLO: 503.
        """
        self.refused(self.makeTester(), SEND_EHLO)

    def test_withoutMail(self) -> None:
        """
        Without MAIL: 503.
        """
        self.refused(self.ready(), NEED_MAIL)

    def test_withoutRecipient(self) -> None:
        """
        Without an accepted recipient: 503.
        """
        tester = self.ready()
        self.assertEqual(tester.command("MAIL FROM:<a@example.com>"), OK)
        self.refused(tester, NEED_RCPT)

    def test_badMarker(self) -> None:
        """
        A size followed by something other than LAST: 501, the chunk read,
        the transaction kept.
        """
        handler = Collector()
        tester = self.ready(handler)
        tester.send(TRANSACTION + b"BDAT 6 FIRST\r\nNOOP\r\n" + bdat(b"ok", True))
        self.assertEqual(tester.replies(), [OK, OK, SYNTAX, OK])
        self.assertEqual(handler.messages[0][2], b"ok")

    def test_badSize(self) -> None:
        """
        A size that does not parse: 501 and the connection is closed, since
        the end of the chunk is unknown.
        """
        for command in (b"BDAT", b"BDAT x LAST", b"BDAT -5", b"BDAT 5x"):
            tester = self.ready()
            tester.send(TRANSACTION + command + b"\r\nNOOP\r\n")
            self.assertEqual(tester.replies(), [OK, OK, SYNTAX], command)
            self.assertTrue(tester.closed, command)

    def test_overLimit(self) -> None:
        """
        The chunk that takes the message over C{data_size_limit} is read
        (not kept) and then refused with 552, which ends the transaction:
        the chunks pipelined after it get 503 and are read too.
        """
        handler = Collector()
        tester = self.ready(handler, data_size_limit=10)
        tester.send(TRANSACTION + bdat(b"123456"))
        tester.send(b"BDAT 6\r\n123")
        self.assertIsNone(tester.server._mode._parts)
        tester.send(b"456" + bdat(self.CHUNK, last=True) + b"NOOP\r\n")
        self.assertEqual(
            tester.replies(), [OK, OK, received(6), TOO_BIG, NEED_MAIL, OK]
        )
        self.assertEqual(handler.messages, [])

    def test_overLimitLast(self) -> None:
        """
        A last chunk over the limit gets 552 too; exactly at the limit, the
        message is delivered.
        """
        handler = Collector()
        tester = self.ready(handler, data_size_limit=10)
        tester.send(TRANSACTION + bdat(b"12345") + bdat(b"678901", last=True))
        tester.send(TRANSACTION + bdat(b"12345") + bdat(b"67890", last=True))
        self.assertEqual(
            tester.replies(), [OK, OK, received(5), TOO_BIG, OK, OK, received(5), OK]
        )
        self.assertEqual([m[2] for m in handler.messages], [b"1234567890"])

    def test_hugeChunkNotKept(self) -> None:
        """
        A chunk declared bigger than the limit allows is dropped as it
        comes, never held.
        """
        tester = self.ready(data_size_limit=1000)
        tester.send(TRANSACTION + b"BDAT 1000000000 LAST\r\n" + b"x" * 65536)
        self.assertIsNone(tester.server._mode._parts)
        self.assertEqual(tester.replies(), [OK, OK])

    def test_errorsCounted(self) -> None:
        """
        Refused chunks count towards C{hard_error_limit}; a message
        delivered by BDAT forgives the errors before it, as DATA does.
        """
        tester = self.ready(hard_error_limit=3)
        tester.send(b"BDAT 1\r\nx" * 2 + TRANSACTION + bdat(b"m", last=True))
        tester.send(b"BDAT 1\r\nx" * 2 + b"NOOP\r\n")
        self.assertEqual(
            tester.replies(), [NEED_MAIL] * 2 + [OK] * 3 + [NEED_MAIL] * 2 + [OK]
        )
        tester.send(b"BDAT 1\r\nx")
        self.assertTrue(tester.closed)


class BINARYMIMETests(ProtocolTestCase):
    """
    C{BODY=BINARYMIME}: the message comes by BDAT only.
    """

    def test_accepted(self) -> None:
        """
        MAIL takes C{BODY=BINARYMIME}; DATA is then refused with 503, BDAT
        carries the message.
        """
        handler = Collector()
        tester = self.ready(handler)
        tester.send(
            b"MAIL FROM:<a@example.com> BODY=binarymime\r\n"
            b"RCPT TO:<b@example.com>\r\nDATA\r\n" + bdat(b"\x00\r", last=True)
        )
        self.assertEqual(tester.replies(), [OK, OK, BINARYMIME_NEEDS_BDAT, OK])
        self.assertEqual(handler.envelopes[0].mail_options, ["BODY=BINARYMIME"])
        self.assertEqual(handler.messages[0][2], b"\x00\r")

    def test_notWithoutEightBit(self) -> None:
        """
        Without 8-bit data, BODY is not offered at all.
        """
        tester = self.ready(decode_data=True)
        self.assertEqual(
            tester.command("MAIL FROM:<a@example.com> BODY=BINARYMIME").code, 555
        )


class LMTPChunkingTests(ProtocolTestCase):
    """
    BDAT with LMTP (RFC 3030 section 4.2 and RFC 2033): one reply per chunk,
    one per recipient after the last.
    """

    def test_perRecipient(self) -> None:
        """
        A chunk gets one reply; the last one gets a reply per recipient;
        a chunk over the limit that is not the last gets one.
        """
        handler = Collector()
        tester = self.ready(handler, greet="LHLO", protocol=LMTP, data_size_limit=8)
        envelope = TRANSACTION + b"RCPT TO:<c@example.com>\r\n"
        tester.send(envelope + bdat(b"ab") + bdat(b"cd", last=True))
        tester.send(envelope + bdat(b"123456789") + b"BDAT 0 LAST\r\n")
        ok = Reply(250, "2.0.0 OK")
        self.assertEqual(
            tester.replies(),
            [ok] * 3
            + [Reply(250, "2.0.0 OK: 2 octets received"), ok, ok]
            + [ok] * 3
            + [
                Reply(552, "5.3.4 Error: Too much mail data"),
                Reply(503, "5.5.1 Error: need MAIL command"),
            ],
        )
        self.assertEqual(
            handler.messages[0][1:3], (["b@example.com", "c@example.com"], b"abcd")
        )

    def test_exceptionPerRecipient(self) -> None:
        """
        An exception in C{handle_DATA} after the last chunk, empty or not,
        gets a 451 per recipient.
        """

        class Handler:
            def handle_DATA(self, server, session, envelope):
                raise Boom()

        tester = self.ready(Handler(), greet="LHLO", protocol=LMTP)
        envelope = TRANSACTION + b"RCPT TO:<c@example.com>\r\n"
        tester.send(envelope + b"BDAT 0 LAST\r\n" + envelope + bdat(b"x", True))
        replies = tester.replies()
        error = Reply(451, "4.3.0 " + LOCAL_ERROR.text)
        self.assertEqual(replies[3:5], [error, error])
        self.assertEqual(replies[8:], [error, error])
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 2)


class IdleTests(ProtocolTestCase):
    """
    The idle clock while a chunk is read.
    """

    def test_flowing(self) -> None:
        """
        A big chunk flowing at 64 KiB per C{timeout} is never cut; one that
        trickles is.
        """
        tester = self.ready(timeout=10)
        tester.send(TRANSACTION + b"BDAT 300000 LAST\r\n")
        for _ in range(4):
            tester.clock.advance(9)
            tester.send(b"x" * 65536)
        self.assertFalse(tester.closed)
        for _ in range(3):
            tester.clock.advance(4)
            tester.send(b"x")
        self.assertTrue(tester.closed)


class SameAsDATATests(ProtocolTestCase):
    """
    Any chunking of a message gives the handler the same content as DATA.
    """

    @settings(max_examples=60, deadline=None)
    @given(
        lines=st.lists(
            st.binary(max_size=40).map(
                lambda b: b.replace(b"\r", b"").replace(b"\n", b"")
            ),
            max_size=8,
        ),
        cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=6),
        decode=st.booleans(),
    )
    def test_sameContent(
        self, lines: list[bytes], cuts: list[int], decode: bool
    ) -> None:
        """
        A message of CRLF lines, chunked anyhow, gives C{envelope.content}
        and C{original_content} byte-identical to DATA's.
        """
        message = b"".join(line + b"\r\n" for line in lines)
        options = {"decode_data": decode, "enable_SMTPUTF8": decode}
        byData, byBDAT = Collector(), Collector()
        dataTester = self.ready(byData, **options)
        dataTester.send(TRANSACTION + b"DATA\r\n")
        stuffed = (b"\r\n" + message).replace(b"\r\n.", b"\r\n..")[2:]
        dataTester.send(stuffed + b".\r\n")
        bdatTester = self.ready(byBDAT, **options)
        bdatTester.send(TRANSACTION + chunked(message, cuts))
        self.assertEqual(dataTester.replies()[-1], OK)
        self.assertEqual(bdatTester.replies()[-1], OK)
        self.assertEqual(byBDAT.messages, byData.messages)


def lastLines(replies: bytes) -> list[bytes]:
    """
    The last line of each reply in C{replies}, without its CRLF.
    """
    return [line for line in replies.split(b"\r\n")[:-1] if line[3:4] != b"-"]


class WireTests(TestCase):
    """
    BDAT over real TCP connections on 127.0.0.1, with a raw socket, so that
    every byte the client sends and every reply line are exactly as
    written here: an integration test.
    """

    def exchange(self, handler: Any, data: bytes, replies: int, **options: Any):
        """
        Send C{data} after the greeting in one write, and read C{replies}
        replies (or, with C{replies} 0, all until the server closes).

        @return: A L{Deferred} firing with the replies' bytes.
        """
        listening = listen(self, handler, **options)

        def client() -> bytes:
            with rawConnect(listening.port) as sock:
                readReplies(sock, 1)
                sock.sendall(data)
                if not replies:
                    return readToEnd(sock)
                return readReplies(sock, replies)

        return deferToThread(client)

    async def test_pipelinedSession(self) -> None:
        """
        A whole session in one write: chunks of any octets, the commands
        around them, each answered in order.
        """
        handler = Collector()
        body = b"Subject: t\r\n\r\n.\r\n\x00\xff\nQUIT\r\n"
        data = (
            b"EHLO c.example\r\n"
            + TRANSACTION
            + bdat(body[:10])
            + bdat(body[10:], last=True)
            + b"NOOP\r\nQUIT\r\n"
        )
        replies = await self.exchange(handler, data, 0)
        self.assertEqual(
            lastLines(replies),
            [
                b"250 HELP",
                b"250 OK",
                b"250 OK",
                b"250 OK: 10 octets received",
                b"250 OK",
                b"250 OK",
                b"221 Bye",
            ],
        )
        self.assertEqual(handler.messages[0][2], body)

    async def test_bigChunk(self) -> None:
        """
        A chunk of 3 MiB, which arrives in many reads, is delivered exact.
        """
        handler = Collector()
        body = bytes(range(256)) * (3 * 4096)
        data = b"EHLO c.example\r\n" + TRANSACTION + bdat(body, last=True)
        replies = await self.exchange(handler, data, 4)
        self.assertTrue(replies.endswith(b"250 OK\r\n250 OK\r\n250 OK\r\n"))
        self.assertEqual(handler.messages[0][2], body)

    async def test_refusals(self) -> None:
        """
        Refused chunks (no MAIL, no RCPT, a bad end marker, DATA after
        BDAT) are read and never taken for commands.
        """
        handler = Collector()
        chunk = b"QUIT\r\n"
        data = (
            bdat(chunk)
            + b"EHLO c.example\r\n"
            + bdat(chunk)
            + b"MAIL FROM:<a@example.com>\r\n"
            + bdat(chunk)
            + b"RCPT TO:<b@example.com>\r\n"
            + b"BDAT 6 NEXT\r\n"
            + chunk
            + bdat(chunk)
            + b"DATA\r\n"
            + bdat(chunk, last=True)
            + b"QUIT\r\n"
        )
        replies = await self.exchange(handler, data, 0)
        self.assertEqual(
            lastLines(replies),
            [
                b"503 Error: send HELO first",
                b"250 HELP",
                b"503 Error: need MAIL command",
                b"250 OK",
                b"503 Error: need RCPT command",
                b"250 OK",
                b"501 5.5.4 Syntax: BDAT <size> [LAST]",
                b"250 OK: 6 octets received",
                b"503 5.5.1 Error: DATA after BDAT",
                b"250 OK",
                b"221 Bye",
            ],
        )
        self.assertEqual(handler.messages[0][2], chunk * 2)

    async def test_overLimit(self) -> None:
        """
        The chunk that crosses C{data_size_limit} gets 552 after it is
        read; the chunk after it 503, and the session goes on.
        """
        handler = Collector()
        data = (
            b"EHLO c.example\r\n"
            + TRANSACTION
            + bdat(b"x" * 600)
            + bdat(b"y" * 600)
            + bdat(b"NOOP\r\n", last=True)
            + b"QUIT\r\n"
        )
        replies = await self.exchange(handler, data, 0, data_size_limit=1000)
        self.assertEqual(
            lastLines(replies),
            [
                b"250 HELP",
                b"250 OK",
                b"250 OK",
                b"250 OK: 600 octets received",
                b"552 Error: Too much mail data",
                b"503 Error: need MAIL command",
                b"221 Bye",
            ],
        )
        self.assertEqual(handler.messages, [])

    async def test_badSize(self) -> None:
        """
        A size that does not parse gets 501, and the connection is closed
        without reading what follows.
        """
        data = b"EHLO c.example\r\n" + TRANSACTION + b"BDAT ten LAST\r\nNOOP\r\n"
        replies = await self.exchange(Collector(), data, 0)
        self.assertTrue(
            replies.endswith(b"250 OK\r\n501 5.5.4 Syntax: BDAT <size> [LAST]\r\n"),
            replies,
        )

    async def test_binaryMIMEData(self) -> None:
        """
        DATA in a transaction opened with C{BODY=BINARYMIME} gets 503.
        """
        data = (
            b"EHLO c.example\r\nMAIL FROM:<a@example.com> BODY=BINARYMIME\r\n"
            b"RCPT TO:<b@example.com>\r\nDATA\r\nQUIT\r\n"
        )
        replies = await self.exchange(Collector(), data, 0)
        self.assertTrue(
            replies.endswith(
                b"250 OK\r\n250 OK\r\n"
                b"503 5.5.1 Error: BODY=BINARYMIME requires BDAT\r\n221 Bye\r\n"
            ),
            replies,
        )


class PostfixTests(TestCase):
    """
    A private Postfix instance relays a message to the server, which offers
    CHUNKING: an integration test with a real MTA. (Postfix 3.7's SMTP
    client sends DATA whatever the server offers; its server side is the
    one that knows BDAT.)
    """

    #: Headers Postfix's cleanup would otherwise add, so that the message
    #: arrives as sent below the trace header Postfix puts on top.
    MESSAGE = (
        b"From: a@example.com\r\n"
        b"To: b@example.com\r\n"
        b"Subject: relayed\r\n"
        b"Date: Mon, 7 Dec 2026 10:00:00 +0000\r\n"
        b"Message-Id: <relayed@example.com>\r\n"
        b"\r\n"
        b".a line that starts with a dot\r\n"
        b"8-bit octets: \xe9\xff\r\n"
        b"..\r\n" + b"long " * 150 + b"\r\n"
    )

    async def test_relayedExact(self) -> None:
        """
        The message Postfix relays arrives byte-exact after Postfix's
        C{Received} header.
        """
        delivered: Deferred = Deferred()

        class Handler:
            def handle_DATA(self, server, session, envelope):
                delivered.callback(envelope.original_content)
                return "250 OK"

        listening = listen(self, Handler())
        relay = PostfixRelay(listening.port)
        relay.start()
        self.addCleanup(relay.stop)
        await deferToThread(
            relay.sendmail, "a@example.com", "b@example.com", self.MESSAGE
        )
        timer = reactor.callLater(
            30, lambda: delivered.errback(AssertionError(relay.log()))
        )
        try:
            content = await delivered
        finally:
            if timer.active():
                timer.cancel()
        head, sep, rest = content.partition(b"\r\nFrom: a@example.com\r\n")
        self.assertTrue(head.startswith(b"Received: "), content)
        self.assertEqual(b"From: a@example.com\r\n" + rest, self.MESSAGE)
