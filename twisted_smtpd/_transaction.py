# -*- test-case-name: tests.test_transaction -*-
"""
The mail transaction (RFC 5321 section 4.1.1): MAIL, RCPT and DATA, with
the SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), DSN (RFC
3461) and REQUIRETLS (RFC 8689) extensions, as a command group.
"""

from __future__ import annotations

from typing import Any

from twisted_smtpd._address import PathRefused, PathSyntaxError
from twisted_smtpd._chunking import chunkingOffered, dataRefusal
from twisted_smtpd._dataframer import (
    BARE_NEWLINE,
    LINE_TOO_LONG,
    TOO_BIG,
    DataReceiver,
)
from twisted_smtpd._datamode import MessageData
from twisted_smtpd._dsn import (
    MAIL_PARAMETERS,
    RCPT_PARAMETERS,
    forgetMailFacts,
    mailFacts,
    rcptFacts,
)
from twisted_smtpd._interfaces import ServerCore
from twisted_smtpd._parameters import parsedArgument, storedParameters
from twisted_smtpd._policy import dataAnswered, forgive, refuseRecipient
from twisted_smtpd._replies import codeOf
from twisted_smtpd._streaming import abortStream, endStream, sendPiece
from twisted_smtpd._syntax import syntax
from twisted_smtpd._verbs import CommandGroup, Parameter, verb

_DATA_ERRORS = {
    TOO_BIG: "552 Error: Too much mail data",
    LINE_TOO_LONG: "500 Line too long (see RFC5321 4.5.3.1.6)",
    BARE_NEWLINE: "550 5.6.0 Error: bare CR or LF in message; lines must end with CRLF",
}


def _checkSize(server: ServerCore, value: str | None) -> None:
    if not (value and value.isascii() and value.isdigit()):
        raise PathSyntaxError("SIZE")
    limit = server.config.data_size_limit
    if limit and int(value) > limit:
        raise PathRefused("552 Error: message size exceeds fixed maximum message size")


def _checkBody(server: ServerCore, value: str | None) -> None:
    body = None if value is None else value.upper()
    if body == "BINARYMIME" and chunkingOffered(server):
        # RFC 3030 section 3: the message then comes by BDAT only.
        return
    if body not in ("7BIT", "8BITMIME"):
        raise PathRefused("501 Error: BODY can only be one of 7BIT, 8BITMIME")


def _checkSMTPUTF8(server: ServerCore, value: str | None) -> None:
    if value is not None:
        raise PathRefused("501 Error: SMTPUTF8 takes no arguments")
    if not server.config.enable_SMTPUTF8:
        raise PathRefused("501 Error: SMTPUTF8 disabled")


_SIZE = Parameter(
    "SIZE",
    _checkSize,
    # RFC 1870 section 3: the parameter may make MAIL 26 octets longer.
    room=lambda server: 26 if server.config.data_size_limit else 0,
)
_BODY = Parameter("BODY", _checkBody, offered=lambda s: s.config.eightBitMIME)
_SMTPUTF8 = Parameter(
    "SMTPUTF8",
    _checkSMTPUTF8,
    # RFC 6531 section 3.4.
    room=lambda server: 10 if server.config.enable_SMTPUTF8 else 0,
)


def _decoded(config: Any, original: bytes) -> bytes | str | None:
    """
    The C{envelope.content} of a message received as C{original} with
    C{decode_data}: C{str}, or C{None} if it must be ASCII and is not.
    """
    if config.enable_SMTPUTF8:
        # As aiosmtpd: UTF-8, and any other byte kept as a lone surrogate,
        # so that nothing is lost or refused.
        return original.decode("utf-8", "surrogateescape")
    try:
        return original.decode("ascii")
    except UnicodeDecodeError:
        return None


class Transaction(CommandGroup):
    """
    MAIL, RCPT and DATA, and the end of the data: one reply for the
    message, the first failure of a list of statuses if there is one.
    """

    mailParameters = (_SIZE, _BODY, _SMTPUTF8, *MAIL_PARAMETERS)
    rcptParameters = RCPT_PARAMETERS

    #: Whether the end of the data gets one reply per recipient (LMTP), and
    #: so does an exception there.
    repliesPerRecipient = False

    def keywords(self, server: ServerCore) -> list[str]:
        config = server.config
        keywords = []
        if config.data_size_limit:
            keywords.append(f"SIZE {config.data_size_limit}")
        if config.eightBitMIME:
            keywords.append("8BITMIME")
        if config.enable_SMTPUTF8:
            keywords.append("SMTPUTF8")
        if config.dsn:
            keywords.append("DSN")
        if config.requiretls and server.tlsActive:
            # RFC 8689 section 4: only where the session is already TLS.
            keywords.append("REQUIRETLS")
        return keywords

    def _needHelo(self, server: ServerCore) -> None:
        """
        Refuse a transaction command before the greeting.
        """
        server.reply(f"503 Error: send {server.helloVerb} first")

    @verb("MAIL")
    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    def mail(self, server: ServerCore, arg: str | None) -> Any:
        """
        Start a transaction (RFC 5321 section 4.1.1.2).
        """
        if not server.session.host_name:
            return self._needHelo(server)
        envelope = server.envelope
        if envelope.mail_from is not None:
            server.reply("503 Error: nested MAIL command")
            return None
        parsed = parsedArgument(server, arg, "MAIL", server.mailParameters)
        if parsed is None:
            return None
        address, options, smtputf8 = parsed
        envelope.smtp_utf8 = smtputf8
        stored = []
        if options:
            stored = storedParameters(server, options)
            # Before the hook, so that it sees them too.
            mailFacts(envelope, options)
        if "MAIL" not in server.config.hooks:
            # The common case, without a hook to wait for.
            self._mailAccepted(None, server, envelope, address, stored)
            return None
        return server.hook(
            "MAIL",
            lambda status: self._mailAccepted(
                status, server, envelope, address, stored, options
            ),
            address,
            stored,
            # An exception answers MAIL alone, as aiosmtpd: the envelope
            # stays as the hook left it (without a sender, normally).
            keepTransaction=True,
        )

    def _mailAccepted(
        self,
        status: Any,
        server: ServerCore,
        envelope: Any,
        address: str,
        stored: list[str],
        options: Any = None,
    ) -> None:
        """
        Reply to MAIL as C{handle_MAIL} decided; without its reply, start the
        transaction (unless the hook started it).
        """
        if options and not (status is None or str(status)[:1] == "2"):
            forgetMailFacts(envelope)
        if status is None:
            if envelope.mail_from is None:
                envelope.mail_from = address
                if stored:
                    envelope.mail_options.extend(stored)
            status = "250 OK"
        server.transactionStarted()
        server.reply(status)

    @verb("RCPT")
    @syntax("RCPT TO: <address>", extended=" [SP <mail-parameters>]")
    def rcpt(self, server: ServerCore, arg: str | None) -> Any:
        """
        Add a recipient (RFC 5321 section 4.1.1.3).
        """
        if not server.session.host_name:
            return self._needHelo(server)
        envelope = server.envelope
        if envelope.mail_from is None:
            server.reply("503 Error: need MAIL command")
            return None
        parsed = parsedArgument(
            server, arg, "RCPT", server.rcptParameters, envelope.smtp_utf8
        )
        if parsed is None:
            return None
        address, options, _ = parsed
        stored = storedParameters(server, options) if options else []
        before = len(envelope.rcpt_tos)
        limit = server.config.max_recipients
        if limit and before >= limit:
            refuseRecipient(server, envelope)
            return None
        if "RCPT" not in server.config.hooks:
            # The common case, without a hook to wait for.
            self._rcptAccepted(None, server, envelope, address, stored, before, options)
            return None
        return server.hook(
            "RCPT",
            lambda status: self._rcptAccepted(
                status, server, envelope, address, stored, before, options
            ),
            address,
            stored,
            # An exception answers this RCPT; the recipients accepted stay.
            keepTransaction=True,
        )

    def _rcptAccepted(
        self,
        status: Any,
        server: ServerCore,
        envelope: Any,
        address: str,
        stored: list[str],
        before: int,
        options: Any,
    ) -> None:
        """
        Reply to RCPT as C{handle_RCPT} decided; without its reply, add the
        recipient (unless the hook added one). The parameters of a
        recipient accepted are recorded for it (see L{rcptFacts}).
        """
        if status is None:
            if len(envelope.rcpt_tos) == before:
                envelope.rcpt_tos.append(address)
                if stored:
                    envelope.rcpt_options.extend(stored)
            status = "250 OK"
        if options and str(status)[:1] == "2" and len(envelope.rcpt_tos) > before:
            rcptFacts(envelope, before, options)
        server.reply(status)

    @verb("DATA")
    @syntax("DATA")
    def data(self, server: ServerCore, arg: str | None) -> None:
        """
        Receive the message (RFC 5321 section 4.1.1.4).
        """
        if not server.session.host_name:
            return self._needHelo(server)
        envelope = server.envelope
        recipients = envelope.rcpt_tos
        # aiosmtpd's order and text, even without a MAIL.
        if not recipients:
            server.reply("503 Error: need RCPT command")
            return
        if arg:
            server.reply("501 Syntax: DATA")
            return
        refused = dataRefusal(server, envelope)
        if refused is not None:
            server.reply(refused)
            return
        errors = max(len(recipients), 1) if self.repliesPerRecipient else 1
        config = server.config
        piece = None
        if "DATA_CHUNK" in config.hooks:

            def piece(server: ServerCore, data: bytes) -> Any:
                return sendPiece(server, envelope, data)

        server.setMode(MessageData(config, self.messageReceived, errors, piece))
        server.reply("354 End data with <CR><LF>.<CR><LF>")

    def messageReceived(self, server: ServerCore, receiver: DataReceiver) -> Any:
        """
        Check the message that DATA just ended and hand it on.
        """
        error = receiver.error
        envelope = server.envelope
        if error is not None:
            abortStream(server, envelope, error)
            count = len(envelope.rcpt_tos)
            status = _DATA_ERRORS[error]
            return self.endMessage(server, envelope, receiver.size, status, count)
        if "DATA_CHUNK" in server.config.hooks:
            return self.streamComplete(
                server, envelope, receiver.content(), receiver.size
            )
        return self.messageComplete(server, receiver.content(), receiver.size)

    def streamComplete(
        self, server: ServerCore, envelope: Any, rest: bytes, size: int
    ) -> Any:
        """
        Hand the last piece of a message to a handler that takes messages in
        pieces, then end it with C{handle_DATA_END}, whose result is the
        reply (see L{twisted_smtpd._streaming}): the end of the message for
        DATA and for BDAT's last chunk alike.

        @param rest: What is left of the message.
        @param size: Its size, for the transaction log.
        """
        recipients = len(envelope.rcpt_tos)

        def end(ignored: Any = None) -> Any:
            return endStream(
                server,
                envelope,
                lambda status: self.endMessage(
                    server, envelope, size, status, recipients
                ),
            )

        pending = sendPiece(server, envelope, rest)
        return end() if pending is None else pending.addCallback(end)

    def messageComplete(self, server: ServerCore, original: bytes, size: int) -> Any:
        """
        Hand a complete message to the handler, as C{envelope.content}
        decoded as C{decode_data} says, and reply as it decides: the end of
        the message for DATA and for BDAT's last chunk alike.

        @param original: The message as received.
        @param size: Its size, for the transaction log.
        """
        envelope = server.envelope
        recipients = len(envelope.rcpt_tos)
        config = server.config
        content = _decoded(config, original) if config.decode_data else original
        if content is None:
            status = "500 Error: strict ASCII mode"
            return self.endMessage(server, envelope, size, status, recipients)
        envelope.content = content
        envelope.original_content = original
        return server.hook(
            "DATA",
            lambda status: self.endMessage(server, envelope, size, status, recipients),
        )

    def endMessage(
        self, server: ServerCore, envelope: Any, size: int, status: Any, recipients: int
    ) -> None:
        """
        Reply to the end of the data (or a BDAT chunk too big), end the
        transaction and log it with C{size}. The replies come first: if they
        cannot be made, the error path logs the transaction as aborted
        instead. However many replies there are (C{recipients}, for LMTP),
        the end of the data counts once towards C{hard_error_limit} (see
        L{dataAnswered}).
        """
        if status is None:
            status = "250 OK"
        if status.__class__ is str and status[:1] == "2":
            # Delivered (the common case): no reply of it counts anyway.
            self.dataReplies(server, status, recipients)
            server.transactionEnded(envelope, size, status[:3])
            forgive(server)
            return
        server.uncounted(self.dataReplies, server, status, recipients)
        codes = codeOf(status)
        server.transactionEnded(envelope, size, codes)
        dataAnswered(server, codes)

    def dataReplies(self, server: ServerCore, status: Any, recipients: int) -> None:
        """
        Send the reply to the end of the data. A list of statuses (one per
        recipient, as for LMTP) becomes its first failure, or its first
        status when all succeeded, since SMTP has one reply.
        """
        if isinstance(status, (list, tuple)):
            statuses = ["250 OK" if s is None else s for s in status] or ["250 OK"]
            failures = [s for s in statuses if codeOf(s)[:1] != "2"]
            status = (failures or statuses)[0]
        server.reply(status)
