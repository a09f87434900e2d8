# -*- test-case-name: tests.test_handlers -*-
"""
A small SMTP client for L{twisted_smtpd.handlers.Proxy}: it sends command
lines and raw, already dot-stuffed data, and reads replies whole.

Twisted's own client rewrites line endings and cannot send BODY= or
SMTPUTF8, so a relay that must be byte-exact needs its own.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.protocols.basic import LineReceiver
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure


class Refused(Exception):
    """
    The upstream refused the transaction; C{args[0]} is the reply to pass on.
    """


class Unavailable(Exception):
    """
    The upstream could not be reached, closed the connection, broke the
    protocol or was too slow.
    """


class UpstreamClient(LineReceiver, TimeoutMixin):
    """
    The client side of one connection to the upstream server: send command
    lines and raw data, read replies (multi-line ones whole).
    """

    delimiter = b"\n"
    MAX_LENGTH = 65536

    def __init__(self, reactor: Any, timeout: float) -> None:
        self._reactor = reactor
        self._timeout = timeout
        self._lines: list[str] = []
        self._replies: deque[tuple[int, list[str]]] = deque()
        self._waiting: Deferred | None = None
        self._error: Exception | None = None

    def callLater(self, period: float, func: Any) -> Any:
        return self._reactor.callLater(period, func)

    def connectionMade(self) -> None:
        self.setTimeout(self._timeout)

    def connectionLost(self, reason: Failure = None) -> None:
        self.setTimeout(None)
        self._fail(Unavailable("connection closed"))

    def timeoutConnection(self) -> None:
        self._fail(Unavailable("timed out"))
        self.transport.abortConnection()

    def lineLengthExceeded(self, line: bytes) -> None:
        self._fail(Unavailable("reply line too long"))
        self.transport.abortConnection()

    def lineReceived(self, line: bytes) -> None:
        self.resetTimeout()
        if line.endswith(b"\r"):
            line = line[:-1]
        code, sep = line[:3], line[3:4]
        if not (code.isdigit() and sep in (b" ", b"-", b"")):
            self._fail(Unavailable(f"bad reply line {line[:80]!r}"))
            self.transport.abortConnection()
            return
        # A CR inside a line would break the reply we pass on.
        self._lines.append(line[4:].replace(b"\r", b" ").decode("utf-8", "replace"))
        if sep != b"-":
            reply = (int(code), self._lines)
            self._lines = []
            waiting, self._waiting = self._waiting, None
            if waiting is None:
                self._replies.append(reply)
            else:
                waiting.callback(reply)

    def _fail(self, error: Exception) -> None:
        if self._error is None:
            self._error = error
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            waiting.errback(error)

    def reply(self) -> Deferred:
        """
        The next reply, as C{(code, lines)}.
        """
        if self._replies:
            return succeed(self._replies.popleft())
        if self._error is not None:
            return fail(self._error)
        self._waiting = Deferred()
        return self._waiting

    def command(self, line: str) -> Deferred:
        """
        Send a command line and return its reply.
        """
        self.resetTimeout()
        self.transport.write(line.encode("utf-8") + b"\r\n")
        return self.reply()


def replyText(code: int, lines: list[str]) -> str:
    """
    An upstream reply, to be sent on to our client.
    """
    body = [f"{code}-{line}" for line in lines[:-1]]
    body.append(f"{code} {lines[-1]}" if lines[-1] else str(code))
    return "\r\n".join(body)


def dotStuffed(data: bytes) -> bytes:
    """
    The DATA phase for C{data}: every line that starts with a dot gets
    another one, and the terminator is added.

    A dot after a bare LF is doubled too, so that an upstream which takes a
    bare LF for a line ending cannot see an early end of data (SMTP
    smuggling); a strict upstream then keeps that extra dot.
    """
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\n.", b"\n..")
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"
