# -*- test-case-name: tests.test_auth -*-
"""
The pieces of SMTP AUTH (RFC 4954) that are not the protocol itself: the
aiosmtpd-compatible result types, the mechanism decorator, and the bridge
to L{twisted.cred}.
"""

from __future__ import annotations

import importlib.util
from typing import Any, NamedTuple

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernameHashedPassword
from twisted.cred.portal import IRealm, Portal
from zope.interface import Attribute, Interface, implementer


class _Missing:
    """
    The type of L{MISSING} when aiosmtpd is not installed.
    """

    def __repr__(self) -> str:
        return "MISSING"


def _sharedMissing() -> Any:
    """
    aiosmtpd's C{MISSING} when aiosmtpd is installed, else our own.

    Handlers written for aiosmtpd compare with C{aiosmtpd.smtp.MISSING} by
    identity, both for what C{challenge_auth} returns and for what they
    return themselves ("failed" from a mechanism, "go on" from
    C{handle_AUTH}); with two distinct sentinels, a mechanism refusing a
    login with aiosmtpd's C{MISSING} would have logged the client in. One
    object serves handlers written for either library.
    """
    if importlib.util.find_spec("aiosmtpd") is None:
        return _Missing()
    try:
        from aiosmtpd.smtp import MISSING as missing
    except Exception:
        return _Missing()
    return missing


#: What C{challenge_auth} returns when the client cancelled or sent garbage,
#: and what a mechanism may return for "failed". It is the very object
#: C{aiosmtpd.smtp.MISSING} when aiosmtpd is installed.
MISSING = _sharedMissing()


class AuthResult:
    """
    What an authenticator (or an C{auth_<MECH>} method) decides.

    @ivar success: Whether the client is now authenticated.
    @ivar handled: On failure, C{True} when the mechanism already sent its
        own reply; this server still makes sure the client gets a reply.
    @ivar message: The reply to send instead of the default 235/535.
    @ivar auth_data: What to keep in C{session.auth_data}; never shown in the
        C{repr}, since it often holds a password.
    """

    __slots__ = ("success", "handled", "message", "auth_data")

    def __init__(
        self,
        *,
        success: bool,
        handled: bool = True,
        message: str | None = None,
        auth_data: Any = None,
    ) -> None:
        self.success = success
        self.handled = handled
        self.message = message
        self.auth_data = auth_data

    def __repr__(self) -> str:
        return (
            f"AuthResult(success={self.success!r}, handled={self.handled!r},"
            f" message={self.message!r}, auth_data=...)"
        )


class _LoginPassword(NamedTuple):
    login: bytes
    password: bytes


class LoginPassword(_LoginPassword):
    """
    The user name and password given by AUTH PLAIN or LOGIN.

    It unpacks as C{(login, password)} like aiosmtpd's; C{authzid} is the
    authorization identity of AUTH PLAIN (RFC 4616), C{None} when none was
    given. Its C{str} and C{repr} hide the password.
    """

    def __new__(
        cls, login: bytes, password: bytes, authzid: bytes | None = None
    ) -> LoginPassword:
        self = super().__new__(cls, login, password)
        self.authzid = authzid
        return self

    def __repr__(self) -> str:
        return f"LoginPassword(login={self.login!r}, password=...)"

    __str__ = __repr__


def auth_mechanism(actual_name: str):
    """
    Name the AUTH mechanism an C{auth_*} method implements, when its name
    cannot say it (as aiosmtpd's decorator).

    @param actual_name: The mechanism's name, letters, digits, C{-} and
        C{_}.
    @raise ValueError: For a name that is not a valid SASL mechanism name.
    """
    name = actual_name.upper()
    if not name or any(not (c.isascii() and (c.isalnum() or c in "-_")) for c in name):
        raise ValueError(f"invalid AUTH mechanism name: {actual_name!r}")

    def decorator(method):
        method.__auth_mechanism_name__ = name
        return method

    return decorator


def mechanismName(attribute: str, method: Any) -> str:
    """
    The mechanism name of an C{auth_<NAME>} method: its decorated name, or
    the attribute name with C{__} read as C{-}.
    """
    return getattr(method, "__auth_mechanism_name__", None) or attribute[
        5:
    ].upper().replace("__", "-")


class IAuthenticatedUser(Interface):
    """
    The avatar interface of the twisted.cred bridge.

    When AUTH checks credentials through a L{Portal}, the server asks the
    realm for an avatar providing this interface and keeps it in
    C{session.auth_data}; it calls the logout function when the connection
    ends. A realm may return any object providing it, e.g. to carry the
    user's mailbox or quota.
    """

    avatarId = Attribute("The avatar ID the checker returned (usually bytes).")


@implementer(IAuthenticatedUser)
class AuthenticatedUser:
    """
    The avatar made by L{SimpleRealm}: just the avatar ID.
    """

    def __init__(self, avatarId: Any) -> None:
        self.avatarId = avatarId

    def __repr__(self) -> str:
        return f"AuthenticatedUser({self.avatarId!r})"


@implementer(IRealm)
class SimpleRealm:
    """
    A realm giving every authenticated user an L{AuthenticatedUser}.
    """

    def requestAvatar(self, avatarId: Any, mind: Any, *interfaces: Any):
        if IAuthenticatedUser not in interfaces:
            raise NotImplementedError("only IAuthenticatedUser is provided")
        return IAuthenticatedUser, AuthenticatedUser(avatarId), lambda: None


def asPortal(source: Any) -> Portal:
    """
    Accept a L{Portal} as it is, or put a credentials checker behind one
    with a L{SimpleRealm}.

    @raise TypeError: For anything else.
    """
    if isinstance(source, Portal):
        return source
    if ICredentialsChecker.providedBy(source):
        return Portal(SimpleRealm(), [source])
    raise TypeError(
        f"portal must be a twisted.cred Portal or credentials checker, not {source!r}"
    )


def portalSupportsCramMD5(portal: Portal) -> bool:
    """
    Whether a checker of C{portal} can verify CRAM-MD5 responses, which
    needs the plaintext secret (e.g. C{FilePasswordDB(hash=None)}).
    """
    return IUsernameHashedPassword in portal.listCredentialsInterfaces()
