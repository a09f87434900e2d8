"""
Tests for L{twisted_smtpd._dataframer}.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twisted_smtpd import _dataframer
from twisted_smtpd._dataframer import (
    BARE_NEWLINE,
    LINE_TOO_LONG,
    TOO_BIG,
    DataReceiver,
)

#: Commands an attacker hides after a fake end of data.
SMUGGLED = (
    b"MAIL FROM:<ceo@victim.example>\r\n"
    b"RCPT TO:<staff@victim.example>\r\n"
    b"DATA\r\n"
    b"Subject: forged\r\n"
    b"\r\n"
    b"pay the invoice\r\n"
)

#: The fake ends of data of the SMTP smuggling attacks (CVE-2024-27305).
FAKE_ENDS = {
    "LF.LF": b"\n.\n",
    "LF.CRLF": b"\n.\r\n",
    "CR.CR": b"\r.\r",
    "CR.CRLF": b"\r.\r\n",
    "CRLF.LF": b"\r\n.\n",
}


def feedAll(receiver: DataReceiver, chunks: list[bytes]) -> bytes | None:
    """
    Feed C{chunks} to C{receiver} until it finds the end of the data.

    @return: What followed the end of the data (the bytes returned by
        L{DataReceiver.feed} and every chunk not fed), or C{None} if the
        chunks ran out first.
    """
    for index, chunk in enumerate(chunks):
        rest = receiver.feed(chunk)
        if rest is not None:
            return rest + b"".join(chunks[index + 1 :])
    return None


def frame(chunks: list[bytes], **options: object) -> tuple[object, ...]:
    """
    Frame a stream fed as C{chunks} with a new L{DataReceiver}.

    @return: C{(content, size, error, rest)}; C{content} is C{None} when
        there is an error, after checking that nothing was kept.
    """
    receiver = DataReceiver(**options)
    rest = feedAll(receiver, chunks)
    if receiver.error is None:
        content = receiver.content()
    else:
        assert receiver._parts == [], receiver._parts
        content = None
    return content, receiver.size, receiver.error, rest


def splitAt(data: bytes, *cuts: int) -> list[bytes]:
    """
    Split C{data} at the given offsets (kept in order; repeated offsets give
    empty chunks).
    """
    bounds = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def stuff(message: bytes) -> bytes:
    """
    Dot-stuff C{message} as a client does (RFC 5321 section 4.5.2): every
    line, a line being what lies between two CRLFs, that starts with a dot
    gets one more.
    """
    return b"\r\n".join(
        b"." + line if line.startswith(b".") else line
        for line in message.split(b"\r\n")
    )


def reference(
    stream: bytes,
    sizeLimit: int | None = None,
    lineLimit: int | None = None,
    allowBareNewline: bool = False,
) -> tuple[object, ...] | None:
    """
    A slow, line by line model of L{DataReceiver} applied to a whole stream.

    Lines of the data are what lies between CRLFs (the data starts as if
    after a CRLF); a line of just a dot ends it and a line starting with a
    dot loses it. For the line limit a line ends at each LF, and is counted
    as sent. The error is the one whose first offending octet comes first,
    ties going to bare newline, then line too long, then too big.

    @return: C{(content, size, error, rest)} like L{frame}, or C{None} if
        the stream has no end of data.
    """
    lines = stream.split(b"\r\n")
    if b"." not in lines[:-1]:
        return None
    count = lines.index(b".")
    wireLength = sum(len(line) + 2 for line in lines[:count])
    rest = stream[wireLength + 3 :]

    content = b""
    errors = []
    wire = 0
    column = 0
    for line in lines[:count]:
        raw = line + b"\r\n"
        for index in range(len(raw)):
            octet = raw[index : index + 1]
            column += 1
            if lineLimit and column == lineLimit + 1:
                errors.append((wire, 1, LINE_TOO_LONG))
            if octet == b"\n":
                column = 0
            if not allowBareNewline:
                if octet == b"\r" and raw[index + 1 : index + 2] != b"\n":
                    errors.append((wire, 0, BARE_NEWLINE))
                if octet == b"\n" and raw[index - 1 : index] != b"\r":
                    errors.append((wire, 0, BARE_NEWLINE))
            if not (index == 0 and octet == b"."):
                content += octet
                if sizeLimit and len(content) == sizeLimit + 1:
                    errors.append((wire, 2, TOO_BIG))
            wire += 1
    error = min(errors)[2] if errors else None
    return (None if error else content), len(content), error, rest


class ReferenceTests(SynchronousTestCase):
    """
    Tests for the helpers of this module, so that the properties below
    compare against something known to be right.
    """

    def test_stuff(self) -> None:
        """
        C{stuff} doubles the dot that starts a line, and only that one.
        """
        self.assertEqual(
            stuff(b".a\r\nb.\r\n..\r\n.\n.\r.\r\n"),
            b"..a\r\nb.\r\n...\r\n..\n.\r.\r\n",
        )

    def test_reference(self) -> None:
        """
        C{reference} frames, unstuffs and finds the first error.
        """
        self.assertEqual(
            reference(b"..a\r\nb\r\n.\r\nQUIT\r\n"),
            (b".a\r\nb\r\n", 7, None, b"QUIT\r\n"),
        )
        self.assertEqual(reference(b"a\r\n.\r"), None)
        self.assertEqual(reference(b"a\nb\r\n.\r\n"), (None, 5, BARE_NEWLINE, b""))
        self.assertEqual(
            reference(b"a\nbcd\r\n.\r\n", lineLimit=3), (None, 7, BARE_NEWLINE, b"")
        )
        self.assertEqual(
            reference(b"abcd\nb\r\n.\r\n", lineLimit=3),
            (None, 8, LINE_TOO_LONG, b""),
        )
        self.assertEqual(
            reference(b"abcd\r\n.\r\n", lineLimit=3, sizeLimit=3),
            (None, 6, LINE_TOO_LONG, b""),
        )
        self.assertEqual(
            reference(b"abcd\r\n.\r\n", lineLimit=4, sizeLimit=3),
            (None, 6, TOO_BIG, b""),
        )


class EndOfDataTests(SynchronousTestCase):
    """
    Tests for finding the end of the data.
    """

    def test_message(self) -> None:
        """
        A message ends at CRLF dot CRLF and keeps its final CRLF.
        """
        receiver = DataReceiver()
        self.assertIsNone(receiver.feed(b"Subject: hi\r\n\r\nbody\r\n"))
        self.assertEqual(receiver.feed(b".\r\n"), b"")
        self.assertIsNone(receiver.error)
        self.assertEqual(receiver.size, 21)
        self.assertEqual(receiver.content(), b"Subject: hi\r\n\r\nbody\r\n")

    def test_emptyMessage(self) -> None:
        """
        A first line of just a dot ends an empty message.
        """
        receiver = DataReceiver()
        self.assertEqual(receiver.feed(b".\r\n"), b"")
        self.assertIsNone(receiver.error)
        self.assertEqual(receiver.size, 0)
        self.assertEqual(receiver.content(), b"")

    def test_emptyMessageInPieces(self) -> None:
        """
        An empty message fed one octet at a time ends at its last octet.
        """
        receiver = DataReceiver()
        self.assertIsNone(receiver.feed(b"."))
        self.assertIsNone(receiver.feed(b"\r"))
        self.assertEqual(receiver.feed(b"\nNOOP\r\n"), b"NOOP\r\n")
        self.assertEqual(receiver.content(), b"")

    def test_emptyLineMessage(self) -> None:
        """
        A message made of one empty line is a CRLF.
        """
        self.assertEqual(frame([b"\r\n.\r\n"]), (b"\r\n", 2, None, b""))

    def test_pipelinedCommands(self) -> None:
        """
        The bytes after the end of the data are returned exactly.
        """
        after = b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"
        receiver = DataReceiver()
        self.assertEqual(receiver.feed(b"one\r\n.\r\n" + after), after)
        self.assertEqual(receiver.content(), b"one\r\n")

    def test_restHoldsAnotherEnd(self) -> None:
        """
        Only the first end of data counts; a second one is part of the rest.
        """
        self.assertEqual(
            frame([b"a\r\n.\r\n.\r\nb\r\n.\r\n"]),
            (b"a\r\n", 3, None, b".\r\nb\r\n.\r\n"),
        )

    def test_partialRest(self) -> None:
        """
        An incomplete command after the end of data is returned as it is.
        """
        self.assertEqual(frame([b"a\r\n.\r\nQU"]), (b"a\r\n", 3, None, b"QU"))

    def test_notYetEnded(self) -> None:
        """
        Every proper prefix of CRLF dot CRLF leaves the message open.
        """
        for tail in [b"", b"\r", b"\r\n", b"\r\n.", b"\r\n.\r"]:
            receiver = DataReceiver()
            self.assertIsNone(receiver.feed(b"a" + tail), tail)
            self.assertIsNone(receiver.error)

    def test_notAnEnd(self) -> None:
        """
        A dot line with more on it, or a dot not at the start of a line,
        does not end the data.
        """
        stream = b"a.\r\n. \r\n.a\r\nb\r\n.\r\nREST"
        self.assertEqual(frame([stream]), (b"a.\r\n \r\na\r\nb\r\n", 13, None, b"REST"))

    def test_endSplitEverywhere(self) -> None:
        """
        The end of data is found wherever the stream is split, once or at
        every octet.
        """
        stream = b"x\r\n..\r\n.\r\nQUIT\r\n"
        expected = (b"x\r\n.\r\n", 6, None, b"QUIT\r\n")
        for cut in range(len(stream) + 1):
            self.assertEqual(frame(splitAt(stream, cut)), expected, cut)
            for cut2 in range(cut, len(stream) + 1):
                self.assertEqual(frame(splitAt(stream, cut, cut2)), expected)
        self.assertEqual(frame([bytes([o]) for o in stream]), expected)

    def test_emptyChunks(self) -> None:
        """
        Empty chunks change nothing, before and inside the end of data.
        """
        receiver = DataReceiver()
        for chunk in [b"", b"a\r", b"", b"\n", b"", b".", b"", b"\r", b""]:
            self.assertIsNone(receiver.feed(chunk))
        self.assertEqual(receiver.feed(b"\n"), b"")
        self.assertEqual(receiver.content(), b"a\r\n")
        self.assertEqual(receiver.size, 3)

    def test_contentJoinsParts(self) -> None:
        """
        The content of a message fed in many chunks is their unstuffed
        concatenation, and C{content} releases it.
        """
        receiver = DataReceiver()
        for chunk in [b"one\r\n", b"..two\r", b"\nthree", b"\r\n.\r\n"]:
            receiver.feed(chunk)
        self.assertEqual(receiver.content(), b"one\r\n.two\r\nthree\r\n")
        self.assertEqual(receiver._parts, [])


class SmugglingTests(SynchronousTestCase):
    """
    Tests that the fake ends of data of SMTP smuggling (CVE-2024-27305) do
    not end the data.
    """

    def attack(self, fakeEnd: bytes) -> bytes:
        """
        Build the data of a smuggling attack: a message, a fake end, more
        commands and a second message, the real end and a QUIT.
        """
        return b"Subject: hi\r\n\r\nhello" + fakeEnd + SMUGGLED + b".\r\nQUIT\r\n"

    def test_refused(self) -> None:
        """
        By default a message with a fake end of data is refused as a whole at
        the real end; the smuggled commands never come out.
        """
        for name, fakeEnd in FAKE_ENDS.items():
            stream = self.attack(fakeEnd)
            # The dot of CRLF.LF starts a line and is unstuffed.
            removed = 1 if name == "CRLF.LF" else 0
            size = len(stream) - len(b".\r\nQUIT\r\n") - removed
            self.assertEqual(
                frame([stream]), (None, size, BARE_NEWLINE, b"QUIT\r\n"), name
            )

    def test_refusedInPieces(self) -> None:
        """
        The fake ends are refused wherever the stream is split.
        """
        for name, fakeEnd in FAKE_ENDS.items():
            stream = self.attack(fakeEnd)
            start = stream.index(fakeEnd) - 2
            for cut in range(start, start + len(fakeEnd) + 4):
                content, size, error, rest = frame(splitAt(stream, cut))
                self.assertEqual((error, rest), (BARE_NEWLINE, b"QUIT\r\n"), name)

    def test_refusedAtStart(self) -> None:
        """
        A fake end right at the start of the data does not end it either.
        """
        for name, fakeEnd in FAKE_ENDS.items():
            stream = fakeEnd + b"x\r\n.\r\nQUIT\r\n"
            content, size, error, rest = frame([stream])
            self.assertEqual((error, rest), (BARE_NEWLINE, b"QUIT\r\n"), name)

    def test_allowedKeepsBytes(self) -> None:
        """
        With bare newlines allowed, the fake end and the smuggled commands
        stay in the one message; only C{<CRLF>.<LF>} loses its dot, since it
        starts a line with a dot and more (RFC 5321 section 4.5.2).
        """
        for name, fakeEnd in FAKE_ENDS.items():
            stream = self.attack(fakeEnd)
            kept = fakeEnd.replace(b"\r\n.", b"\r\n")
            expected = b"Subject: hi\r\n\r\nhello" + kept + SMUGGLED
            self.assertEqual(
                frame([stream], allowBareNewline=True),
                (expected, len(expected), None, b"QUIT\r\n"),
                name,
            )

    def test_allowedStuffedKeepsBytes(self) -> None:
        """
        With bare newlines allowed, a message holding every fake end, sent
        dot-stuffed, comes out byte for byte, fed whole or octet by octet.
        """
        message = b"hello" + b"x".join(FAKE_ENDS.values()) + b"end\r\n"
        stream = stuff(message) + b".\r\nQUIT\r\n"
        expected = (message, len(message), None, b"QUIT\r\n")
        self.assertEqual(frame([stream], allowBareNewline=True), expected)
        chunks = [bytes([o]) for o in stream]
        self.assertEqual(frame(chunks, allowBareNewline=True), expected)


class DotUnstuffingTests(SynchronousTestCase):
    """
    Tests for undoing the dot-stuffing of RFC 5321 section 4.5.2.
    """

    def assertUnstuffs(self, stuffed: bytes, message: bytes) -> None:
        """
        Assert that the data C{stuffed} gives C{message}, fed whole and split
        at every offset.
        """
        stream = stuffed + b".\r\nNOOP\r\n"
        expected = (message, len(message), None, b"NOOP\r\n")
        self.assertEqual(frame([stream]), expected)
        for cut in range(len(stream) + 1):
            self.assertEqual(frame(splitAt(stream, cut)), expected, cut)

    def test_line(self) -> None:
        """
        A line starting with two dots loses one.
        """
        self.assertUnstuffs(b"a\r\n..x\r\nb\r\n", b"a\r\n.x\r\nb\r\n")

    def test_firstLine(self) -> None:
        """
        The first line is unstuffed like the others.
        """
        self.assertUnstuffs(b"..x\r\n", b".x\r\n")

    def test_dotLine(self) -> None:
        """
        A line of two dots is a line of one dot.
        """
        self.assertUnstuffs(b"a\r\n..\r\nb\r\n", b"a\r\n.\r\nb\r\n")

    def test_firstDotLine(self) -> None:
        """
        A first line of two dots is a line of one dot.
        """
        self.assertUnstuffs(b"..\r\n", b".\r\n")

    def test_lastDotLine(self) -> None:
        """
        A line of two dots just before the end is a line of one dot.
        """
        self.assertUnstuffs(b"a\r\n..\r\n", b"a\r\n.\r\n")

    def test_manyDots(self) -> None:
        """
        Only one dot is removed, whatever follows it.
        """
        self.assertUnstuffs(b"...\r\n....x\r\n", b"..\r\n...x\r\n")

    def test_consecutiveLines(self) -> None:
        """
        Consecutive stuffed lines are all unstuffed.
        """
        self.assertUnstuffs(b"..\r\n..\r\n..a\r\n", b".\r\n.\r\n.a\r\n")

    def test_notAtLineStart(self) -> None:
        """
        Dots inside a line are left alone.
        """
        self.assertUnstuffs(b"a.\r\nb..c\r\n x..\r\n", b"a.\r\nb..c\r\n x..\r\n")

    def test_unstuffedDot(self) -> None:
        """
        A single dot starting a line with more on it is removed too.
        """
        self.assertUnstuffs(b".x\r\n", b"x\r\n")

    def test_afterBareNewline(self) -> None:
        """
        A dot after a bare LF or CR is not at the start of a line and stays.
        """
        stream = b"a\n..b\r..c\r\n.\r\n"
        self.assertEqual(
            frame([stream], allowBareNewline=True),
            (b"a\n..b\r..c\r\n", 11, None, b""),
        )


class SizeLimitTests(SynchronousTestCase):
    """
    Tests for the size limit, counted after unstuffing as RFC 1870 says.
    """

    def test_atLimit(self) -> None:
        """
        A message exactly at the limit is accepted.
        """
        self.assertEqual(
            frame([b"abc\r\n.\r\n"], sizeLimit=5), (b"abc\r\n", 5, None, b"")
        )

    def test_atLimitStuffed(self) -> None:
        """
        Stuffed dots do not count: a message at the limit once unstuffed is
        accepted, however it is split.
        """
        stream = b"..a\r\n...\r\n..\r\n.\r\nQUIT\r\n"
        message = b".a\r\n..\r\n.\r\n"
        expected = (message, 11, None, b"QUIT\r\n")
        for cut in range(len(stream) + 1):
            self.assertEqual(frame(splitAt(stream, cut), sizeLimit=11), expected)

    def test_overLimit(self) -> None:
        """
        One octet over the limit is refused, and the rest still comes back.
        """
        self.assertEqual(
            frame([b"abcd\r\n.\r\nQUIT\r\n"], sizeLimit=5),
            (None, 6, TOO_BIG, b"QUIT\r\n"),
        )

    def test_overLimitStuffed(self) -> None:
        """
        One octet over the limit once unstuffed is refused.
        """
        self.assertEqual(
            frame([b"..ab\r\n.\r\n"], sizeLimit=4), (None, 5, TOO_BIG, b"")
        )

    def test_overLimitInPieces(self) -> None:
        """
        One octet over the limit is refused wherever the stream is split.
        """
        stream = b"..a\r\n...\r\n..x\r\n.\r\nQUIT\r\n"
        expected = (None, 12, TOO_BIG, b"QUIT\r\n")
        for cut in range(len(stream) + 1):
            self.assertEqual(frame(splitAt(stream, cut), sizeLimit=11), expected)

    def test_noLimit(self) -> None:
        """
        A size limit of C{None} or C{0} means no limit.
        """
        stream = b"x" * 100000 + b"\r\n.\r\n"
        for limit in [None, 0]:
            content, size, error, rest = frame([stream], sizeLimit=limit)
            self.assertEqual((size, error, rest), (100002, None, b""))
            self.assertEqual(content, stream[:-3])

    def test_nothingStoredAfterTooBig(self) -> None:
        """
        Once the message is too big nothing is stored, the size keeps
        counting and the end of data is still found.
        """
        receiver = DataReceiver(sizeLimit=1000)
        chunk = b"0123456789abcde\r\n" * 4000
        for _ in range(20):
            self.assertIsNone(receiver.feed(chunk))
            self.assertEqual(receiver.error, TOO_BIG)
            self.assertEqual(receiver._parts, [])
        self.assertEqual(receiver.feed(b"..\r\n.\r\nRSET\r\n"), b"RSET\r\n")
        self.assertEqual(receiver._parts, [])
        self.assertEqual(receiver.size, 20 * len(chunk) + 3)
        self.assertEqual(receiver.error, TOO_BIG)
        self.assertEqual(receiver.content(), b"")

    def test_tooBigInLastChunk(self) -> None:
        """
        A message that goes over the limit in the chunk holding the end of
        data drops what was stored before.
        """
        receiver = DataReceiver(sizeLimit=10)
        self.assertIsNone(receiver.feed(b"12345678\r\n"))
        self.assertEqual(receiver.error, None)
        self.assertEqual(receiver.feed(b"x\r\n.\r\n"), b"")
        self.assertEqual((receiver.error, receiver.size), (TOO_BIG, 13))
        self.assertEqual(receiver._parts, [])


class LineLengthTests(SynchronousTestCase):
    """
    Tests for the line length limit: a line counts with its CRLF and with
    its stuffed dot, as sent.
    """

    def assertLines(
        self, stream: bytes, error: str | None, limit: int = 10, **options: object
    ) -> None:
        """
        Assert that C{stream} ends with C{error} under the line limit
        C{limit}, fed whole, split at every offset and octet by octet.
        """
        expected = reference(stream, lineLimit=limit, **options)
        self.assertEqual(expected[2], error)
        self.assertEqual(frame([stream], lineLimit=limit, **options), expected)
        for cut in range(len(stream) + 1):
            chunks = splitAt(stream, cut)
            self.assertEqual(frame(chunks, lineLimit=limit, **options), expected)
        chunks = [bytes([o]) for o in stream]
        self.assertEqual(frame(chunks, lineLimit=limit, **options), expected)

    def test_atLimit(self) -> None:
        """
        A line exactly at the limit, CRLF included, is accepted.
        """
        self.assertLines(b"12345678\r\n.\r\n", None)
        self.assertEqual(
            frame([b"12345678\r\n.\r\n"], lineLimit=10),
            (b"12345678\r\n", 10, None, b""),
        )

    def test_overLimit(self) -> None:
        """
        A line one octet over the limit is refused and the rest returned.
        """
        self.assertLines(b"123456789\r\n.\r\nQUIT\r\n", LINE_TOO_LONG)
        self.assertEqual(
            frame([b"123456789\r\n.\r\nQUIT\r\n"], lineLimit=10),
            (None, 11, LINE_TOO_LONG, b"QUIT\r\n"),
        )

    def test_stuffedAtLimit(self) -> None:
        """
        The stuffed dot counts: a line at the limit as sent is accepted.
        """
        self.assertLines(b"..345678\r\n.\r\n", None)

    def test_stuffedOverLimit(self) -> None:
        """
        The stuffed dot counts: a line at the limit once unstuffed but over
        it as sent is refused.
        """
        self.assertLines(b"..3456789\r\n.\r\n", LINE_TOO_LONG)

    def test_longFirstLine(self) -> None:
        """
        A long first line is refused.
        """
        self.assertLines(b"123456789\r\nabc\r\nabc\r\n.\r\n", LINE_TOO_LONG)

    def test_longMiddleLine(self) -> None:
        """
        A long line between short ones is refused.
        """
        self.assertLines(b"abc\r\n123456789\r\nabc\r\n.\r\n", LINE_TOO_LONG)

    def test_longLastLine(self) -> None:
        """
        A long line just before the end of data is refused.
        """
        self.assertLines(b"abc\r\nabc\r\n123456789\r\n.\r\n", LINE_TOO_LONG)

    def test_linesAtLimit(self) -> None:
        """
        Many lines at the limit, or just under it, are all accepted.
        """
        self.assertLines(b"12345678\r\n" * 5 + b"1234567\r\n" * 3 + b".\r\n", None)

    def test_tinyLimits(self) -> None:
        """
        With a limit of one or two, the end of data line is not counted, and
        the data starts as a new line.
        """
        self.assertLines(b".\r\n", None, limit=1)
        self.assertLines(b"\r\n.\r\n", LINE_TOO_LONG, limit=1)
        self.assertLines(b"\r\n\r\n.\r\n", None, limit=2)
        self.assertLines(b"a\r\n.\r\n", LINE_TOO_LONG, limit=2)

    def test_bareLineFeedEndsLine(self) -> None:
        """
        With bare newlines allowed, a bare LF ends a line for the limit but
        a bare CR does not.
        """
        self.assertLines(b"1234567\n12345678\r\n.\r\n", None, allowBareNewline=True)
        self.assertLines(b"1234\r5678\r\n.\r\n", LINE_TOO_LONG, allowBareNewline=True)

    def test_defaultLimit(self) -> None:
        """
        With the protocol's default limit of 1001, a line of 999 octets and
        its CRLF is accepted and one of 1000 is refused, as in aiosmtpd.
        """
        line = b"x" * 999 + b"\r\n"
        self.assertEqual(
            frame([line + b".\r\n"], lineLimit=1001), (line, 1001, None, b"")
        )
        self.assertEqual(
            frame([b"x" + line + b".\r\n"], lineLimit=1001),
            (None, 1002, LINE_TOO_LONG, b""),
        )

    def test_noLimit(self) -> None:
        """
        A line limit of C{None} or C{0} means no limit.
        """
        stream = b"x" * 5000 + b"\r\n.\r\n"
        for limit in [None, 0]:
            self.assertEqual(
                frame([stream], lineLimit=limit), (stream[:-3], 5002, None, b"")
            )

    def test_hugeLine(self) -> None:
        """
        A line longer than many chunks is refused and nothing is stored.
        """
        receiver = DataReceiver(lineLimit=1001)
        for _ in range(100):
            self.assertIsNone(receiver.feed(b"x" * 65536))
            self.assertEqual(receiver._parts, [])
        self.assertEqual(receiver.feed(b"\r\n.\r\n"), b"")
        self.assertEqual(receiver.error, LINE_TOO_LONG)
        self.assertEqual(receiver.size, 100 * 65536 + 2)


class BareNewlineTests(SynchronousTestCase):
    """
    Tests for the bare CR and bare LF policy.
    """

    def test_bareLineFeed(self) -> None:
        """
        A bare LF is refused by default and kept when allowed.
        """
        stream = b"a\nb\r\n.\r\nQUIT\r\n"
        self.assertEqual(frame([stream]), (None, 5, BARE_NEWLINE, b"QUIT\r\n"))
        self.assertEqual(
            frame([stream], allowBareNewline=True),
            (b"a\nb\r\n", 5, None, b"QUIT\r\n"),
        )

    def test_bareCarriageReturn(self) -> None:
        """
        A bare CR is refused by default and kept when allowed.
        """
        stream = b"a\rb\r\n.\r\nQUIT\r\n"
        self.assertEqual(frame([stream]), (None, 5, BARE_NEWLINE, b"QUIT\r\n"))
        self.assertEqual(
            frame([stream], allowBareNewline=True),
            (b"a\rb\r\n", 5, None, b"QUIT\r\n"),
        )

    def test_doubledEndings(self) -> None:
        """
        CR CR LF and CR LF LF each hold a bare newline.
        """
        for stream in [b"a\r\r\n.\r\n", b"a\r\n\n.\r\n", b"\n\r\n.\r\n"]:
            self.assertEqual(frame([stream])[2], BARE_NEWLINE, stream)

    def test_lineEndAcrossChunks(self) -> None:
        """
        A CR ending one chunk and an LF starting the next are one CRLF.
        """
        receiver = DataReceiver()
        self.assertIsNone(receiver.feed(b"a\r"))
        self.assertIsNone(receiver.feed(b"\nb\r"))
        self.assertIsNone(receiver.feed(b"\n"))
        self.assertEqual(receiver.feed(b".\r\n"), b"")
        self.assertIsNone(receiver.error)
        self.assertEqual(receiver.content(), b"a\r\nb\r\n")

    def test_crlfSplitEverywhere(self) -> None:
        """
        A message of CRLF lines has no bare newline wherever it is split.
        """
        stream = b"\r\na\r\n\r\n..\r\n\r\n.\r\n"
        expected = (b"\r\na\r\n\r\n.\r\n\r\n", 12, None, b"")
        for cut in range(len(stream) + 1):
            for cut2 in range(cut, len(stream) + 1):
                self.assertEqual(frame(splitAt(stream, cut, cut2)), expected)

    def test_bareAtChunkEdges(self) -> None:
        """
        A CR ending a chunk followed by something else than LF, and an LF
        starting a chunk after something else than CR, are bare.
        """
        for chunks in [
            [b"a\r", b"b\r\n.\r\n"],
            [b"a\r", b"\r\n.\r\n"],
            [b"a", b"\nb\r\n.\r\n"],
            [b"a\r\n", b"\nx\r\n.\r\n"],
            [b"\n", b"a\r\n.\r\n"],
            [b"a\r\n.\r", b"\rx\r\n.\r\n"],
            [b"a\r\n.", b"\nx\r\n.\r\n"],
        ]:
            expected = reference(b"".join(chunks))
            self.assertEqual(expected[2:], (BARE_NEWLINE, b""))
            self.assertEqual(frame(chunks), expected, chunks)

    def test_bareLineFeedStartsBigChunk(self) -> None:
        """
        A bare LF that is the first octet of a chunk scanned as a big one
        is found, as in a small one.
        """
        stream = [b"abc", b"\ndef\r\n.\r\n"]
        self.assertEqual(frame(stream)[2], BARE_NEWLINE)
        self.patch(_dataframer, "BIG_CHUNK", 1)
        self.assertEqual(frame(stream)[2], BARE_NEWLINE)


class ErrorOrderTests(SynchronousTestCase):
    """
    Tests that a message breaking several limits gets the error of the
    first one broken in the stream, however the stream is split.
    """

    def assertFirstError(self, stream: bytes, error: str, **options: object) -> None:
        """
        Assert that C{stream} ends with C{error} and the same size, fed whole,
        split at every offset and octet by octet.
        """
        stream += b"QUIT\r\n"
        expected = (None, reference(stream)[1], error, b"QUIT\r\n")
        self.assertEqual(reference(stream, **options), expected)
        self.assertEqual(frame([stream], **options), expected)
        for cut in range(len(stream) + 1):
            self.assertEqual(frame(splitAt(stream, cut), **options), expected, cut)
        self.assertEqual(frame([bytes([o]) for o in stream], **options), expected)

    def test_bareBeforeLongLine(self) -> None:
        """
        A bare LF before a long line gives a bare newline error.
        """
        self.assertFirstError(
            b"a\nb" + b"x" * 20 + b"\r\n.\r\n", BARE_NEWLINE, lineLimit=10
        )

    def test_longLineBeforeBare(self) -> None:
        """
        A long line before a bare CR gives a line too long error.
        """
        self.assertFirstError(
            b"x" * 20 + b"\r\na\rb\r\n.\r\n", LINE_TOO_LONG, lineLimit=10
        )

    def test_bareInsideLongLine(self) -> None:
        """
        A bare CR before the octet over the line limit comes first.
        """
        self.assertFirstError(b"abc\rdefghijkl\r\n.\r\n", BARE_NEWLINE, lineLimit=10)

    def test_bareIsOctetOverLimit(self) -> None:
        """
        When the octet over the line limit is a bare CR, the bare newline
        error wins.
        """
        self.assertFirstError(b"12345678\r\r\n.\r\n", BARE_NEWLINE, lineLimit=9)

    def test_tooBigBeforeLongLine(self) -> None:
        """
        A message going over the size limit before its long line goes over
        the line limit is too big.
        """
        self.assertFirstError(
            b"x" * 20 + b"\r\n.\r\n", TOO_BIG, lineLimit=10, sizeLimit=5
        )

    def test_longLineBeforeTooBig(self) -> None:
        """
        A long line that goes over its limit before the message goes over
        the size limit gives a line too long error.
        """
        self.assertFirstError(
            b"x" * 20 + b"\r\n.\r\n", LINE_TOO_LONG, lineLimit=10, sizeLimit=15
        )

    def test_sameOctet(self) -> None:
        """
        When the same octet breaks the line and the size limits, the line
        too long error wins.
        """
        self.assertFirstError(
            b"..234567890\r\n.\r\n", LINE_TOO_LONG, lineLimit=10, sizeLimit=9
        )

    def test_tooBigBeforeBare(self) -> None:
        """
        A message over the size limit before its bare LF is too big.
        """
        self.assertFirstError(b"abcdef\r\n\nx\r\n.\r\n", TOO_BIG, sizeLimit=5)


#: Octets of the generated messages: the ones that matter to the framer.
OCTETS = ".\r\na "


def octetStrings(alphabet: str, maxSize: int) -> st.SearchStrategy[bytes]:
    """
    Strings of at most C{maxSize} octets taken from C{alphabet}.
    """
    return st.text(alphabet=alphabet, max_size=maxSize).map(str.encode)


#: Lines of a message with only CRLF line ends.
CRLF_LINES = st.lists(octetStrings(". a", 12), max_size=12)

#: Any message: CRLF lines that may hold bare CRs and LFs.
ANY_MESSAGES = st.lists(octetStrings(OCTETS, 12), max_size=10).map(b"\r\n".join)

#: What a client may pipeline after the end of the data.
TRAILERS = octetStrings(OCTETS, 8)

#: A size or line limit: none, or small enough to be hit.
LIMITS = st.one_of(st.none(), st.integers(min_value=1, max_value=60))

PROPERTY = settings(max_examples=200, deadline=None)


def endWithCRLF(message: bytes) -> bytes:
    """
    Return C{message} ending with a CRLF, as the content of a message does,
    unless it is empty.
    """
    if message and not message.endswith(b"\r\n"):
        message += b"\r\n"
    return message


def broken(message: bytes, sizeLimit: int | None, lineLimit: int | None) -> bool:
    """
    Tell whether C{message}, dot-stuffed, breaks the size limit or has a
    line (ended by an LF, as sent) longer than the line limit.
    """
    if sizeLimit and len(message) > sizeLimit:
        return True
    lines = stuff(message).split(b"\n")
    return bool(lineLimit) and any(len(line) + 1 > lineLimit for line in lines)


@st.composite
def chunkings(draw: st.DrawFn, stream: bytes) -> list[bytes]:
    """
    Split C{stream} into chunks at random offsets; repeated offsets give
    empty chunks, neighbouring ones 1-octet chunks.
    """
    cuts = draw(st.lists(st.integers(0, len(stream)), max_size=24))
    return splitAt(stream, *cuts)


class PropertyTests(SynchronousTestCase):
    """
    Property-based tests comparing L{DataReceiver} with the line by line
    C{reference}, whole and in random chunks.
    """

    def check(self, data: st.DataObject, stream: bytes, **options: object) -> tuple:
        """
        Assert that C{stream} frames to the reference result fed whole, in
        random chunks and octet by octet, and return that result. Whole
        and in random chunks, it is framed twice: with chunks scanned as
        small ones, and as big ones (split at CRLF-dots, bare newlines
        found by translation), as chunks of
        L{twisted_smtpd._dataframer.BIG_CHUNK} octets and more are.
        """
        expected = reference(stream, **options)
        chunks = data.draw(chunkings(stream))
        for bigChunk in (_dataframer.BIG_CHUNK, 1):
            saved, _dataframer.BIG_CHUNK = _dataframer.BIG_CHUNK, bigChunk
            try:
                self.assertEqual(frame([stream], **options), expected)
                self.assertEqual(frame(chunks, **options), expected)
            finally:
                _dataframer.BIG_CHUNK = saved
        self.assertEqual(frame([bytes([o]) for o in stream], **options), expected)
        return expected

    def assertFramed(
        self,
        data: st.DataObject,
        message: bytes,
        trailer: bytes,
        sizeLimit: int | None,
        lineLimit: int | None,
        **options: object,
    ) -> None:
        """
        Assert that C{message}, dot-stuffed and followed by C{trailer},
        frames to its size and its trailer, is refused exactly when it
        breaks a limit (never for a bare newline), and otherwise comes out
        byte for byte.
        """
        stream = stuff(message) + b".\r\n" + trailer
        content, size, error, rest = self.check(
            data, stream, sizeLimit=sizeLimit, lineLimit=lineLimit, **options
        )
        self.assertEqual((size, rest), (len(message), trailer))
        self.assertEqual(error is None, not broken(message, sizeLimit, lineLimit))
        self.assertNotEqual(error, BARE_NEWLINE)
        if error is None:
            self.assertEqual(content, message)

    @PROPERTY
    @given(st.data(), CRLF_LINES, TRAILERS, LIMITS, LIMITS)
    def test_strict(
        self,
        data: st.DataObject,
        lines: list[bytes],
        trailer: bytes,
        sizeLimit: int | None,
        lineLimit: int | None,
    ) -> None:
        """
        A dot-stuffed message of CRLF lines comes out as it was sent, with
        the right size, error and trailing bytes, however it is chunked.
        """
        message = b"".join(line + b"\r\n" for line in lines)
        self.assertFramed(data, message, trailer, sizeLimit, lineLimit)

    @PROPERTY
    @given(st.data(), ANY_MESSAGES, TRAILERS, LIMITS, LIMITS)
    def test_allowBareNewline(
        self,
        data: st.DataObject,
        message: bytes,
        trailer: bytes,
        sizeLimit: int | None,
        lineLimit: int | None,
    ) -> None:
        """
        With bare newlines allowed, any dot-stuffed message comes out byte
        for byte, however it is chunked.
        """
        message = endWithCRLF(message)
        self.assertFramed(
            data, message, trailer, sizeLimit, lineLimit, allowBareNewline=True
        )

    @PROPERTY
    @given(st.data(), ANY_MESSAGES, TRAILERS, LIMITS, LIMITS)
    def test_strictAnyMessage(
        self,
        data: st.DataObject,
        message: bytes,
        trailer: bytes,
        sizeLimit: int | None,
        lineLimit: int | None,
    ) -> None:
        """
        By default, any dot-stuffed message holding a bare CR or LF is
        refused at its real end, however it is chunked.
        """
        message = endWithCRLF(message)
        stream = stuff(message) + b".\r\n" + trailer
        content, size, error, rest = self.check(
            data, stream, sizeLimit=sizeLimit, lineLimit=lineLimit
        )
        self.assertEqual((size, rest), (len(message), trailer))
        crlf = message.count(b"\r\n")
        bare = message.count(b"\r") != crlf or message.count(b"\n") != crlf
        limited = broken(message, sizeLimit, lineLimit)
        self.assertEqual(error is None, not (bare or limited))
        if bare and not limited:
            self.assertEqual(error, BARE_NEWLINE)
        if error is None:
            self.assertEqual(content, message)

    @PROPERTY
    @given(
        st.data(),
        st.lists(st.integers(0, 14), max_size=10),
        st.integers(min_value=1, max_value=12),
        st.booleans(),
    )
    def test_lineLength(
        self,
        data: st.DataObject,
        lengths: list[int],
        lineLimit: int,
        dots: bool,
    ) -> None:
        """
        A message is refused as too long exactly when one of its lines, as
        sent and with its CRLF, is longer than the limit.
        """
        lines = [(b"." if dots else b"a") * length for length in lengths]
        message = b"".join(line + b"\r\n" for line in lines)
        wire = stuff(message)
        stream = wire + b".\r\nQUIT\r\n"
        content, size, error, rest = self.check(data, stream, lineLimit=lineLimit)
        longest = max((len(line) for line in wire.split(b"\r\n")), default=0)
        tooLong = bool(lines) and longest + 2 > lineLimit
        self.assertEqual(error, LINE_TOO_LONG if tooLong else None)
        self.assertEqual((size, rest), (len(message), b"QUIT\r\n"))
