# -*- test-case-name: tests.test_log -*-
"""
Log observers that cost little per event, for servers that log a line per
message.

Twisted's own file observer formats the time of every event afresh and
writes and flushes every event on its own; for a server that logs one line
per message, that costs more than receiving the message. L{LogFileObserver}
writes what was logged in a tenth of a second in one write, formats the
time once per second and formats twisted_smtpd's transaction events
without Twisted's general-purpose formatter. Its text is the same as C{twistd}'s
(L{formatEventAsClassicLogText}); L{jsonLine} gives one JSON object per
line instead, for log shippers.

C{twistd smtpd} logs through it by default (see C{--log-format} and
C{--log-level}). Elsewhere, give it to C{twistd --logger} (L{textToStdout},
L{jsonToStdout}) or to L{globalLogBeginner.beginLoggingTo
<twisted.logger.LogBeginner.beginLoggingTo>}::

    from twisted.logger import globalLogBeginner
    from twisted_smtpd.log import LogFileObserver, classicText

    globalLogBeginner.beginLoggingTo([LogFileObserver(open("smtpd.log", "a"))])
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import IO, Any

from twisted.logger import (
    ILogObserver,
    LogEvent,
    LogLevel,
    formatEventAsClassicLogText,
    formatTime,
    timeFormatRFC3339,
)
from twisted.logger import formatEvent as _twistedFormatEvent
from zope.interface import implementer

from twisted_smtpd._translog import TRANSACTION_FORMAT, transactionText

__all__ = [
    "LEVELS",
    "LogFileObserver",
    "classicText",
    "jsonLine",
    "jsonToStdout",
    "textToStdout",
]

#: The log levels by name, for C{--log-level}.
LEVELS = {level.name: level for level in LogLevel.iterconstants()}

#: How many characters may wait in a L{LogFileObserver} before it writes
#: them, however recent they are.
BUFFER_LIMIT = 65536

#: The longest a line waits in a L{LogFileObserver} before it is written,
#: in seconds.
FLUSH_INTERVAL = 0.1


class _TimeCache:
    """
    Format the time of events with a format of whole seconds, once per
    second.
    """

    __slots__ = ("_format", "_second", "_text")

    def __init__(self, timeFormat: str) -> None:
        self._format = timeFormat
        self._second: int | None = None
        self._text = "-"

    def __call__(self, when: float | None) -> str:
        if when is None:
            return "-"
        second = int(when)
        if second != self._second:
            # The offset of the local time zone is the same within a second
            # (a change happens on a second), so is the text.
            self._text = formatTime(second, self._format)
            self._second = second
        return self._text


def classicText(
    timeFormat: str = timeFormatRFC3339,
) -> Callable[[LogEvent], str | None]:
    """
    Make a formatter that gives the text C{twistd} writes to its log file
    (L{formatEventAsClassicLogText}), for less: the time is formatted once
    per second, and twisted_smtpd's transaction events without Twisted's
    general-purpose formatter.

    @param timeFormat: A C{strftime} format of whole seconds (the default
        is C{twistd}'s).
    @return: A function of an event giving its line, or C{None} for an
        event with nothing to say.
    """
    clock = _TimeCache(timeFormat)

    def format(event: LogEvent) -> str | None:
        if event.get("log_format") is TRANSACTION_FORMAT and "log_system" not in event:
            level = event.get("log_level")
            return (
                f"{clock(event.get('log_time'))}"
                f" [{event.get('log_namespace', '-')}#{level.name if level else '-'}]"
                f" {transactionText(event)}\n"
            )
        return formatEventAsClassicLogText(event, clock)

    return format


def jsonLine(event: LogEvent) -> str | None:
    """
    Format an event as one line of JSON, for log shippers: C{time} (seconds
    since the epoch), C{level}, C{namespace}, C{text} (the message as the
    text log has it), the event's own fields whose values are strings,
    numbers, booleans or C{None} (others as their C{str}), and C{traceback}
    for an event with a failure.

    @return: The line, or C{None} for an event with nothing to say.
    """
    if event.get("log_format") is TRANSACTION_FORMAT:
        text = transactionText(event)
    else:
        text = _twistedFormatEvent(event)
    failure = event.get("log_failure")
    if not text and failure is None:
        return None
    level = event.get("log_level")
    record: dict[str, Any] = {
        "time": event.get("log_time"),
        "level": level.name if level is not None else None,
        "namespace": event.get("log_namespace"),
        "text": text,
    }
    for key, value in event.items():
        if key.startswith("log_") or key in record:
            continue
        if value is None or isinstance(value, (str, int, float, bool)):
            record[key] = value
        else:
            record[key] = str(value)
    if failure is not None:
        record["traceback"] = failure.getTraceback()
    return json.dumps(record, ensure_ascii=False) + "\n"


@implementer(ILogObserver)
class LogFileObserver:
    """
    Write formatted events to a file, those of a tenth of a second in one
    write.

    While the reactor runs, lines wait at most L{FLUSH_INTERVAL} seconds
    (and until L{BUFFER_LIMIT} characters wait); errors and critical events
    are written at once, with what waited before them. Before the reactor
    runs and after it stopped, every line is written at once, so that
    nothing is lost on a clean stop; a process killed outright loses at
    most the last tenth of a second. The file is flushed after each
    write.

    @ivar minimumLevel: Events below this level are dropped.
    """

    def __init__(
        self,
        outFile: IO[Any],
        formatEvent: Callable[[LogEvent], str | None] | None = None,
        *,
        minimumLevel: LogLevel = LogLevel.debug,
        reactor: Any = None,
    ) -> None:
        """
        @param outFile: A file open for writing text (or a
            L{twisted.python.logfile.LogFile}).
        @param formatEvent: Makes the line of an event, or C{None} to write
            nothing; L{classicText}C{()} by default.
        @param minimumLevel: The least level written.
        @param reactor: The reactor that runs the writes of waiting lines;
            the global one by default.
        """
        if reactor is None:
            from twisted.internet import reactor
        self._file = outFile
        self._format = formatEvent if formatEvent is not None else classicText()
        self.minimumLevel = minimumLevel
        self._levels = frozenset(
            level for level in LogLevel.iterconstants() if level >= minimumLevel
        )
        self._urgent = frozenset([LogLevel.error, LogLevel.critical])
        self._reactor = reactor
        self._lines: list[str] = []
        self._size = 0
        self._pending: Any = None
        reactor.addSystemEventTrigger("after", "shutdown", self.flush)

    def __call__(self, event: LogEvent) -> None:
        """
        Format an event and write it, now or a little later.
        """
        level = event.get("log_level")
        if level is not None and level not in self._levels:
            return
        text = self._format(event)
        if not text:
            return
        self._lines.append(text)
        self._size += len(text)
        if (
            not self._reactor.running
            or level in self._urgent
            or self._size >= BUFFER_LIMIT
        ):
            self.flush()
        elif self._pending is None:
            self._pending = self._reactor.callLater(FLUSH_INTERVAL, self.flush)

    def flush(self) -> None:
        """
        Write the lines that wait, and flush the file.
        """
        pending, self._pending = self._pending, None
        if pending is not None and pending.active():
            pending.cancel()
        if not self._lines:
            return
        text = "".join(self._lines)
        self._lines = []
        self._size = 0
        self._file.write(text)
        self._file.flush()


def textToStdout() -> LogFileObserver:
    """
    A L{LogFileObserver} of C{twistd}'s text on standard output, for
    C{twistd --logger twisted_smtpd.log.textToStdout}.
    """
    return LogFileObserver(sys.stdout, classicText())


def jsonToStdout() -> LogFileObserver:
    """
    A L{LogFileObserver} of JSON lines (L{jsonLine}) on standard output,
    for C{twistd --logger twisted_smtpd.log.jsonToStdout}.
    """
    return LogFileObserver(sys.stdout, jsonLine)
