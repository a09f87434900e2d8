# -*- test-case-name: tests.test_lines -*-
"""
The two input modes that read lines: commands, and the answer to an AUTH
challenge.

Their C{frame} is a pure framer: bytes in, one line out, no state. A line
longer than C{line_length_limit} is never parsed: the framer says so as soon
as its beginning is too long to be a line, and the mode then skips the rest
of it up to its LF before replying C{500}, so that no part of it is read as
a command (or an answer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twisted_smtpd._interfaces import ServerCore


class _Marker:
    """
    A framing event that is not a line.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: A whole line longer than the limit was consumed.
TOO_LONG = _Marker("TOO_LONG")

#: The start of a line longer than the limit was consumed; the rest of the
#: line must be skipped.
OVERLONG = _Marker("OVERLONG")

_TOO_LONG_REPLY = "500 Command line too long"


class _Skipping:
    """
    The mode that skips the rest of an overlong line, then replies C{500}
    and goes back to the line mode it interrupted.
    """

    reads = True
    timed = True

    def __init__(self, lines: _LineMode) -> None:
        self._lines = lines

    def frame(self, data: bytes, start: int, config: Any) -> tuple[Any, int]:
        """
        Skip to the end of a line too long to be read.

        @return: C{(TOO_LONG, end)} once its LF is found, C{end} being the
            index after it; otherwise C{(None, len(data))}: everything is
            consumed.
        """
        end = data.find(b"\n", start)
        if end < 0:
            return None, len(data)
        return TOO_LONG, end + 1

    def act(self, server: ServerCore, unit: Any) -> None:
        server.setMode(self._lines)
        self._lines.act(server, unit)


class _LineMode:
    """
    A mode that reads lines of at most C{line_length_limit} octets.
    """

    reads = True
    timed = True

    def __init__(self) -> None:
        self.skipping = _Skipping(self)

    def frame(self, data: bytes, start: int, config: Any) -> tuple[Any, int]:
        """
        Frame the next line of C{data[start:]}: the pure framer of commands
        and answers.

        @param config: The server's options, for C{line_length_limit}: the
            longest line accepted, in octets with its LF.
        @return: C{(line, end)} for a complete line, C{line} being its
            bytes up to the LF (a CR before it is kept, for the caller to
            check) and C{end} the index after the LF; C{(TOO_LONG, end)}
            for a complete line over the limit; C{(OVERLONG, len(data))}
            when the incomplete line at the end is already too long to be a
            line (all of it is consumed); C{(None, start)} when more input
            is needed.
        """
        end = data.find(b"\n", start)
        if end < 0:
            if len(data) - start >= config.line_length_limit:
                return OVERLONG, len(data)
            return None, start
        if end + 1 - start > config.line_length_limit:
            return TOO_LONG, end + 1
        return data[start:end], end + 1

    def act(self, server: ServerCore, unit: Any) -> None:
        if unit is OVERLONG:
            server.setMode(self.skipping)
        elif unit is TOO_LONG:
            server.reply(_TOO_LONG_REPLY)
            self.lineTooLong(server)
        else:
            self.lineReceived(server, unit)

    def lineReceived(self, server: ServerCore, line: bytes) -> None:
        raise NotImplementedError()

    def lineTooLong(self, server: ServerCore) -> None:
        """
        React to a line that was refused as too long, after its C{500}.
        """


class CommandLines(_LineMode):
    """
    The mode of a connection that reads commands.
    """

    def act(self, server: ServerCore, unit: Any) -> None:
        if unit.__class__ is bytes:
            # The common case first: a command line.
            server.commandReceived(unit)
        else:
            _LineMode.act(self, server, unit)

    def lineReceived(self, server: ServerCore, line: bytes) -> None:
        server.commandReceived(line)


class AnswerLine(_LineMode):
    """
    The mode of a connection that waits for the client's answer to a
    challenge (RFC 4954 section 4): one line, which is not a command.
    """

    def lineReceived(self, server: ServerCore, line: bytes) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        server.answerReceived(line)

    def lineTooLong(self, server: ServerCore) -> None:
        # The 500 ends the exchange.
        server.answerReceived(None)


#: The modes are the same for every connection: what varies is kept by the
#: connection (its unread bytes, its current mode).
COMMAND = CommandLines()
ANSWER = AnswerLine()
