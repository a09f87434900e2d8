# -*- test-case-name: tests.test_auth -*-
"""
The AUTH command (RFC 4954) and its built-in SASL mechanisms, as a part of
L{twisted_smtpd.SMTP}.

The methods rely on what L{SMTP} provides: C{_reply}, C{_flush},
C{_hook}, C{_updateReading}, C{_close}, the session and the envelope.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from twisted.cred.credentials import CramMD5Credentials, UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from twisted_smtpd._auth import (
    MISSING,
    AuthResult,
    IAuthenticatedUser,
    LoginPassword,
    auth_mechanism,
    mechanismName,
    portalSupportsCramMD5,
)
from twisted_smtpd._hooks import settle
from twisted_smtpd._syntax import syntax

log = Logger(namespace="twisted_smtpd.server")

_AUTH_OK = "235 2.7.0 Authentication successful"
_AUTH_INVALID = "535 5.7.8 Authentication credentials invalid"

_BUILTIN_MECHANISMS = ("auth_PLAIN", "auth_LOGIN", "auth_CRAM__MD5")


class AuthCommands:
    """
    AUTH with PLAIN, LOGIN and CRAM-MD5, the handler's own C{auth_<NAME>}
    mechanisms, and the credential sources: an authenticator, the
    deprecated C{auth_callback}, or a twisted.cred portal.
    """

    def _authAllowedHere(self) -> bool:
        """
        Whether AUTH may be used on this connection as it is now.
        """
        return self._tlsActive or not self._config.auth_require_tls

    def _mechanisms(self) -> dict[str, Callable[..., Any]]:
        """
        The AUTH mechanisms offered, by name: the server's built-in ones,
        overridden or added to by the handler's C{auth_<NAME>} methods, less
        the excluded ones. None are offered without a credential source,
        unless the handler brings its own mechanisms or C{handle_AUTH}.
        """
        config = self._config
        found: dict[str, Callable[..., Any]] = {}
        if config.authenticator or config.auth_callback or config.portal:
            for name in _BUILTIN_MECHANISMS:
                found[mechanismName(name, None)] = getattr(self, name)
            if config.portal is None or not portalSupportsCramMD5(config.portal):
                del found["CRAM-MD5"]
        found.update(config.handlerMechanisms)
        for name in config.auth_exclude_mechanism:
            found.pop(name, None)
        return found

    @property
    def _offersAuth(self) -> bool:
        return bool(self._mechanisms()) or "AUTH" in self._hooks

    @syntax("AUTH <mechanism>", when="_offersAuth")
    def smtp_AUTH(self, arg: str | None) -> Any:
        """
        Authenticate with a SASL mechanism (RFC 4954 section 4).

        After C{auth_failure_limit} failures, a further AUTH closes the
        connection with 421, which stops password guessing. A client
        that tried each mechanism it knows once, as C{smtplib} and swaks do,
        still gets each 535 and can end with QUIT.
        """
        if self._authFailures >= self._config.auth_failure_limit:
            self._close("421 4.7.0 Too many failed authentication attempts")
            return None
        session = self.session
        if not session.extended_smtp:
            self._reply("503 Error: send EHLO first")
            return None
        if not self._authAllowedHere():
            self._reply(
                "538 5.7.11 Encryption required for requested authentication mechanism"
            )
            return None
        if session.authenticated:
            self._reply("503 Already authenticated")
            return None
        if self.envelope.mail_from is not None:
            self._reply("503 5.5.1 Error: AUTH not allowed during a mail transaction")
            return None
        args = arg.split() if arg else []
        if not args:
            self._reply("501 Not enough value")
            return None
        if len(args) > 2:
            self._reply("501 Too many values")
            return None
        args[0] = args[0].upper()
        if "AUTH" in self._hooks:
            return self._hook(
                "AUTH", lambda status: self._handledAuth(status, args), args
            )
        return self._runMechanism(args)

    def _handledAuth(self, status: Any, args: list[str]) -> Any:
        """
        Reply for C{handle_AUTH}: its status; for C{None}, 235 or 535 as the
        hook set C{session.authenticated}; for L{MISSING}, what the
        mechanism decides, as in aiosmtpd.
        """
        if status is MISSING:
            return self._runMechanism(args)
        if status is None:
            if self.session.authenticated:
                status = _AUTH_OK
            else:
                self._reply(_AUTH_INVALID)
                return self._countFailure()
        self._reply(status)
        return None

    def _runMechanism(self, args: list[str]) -> Any:
        """
        Run the mechanism named by C{args[0]} and act on its decision.
        """
        mechanism = self._mechanisms().get(args[0])
        if mechanism is None:
            self._reply("504 5.5.4 Unrecognized authentication type")
            return None
        self._lastReply = None
        self._inAuth = True
        result = settle(mechanism(self, args), self._config.asyncioLoop)
        if isinstance(result, Deferred):
            return result.addCallback(self._authDone, args[0])
        return self._authDone(result, args[0])

    def _authDone(self, result: Any, mechanism: str) -> None:
        """
        Act on what a mechanism decided, making sure the client gets exactly
        one final reply (aiosmtpd sends none when a result says the failure
        was "handled" but no reply was sent).
        """
        session = self.session
        answered = self._answered()
        self._inAuth = False
        self._lastReply = None
        if hasattr(result, "success") and hasattr(result, "handled"):
            if result.success:
                session.authenticated = True
                session.auth_data = result.auth_data
                session._login_data = getattr(result.auth_data, "login", None)
                log.info(
                    "{peer} authenticated with {mechanism}",
                    peer=session.peer,
                    mechanism=mechanism,
                )
                self._reply(result.message or _AUTH_OK)
                return None
            if result.message:
                self._reply(result.message)
            elif not (result.handled and answered):
                self._reply(_AUTH_INVALID)
        elif result is None or result is MISSING or result is False:
            if not answered:
                self._reply(_AUTH_INVALID)
        else:
            # aiosmtpd's legacy: any other value means success, with the
            # value as the login data.
            session.authenticated = True
            session.auth_data = result
            session._login_data = result
            self._reply(_AUTH_OK)
            return None
        session.authenticated = False
        return self._countFailure()

    def _answered(self) -> bool:
        """
        Whether a final reply was sent since the AUTH command came.
        """
        last = self._lastReply
        return last is not None and not last.startswith(b"334")

    def _countFailure(self) -> None:
        """
        Count a failed AUTH; see L{smtp_AUTH} for what the count does.
        """
        self._authFailures += 1
        log.info("{peer} failed to authenticate", peer=self.session.peer)

    def challenge_auth(
        self,
        challenge: str | bytes,
        encode_to_b64: bool = True,
        log_client_response: bool = False,
    ) -> Deferred:
        """
        Send a C{334} challenge and wait for the client's answer.

        @param challenge: The challenge, base64-encoded here unless
            C{encode_to_b64} is false.
        @param log_client_response: Ignored: client responses are never
            logged, since they carry credentials.
        @return: An awaitable (a L{Deferred}, or an asyncio future under the
            asyncio reactor) giving the decoded answer, or
            L{MISSING} after replying 501 when the client cancelled (C{*}) or
            sent bad base64.
        """
        if isinstance(challenge, str):
            challenge = challenge.encode("utf-8")
        if encode_to_b64:
            challenge = base64.b64encode(challenge)
        self._reply(b"334 " + challenge)
        self._flush()
        waiter = self._authWaiter = Deferred()
        self._waitingChanged()
        return self._awaitable(waiter)

    def _awaitable(self, d: Deferred) -> Any:
        """
        Make C{d} awaitable where hooks run: as is when Twisted drives
        coroutines, as an asyncio future when they run as asyncio tasks
        (which cannot wait on a L{Deferred}).
        """
        loop = self._config.asyncioLoop
        return d if loop is None else d.asFuture(loop)

    def _authResponse(self, line: bytes) -> None:
        """
        Deliver the client's answer to an AUTH challenge.
        """
        waiter, self._authWaiter = self._authWaiter, None
        if line.endswith(b"\r"):
            line = line[:-1]
        if line == b"*":
            self._reply("501 5.7.0 Auth aborted")
            waiter.callback(MISSING)
        else:
            waiter.callback(self._decodeResponse(line))
        # The mechanism may now wait for something else than the client:
        # stop reading and the idle clock until it is done.
        self._waitingChanged()

    def _decodeResponse(self, response: str | bytes) -> Any:
        """
        Decode a base64 SASL response, C{=} being an empty one (RFC 4954
        section 4).

        @return: The bytes, or L{MISSING} after replying 501 to bad base64.
        """
        if response in ("=", b"="):
            return b""
        try:
            return base64.b64decode(response, validate=True)
        except ValueError:
            self._reply("501 5.5.2 Can't decode base64")
            return MISSING

    async def _checkLogin(self, mechanism: str, login: LoginPassword) -> Any:
        """
        Check a user name and password with the configured source.
        """
        config = self._config
        if login.authzid and login.authzid != login.login:
            if not getattr(config.authenticator, "accepts_authzid", False):
                return AuthResult(success=False, handled=False)
        if config.portal is not None:
            return await self._portalLogin(
                UsernamePassword(login.login, login.password)
            )
        if config.auth_callback is not None:
            ok = config.auth_callback(mechanism, login.login, login.password)
            return AuthResult(success=bool(ok), handled=False, auth_data=login)
        result = config.authenticator(
            self, self.session, self.envelope, mechanism, login
        )
        result = settle(result, config.asyncioLoop)
        if isinstance(result, Deferred):
            result = await self._awaitable(result)
        return result

    async def _portalLogin(self, credentials: Any) -> AuthResult:
        """
        Log in through the twisted.cred portal; remember the logout.
        """
        try:
            _, avatar, logout = await self._awaitable(
                self._config.portal.login(credentials, None, IAuthenticatedUser)
            )
        except UnauthorizedLogin:
            return AuthResult(success=False, handled=False)
        except Exception:
            log.failure("{peer} credential check failed", peer=self.session.peer)
            return AuthResult(
                success=False,
                handled=False,
                message="454 4.7.0 Temporary authentication failure",
            )
        self._logout = logout
        return AuthResult(success=True, auth_data=avatar)

    async def auth_PLAIN(self, server: Any, args: list[str]) -> Any:
        """
        AUTH PLAIN (RFC 4616), with or without an initial response.
        """
        if len(args) == 2:
            blob = self._decodeResponse(args[1])
        else:
            blob = await self.challenge_auth("", encode_to_b64=False)
        if blob is MISSING:
            return None
        parts = blob.split(b"\0")
        if len(parts) != 3:
            self._reply("501 5.5.2 Can't split auth value")
            return None
        authzid, login, password = parts
        return await self._checkLogin(
            "PLAIN", LoginPassword(login, password, authzid or None)
        )

    async def auth_LOGIN(self, server: Any, args: list[str]) -> Any:
        """
        AUTH LOGIN (draft-murchison-sasl-login), with aiosmtpd's challenges.
        """
        if len(args) == 2:
            login = self._decodeResponse(args[1])
        else:
            login = await self.challenge_auth(self.AuthLoginUsernameChallenge)
        if login is MISSING:
            return None
        password = await self.challenge_auth(self.AuthLoginPasswordChallenge)
        if password is MISSING:
            return None
        return await self._checkLogin("LOGIN", LoginPassword(login, password))

    @auth_mechanism("CRAM-MD5")
    async def auth_CRAM__MD5(self, server: Any, args: list[str]) -> Any:
        """
        AUTH CRAM-MD5 (RFC 2195), offered only when the portal's checker
        knows plaintext secrets.
        """
        if len(args) == 2:
            self._reply("501 5.5.2 CRAM-MD5 takes no initial response")
            return None
        credentials = CramMD5Credentials(self._config.hostname.encode("idna"))
        response = await self.challenge_auth(credentials.getChallenge())
        if response is MISSING:
            return None
        try:
            credentials.setResponse(response)
        except Exception:
            credentials = None
        if credentials is None or not credentials.username or not credentials.response:
            self._reply("501 5.5.2 Malformed CRAM-MD5 response")
            return None
        return await self._portalLogin(credentials)
