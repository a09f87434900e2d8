"""
Tests for L{twisted_smtpd._replywriter}: replies as they go on the wire,
queued, batched and flushed, driven in memory. No sockets, no real time.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred

from tests._protocolsupport import (
    ProtocolTestCase,
)
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
