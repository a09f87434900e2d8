"""
Tests for L{twisted_smtpd._headers}.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twisted_smtpd._headers import HEAD_LIMIT, HeaderSplicer, withHeaders

ADDED = [b"X-Peer: 192.0.2.1", b"X-MailFrom: a@example.com"]


class WithHeadersTests(SynchronousTestCase):
    """
    Tests for L{withHeaders}.
    """

    def test_beforeEmptyLine(self) -> None:
        """
        The fields go at the end of the header section, with CRLF endings
        like the message's, and the body is left as it was.
        """
        data = b"Subject: hi\r\n\r\nbody\r\n\r\nmore\r\n"
        self.assertEqual(
            withHeaders(data, ADDED),
            b"Subject: hi\r\nX-Peer: 192.0.2.1\r\nX-MailFrom: a@example.com\r\n"
            b"\r\nbody\r\n\r\nmore\r\n",
        )

    def test_bareLineFeeds(self) -> None:
        """
        A message whose empty line ends with a bare LF gets fields ending
        with a bare LF.
        """
        self.assertEqual(
            withHeaders(b"Subject: hi\n\nbody\n", ADDED[:1]),
            b"Subject: hi\nX-Peer: 192.0.2.1\n\nbody\n",
        )

    def test_noEmptyLine(self) -> None:
        """
        A message without an empty line is all header: the fields come at
        its end, after a CRLF added to a last line that has none.
        """
        self.assertEqual(
            withHeaders(b"Subject: hi", ADDED[:1]),
            b"Subject: hi\r\nX-Peer: 192.0.2.1\r\n",
        )
        self.assertEqual(
            withHeaders(b"Subject: hi\n", ADDED[:1]),
            b"Subject: hi\nX-Peer: 192.0.2.1\r\n",
        )

    def test_emptyMessage(self) -> None:
        """
        An empty message becomes the fields alone.
        """
        self.assertEqual(withHeaders(b"", ADDED[:1]), b"X-Peer: 192.0.2.1\r\n")

    def test_emptyHeaderSection(self) -> None:
        """
        A message that starts with its empty line gets the fields first.
        """
        self.assertEqual(
            withHeaders(b"\r\nbody\r\n", ADDED[:1]),
            b"X-Peer: 192.0.2.1\r\n\r\nbody\r\n",
        )


#: Messages made of the bytes that matter to finding the header section's
#: end, with the occasional longer line.
MESSAGES = st.lists(
    st.sampled_from([b"\r\n", b"\n", b"\r", b"A: b", b"x", b" ", b"\r\n\r\n"]),
    max_size=40,
).map(b"".join)


def splitAt(data: bytes, cuts: list[int]) -> list[bytes]:
    """
    C{data} cut at the offsets C{cuts} (taken modulo its length).
    """
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False)]


def spliced(pieces: list[bytes], limit: int = HEAD_LIMIT) -> bytes:
    """
    What a L{HeaderSplicer} gives out for a message fed as C{pieces}.
    """
    splicer = HeaderSplicer(ADDED, limit)
    return b"".join([splicer.feed(p) for p in pieces] + [splicer.finish()])


class HeaderSplicerTests(SynchronousTestCase):
    """
    Tests for L{HeaderSplicer}: L{withHeaders} for a message in pieces.
    """

    @settings(max_examples=500)
    @given(MESSAGES, st.lists(st.integers(min_value=0), max_size=8))
    def test_sameAsWithHeaders(self, data: bytes, cuts: list[int]) -> None:
        """
        However the message is cut, the bytes given out are those of
        L{withHeaders} for the whole message.
        """
        self.assertEqual(spliced(splitAt(data, cuts)), withHeaders(data, ADDED))

    def test_emptyLineAcrossPieces(self) -> None:
        """
        An empty line whose CR and LF, or whose two line endings, come in
        different pieces is found.
        """
        for pieces in (
            [b"A: b\r\n\r", b"\nbody\r\n"],
            [b"A: b\r\n", b"\r\nbody\r\n"],
            [b"A: b\r", b"\n", b"\r", b"\n", b"body\r\n"],
            [b"A: b\n", b"\nbody\n"],
        ):
            data = b"".join(pieces)
            self.assertEqual(spliced(pieces), withHeaders(data, ADDED))

    def test_heldUntilEmptyLine(self) -> None:
        """
        Nothing is given out until the header section has ended; then
        the fields and everything held, and after that each piece as it is.
        """
        splicer = HeaderSplicer(ADDED)
        self.assertEqual(splicer.feed(b"A: b\r\n"), b"")
        self.assertEqual(
            splicer.feed(b"\r\nbody"),
            b"A: b\r\nX-Peer: 192.0.2.1\r\nX-MailFrom: a@example.com\r\n\r\nbody",
        )
        self.assertEqual(splicer.feed(b"\r\n\r\nmore"), b"\r\n\r\nmore")
        self.assertEqual(splicer.finish(), b"")

    def test_noEmptyLineWithinLimit(self) -> None:
        """
        When no empty line starts within the first C{limit} octets, the
        fields go at the start of the message, with the line ending of its
        first line, and the rest passes through.
        """
        pieces = [b"A: b\n", b"c" * 6, b"\n\nbody\n"]
        self.assertEqual(
            spliced(pieces, limit=10),
            b"X-Peer: 192.0.2.1\nX-MailFrom: a@example.com\nA: b\ncccccc\n\nbody\n",
        )
        pieces = [b"A: b\r\n", b"c" * 20]
        self.assertEqual(
            spliced(pieces, limit=10),
            b"X-Peer: 192.0.2.1\r\nX-MailFrom: a@example.com\r\nA: b\r\n" + b"c" * 20,
        )

    def test_emptyLineAtLimit(self) -> None:
        """
        An empty line that starts at octet C{limit} is still the end of the
        header section, even when it comes with the octets past the limit.
        """
        data = b"A: bcdefg\r\n\r\nbody"
        self.assertEqual(data.index(b"\r\n\r\n") + 2, 11)
        self.assertEqual(spliced([data], limit=11), withHeaders(data, ADDED))
        self.assertEqual(
            spliced([data], limit=10), b"".join(a + b"\r\n" for a in ADDED) + data
        )

    def test_shortMessageWithoutEmptyLine(self) -> None:
        """
        A message shorter than the limit without an empty line gets the
        fields at its end, as L{withHeaders} adds them.
        """
        for data in (b"A: b", b"A: b\n", b"", b"A: b\r\nC: d\r\n"):
            self.assertEqual(spliced([data]), withHeaders(data, ADDED))
        self.assertEqual(spliced([]), withHeaders(b"", ADDED))

    @settings(max_examples=500)
    @given(
        MESSAGES,
        st.lists(st.integers(min_value=0), max_size=8),
        st.integers(min_value=0, max_value=30),
    )
    def test_limitModel(self, data: bytes, cuts: list[int], limit: int) -> None:
        """
        With any limit and any cuts, the message is that of L{withHeaders}
        when its header section ends within the limit or it is no longer
        than the limit allows to decide; otherwise the fields are at its start.
        """
        match = re.search(rb"^(\r\n|\n)", data, re.MULTILINE)
        if (match is not None and match.start() <= limit) or len(data) <= limit + 1:
            expected = withHeaders(data, ADDED)
        else:
            first = data.find(b"\n", 0, limit + 1)
            bare = first == 0 or (first > 0 and data[first - 1] != ord("\r"))
            ending = b"\n" if bare else b"\r\n"
            expected = b"".join(a + ending for a in ADDED) + data
        self.assertEqual(spliced(splitAt(data, cuts), limit), expected)
