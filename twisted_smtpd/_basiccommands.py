# -*- test-case-name: tests.test_basiccommands -*-
"""
The commands outside a mail transaction, as a command group: HELO, EHLO,
NOOP, QUIT, RSET, VRFY, EXPN and HELP (RFC 5321 section 4.1.1).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from twisted_smtpd._address import PathRefused, PathSyntaxError, parsePath
from twisted_smtpd._connhooks import QUIT
from twisted_smtpd._interfaces import ServerCore
from twisted_smtpd._policy import countError, junkCommand
from twisted_smtpd._syntax import syntax
from twisted_smtpd._verbs import CommandGroup, verb

_USER_NAME = re.compile(r"[^\s<>@\x00-\x1f\x7f]+\Z")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# RFC 5321 section 4.1.2 Quoted-string, with UTF-8 allowed (RFC 6531).
_QUOTED_STRING = re.compile(r'"(?:[^"\\\x00-\x1f\x7f]|\\[ -~])*"\Z')


def shown(text: str, limit: int = 200) -> str:
    """
    A client's text as a reply may echo it: control characters replaced,
    and cut to C{limit} octets of UTF-8 so that the reply line stays within
    RFC 5321's 512 (section 4.5.3.1.5).
    """
    encoded = text.encode("utf-8", "replace")
    if len(encoded) > limit:
        text = encoded[:limit].decode("utf-8", "ignore") + "..."
    return _CONTROLS.sub("?", text)


def refuseHostname(server: ServerCore, verb: str, arg: str | None) -> bool:
    """
    Refuse the argument of HELO, EHLO or LHLO with C{501} if it is missing
    or holds a control character (NUL, ESC, TAB, DEL, C1...), which no
    host name has and which must never reach C{session.host_name}, the
    handler or the log.

    @return: Whether it was refused.
    """
    if arg and _CONTROLS.search(arg) is None:
        return False
    server.reply(f"501 Syntax: {verb} hostname")
    return True


def _answer(server: ServerCore, status: Any, junk: bool) -> None:
    """
    Send a reply, then count a junk command beyond C{junk_command_limit}
    as an error: its reply goes out before the C{421} that may follow.
    """
    server.reply(status)
    if junk:
        countError(server)


def _replyOr(
    server: ServerCore, default: str, junk: bool = False
) -> Callable[[Any], None]:
    """
    A hook continuation that sends the hook's reply, or C{default} (see
    L{_answer} for C{junk}).
    """

    def then(status: Any) -> None:
        _answer(server, default if status is None else status, junk)

    return then


def helpTexts(server: Any) -> dict[str, str]:
    """
    The HELP text of every command available now, by verb: every
    C{smtp_<VERB>} method of the server that has one (see
    L{twisted_smtpd.syntax}).
    """
    texts = {}
    extended = server.session.extended_smtp
    for name in dir(type(server)):
        if not name.startswith("smtp_"):
            continue
        method = getattr(server, name)
        text = getattr(method, "__smtp_syntax__", None)
        if text is None:
            continue
        when = getattr(method, "__smtp_syntax_when__", None)
        if callable(when):
            if not when(server):
                continue
        elif when and not getattr(server, when, None):
            continue
        more = getattr(method, "__smtp_syntax_extended__", None)
        if extended and more:
            text += more
        texts[name[5:]] = text
    return texts


class BasicCommands(CommandGroup):
    """
    HELO, EHLO, NOOP, QUIT, RSET, VRFY, EXPN and HELP; the EHLO keywords
    PIPELINING, ENHANCEDSTATUSCODES (when on) and HELP.
    """

    def keywords(self, server: ServerCore) -> list[str]:
        keywords = ["PIPELINING"]
        if server.enhancedStatusCodes:
            keywords.append("ENHANCEDSTATUSCODES")
        keywords.append("HELP")
        return keywords

    @verb("HELO")
    @syntax("HELO hostname")
    def helo(self, server: ServerCore, arg: str | None) -> Any:
        """
        Greet without extensions (RFC 5321 section 4.1.1.1).
        """
        if refuseHostname(server, "HELO", arg):
            return None
        server.resetTransaction()
        server.session.extended_smtp = False

        def then(status: Any) -> None:
            if status is None:
                server.session.host_name = arg
                status = f"250 {server.config.hostname}"
            server.replyPlain(status)

        return server.hook("HELO", then, arg)

    @verb("EHLO")
    @syntax("EHLO hostname")
    def ehlo(self, server: ServerCore, arg: str | None) -> Any:
        """
        Greet and list the extensions offered (RFC 5321 section 4.1.1.1).
        """
        if refuseHostname(server, "EHLO", arg):
            return None
        return self.greet(server, arg)

    def greet(self, server: ServerCore, arg: str) -> Any:
        """
        Start a session with extensions, as EHLO (or LMTP's LHLO) does: run
        C{handle_EHLO}, in either of its two forms, and send the keywords.
        """
        session = server.session
        server.resetTransaction()
        session.extended_smtp = True
        names = [server.config.hostname, *server.ehloKeywords()]
        responses = [f"250-{name}" for name in names[:-1]] + [f"250 {names[-1]}"]
        if "EHLO" not in server.config.hooks:
            session.host_name = arg
            server.replyPlain("\r\n".join(responses))
            return None
        if server.config.ehloStyle == "old":
            # aiosmtpd's old form: the hook gives the last line only.
            for line in responses[:-1]:
                server.replyPlain(line)

            def thenOld(status: Any) -> None:
                if status is None:
                    session.host_name = session.host_name or arg
                    status = responses[-1]
                server.replyPlain(status)

            return server.hook("EHLO", thenOld, arg)

        def thenNew(lines: Any) -> None:
            if lines is None:
                session.host_name = session.host_name or arg
                server.replyPlain("\r\n".join(responses))
                return
            if isinstance(lines, (str, bytes)):
                lines = [lines]
            for line in lines:
                server.replyPlain(line)

        return server.hook("EHLO", thenNew, arg, responses)

    @verb("NOOP")
    @syntax("NOOP [ignored]")
    def noop(self, server: ServerCore, arg: str | None) -> Any:
        """
        Do nothing (RFC 5321 section 4.1.1.9).
        """
        junk = junkCommand(server)
        return server.hook("NOOP", _replyOr(server, "250 OK", junk), arg)

    @verb("QUIT")
    @syntax("QUIT")
    def quit(self, server: ServerCore, arg: str | None) -> Any:
        """
        Say goodbye and close (RFC 5321 section 4.1.1.10).
        """
        if arg:
            server.reply("501 Syntax: QUIT")
            return None

        def then(status: Any) -> None:
            server.disconnect("221 Bye" if status is None else status, QUIT)

        return server.hook("QUIT", then)

    @verb("RSET")
    @syntax("RSET")
    def rset(self, server: ServerCore, arg: str | None) -> Any:
        """
        Abort the transaction (RFC 5321 section 4.1.1.5).
        """
        junk = junkCommand(server)
        if arg:
            _answer(server, "501 Syntax: RSET", junk)
            return None
        server.resetTransaction()
        return server.hook("RSET", _replyOr(server, "250 OK", junk))

    @verb("VRFY")
    @syntax("VRFY <address>")
    def vrfy(self, server: ServerCore, arg: str | None) -> Any:
        """
        Answer that we cannot verify but will try (RFC 5321 section 3.5.3).
        """
        junk = junkCommand(server)
        if not arg:
            _answer(server, "501 Syntax: VRFY <address>", junk)
            return None
        smtputf8 = server.config.enable_SMTPUTF8
        if smtputf8 and arg[-9:].upper() == " SMTPUTF8":
            # RFC 6531 section 3.7.4.2: the client may answer in UTF-8.
            arg = arg[:-9].rstrip()
        try:
            address = parsePath(
                arg if arg.startswith("<") else f"<{arg}>",
                smtputf8=smtputf8,
                allowPostmaster=True,
            )
        except (PathSyntaxError, PathRefused):
            # A user name, or a full name in quotes, is a valid VRFY
            # argument too (RFC 5321 sections 3.5.1 and 4.1.1.6).
            if _USER_NAME.match(arg) is None and _QUOTED_STRING.match(arg) is None:
                # Echoed without control characters (RFC 5321 4.2: reply
                # text is printable) and short enough for a reply line.
                _answer(server, f"502 Could not VRFY {shown(arg)}", junk)
                return None
            address = arg
        return server.hook(
            "VRFY",
            _replyOr(
                server,
                "252 Cannot VRFY user, but will accept message and attempt delivery",
                junk,
            ),
            address,
        )

    @verb("EXPN")
    def expn(self, server: ServerCore, arg: str | None) -> None:
        """
        Refuse to expand mailing lists (RFC 5321 section 3.5.3).
        """
        server.reply("502 EXPN not implemented")

    @verb("HELP")
    @syntax("HELP [command]")
    def help(self, server: ServerCore, arg: str | None) -> None:
        """
        List the commands, or show the syntax of one (RFC 5321 section
        4.1.1.8); the codes are RFC 5321's 214 and 504, not aiosmtpd's 250
        and 501.
        """
        junk = junkCommand(server)
        commands = helpTexts(server)
        if arg:
            text = commands.get(arg.upper())
            if text is not None:
                _answer(server, f"214 Syntax: {text}", junk)
                return
            code = 504
        else:
            code = 214
        _answer(
            server, f"{code} Supported commands: {' '.join(sorted(commands))}", junk
        )
