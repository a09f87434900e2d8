# -*- test-case-name: tests.test_protocol -*-
"""
The commands of an SMTP transaction (RFC 5321 section 4.1), as a part of
L{twisted_smtpd.SMTP}: greeting, MAIL, RCPT, DATA and the small ones.

The methods rely on what L{SMTP} provides: C{_reply}, C{_hook},
C{_failed}, C{_wait}, the session and the envelope.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from twisted_smtpd import _data
from twisted_smtpd._address import (
    PathRefused,
    PathSyntaxError,
    parseParameters,
    parsePath,
    splitArgument,
)
from twisted_smtpd._syntax import syntax

_USER_NAME = re.compile(r"[^\s<>@\x00-\x1f\x7f]+\Z")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# RFC 5321 section 4.1.2 Quoted-string, with UTF-8 allowed (RFC 6531).
_QUOTED_STRING = re.compile(r'"(?:[^"\\\x00-\x1f\x7f]|\\[ -~])*"\Z')
# RFC 3461 section 4 xtext: printable ASCII but "+" and "=", or "+" and two
# upper-case hex digits.
_XTEXT = re.compile(r"(?:[!-*,-<>-~]|\+[0-9A-F]{2})+\Z")


def _shown(text: str, limit: int = 200) -> str:
    """
    A client's text as a reply may echo it: control characters replaced,
    and cut to C{limit} octets of UTF-8 so that the reply line stays within
    RFC 5321's 512 (section 4.5.3.1.5).
    """
    encoded = text.encode("utf-8", "replace")
    if len(encoded) > limit:
        text = encoded[:limit].decode("utf-8", "ignore") + "..."
    return _CONTROLS.sub("?", text)


class MailCommands:
    """
    HELO, EHLO, NOOP, QUIT, RSET, VRFY, EXPN, HELP, MAIL, RCPT and DATA.
    """

    def _needHelo(self) -> bool:
        """
        Refuse a transaction command before HELO/EHLO; return C{True} if so.
        """
        if self.session.host_name:
            return False
        self._reply(self._sendHeloFirst)
        return True

    @syntax("HELO hostname")
    def smtp_HELO(self, arg: str | None) -> Any:
        """
        Greet without extensions (RFC 5321 section 4.1.1.1).
        """
        if not arg:
            self._reply("501 Syntax: HELO hostname")
            return None
        self._logAborted()
        self._envelope = None
        self.session.extended_smtp = False

        def then(status: Any) -> None:
            if status is None:
                self.session.host_name = arg
                status = f"250 {self._config.hostname}"
            self._reply(status)

        return self._hook("HELO", then, arg)

    @syntax("EHLO hostname")
    def smtp_EHLO(self, arg: str | None) -> Any:
        """
        Greet and list the extensions offered (RFC 5321 section 4.1.1.1).
        """
        if not arg:
            self._reply("501 Syntax: EHLO hostname")
            return None
        self._logAborted()
        self._envelope = None
        self.session.extended_smtp = True
        responses = self._ehloResponses()
        if "EHLO" not in self._hooks:
            self.session.host_name = arg
            for line in responses:
                self._ehloReply(line)
            return None
        if self._config.ehloStyle == "old":
            for line in responses[:-1]:
                self._ehloReply(line)

            def thenOld(status: Any) -> None:
                if status is None:
                    self.session.host_name = self.session.host_name or arg
                    status = responses[-1]
                self._ehloReply(status)

            return self._hook("EHLO", thenOld, arg)

        def thenNew(lines: Any) -> None:
            if lines is None:
                self.session.host_name = self.session.host_name or arg
                lines = responses
            elif isinstance(lines, (str, bytes)):
                lines = [lines]
            for line in lines:
                self._ehloReply(line)

        return self._hook("EHLO", thenNew, arg, responses)

    def _ehloResponses(self) -> list[str]:
        """
        The EHLO reply lines, last one included (C{"250 HELP"}).
        """
        config = self._config
        lines = [f"250-{config.hostname}"]
        if config.data_size_limit:
            lines.append(f"250-SIZE {config.data_size_limit}")
        if config.eightBitMIME:
            lines.append("250-8BITMIME")
        if config.enable_SMTPUTF8:
            lines.append("250-SMTPUTF8")
        lines.extend(self._extraExtensions())
        lines.append("250-PIPELINING")
        lines.append("250 HELP")
        return lines

    def _extraExtensions(self) -> list[str]:
        """
        EHLO lines of the extensions that depend on the connection's state
        (STARTTLS, AUTH).
        """
        lines = []
        if self._config.tls_context is not None and not self._tlsActive:
            lines.append("250-STARTTLS")
        if self._authAllowedHere():
            mechanisms = sorted(self._mechanisms())
            if not mechanisms and "AUTH" in self._hooks:
                # A handler with only handle_AUTH is taken to handle the
                # usual mechanisms, as aiosmtpd advertises them.
                mechanisms = ["LOGIN", "PLAIN"]
            if mechanisms:
                lines.append("250-AUTH " + " ".join(mechanisms))
        return lines

    @syntax("NOOP [ignored]")
    def smtp_NOOP(self, arg: str | None) -> Any:
        """
        Do nothing (RFC 5321 section 4.1.1.9).
        """
        return self._hook("NOOP", self._replyOr("250 OK"), arg)

    def _replyOr(self, default: str) -> Callable[[Any], None]:
        def then(status: Any) -> None:
            self._reply(default if status is None else status)

        return then

    @syntax("QUIT")
    def smtp_QUIT(self, arg: str | None) -> Any:
        """
        Say goodbye and close (RFC 5321 section 4.1.1.10).
        """
        if arg:
            self._reply("501 Syntax: QUIT")
            return None

        def then(status: Any) -> None:
            self._close("221 Bye" if status is None else status)

        return self._hook("QUIT", then)

    @syntax("RSET")
    def smtp_RSET(self, arg: str | None) -> Any:
        """
        Abort the transaction (RFC 5321 section 4.1.1.5).
        """
        if arg:
            self._reply("501 Syntax: RSET")
            return None
        self._logAborted()
        self._envelope = None
        return self._hook("RSET", self._replyOr("250 OK"))

    @syntax("VRFY <address>")
    def smtp_VRFY(self, arg: str | None) -> Any:
        """
        Answer that we cannot verify but will try (RFC 5321 section 3.5.3).
        """
        if not arg:
            self._reply("501 Syntax: VRFY <address>")
            return None
        if self._config.enable_SMTPUTF8 and arg[-9:].upper() == " SMTPUTF8":
            # RFC 6531 section 3.7.4.2: the client may answer in UTF-8.
            arg = arg[:-9].rstrip()
        try:
            address = parsePath(
                arg if arg.startswith("<") else f"<{arg}>",
                smtputf8=self._config.enable_SMTPUTF8,
                allowPostmaster=True,
            )
        except (PathSyntaxError, PathRefused):
            # A user name, or a full name in quotes, is a valid VRFY
            # argument too (RFC 5321 sections 3.5.1 and 4.1.1.6).
            if _USER_NAME.match(arg) is None and _QUOTED_STRING.match(arg) is None:
                # Echoed without control characters (RFC 5321 4.2: reply
                # text is printable) and short enough for a reply line.
                self._reply(f"502 Could not VRFY {_shown(arg)}")
                return None
            address = arg
        return self._hook(
            "VRFY",
            self._replyOr(
                "252 Cannot VRFY user, but will accept message and attempt delivery"
            ),
            address,
        )

    def smtp_EXPN(self, arg: str | None) -> None:
        """
        Refuse to expand mailing lists (RFC 5321 section 3.5.3).
        """
        self._reply("502 EXPN not implemented")

    @syntax("HELP [command]")
    def smtp_HELP(self, arg: str | None) -> None:
        """
        List the commands, or show the syntax of one (RFC 5321 section
        4.1.1.8); the codes are RFC 5321's 214 and 504, not aiosmtpd's 250
        and 501.
        """
        commands = self._helpTexts()
        if arg:
            text = commands.get(arg.upper())
            if text is not None:
                self._reply(f"214 Syntax: {text}")
                return
            code = 504
        else:
            code = 214
        self._reply(f"{code} Supported commands: {' '.join(sorted(commands))}")

    def _helpTexts(self) -> dict[str, str]:
        """
        The HELP text of every command available now, by verb.
        """
        texts = {}
        extended = self.session.extended_smtp
        for name in dir(type(self)):
            if not name.startswith("smtp_"):
                continue
            method = getattr(self, name)
            text = getattr(method, "__smtp_syntax__", None)
            if text is None:
                continue
            when = getattr(method, "__smtp_syntax_when__", None)
            if when and not getattr(self, when, None):
                continue
            more = getattr(method, "__smtp_syntax_extended__", None)
            if extended and more:
                text += more
            texts[name[5:]] = text
        return texts

    def _syntaxError(self, verb: str) -> None:
        if verb == "MAIL":
            text = "501 Syntax: MAIL FROM: <address>"
        else:
            text = "501 Syntax: RCPT TO: <address>"
        if self.session.extended_smtp:
            text += " [SP <mail-parameters>]"
        self._reply(text)

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    def smtp_MAIL(self, arg: str | None) -> Any:
        """
        Start a transaction (RFC 5321 section 4.1.1.2) with the parameters
        of SIZE (RFC 1870), 8BITMIME (RFC 6152) and SMTPUTF8 (RFC 6531).
        """
        if self._needHelo():
            return None
        envelope = self.envelope
        if envelope.mail_from is not None:
            self._reply("503 Error: nested MAIL command")
            return None
        config = self._config
        try:
            path, params = splitArgument(arg or "", "FROM")
            options = parseParameters(params)
            if options and not self.session.extended_smtp:
                raise PathSyntaxError(params)
            smtputf8 = self._mailParameters(options)
            address = parsePath(
                path,
                smtputf8=smtputf8,
                localPartLimit=config.local_part_limit,
                allowNull=True,
            )
        except PathSyntaxError:
            self._syntaxError("MAIL")
            return None
        except PathRefused as e:
            self._reply(e.reply)
            return None
        mailOptions = [self._mailOption(key, value) for key, value in options]
        envelope.smtp_utf8 = smtputf8

        def then(status: Any) -> None:
            if status is None:
                if envelope.mail_from is None:
                    envelope.mail_from = address
                    envelope.mail_options.extend(mailOptions)
                status = "250 OK"
            self._transactionStart = time.monotonic()
            self._reply(status)

        return self._hook("MAIL", then, address, mailOptions)

    def _mailOption(self, key: str, value: str | None) -> str:
        """
        A MAIL parameter as C{envelope.mail_options} holds it: upper-cased,
        value too, as aiosmtpd stores them. An AUTH value is a mailbox and
        is kept as sent, but one from a client that has not authenticated
        counts as C{AUTH=<>} (RFC 4954 section 5).
        """
        if value is None:
            return key
        if key == "AUTH":
            return f"AUTH={value if self.session.authenticated else '<>'}"
        return f"{key}={value.upper()}"

    def _mailParameters(self, options: list[tuple[str, str | None]]) -> bool:
        """
        Check the MAIL parameters; return whether SMTPUTF8 was asked for.

        @raise PathRefused: For a parameter refused.
        @raise PathSyntaxError: For a parameter value of the wrong form.
        """
        config = self._config
        smtputf8 = False
        for key, value in options:
            if key == "SIZE":
                if not (value and value.isascii() and value.isdigit()):
                    raise PathSyntaxError(key)
                if config.data_size_limit and int(value) > config.data_size_limit:
                    raise PathRefused(
                        "552 Error: message size exceeds fixed maximum message size"
                    )
            elif key == "BODY" and config.eightBitMIME:
                if value is None or value.upper() not in ("7BIT", "8BITMIME"):
                    raise PathRefused(
                        "501 Error: BODY can only be one of 7BIT, 8BITMIME"
                    )
            elif key == "AUTH" and self._offersAuth and self._authAllowedHere():
                # RFC 4954 section 5: the mailbox that submitted the message.
                if value is None or _XTEXT.match(value) is None:
                    raise PathRefused("501 5.5.4 Error: malformed AUTH parameter")
            elif key == "SMTPUTF8":
                if value is not None:
                    raise PathRefused("501 Error: SMTPUTF8 takes no arguments")
                if not config.enable_SMTPUTF8:
                    raise PathRefused("501 Error: SMTPUTF8 disabled")
                smtputf8 = True
            else:
                raise PathRefused(
                    "555 MAIL FROM parameters not recognized or not implemented"
                )
        return smtputf8

    @syntax("RCPT TO: <address>", extended=" [SP <mail-parameters>]")
    def smtp_RCPT(self, arg: str | None) -> Any:
        """
        Add a recipient (RFC 5321 section 4.1.1.3).
        """
        if self._needHelo():
            return None
        envelope = self.envelope
        if envelope.mail_from is None:
            self._reply("503 Error: need MAIL command")
            return None
        try:
            path, params = splitArgument(arg or "", "TO")
            options = parseParameters(params)
            if options and not self.session.extended_smtp:
                raise PathSyntaxError(params)
            if options:
                raise PathRefused(
                    "555 RCPT TO parameters not recognized or not implemented"
                )
            address = parsePath(
                path,
                smtputf8=envelope.smtp_utf8,
                localPartLimit=self._config.local_part_limit,
                allowPostmaster=True,
            )
        except PathSyntaxError:
            self._syntaxError("RCPT")
            return None
        except PathRefused as e:
            self._reply(e.reply)
            return None
        before = len(envelope.rcpt_tos)

        def then(status: Any) -> None:
            if status is None:
                if len(envelope.rcpt_tos) == before:
                    envelope.rcpt_tos.append(address)
                status = "250 OK"
            self._reply(status)

        # No RCPT parameter is accepted yet, so the options are always empty.
        return self._hook("RCPT", then, address, [])

    @syntax("DATA")
    def smtp_DATA(self, arg: str | None) -> None:
        """
        Receive the message (RFC 5321 section 4.1.1.4).
        """
        if self._needHelo():
            return
        # aiosmtpd's order and text, even without a MAIL.
        if not self.envelope.rcpt_tos:
            self._reply("503 Error: need RCPT command")
            return
        if arg:
            self._reply("501 Syntax: DATA")
            return
        config = self._config
        self._dataReceiver = _data.DataReceiver(
            config.data_size_limit, config.line_length_limit, config.allowBareNewline
        )
        self._reply("354 End data with <CR><LF>.<CR><LF>")

    def _dataChunk(self) -> None:
        """
        Feed the buffer to the DATA framer; finish the message at its end.
        """
        receiver = self._dataReceiver
        rest = receiver.feed(self._buffer)
        if rest is None:
            self._buffer = b""
            return
        self._buffer = rest
        self._dataReceiver = None
        self._run(self._messageReceived, receiver)

    def _messageReceived(self, receiver: _data.DataReceiver) -> Any:
        """
        Check the message that just ended and hand it to the handler.
        """
        envelope = self.envelope
        error = receiver.error
        if error is not None:
            return self._endTransaction(envelope, receiver, _DATA_ERRORS[error])
        content = original = receiver.content()
        if self._config.decode_data:
            if self._config.enable_SMTPUTF8:
                # As aiosmtpd: UTF-8, and any other byte kept as a lone
                # surrogate, so that nothing is lost or refused.
                content = original.decode("utf-8", "surrogateescape")
            else:
                try:
                    content = original.decode("ascii")
                except UnicodeDecodeError:
                    return self._endTransaction(
                        envelope, receiver, "500 Error: strict ASCII mode"
                    )
        envelope.content = content
        envelope.original_content = original
        return self._hook(
            "DATA", lambda status: self._endTransaction(envelope, receiver, status)
        )

    def _endTransaction(
        self, envelope: Any, receiver: _data.DataReceiver, status: Any
    ) -> None:
        """
        Reply to the end of the data, forget the envelope and log the
        transaction. The replies come first: if they cannot be made, the
        error path logs the transaction as aborted instead.
        """
        if status is None:
            status = "250 OK"
        self._dataReplies(status)
        if self._envelope is envelope:
            self._envelope = None
        self._logTransaction(envelope, receiver.size, _codeOf(status))

    def _dataReplies(self, status: Any) -> None:
        """
        Send the reply to the end of the data. A list of statuses (one per
        recipient, as for LMTP) becomes its first failure, or its first
        status when all succeeded, since SMTP has one reply.
        """
        if isinstance(status, (list, tuple)):
            statuses = ["250 OK" if s is None else s for s in status] or ["250 OK"]
            failures = [s for s in statuses if _codeOf(s)[:1] != "2"]
            status = (failures or statuses)[0]
        self._reply(status)


_DATA_ERRORS = {
    _data.TOO_BIG: "552 Error: Too much mail data",
    _data.LINE_TOO_LONG: "500 Line too long (see RFC5321 4.5.3.1.6)",
    _data.BARE_NEWLINE: "550 5.6.0 Error: bare CR or LF in message;"
    " lines must end with CRLF",
}


def _codeOf(status: Any) -> str:
    """
    The reply code of a status, for the log; several for a list (LMTP).
    """
    if isinstance(status, (list, tuple)):
        return ",".join("250" if each is None else _codeOf(each) for each in status)
    if isinstance(status, bytes):
        return status[:3].decode("ascii", "replace")
    if isinstance(status, str):
        return status[:3]
    return "?"
