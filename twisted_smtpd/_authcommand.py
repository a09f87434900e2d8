# -*- test-case-name: tests.test_auth -*-
"""
The AUTH command (RFC 4954) as a command group: which mechanisms are
offered, the exchange of challenges and answers, the decision and its
reply, the limit on failures, and MAIL's C{AUTH=} parameter.

The mechanisms themselves are the server's C{auth_<NAME>} methods (see
L{twisted_smtpd._authmechanisms}) and the handler's own.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from twisted_smtpd._address import PathRefused
from twisted_smtpd._auth import MISSING, mechanismName, portalSupportsCramMD5
from twisted_smtpd._authmechanisms import decodeResponse
from twisted_smtpd._hooks import settle
from twisted_smtpd._interfaces import ServerCore
from twisted_smtpd._syntax import syntax
from twisted_smtpd._verbs import CommandGroup, Parameter, verb

log = Logger(namespace="twisted_smtpd.server")

_AUTH_OK = "235 2.7.0 Authentication successful"
_AUTH_INVALID = "535 5.7.8 Authentication credentials invalid"

_BUILTIN_MECHANISMS = ("auth_PLAIN", "auth_LOGIN", "auth_CRAM__MD5")

# RFC 3461 section 4 xtext: printable ASCII but "+" and "=", or "+" and two
# upper-case hex digits.
_XTEXT = re.compile(r"(?:[!-*,-<>-~]|\+[0-9A-F]{2})+\Z")


def allowedHere(server: ServerCore) -> bool:
    """
    Whether AUTH may be used on this connection as it is now.
    """
    return server.tlsActive or not server.config.auth_require_tls


def mechanisms(server: Any) -> dict[str, Callable[..., Any]]:
    """
    The AUTH mechanisms offered, by name: the server's built-in ones,
    overridden or added to by the handler's C{auth_<NAME>} methods, less
    the excluded ones. None are offered without a credential source, unless
    the handler brings its own mechanisms or C{handle_AUTH}.
    """
    config = server.config
    found: dict[str, Callable[..., Any]] = {}
    if config.authenticator or config.auth_callback or config.portal:
        for name in _BUILTIN_MECHANISMS:
            found[mechanismName(name, None)] = getattr(server, name)
        if config.portal is None or not portalSupportsCramMD5(config.portal):
            del found["CRAM-MD5"]
    found.update(config.handlerMechanisms)
    for name in config.auth_exclude_mechanism:
        found.pop(name, None)
    return found


def offered(server: Any) -> bool:
    """
    Whether the server offers AUTH at all.
    """
    return bool(mechanisms(server)) or "AUTH" in server.config.hooks


def _checkParameter(server: ServerCore, value: str | None) -> None:
    # RFC 4954 section 5: the mailbox that submitted the message.
    if value is None or _XTEXT.match(value) is None:
        raise PathRefused("501 5.5.4 Error: malformed AUTH parameter")


_MAIL_AUTH = Parameter(
    "AUTH",
    _checkParameter,
    offered=lambda server: offered(server) and allowedHere(server),
    # The value is a mailbox, kept as sent; one from a client that has not
    # authenticated counts as AUTH=<> (RFC 4954 section 5).
    stored=lambda server, key, value: (
        f"AUTH={value if server.session.authenticated else '<>'}"
    ),
    # RFC 4954 section 3: room for the AUTH= parameter.
    room=lambda server: 500 if offered(server) and allowedHere(server) else 0,
)


class _AuthState:
    """
    What AUTH remembers of one connection.

    @ivar failures: How many attempts had their credentials rejected.
    @ivar lastReply: The last reply sent during the current exchange.
    """

    __slots__ = ("failures", "lastReply")

    def __init__(self) -> None:
        self.failures = 0
        self.lastReply: bytes | None = None

    def watch(self, reply: bytes) -> None:
        self.lastReply = reply

    def answered(self) -> bool:
        """
        Whether a final reply was sent since the exchange began.
        """
        last = self.lastReply
        return last is not None and not last.startswith(b"334")


class Auth(CommandGroup):
    """
    AUTH with the server's and the handler's mechanisms, C{handle_AUTH},
    and the AUTH keyword and MAIL parameter.
    """

    mailParameters = (_MAIL_AUTH,)

    def keywords(self, server: ServerCore) -> list[str]:
        if not allowedHere(server):
            return []
        names = sorted(mechanisms(server))
        if not names and "AUTH" in server.config.hooks:
            # A handler with only handle_AUTH is taken to handle the usual
            # mechanisms, as aiosmtpd advertises them.
            names = ["LOGIN", "PLAIN"]
        return ["AUTH " + " ".join(names)] if names else []

    @verb("AUTH")
    @syntax("AUTH <mechanism>", when=offered)
    def auth(self, server: ServerCore, arg: str | None) -> Any:
        """
        Authenticate with a SASL mechanism (RFC 4954 section 4).

        After C{auth_failure_limit} failures, a further AUTH closes the
        connection with 421, which stops password guessing. A client that
        tried each mechanism it knows once, as C{smtplib} and swaks do,
        still gets each 535 and can end with QUIT.
        """
        state = server.stateOf(_AuthState, _AuthState)
        if state.failures >= server.config.auth_failure_limit:
            server.disconnect(
                "421 4.7.0 Too many failed authentication attempts", "limit"
            )
            return None
        refusal = self._refusal(server, arg)
        if refusal is not None:
            server.reply(refusal)
            return None
        args = arg.split()
        args[0] = args[0].upper()
        if "AUTH" in server.config.hooks:
            return server.hook(
                "AUTH", lambda status: self._handled(server, status, args), args
            )
        return self._runMechanism(server, args)

    def _refusal(self, server: ServerCore, arg: str | None) -> str | None:
        """
        The reply refusing AUTH in this state or with these arguments, if
        any.
        """
        session = server.session
        if not session.extended_smtp:
            return "503 Error: send EHLO first"
        if not allowedHere(server):
            return (
                "538 5.7.11 Encryption required for requested authentication mechanism"
            )
        if session.authenticated:
            return "503 Already authenticated"
        if server.envelope.mail_from is not None:
            return "503 5.5.1 Error: AUTH not allowed during a mail transaction"
        args = arg.split() if arg else []
        if not args:
            return "501 Not enough value"
        if len(args) > 2:
            return "501 Too many values"
        return None

    def _handled(self, server: ServerCore, status: Any, args: list[str]) -> Any:
        """
        Reply for C{handle_AUTH}: its status; for C{None}, 235 or 535 as the
        hook set C{session.authenticated}; for L{MISSING}, what the
        mechanism decides, as in aiosmtpd.
        """
        if status is MISSING:
            return self._runMechanism(server, args)
        if status is None:
            if server.session.authenticated:
                status = _AUTH_OK
            else:
                status = _AUTH_INVALID
        server.reply(status)
        self._countRejection(server, status)
        return None

    def _runMechanism(self, server: ServerCore, args: list[str]) -> Any:
        """
        Run the mechanism named by C{args[0]} and act on its decision.
        """
        mechanism = mechanisms(server).get(args[0])
        if mechanism is None:
            server.reply("504 5.5.4 Unrecognized authentication type")
            return None
        state = server.stateOf(_AuthState, _AuthState)
        state.lastReply = None
        server.watchReplies(state.watch)
        try:
            result = settle(mechanism(server, args), server.config.asyncioLoop)
        except BaseException:
            server.watchReplies(None)
            raise
        if isinstance(result, Deferred):
            result.addErrback(self._mechanismFailed, server)
            return result.addCallback(self._decided, server, args[0])
        return self._decided(result, server, args[0])

    def _mechanismFailed(self, failure: Any, server: ServerCore) -> Any:
        server.watchReplies(None)
        return failure

    def _decided(self, result: Any, server: ServerCore, mechanism: str) -> None:
        """
        Act on what a mechanism decided, making sure the client gets exactly
        one final reply: aiosmtpd sends none when a result says the failure
        was "handled" but no reply was sent, and a second one (535 after
        the 501 that cancelled the exchange) when a built-in mechanism
        returns a failure that is not "handled".
        """
        session = server.session
        state = server.stateOf(_AuthState, _AuthState)
        final = state.lastReply if state.answered() else None
        server.watchReplies(None)
        state.lastReply = None
        if hasattr(result, "success") and hasattr(result, "handled"):
            if result.success:
                data = result.auth_data
                self._succeeded(server, data, getattr(data, "login", None))
                log.info(
                    "{peer} authenticated with {mechanism}",
                    peer=session.peer,
                    mechanism=mechanism,
                )
                server.reply(result.message or _AUTH_OK)
                return None
            if final is None:
                final = result.message or _AUTH_INVALID
                server.reply(final)
        elif result is None or result is MISSING or result is False:
            if final is None:
                final = _AUTH_INVALID
                server.reply(final)
        else:
            # aiosmtpd's legacy: any other value means success, with the
            # value as the login data.
            self._succeeded(server, result, result)
            server.reply(_AUTH_OK)
            return None
        session.authenticated = False
        self._countRejection(server, final)
        return None

    def _succeeded(self, server: ServerCore, authData: Any, loginData: Any) -> None:
        session = server.session
        session.authenticated = True
        session.auth_data = authData
        # What aiosmtpd's deprecated login_data gives.
        session._login_data = loginData

    def _countRejection(self, server: ServerCore, reply: str | bytes) -> None:
        """
        Count a failed AUTH against C{auth_failure_limit} (see L{auth}) if
        C{reply}, the reply that ended it, rejected the credentials (535,
        RFC 4954 section 6). A cancelled exchange (C{*}), an answer that
        was not even well-formed (501) or a temporary failure (454) does
        not count: only password guessing is limited.
        """
        if reply[:3] not in ("535", b"535"):
            return
        server.stateOf(_AuthState, _AuthState).failures += 1
        log.info("{peer} failed to authenticate", peer=server.session.peer)

    def challenge(
        self, server: ServerCore, challenge: str | bytes, encode: bool = True
    ) -> Any:
        """
        Send a C{334} challenge and wait for the client's answer.

        @return: An awaitable giving the decoded answer, or L{MISSING} after
            replying 501 when the client cancelled (C{*}) or sent bad
            base64, or when the answer was too long or never came.
        """
        if isinstance(challenge, str):
            challenge = challenge.encode("utf-8")
        if encode:
            challenge = base64.b64encode(challenge)
        server.reply(b"334 " + challenge)
        answer = server.readAnswer().addCallback(self._decodeAnswer, server)
        return server.awaitable(answer)

    def _decodeAnswer(self, line: bytes | None, server: ServerCore) -> Any:
        if line is None:
            return MISSING
        if line == b"*":
            server.reply("501 5.7.0 Auth aborted")
            return MISSING
        return decodeResponse(server, line)
