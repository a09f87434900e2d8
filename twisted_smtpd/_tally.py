# -*- test-case-name: tests.test_tally -*-
"""
Log lines that a flood would repeat thousands of times, summed up instead:
at most one line per second for each kind of event.

A server under a connection flood refuses, sheds or fails to accept
connections by the thousand; a line for each would fill the disk and hide
everything else. A L{Tally} logs the first event at once, then counts the
others and logs their sum when the second is over, so that the log says
what happened and how often, in a bounded number of lines.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

__all__ = ["Tally"]


class Tally:
    """
    Count events of one kind and log them as one warning at most every
    C{interval} seconds, by the reactor's clock.

    The format names the counters (summed between two lines, and zero in
    a line where nothing was added to them) and any other fields (the
    latest value given is logged).
    """

    def __init__(
        self,
        reactor: Any,
        log: Logger,
        format: str,
        counters: tuple[str, ...] = ("count",),
        interval: float = 1.0,
    ) -> None:
        """
        @param reactor: The reactor whose clock and timers pace the lines.
        @param log: Where the lines go.
        @param format: The line, a format string for the counters and the
            other fields.
        @param counters: The names of the counters in C{format}.
        @param interval: The least time between two lines, in seconds.
        """
        self._reactor = reactor
        self._log = log
        self._format = format
        self._counters = counters
        self._interval = interval
        self._sums = dict.fromkeys(counters, 0)
        self._latest: dict[str, Any] = {}
        self._pending = False
        self._last: float | None = None
        self._call: Any = None

    def count(self, counts: dict[str, int], **latest: Any) -> None:
        """
        Count events without logging them yet: the next L{add} or L{flush}
        will, for events that come in a burst and make one line.

        @param counts: How many to add to each counter.
        @param latest: The other fields of the line.
        """
        for name, count in counts.items():
            self._sums[name] += count
        self._latest.update(latest)
        self._pending = True

    def add(self, counts: dict[str, int] | None = None, **latest: Any) -> None:
        """
        Count events: log them (with those counted before) now if no line
        went out in the last C{interval} seconds, else when that interval
        is over.

        @param counts: How many to add to each counter; one to the first
            counter when not given.
        @param latest: The other fields of the line.
        """
        if counts is None:
            counts = {self._counters[0]: 1}
        self.count(counts, **latest)
        if self._call is not None:
            return
        now = self._reactor.seconds()
        if self._last is None or now - self._last >= self._interval:
            self._emit(now)
        else:
            self._call = self._reactor.callLater(
                self._last + self._interval - now, self._timeUp
            )

    def flush(self) -> None:
        """
        Log what was counted and not logged yet, now, and stop the timer:
        for the end of the service, so that no count is lost and no timer
        is left behind.
        """
        if self._call is not None:
            self._call.cancel()
            self._call = None
        if self._pending:
            self._emit(self._reactor.seconds())

    def _timeUp(self) -> None:
        self._call = None
        self._emit(self._reactor.seconds())

    def _emit(self, now: float) -> None:
        self._log.warn(self._format, **self._sums, **self._latest)
        self._sums = dict.fromkeys(self._counters, 0)
        self._pending = False
        self._last = now
