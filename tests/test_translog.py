"""
Tests for L{twisted_smtpd._translog}: the one log event of each mail
transaction, driven in memory. No sockets, no real time.
"""

from __future__ import annotations

from twisted.logger import capturedLogs, formatEvent

from tests._protocolsupport import (
    LOCAL_ERROR,
    OK,
    Boom,
    Collector,
    ProtocolTestCase,
)


class TransactionLogTests(ProtocolTestCase):
    """
    The one structured log event of each transaction.
    """

    CONTENT_MARKER = "Zyx-message-content-marker"

    def serverEvents(self, events: list) -> list:
        return [e for e in events if e.get("log_namespace") == "twisted_smtpd.server"]

    def assertContentNotLogged(self, events: list) -> None:
        for event in events:
            self.assertNotIn(self.CONTENT_MARKER, repr(event))
            self.assertNotIn(self.CONTENT_MARKER, formatEvent(event))

    def test_oneEventPerTransaction(self) -> None:
        """
        A transaction logs exactly one event with the peer, sender,
        recipient count, size, result and duration, and never the content.
        """
        message = f"Subject: {self.CONTENT_MARKER}\r\n\r\n{self.CONTENT_MARKER}\r\n"
        with capturedLogs() as events:
            tester = self.makeTester()
            replies = tester.sendmail(
                "a@example.com", ["b@example.com", "c@example.com"], message
            )
            self.assertEqual(replies[-1], OK)
        [event] = self.serverEvents(events)
        self.assertEqual(event["peer"], ("127.0.0.1", 42424))
        self.assertEqual(event["sender"], "a@example.com")
        self.assertEqual(event["recipients"], 2)
        self.assertEqual(event["size"], len(message.encode()))
        self.assertEqual(event["result"], "250")
        self.assertIsInstance(event["duration"], float)
        self.assertGreaterEqual(event["duration"], 0)
        self.assertContentNotLogged(events)

    def test_refusedMessage(self) -> None:
        """
        A message the handler refuses is logged with the refusal's code.
        """
        with capturedLogs() as events:
            tester = self.makeTester(Collector("554 5.7.1 No"))
            tester.sendmail("a@example.com", ["b@example.com"], self.CONTENT_MARKER)
        [event] = self.serverEvents(events)
        self.assertEqual(event["result"], "554")
        self.assertContentNotLogged(events)

    def test_tooBig(self) -> None:
        """
        A message over the size limit is logged with 552.
        """
        with capturedLogs() as events:
            tester = self.makeTester(data_size_limit=20)
            tester.sendmail("a@example.com", ["b@example.com"], self.CONTENT_MARKER * 3)
        [event] = self.serverEvents(events)
        self.assertEqual(event["result"], "552")
        self.assertContentNotLogged(events)

    def test_exceptionDoesNotLogContent(self) -> None:
        """
        When C{handle_DATA} fails, the content is still not logged.
        """

        class Handler:
            def handle_DATA(self, server, session, envelope):
                raise Boom("failed")

        with capturedLogs() as events:
            tester = self.makeTester(Handler())
            replies = tester.sendmail(
                "a@example.com", ["b@example.com"], self.CONTENT_MARKER
            )
        self.assertEqual(replies[-1], LOCAL_ERROR)
        self.assertContentNotLogged(events)
        self.flushLoggedErrors(Boom)

    def test_twoTransactionsTwoEvents(self) -> None:
        """
        Each transaction gets its own event.
        """
        with capturedLogs() as events:
            tester = self.makeTester()
            tester.sendmail("a@example.com", ["b@example.com"], "one")
            tester.sendmail("c@example.com", ["d@example.com"], "two", helo=None)
        self.assertEqual(
            [e["sender"] for e in self.serverEvents(events)],
            ["a@example.com", "c@example.com"],
        )
