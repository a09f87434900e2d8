"""
Tests for L{twisted_smtpd._headers}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from twisted_smtpd._headers import withHeaders

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
