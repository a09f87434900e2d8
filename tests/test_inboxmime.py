# -*- test-case-name: tests.test_inboxmime -*-
"""
Tests for L{twisted_smtpd._inboxmime}: what the web inbox shows of a
message, for well-formed, international and broken messages.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from twisted_smtpd._inbox import InboxMessage
from twisted_smtpd._inboxmime import attachment, detail, htmlPart, summary

MULTIPART = (
    b"From: =?utf-8?q?J=C3=B6rg?= <j@example.com>\r\n"
    b"To: Ann <ann@example.com>\r\n"
    b"Subject: =?utf-8?b?aMOpbGxv?= world\r\n"
    b"Date: Mon, 07 Dec 2026 10:00:00 +0100\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b'Content-Type: multipart/alternative; boundary="b2"\r\n'
    b"\r\n"
    b"--b2\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"caf=E9\r\n"
    b"--b2\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"\r\n"
    b"<p>caf\xc3\xa9</p><script>alert(1)</script>\r\n"
    b"--b2--\r\n"
    b"--b1\r\n"
    b"Content-Type: image/svg+xml\r\n"
    b'Content-Disposition: attachment; filename="a b.svg"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"PHN2Zy8+\r\n"
    b"--b1--\r\n"
)


def message(raw: bytes, mail_from: str = "a@x", rcpt_tos=("b@x",)) -> InboxMessage:
    """
    An inbox message of these bytes, received at time 0.
    """
    return InboxMessage("7", mail_from, tuple(rcpt_tos), ("::1", 25), 0.0, raw)


class SummaryTests(SynchronousTestCase):
    """
    L{summary} gives what the list shows.
    """

    def test_fields(self) -> None:
        """
        The summary has the envelope, decoded subject and header
        addresses, the date in ISO 8601, the size and the number of
        attachments.
        """
        info = summary(message(MULTIPART))
        self.assertEqual(
            info,
            {
                "id": "7",
                "from": "a@x",
                "to": ["b@x"],
                "subject": "héllo world",
                "headerFrom": "Jörg <j@example.com>",
                "headerTo": "Ann <ann@example.com>",
                "date": "2026-12-07T10:00:00+01:00",
                "received": "1970-01-01T00:00:00+00:00",
                "size": len(MULTIPART),
                "attachmentCount": 1,
            },
        )

    def test_noDate(self) -> None:
        """
        Without a readable C{Date:}, the date is the time of reception.
        """
        info = summary(message(b"Date: yesterday\r\n\r\nx\r\n"))
        self.assertEqual(info["date"], "1970-01-01T00:00:00+00:00")

    def test_utf8Addresses(self) -> None:
        """
        UTF-8 header fields (SMTPUTF8) are decoded.
        """
        raw = "From: Jörg <jörg@exämple.org>\r\nSubject: wörld\r\n\r\nx\r\n"
        info = summary(message(raw.encode(), "jörg@exämple.org"))
        self.assertEqual(info["headerFrom"], "Jörg <jörg@exämple.org>")
        self.assertEqual(info["subject"], "wörld")
        self.assertEqual(info["from"], "jörg@exämple.org")

    def test_longSubject(self) -> None:
        """
        A subject of 10,000 characters is cut to 1,000 in the summary.
        """
        info = summary(message(b"Subject: " + b"x" * 10000 + b"\r\n\r\nx\r\n"))
        self.assertEqual(info["subject"], "x" * 1000)


class DetailTests(SynchronousTestCase):
    """
    L{detail} gives what the message view shows, and never fails.
    """

    def test_parts(self) -> None:
        """
        The text part is decoded with its charset, the HTML part given as
        it is, the attachment listed with its size decoded.
        """
        info = detail(message(MULTIPART))
        self.assertEqual(info["text"], "café")
        self.assertEqual(info["html"], "<p>café</p><script>alert(1)</script>")
        self.assertEqual(
            info["attachments"],
            [
                {
                    "index": 0,
                    "filename": "a b.svg",
                    "contentType": "image/svg+xml",
                    "size": 6,
                }
            ],
        )
        self.assertFalse(info["broken"])
        self.assertEqual(
            info["envelope"],
            {"mail_from": "a@x", "rcpt_tos": ["b@x"], "peer": "('::1', 25)"},
        )
        self.assertIn(["Subject", "héllo world"], info["headers"])

    def test_plainMessage(self) -> None:
        """
        A message without MIME is all text.
        """
        info = detail(message(b"Subject: s\r\n\r\nline\r\n"))
        self.assertEqual((info["text"], info["html"]), ("line\r\n", None))
        self.assertEqual(info["attachments"], [])

    def test_brokenMIME(self) -> None:
        """
        Broken MIME (unknown charset, bad base64, no closing boundary, a
        bad encoded word) is shown, not an error.
        """
        raw = (
            b"Subject: =?bogus?x?zz?=\r\n"
            b"Content-Type: multipart/mixed; boundary=x\r\n\r\n"
            b"--x\r\nContent-Type: text/plain; charset=nonexistent\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n!!!!\r\n"
        )
        info = detail(message(raw))
        self.assertEqual(info["subject"], "=?bogus?x?zz?=")
        self.assertIsInstance(info["text"], str)

    def test_garbage(self) -> None:
        """
        Bytes that are no message at all come out as text.
        """
        info = detail(message(b"\xff\xfe\x00garbage"))
        self.assertIn("garbage", info["text"])

    def test_attachmentDownload(self) -> None:
        """
        L{attachment} gives an attachment's name, type and decoded bytes;
        C{None} for an index out of range.
        """
        found = attachment(message(MULTIPART), 0)
        assert found is not None
        self.assertEqual(
            (found.filename, found.contentType, found.data),
            ("a b.svg", "image/svg+xml", b"<svg/>"),
        )
        self.assertIsNone(attachment(message(MULTIPART), 1))

    def test_htmlPart(self) -> None:
        """
        L{htmlPart} gives the HTML part, or C{None}.
        """
        self.assertIn("<script>", htmlPart(message(MULTIPART)))
        self.assertIsNone(htmlPart(message(b"Subject: s\r\n\r\nx\r\n")))


class CacheTests(SynchronousTestCase):
    """
    Summaries are cached while their messages live, and not longer.
    """

    def test_cachedWhileAlive(self) -> None:
        """
        The same message gets the same summary object; a message no one
        holds any more is not kept by the cache.
        """
        import gc
        import weakref

        kept = message(b"Subject: s\r\n\r\nx\r\n")
        self.assertIs(summary(kept), summary(kept))
        gone = message(b"Subject: t\r\n\r\nx\r\n")
        summary(gone)
        reference = weakref.ref(gone)
        del gone
        gc.collect()
        self.assertIsNone(reference())
