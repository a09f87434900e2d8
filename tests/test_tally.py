"""
Tests for L{twisted_smtpd._tally}: events summed up in one log line a
second at most, on a L{Clock}.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.logger import Logger, LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from twisted_smtpd._tally import Tally


class TallyTests(SynchronousTestCase):
    """
    L{Tally}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.log = Logger(namespace="tests.tally")
        self.tally = Tally(
            self.clock,
            self.log,
            "{count} thing(s), {other} other(s), last {name}",
            counters=("count", "other"),
        )

    def lines(self, events: list) -> list[str]:
        return [formatEvent(e) for e in events if e["log_namespace"] == "tests.tally"]

    def test_firstAtOnce(self) -> None:
        """
        The first event is logged at once, as a warning, with its fields.
        """
        with capturedLogs() as events:
            self.tally.add(name="a")
        self.assertEqual(self.lines(events), ["1 thing(s), 0 other(s), last a"])
        self.assertEqual(events[0]["log_level"], LogLevel.warn)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_summedWithinTheSecond(self) -> None:
        """
        Events within a second of the last line are summed, counter by
        counter, and logged when the second is over, with the latest
        fields; nothing more is logged when nothing more happens.
        """
        with capturedLogs() as events:
            self.tally.add(name="a")
            self.clock.advance(0.2)
            self.tally.add({"count": 3}, name="b")
            self.tally.add({"other": 2}, name="c")
            self.clock.advance(0.79)
            self.assertEqual(len(self.lines(events)), 1)
            self.clock.advance(0.01)
            self.clock.advance(10)
        self.assertEqual(
            self.lines(events),
            ["1 thing(s), 0 other(s), last a", "3 thing(s), 2 other(s), last c"],
        )
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_atMostOnceASecond(self) -> None:
        """
        A steady stream of events gives one line a second, whatever the
        number of events.
        """
        with capturedLogs() as events:
            for _ in range(1000):
                self.tally.add(name="x")
                self.clock.advance(1 / 128)
            self.tally.flush()
        lines = self.lines(events)
        self.assertEqual(len(lines), 9)
        self.assertEqual(lines[0], "1 thing(s), 0 other(s), last x")
        self.assertEqual(lines[1], "127 thing(s), 0 other(s), last x")
        self.assertEqual(sum(int(line.split()[0]) for line in lines), 1000)

    def test_afterAQuietSecond(self) -> None:
        """
        An event more than a second after the last line is logged at once.
        """
        with capturedLogs() as events:
            self.tally.add(name="a")
            self.clock.advance(1.5)
            self.tally.add(name="b")
        self.assertEqual(len(self.lines(events)), 2)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_flush(self) -> None:
        """
        L{Tally.flush} logs what waits at once and leaves no timer; with
        nothing waiting it logs nothing.
        """
        with capturedLogs() as events:
            self.tally.add(name="a")
            self.tally.flush()
            self.tally.add(name="b")
            self.tally.flush()
            self.tally.flush()
        self.assertEqual(
            self.lines(events),
            ["1 thing(s), 0 other(s), last a", "1 thing(s), 0 other(s), last b"],
        )
        self.assertEqual(self.clock.getDelayedCalls(), [])
