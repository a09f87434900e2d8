# -*- test-case-name: tests.test_smtp -*-
"""
L{SMTP}: the connection of L{twisted_smtpd._connection} with the commands
of its command groups (which the command-line mode of
L{twisted_smtpd._lines} runs) and aiosmtpd's attributes.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred

from twisted_smtpd._auth import auth_mechanism
from twisted_smtpd._authcommand import Auth
from twisted_smtpd._authmechanisms import cramMD5, login, plain
from twisted_smtpd._basiccommands import BasicCommands
from twisted_smtpd._chunking import Chunking, chunksInProgress
from twisted_smtpd._connection import Connection
from twisted_smtpd._interfaces import InputMode
from twisted_smtpd._starttls import StartTLS
from twisted_smtpd._transaction import Transaction
from twisted_smtpd._verbs import CommandGroup, installCommands

_AUTH = Auth()
_TRANSACTION = Transaction()


class SMTP(Connection):
    """
    An ESMTP server for one connection (RFC 5321), driven by a handler.

    The handler is any object; the server calls its optional hooks
    C{handle_HELO}, C{handle_EHLO}, C{handle_NOOP}, C{handle_QUIT},
    C{handle_VRFY}, C{handle_MAIL}, C{handle_RCPT}, C{handle_RSET},
    C{handle_DATA} and C{handle_exception} with aiosmtpd's signatures. A hook
    may return a reply, C{None} for the default reply, a L{Deferred} or a
    coroutine; while one is pending, reading pauses, so that pipelined
    commands are answered in order.

    Commands are methods named C{smtp_<VERB>} taking the argument (a C{str},
    or C{None}); a subclass adds or replaces commands by defining more, and
    gives them HELP text with L{syntax <twisted_smtpd.syntax>}. The
    built-in ones come from the L{command groups <commandGroups>} and
    return an awaitable, so that an override may extend one with
    C{await super().smtp_<VERB>(arg)} (or C{return
    super().smtp_<VERB>(arg)}).

    @ivar event_handler: The handler.
    @ivar session: The L{Session <twisted_smtpd.Session>} of this
        connection.
    @ivar envelope: The L{Envelope <twisted_smtpd.Envelope>} of the current
        transaction.
    """

    #: aiosmtpd's challenges for AUTH LOGIN.
    AuthLoginUsernameChallenge = "User Name\x00"
    AuthLoginPasswordChallenge = "Password\x00"

    #: The greeting that transaction commands want first ("send HELO
    #: first").
    helloVerb = "HELO"

    #: The commands allowed before STARTTLS when it is required.
    beforeTLSVerbs = frozenset(["NOOP", "EHLO", "STARTTLS", "QUIT"])

    #: Unknown verbs that do not count towards C{max_unknown_commands}.
    uncountedVerbs: frozenset[str] = frozenset()

    #: The groups of commands this server speaks, in the order of their
    #: EHLO keywords; see L{twisted_smtpd._verbs}.
    commandGroups: tuple[CommandGroup, ...] = (
        _TRANSACTION,
        Chunking(_TRANSACTION),
        StartTLS(),
        _AUTH,
        BasicCommands(),
    )

    #: Whether C{handle_STARTTLS} refused the session: every command but
    #: QUIT is refused with C{554}.
    securityRefused = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "commandGroups" in vars(cls):
            installCommands(cls, cls.commandGroups)

    # aiosmtpd's public attributes, read from the shared configuration.

    @property
    def hostname(self) -> str:
        """
        The name this server gives in its greeting and HELO/EHLO replies.
        """
        return self.config.hostname

    @property
    def data_size_limit(self) -> int | None:
        """
        The largest message accepted, or C{None} for no limit.
        """
        return self.config.data_size_limit

    @property
    def enable_SMTPUTF8(self) -> bool:
        """
        Whether SMTPUTF8 (RFC 6531) is offered.
        """
        return self.config.enable_SMTPUTF8

    @property
    def loop(self) -> Any:
        """
        The asyncio loop under Twisted's asyncio reactor, else the reactor.
        """
        return self.config.asyncioLoop or self.config.reactor

    @property
    def tls_context(self) -> Any:
        """
        The TLS options STARTTLS uses, or C{None}.
        """
        return self.config.tls_context

    @property
    def require_starttls(self) -> bool:
        """
        Whether commands other than EHLO, NOOP, STARTTLS and QUIT wait for
        TLS.
        """
        return self.config.require_starttls

    def ehloKeywords(self) -> list[str]:
        """
        The EHLO keywords offered now, from every command group.

        They depend on the options, the server class and whether TLS is
        active (see L{CommandGroup.keywords}), so each combination is worked
        out once per configuration.
        """
        key = ("ehlo", type(self), self._tlsActive)
        keywords = self.config.memo.get(key)
        if keywords is None:
            keywords = []
            for group in self.commandGroups:
                keywords.extend(group.keywords(self))
            keywords = self.config.memo[key] = tuple(keywords)
        return list(keywords)

    @property
    def inputMode(self) -> InputMode:
        """
        What the connection reads next: commands, message data, nothing
        while a command or hook works...
        """
        return self._mode

    @property
    def workInProgress(self) -> bool:
        """
        Whether a command or hook works, or the data of a message is being
        received (after DATA, or BDAT chunks with the last one to come):
        what a graceful shutdown lets end before it closes the session.
        """
        return self._pending or self._mode.streamed or chunksInProgress(self)

    def refuseAll(self) -> None:
        """
        Refuse every command but QUIT from now on, with C{554}.
        """
        self.securityRefused = True

    # AUTH (RFC 4954), with aiosmtpd's names.

    def challenge_auth(
        self,
        challenge: str | bytes,
        encode_to_b64: bool = True,
        log_client_response: bool = False,
    ) -> Deferred | Any:
        """
        Send a C{334} challenge and wait for the client's answer.

        @param challenge: The challenge, base64-encoded here unless
            C{encode_to_b64} is false.
        @param log_client_response: Ignored: client responses are never
            logged, since they carry credentials.
        @return: An awaitable (a L{Deferred}, or an asyncio future under the
            asyncio reactor) giving the decoded answer, or
            L{MISSING <twisted_smtpd.MISSING>} after replying 501 when the
            client cancelled (C{*}) or sent bad base64.
        """
        return _AUTH.challenge(self, challenge, encode_to_b64)

    async def auth_PLAIN(self, server: Any, args: list[str]) -> Any:
        """
        AUTH PLAIN (RFC 4616), with or without an initial response.
        """
        return await plain(self, args)

    async def auth_LOGIN(self, server: Any, args: list[str]) -> Any:
        """
        AUTH LOGIN (draft-murchison-sasl-login), with aiosmtpd's challenges.
        """
        return await login(self, args)

    @auth_mechanism("CRAM-MD5")
    async def auth_CRAM__MD5(self, server: Any, args: list[str]) -> Any:
        """
        AUTH CRAM-MD5 (RFC 2195), offered only when the portal's checker
        knows plaintext secrets.
        """
        return await cramMD5(self, args)


installCommands(SMTP, SMTP.commandGroups)
