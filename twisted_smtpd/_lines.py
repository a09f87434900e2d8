# -*- test-case-name: tests.test_lines -*-
"""
The two input modes that read lines: commands, each checked, decoded and
run as the server's C{smtp_<VERB>} method (unless the policy of
L{twisted_smtpd._policy} refuses it), and the answer to an AUTH challenge.

Their C{frame} is a pure framer: bytes in, one line out, no state. A line
longer than C{line_length_limit} is never parsed: the framer says so as soon
as its beginning is too long to be a line, and the mode then skips the rest
of it up to its LF before replying C{500}, so that no part of it is read as
a command (or an answer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted_smtpd._policy import (
    overCallLimit,
    refusal,
    refuseUnknown,
    refuseUnknownVerb,
)

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
    streamed = False

    def __init__(self, lines: _LineMode) -> None:
        self._lines = lines

    def frame(self, data: bytes, start: int, config: Any) -> tuple[Any, int]:
        """
        Skip to the end of a line too long to be read.

        @return: C{(TOO_LONG, end)} once its CRLF is found, C{end} being the
            index after it; otherwise C{None} and the index up to which
            everything is consumed: all of it but a final CR, which may
            begin the CRLF.
        """
        end = data.find(b"\r\n", start)
        if end < 0:
            return None, _consumable(data)
        return TOO_LONG, end + 2

    def act(self, server: ServerCore, unit: Any) -> None:
        server.setMode(self._lines)
        self._lines.act(server, unit)


class _LineMode:
    """
    A mode that reads lines of at most C{line_length_limit} octets.
    """

    reads = True
    timed = True
    streamed = False

    #: The reply to a line too long.
    tooLongReply = _TOO_LONG_REPLY

    def __init__(self) -> None:
        self.skipping = _Skipping(self)

    def frame(self, data: bytes, start: int, config: Any) -> tuple[Any, int]:
        """
        Frame the next line of C{data[start:]}: the pure framer of commands
        and answers.

        Only CRLF ends a line (RFC 5321 section 2.3.8): a bare LF or CR is
        part of the line, for the caller to refuse the whole line once.

        @param config: The server's options, for C{line_length_limit}: the
            longest line accepted, in octets with its CRLF.
        @return: C{(line, end)} for a complete line, C{line} being its
            bytes before the CRLF and C{end} the index after it;
            C{(TOO_LONG, end)} for a complete line over the limit;
            C{(OVERLONG, end)} when the incomplete line at the end is
            already too long to be a line (all of it is consumed but a
            final CR, which may begin the CRLF); C{(None, start)} when more
            input is needed.
        """
        end = data.find(b"\r\n", start)
        if end < 0:
            if len(data) - start >= config.line_length_limit:
                return OVERLONG, _consumable(data)
            return None, start
        if end + 2 - start > config.line_length_limit:
            return TOO_LONG, end + 2
        return data[start:end], end + 2

    def act(self, server: ServerCore, unit: Any) -> None:
        if unit is OVERLONG:
            server.setMode(self.skipping)
        elif unit is TOO_LONG:
            server.reply(self.tooLongReply)
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
    The mode of a connection that reads commands: each line is checked,
    decoded and run as the server's C{smtp_<VERB>} method, unless the
    security policy or the limits refuse it first.
    """

    def act(self, server: Any, unit: Any) -> None:
        """
        Run a command line, or deal with a line too long.
        """
        if unit.__class__ is not bytes:
            _LineMode.act(self, server, unit)
            return
        line = unit
        if b"\n" in line or b"\r" in line:
            server.reply(_bareNewline(line))
            return
        config = server.config
        if len(line) > config.command_size_limit and len(line) > _lineLimit(
            server, line
        ):
            server.reply(_TOO_LONG_REPLY)
            return
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            text = _decodedUTF8(server, line)
            if text is None:
                return
        verb, sep, arg = text.partition(" ")
        # ASCII first: upper() makes ASCII letters of some others ("ı").
        if not verb.isascii() or not verb.isalnum():
            if verb:
                # Not a command at all (an HTTP header, say): it counts
                # towards the limit as an unknown one does.
                refuseUnknown(server, "500 Error: bad syntax")
            else:
                server.reply("500 Error: bad syntax")
            return
        verb = verb.upper()
        if config.callLimits is not None and overCallLimit(server, verb):
            return
        if config.gated or server.securityRefused:
            refused = refusal(server, verb)
            if refused is not None:
                _refuse(server, verb, arg.strip() or None, refused)
                return
        commands = _commandTables.get(server.__class__)
        if commands is None:
            commands = _commandTables[server.__class__] = {}
        builtin = commands.get(verb)
        if builtin is None:
            builtin = commands[verb] = _builtinCommand(server.__class__, verb)
        if builtin is not _NOT_BUILTIN:
            # A command group's command, called without the wrapper that
            # makes its result awaitable for a subclass's super() call.
            server.run(builtin, server, arg.strip() or None)
            return
        method = getattr(server, "smtp_" + verb, None)
        if method is None:
            refuseUnknownVerb(server, verb)
            return
        server.run(method, arg.strip() or None)


def _consumable(data: bytes) -> int:
    """
    How much of C{data}, which holds no CRLF where a line is looked for, may
    be consumed: all of it but a final CR, which may begin the next chunk's
    CRLF.
    """
    return len(data) - 1 if data.endswith(b"\r") else len(data)


def _bareNewline(line: bytes) -> str | None:
    """
    The reply refusing a line that holds a bare LF or CR, if it does.
    """
    if b"\n" in line:
        return "500 5.5.2 Error: bare LF received"
    if b"\r" in line:
        return "500 5.5.2 Error: bare CR received"
    return None


#: What each server class runs for each verb seen: a command group's
#: command (called with the server and the argument), or L{_NOT_BUILTIN}
#: for a verb that is the class's own method, or none.
_commandTables: dict[type, dict[str, Any]] = {}
_NOT_BUILTIN = object()


def _builtinCommand(cls: type, verb: str) -> Any:
    """
    The command group's command that a server class runs for C{verb}, if
    its C{smtp_<VERB>} is one that L{twisted_smtpd._verbs} made (and no
    subclass replaced), else L{_NOT_BUILTIN}.
    """
    method = getattr(cls, "smtp_" + verb, None)
    builtin = getattr(method, "__smtp_command__", None)
    return _NOT_BUILTIN if builtin is None else builtin


def _refuse(server: Any, verb: str, arg: str | None, reply: str) -> None:
    """
    Refuse a command before it runs: send C{reply}, or have a command that
    carries more than its line (see L{twisted_smtpd._verbs.carries}) send
    it and read past what it carries.
    """
    builtin = _builtinCommand(server.__class__, verb)
    refused = getattr(builtin, "__smtp_refused__", None)
    if refused is None:
        server.reply(reply)
    else:
        refused(server, arg, reply)


def _lineLimit(server: Any, line: bytes) -> int:
    """
    The longest command line allowed, without its CRLF: after EHLO, MAIL
    and RCPT may grow by what their parameters need (RFC 5321 section
    4.5.3.1.4).
    """
    limit = server.config.command_size_limit
    if server.session.extended_smtp:
        parameters = {b"MAIL": server.mailParameters, b"RCPT": server.rcptParameters}
        for parameter in parameters.get(line[:4].upper(), {}).values():
            limit += parameter.room(server)
    return limit


def _decodedUTF8(server: Any, line: bytes) -> str | None:
    """
    A command line that is not ASCII as text: UTF-8 with SMTPUTF8; C{None}
    after refusing it.
    """
    if not server.config.enable_SMTPUTF8:
        server.reply("500 Error: strict ASCII mode")
        return None
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        server.reply("500 Error: bad syntax (invalid UTF-8)")
        return None


class AnswerLine(_LineMode):
    """
    The mode of a connection that waits for the client's answer to a
    challenge (RFC 4954 section 4): one line, which is not a command.
    """

    #: RFC 4954 section 6: C{5.5.6}, not a command's C{5.5.2}.
    tooLongReply = "500 5.5.6 Authentication exchange line is too long"

    def lineReceived(self, server: ServerCore, line: bytes) -> None:
        bare = _bareNewline(line)
        if bare is not None:
            # A broken line is no answer: the 500 ends the exchange.
            server.reply(bare)
            line = None
        server.answerReceived(line)

    def lineTooLong(self, server: ServerCore) -> None:
        # The 500 ends the exchange.
        server.answerReceived(None)


#: The modes are the same for every connection: what varies is kept by the
#: connection (its unread bytes, its current mode).
COMMAND = CommandLines()
ANSWER = AnswerLine()
