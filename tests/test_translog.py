"""
Tests for L{twisted_smtpd._translog}: the one log event of each mail
transaction, driven in memory. No sockets, no real time.
"""

from __future__ import annotations

import base64

from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from tests._protocolsupport import (
    LOCAL_ERROR,
    OK,
    SECRET,
    Boom,
    Collector,
    ProtocolTestCase,
)
from twisted_smtpd import AuthResult, Envelope, _translog
from twisted_smtpd._translog import logTransaction


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


class FakeTime:
    """
    Stands for the C{time} module in L{twisted_smtpd._translog}.
    """

    @staticmethod
    def time() -> float:
        return 1_800_000_000.0

    @staticmethod
    def monotonic() -> float:
        return 1000.25


class LogTransactionTests(SynchronousTestCase):
    """
    L{logTransaction}: the event, field by field.
    """

    def test_fields(self) -> None:
        """
        The event has exactly the logger's fields and the peer, sender,
        recipient count, size, result and duration; nothing else.
        """
        self.patch(_translog, "time", FakeTime)
        envelope = Envelope()
        envelope.mail_from = "a@example.com"
        envelope.rcpt_tos = ["b@example.com", "c@example.com"]
        envelope.content = envelope.original_content = SECRET.encode()
        envelope.mail_options = [f"AUTH={SECRET}"]
        with capturedLogs() as events:
            logTransaction(("192.0.2.1", 4242), envelope, 1234, "250", 1000.0)
        [event] = events
        # The legacy log observer that trial installs adds its own keys.
        legacy = {"format", "isError", "log_legacy", "message", "system", "time"}
        self.assertEqual(
            {key: value for key, value in event.items() if key not in legacy},
            {
                "log_logger": _translog.log,
                "log_level": LogLevel.info,
                "log_namespace": "twisted_smtpd.server",
                "log_source": None,
                "log_format": _translog.TRANSACTION_FORMAT,
                "log_time": 1_800_000_000.0,
                "peer": ("192.0.2.1", 4242),
                "sender": "a@example.com",
                "recipients": 2,
                "size": 1234,
                "result": "250",
                "duration": 0.25,
            },
        )
        self.assertEqual(
            formatEvent(event),
            "('192.0.2.1', 4242) message from a@example.com to 2 recipient(s),"
            " 1234 bytes: 250 in 0.250s",
        )

    def test_nullSender(self) -> None:
        """
        The null reverse-path is logged as aiosmtpd stores it, C{<>}.
        """
        envelope = Envelope()
        envelope.mail_from = "<>"
        with capturedLogs() as events:
            logTransaction("/run/smtpd.sock", envelope, 0, "aborted", 0.0)
        [event] = events
        self.assertEqual(
            (event["peer"], event["sender"], event["recipients"], event["result"]),
            ("/run/smtpd.sock", "<>", 0, "aborted"),
        )


class TransactionEndTests(ProtocolTestCase):
    """
    The transactions that are logged as aborted, and what is never logged.
    """

    def serverEvents(self, events: list) -> list:
        return [e for e in events if e.get("log_namespace") == "twisted_smtpd.server"]

    def test_abortedByRset(self) -> None:
        """
        RSET after MAIL logs the transaction as aborted, size 0, with the
        recipients accepted so far; RSET without MAIL logs nothing.
        """
        with capturedLogs() as events:
            tester = self.ready()
            tester.command("RSET")
            tester.command("MAIL FROM:<a@example.com>")
            tester.command("RCPT TO:<b@example.com>")
            tester.command("RSET")
        [event] = self.serverEvents(events)
        self.assertEqual(
            (event["sender"], event["recipients"], event["size"], event["result"]),
            ("a@example.com", 1, 0, "aborted"),
        )

    def test_abortedByConnectionLost(self) -> None:
        """
        A connection lost in the middle of the data logs the transaction as
        aborted, once.
        """
        with capturedLogs() as events:
            tester = self.inData()
            tester.send(b"Some data\r\n")
            tester.server.connectionLost(None)
        [event] = self.serverEvents(events)
        self.assertEqual(event["result"], "aborted")

    def test_noCredentials(self) -> None:
        """
        No event of an authenticated session holds the password, in clear
        or in base64, nor the message content.
        """
        secret = SECRET.encode()
        blob = base64.b64encode(b"\0user\0" + secret).decode()
        with capturedLogs() as events:
            tester = self.ready(auth_require_tls=False, authenticator=Accept())
            self.assertEqual(tester.command(f"AUTH PLAIN {blob}").code, 235)
            tester.sendmail("a@example.com", ["b@example.com"], SECRET, helo=None)
        transactions = [e for e in self.serverEvents(events) if "sender" in e]
        self.assertEqual(len(transactions), 1)
        for event in events:
            for text in (repr(event), formatEvent(event)):
                self.assertNotIn(SECRET, text)
                self.assertNotIn(blob, text)


class Accept:
    """
    An authenticator that accepts anyone.
    """

    def __call__(self, server, session, envelope, mechanism, auth_data):
        return AuthResult(success=True, handled=False, auth_data=auth_data)
