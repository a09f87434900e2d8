"""
Tests for L{twisted_smtpd.log}: the batched log observer and its formats.
No sockets, no real time.
"""

from __future__ import annotations

import io
import json
import time
from typing import Any

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import (
    LogLevel,
    formatEventAsClassicLogText,
    formatTime,
    timeFormatRFC3339,
)
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from twisted_smtpd import log
from twisted_smtpd._translog import TRANSACTION_FORMAT
from twisted_smtpd.log import LogFileObserver, classicText, jsonLine

#: A time whose second changes in the middle of the tests' events.
WHEN = 1767225599.75


def transaction(**fields: Any) -> dict[str, Any]:
    """
    An event as twisted_smtpd logs the end of a transaction.
    """
    event = {
        "log_level": LogLevel.info,
        "log_namespace": "twisted_smtpd.server",
        "log_source": None,
        "log_format": TRANSACTION_FORMAT,
        "log_time": WHEN,
        "peer": ("192.0.2.1", 4242),
        "sender": "a@example.com",
        "recipients": 2,
        "size": 1234,
        "result": "250",
        "duration": 0.01234,
    }
    event.update(fields)
    return event


def twistdText(event: dict[str, Any]) -> str | None:
    """
    What twistd's own file observer writes for C{event}.
    """
    return formatEventAsClassicLogText(
        event, formatTime=lambda when: formatTime(when, timeFormatRFC3339)
    )


class RecordingFile(io.StringIO):
    """
    A text file that remembers each write and flush.
    """

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []
        self.flushes = 0

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)

    def flush(self) -> None:
        self.flushes += 1


class ClassicTextTests(SynchronousTestCase):
    """
    L{classicText} writes what twistd writes.
    """

    def test_transactionAsTwistd(self) -> None:
        """
        A transaction's event gives twistd's line, character for character,
        for several peers, senders (with braces) and results.
        """
        format = classicText()
        for fields in [
            {},
            {"peer": ("::1", 25, 0, 0)},
            {"peer": "/run/smtpd.sock"},
            {"sender": "{odd}@example.com", "result": "250,550"},
            {"sender": "<>", "result": "aborted", "size": 0},
            {"log_level": LogLevel.warn},
            {"log_time": WHEN + 0.5},
            {"log_time": None},
        ]:
            event = transaction(**fields)
            self.assertEqual(format(event), twistdText(event))

    def test_otherEventsAsTwistd(self) -> None:
        """
        Other events, with a system, without a level, with a failure or
        without text, give what twistd gives.
        """
        format = classicText()
        try:
            raise ZeroDivisionError("division by zero")
        except ZeroDivisionError:
            failure = Failure()
        for event in [
            {"log_format": "Hello {who}", "who": "you", "log_time": WHEN},
            {"log_format": "x", "log_system": "-", "log_time": WHEN},
            {"log_format": "line one\nline two", "log_time": WHEN},
            {"log_format": "oops", "log_failure": failure, "log_time": WHEN},
            {"log_time": WHEN},
        ]:
            self.assertEqual(format(event), twistdText(event))

    def test_timeChangesWithTheSecond(self) -> None:
        """
        The time, formatted once per second, follows the events' seconds.
        """
        format = classicText()
        first = format(transaction())
        later = format(transaction(log_time=WHEN + 1))
        self.assertTrue(first.startswith(formatTime(WHEN) + " "))
        self.assertTrue(later.startswith(formatTime(WHEN + 1) + " "))
        self.assertNotEqual(first[:24], later[:24])


class JSONLineTests(SynchronousTestCase):
    """
    L{jsonLine} gives one JSON object per line.
    """

    def test_transaction(self) -> None:
        """
        A transaction's event gives its time, level, namespace, text and
        fields.
        """
        line = jsonLine(transaction())
        self.assertTrue(line.endswith("\n"))
        self.assertNotIn("\n", line[:-1])
        self.assertEqual(
            json.loads(line),
            {
                "time": WHEN,
                "level": "info",
                "namespace": "twisted_smtpd.server",
                "text": "('192.0.2.1', 4242) message from a@example.com to 2"
                " recipient(s), 1234 bytes: 250 in 0.012s",
                "peer": "('192.0.2.1', 4242)",
                "sender": "a@example.com",
                "recipients": 2,
                "size": 1234,
                "result": "250",
                "duration": 0.01234,
            },
        )

    def test_otherEvent(self) -> None:
        """
        Another event gives its formatted text; values that are not JSON
        become their C{str}; a failure gives its traceback.
        """
        try:
            raise ZeroDivisionError("division by zero")
        except ZeroDivisionError:
            failure = Failure()
        record = json.loads(
            jsonLine(
                {
                    "log_format": "{count} {thing}",
                    "log_level": LogLevel.error,
                    "log_namespace": "x",
                    "log_time": WHEN,
                    "log_failure": failure,
                    "count": 3,
                    # Not JSON, and formatted alike by every Twisted (24.7
                    # cannot format a class).
                    "thing": frozenset([1]),
                }
            )
        )
        self.assertEqual(record["text"], "3 frozenset({1})")
        self.assertEqual(record["thing"], "frozenset({1})")
        self.assertEqual(record["level"], "error")
        self.assertIn("ZeroDivisionError", record["traceback"])

    def test_nothingToSay(self) -> None:
        """
        An event without text or failure gives no line.
        """
        self.assertIsNone(jsonLine({"log_time": WHEN}))


class LogFileObserverTests(SynchronousTestCase):
    """
    L{LogFileObserver} writes the events of a tenth of a second together.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.reactor.running = True
        self.file = RecordingFile()
        self.observer = LogFileObserver(self.file, reactor=self.reactor)

    def test_batched(self) -> None:
        """
        Events logged while the reactor runs are written in one write a
        tenth of a second after the first, then flushed.
        """
        for _ in range(3):
            self.observer(transaction())
        self.reactor.advance(log.FLUSH_INTERVAL * 0.99)
        self.assertEqual(self.file.writes, [])
        self.reactor.advance(log.FLUSH_INTERVAL * 0.01)
        self.assertEqual(self.file.writes, [twistdText(transaction()) * 3])
        self.assertEqual(self.file.flushes, 1)

    def test_notRunning(self) -> None:
        """
        Before the reactor runs and after it stopped, every event is
        written at once.
        """
        self.reactor.running = False
        self.observer(transaction())
        self.assertEqual(self.file.writes, [twistdText(transaction())])

    def test_errorsAtOnce(self) -> None:
        """
        An error is written at once, with what waited before it.
        """
        self.observer(transaction())
        error = {"log_format": "bad", "log_level": LogLevel.error, "log_time": WHEN}
        self.observer(error)
        self.assertEqual(
            self.file.writes, [twistdText(transaction()) + twistdText(error)]
        )
        self.reactor.advance(log.FLUSH_INTERVAL)
        self.assertEqual(len(self.file.writes), 1)

    def test_limit(self) -> None:
        """
        Once L{log.BUFFER_LIMIT} characters wait, they are written.
        """
        line = twistdText(transaction())
        count = log.BUFFER_LIMIT // len(line) + 1
        for _ in range(count):
            self.observer(transaction())
        self.assertEqual(self.file.writes, [line * count])

    def test_shutdown(self) -> None:
        """
        What waits is written after the reactor shut down.
        """
        self.observer(transaction())
        triggers = self.reactor.triggers["after"]["shutdown"]
        self.assertEqual(len(triggers), 1)
        call, args, kwargs = triggers[0]
        call(*args, **kwargs)
        self.assertEqual(self.file.writes, [twistdText(transaction())])

    def test_minimumLevel(self) -> None:
        """
        Events below the minimum level are dropped; events without a level
        are kept.
        """
        observer = LogFileObserver(
            self.file, minimumLevel=LogLevel.warn, reactor=self.reactor
        )
        observer(transaction())
        observer(transaction(log_level=LogLevel.warn))
        observer({"log_format": "no level", "log_time": WHEN})
        self.reactor.advance(log.FLUSH_INTERVAL)
        self.assertEqual(
            self.file.writes,
            [
                twistdText(transaction(log_level=LogLevel.warn))
                + twistdText({"log_format": "no level", "log_time": WHEN})
            ],
        )

    def test_nothingToSay(self) -> None:
        """
        An event the format gives no text for writes nothing and schedules
        nothing.
        """
        self.observer({"log_time": WHEN})
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.reactor.advance(log.FLUSH_INTERVAL)
        self.assertEqual(self.file.writes, [])

    def test_oneCallPerBatch(self) -> None:
        """
        However many events wait, one call is scheduled to write them.
        """
        for _ in range(5):
            self.observer(transaction())
        self.assertEqual(len(self.reactor.getDelayedCalls()), 1)

    def test_realTime(self) -> None:
        """
        With real time stamps the line is twistd's.
        """
        event = transaction(log_time=time.time())
        self.reactor.running = False
        self.observer(event)
        self.assertEqual(self.file.writes, [twistdText(event)])
