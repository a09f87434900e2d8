# -*- test-case-name: tests.test_auth -*-
"""
The built-in SASL mechanisms of AUTH (RFC 4954): PLAIN (RFC 4616), LOGIN
and CRAM-MD5 (RFC 2195), and the credential sources they ask: an
C{authenticator}, the deprecated C{auth_callback}, or a twisted.cred portal.

Each mechanism is a coroutine taking the connection and the AUTH
arguments, as aiosmtpd's C{auth_<NAME>} methods do; L{twisted_smtpd.SMTP}
offers them as its C{auth_PLAIN}, C{auth_LOGIN} and C{auth_CRAM__MD5}.
"""

from __future__ import annotations

import base64
from typing import Any

from twisted.cred.credentials import CramMD5Credentials, UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from twisted_smtpd._auth import MISSING, AuthResult, IAuthenticatedUser, LoginPassword
from twisted_smtpd._hooks import settle

log = Logger(namespace="twisted_smtpd.server")


def decodeResponse(server: Any, response: str | bytes) -> Any:
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
        server.reply("501 5.5.2 Can't decode base64")
        return MISSING


async def checkLogin(server: Any, mechanism: str, login: LoginPassword) -> Any:
    """
    Check a user name and password with the configured source.
    """
    config = server.config
    if login.authzid and login.authzid != login.login:
        if not getattr(config.authenticator, "accepts_authzid", False):
            return AuthResult(success=False, handled=False)
    if config.portal is not None:
        return await portalLogin(server, UsernamePassword(login.login, login.password))
    if config.auth_callback is not None:
        ok = config.auth_callback(mechanism, login.login, login.password)
        return AuthResult(success=bool(ok), handled=False, auth_data=login)
    result = config.authenticator(
        server, server.session, server.envelope, mechanism, login
    )
    result = settle(result, config.asyncioLoop)
    if isinstance(result, Deferred):
        result = await server.awaitable(result)
    return result


async def portalLogin(server: Any, credentials: Any) -> AuthResult:
    """
    Log in through the twisted.cred portal; log out when the connection
    ends.
    """
    try:
        _, avatar, logout = await server.awaitable(
            server.config.portal.login(credentials, None, IAuthenticatedUser)
        )
    except UnauthorizedLogin:
        return AuthResult(success=False, handled=False)
    except Exception:
        log.failure("{peer} credential check failed", peer=server.session.peer)
        return AuthResult(
            success=False,
            handled=False,
            message="454 4.7.0 Temporary authentication failure",
        )
    server.atClose(logout)
    return AuthResult(success=True, auth_data=avatar)


async def plain(server: Any, args: list[str]) -> Any:
    """
    AUTH PLAIN (RFC 4616), with or without an initial response.
    """
    if len(args) == 2:
        blob = decodeResponse(server, args[1])
    else:
        blob = await server.challenge_auth("", encode_to_b64=False)
    if blob is MISSING:
        return None
    parts = blob.split(b"\0")
    if len(parts) != 3:
        server.reply("501 5.5.2 Can't split auth value")
        return None
    authzid, login, password = parts
    return await checkLogin(
        server, "PLAIN", LoginPassword(login, password, authzid or None)
    )


async def login(server: Any, args: list[str]) -> Any:
    """
    AUTH LOGIN (draft-murchison-sasl-login), with aiosmtpd's challenges.
    """
    if len(args) == 2:
        user = decodeResponse(server, args[1])
    else:
        user = await server.challenge_auth(server.AuthLoginUsernameChallenge)
    if user is MISSING:
        return None
    password = await server.challenge_auth(server.AuthLoginPasswordChallenge)
    if password is MISSING:
        return None
    return await checkLogin(server, "LOGIN", LoginPassword(user, password))


async def cramMD5(server: Any, args: list[str]) -> Any:
    """
    AUTH CRAM-MD5 (RFC 2195), offered only when the portal's checker knows
    plaintext secrets.
    """
    if len(args) == 2:
        server.reply("501 5.5.2 CRAM-MD5 takes no initial response")
        return None
    credentials = CramMD5Credentials(server.config.hostname.encode("idna"))
    response = await server.challenge_auth(credentials.getChallenge())
    if response is MISSING:
        return None
    try:
        credentials.setResponse(response)
    except Exception:
        credentials = None
    if credentials is None or not credentials.username or not credentials.response:
        server.reply("501 5.5.2 Malformed CRAM-MD5 response")
        return None
    return await portalLogin(server, credentials)
