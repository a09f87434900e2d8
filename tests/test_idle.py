"""
Tests for L{twisted_smtpd._idle}: one idle timer for all the connections
of a server, on a L{Clock}. No sockets, no real time.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twisted_smtpd._idle import IdleTimer


class Connection:
    """
    Records when it was timed out.
    """

    def __init__(self, clock: Clock, timedOut: list) -> None:
        self.clock = clock
        self.timedOut = timedOut

    def timeoutConnection(self) -> None:
        self.timedOut.append((self, self.clock.seconds()))


class IdleTimerTests(SynchronousTestCase):
    """
    L{IdleTimer}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.timer = IdleTimer(self.clock, 10)
        self.timedOut: list = []

    def connection(self) -> Connection:
        return Connection(self.clock, self.timedOut)

    def test_timeout(self) -> None:
        """
        A connection touched and left alone times out after the timeout,
        once.
        """
        connection = self.connection()
        self.timer.touch(connection)
        self.clock.advance(9.9)
        self.assertEqual(self.timedOut, [])
        self.clock.advance(0.1)
        self.assertEqual(self.timedOut, [(connection, 10)])
        self.clock.advance(100)
        self.assertEqual(len(self.timedOut), 1)

    def test_touchPostpones(self) -> None:
        """
        Touching a connection starts its timeout again from now.
        """
        connection = self.connection()
        self.timer.touch(connection)
        self.clock.advance(8)
        self.timer.touch(connection)
        self.clock.advance(9)
        self.assertEqual(self.timedOut, [])
        self.clock.advance(1)
        self.assertEqual(self.timedOut, [(connection, 18)])

    def test_eachOnItsOwnDeadline(self) -> None:
        """
        Connections time out in the order of their last activity, each at
        its own deadline.
        """
        first, second, third = self.connection(), self.connection(), self.connection()
        self.timer.touch(first)
        self.clock.advance(3)
        self.timer.touch(second)
        self.clock.advance(3)
        self.timer.touch(third)
        self.timer.touch(first)
        self.clock.pump([1] * 20)
        self.assertEqual(self.timedOut, [(second, 13), (third, 16), (first, 16)])

    def test_oneCall(self) -> None:
        """
        However many connections it watches, the timer has one delayed call.
        """
        for _ in range(100):
            self.timer.touch(self.connection())
            self.clock.advance(0.05)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)

    def test_forget(self) -> None:
        """
        A forgotten connection does not time out; with none left, no call
        is left either.
        """
        first, second = self.connection(), self.connection()
        self.timer.touch(first)
        self.timer.touch(second)
        self.timer.forget(first)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.timer.forget(second)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(100)
        self.assertEqual(self.timedOut, [])

    def test_forgetUnknown(self) -> None:
        """
        Forgetting a connection the timer does not watch does nothing.
        """
        self.timer.forget(self.connection())
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_touchedWhileTimingOut(self) -> None:
        """
        A connection that another's timeout touches is watched anew.
        """
        first, second = self.connection(), self.connection()

        def touchSecond() -> None:
            self.timedOut.append((first, self.clock.seconds()))
            self.timer.touch(second)

        first.timeoutConnection = touchSecond  # type: ignore[method-assign]
        self.timer.touch(first)
        self.clock.advance(10)
        self.clock.advance(10)
        self.assertEqual(self.timedOut, [(first, 10), (second, 20)])
