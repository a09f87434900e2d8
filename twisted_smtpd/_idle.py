# -*- test-case-name: tests.test_idle -*-
"""
One idle timer for all the connections of a server.

Every connection of a server has the same timeout, so the order in which
connections last showed activity is also the order in which they will time
out. L{IdleTimer} keeps them in that order in one C{dict} and runs a single
L{DelayedCall} for the earliest deadline, instead of one L{DelayedCall} per
connection: an idle connection then costs a dictionary entry, not a timer
object, which matters with thousands of idle clients.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# Clock arithmetic may put a deadline an ulp after the time its call runs.
_EPSILON = 1e-9


class IdleTimer:
    """
    Call C{timeoutConnection()} on each connection that showed no activity
    for C{timeout} seconds.
    """

    __slots__ = ("_reactor", "_timeout", "_seen", "_call")

    def __init__(self, reactor: Any, timeout: float) -> None:
        self._reactor = reactor
        self._timeout = timeout
        # Connection -> time of its last activity, oldest first.
        self._seen: dict[Any, float] = {}
        self._call: Any = None

    def touch(self, connection: Any) -> None:
        """
        Note activity on C{connection}: its deadline starts again from now.
        """
        seen = self._seen
        seen.pop(connection, None)
        seen[connection] = self._reactor.seconds()
        if self._call is None:
            self._call = self._reactor.callLater(self._timeout, self._expire)

    def forget(self, connection: Any) -> None:
        """
        Stop watching C{connection} (it closed); with no connection left,
        no timer is left either.
        """
        seen = self._seen
        seen.pop(connection, None)
        if not seen and self._call is not None:
            self._call.cancel()
            self._call = None

    def _expire(self) -> None:
        self._call = None
        now = self._reactor.seconds()
        limit = now - self._timeout + _EPSILON
        expired = []
        for connection, last in self._seen.items():
            if last > limit:
                break
            expired.append(connection)
        for connection in expired:
            del self._seen[connection]
        for connection in expired:
            connection.timeoutConnection()
        if self._seen and self._call is None:
            first = next(iter(self._seen.values()))
            self._call = self._reactor.callLater(
                max(first + self._timeout - now, 0), self._expire
            )

    def idlest(self) -> Iterator[Any]:
        """
        Go through the connections watched, the one idle longest first, as
        a server short of file descriptors picks which to close.

        The iterator reads the live order: collect what you need before
        touching or forgetting any connection, which would change it.
        """
        return iter(self._seen)
