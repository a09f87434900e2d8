"""
twisted_smtpd: an SMTP and LMTP receiving server for Twisted.

Handlers written for aiosmtpd 1.4.6 run unchanged; hooks may also return
plain values or L{Deferred}s.
"""

from twisted_smtpd._auth import (
    MISSING,
    AuthenticatedUser,
    AuthResult,
    IAuthenticatedUser,
    LoginPassword,
    auth_mechanism,
)
from twisted_smtpd._config import DATA_SIZE_DEFAULT
from twisted_smtpd._factory import SMTPFactory
from twisted_smtpd._lmtp import LMTP
from twisted_smtpd._protocol import SMTP, __version__, syntax
from twisted_smtpd._proxy import AF, PROTO, V2_CMD, ProxyData, ProxyTLV
from twisted_smtpd._session import Envelope, Session
from twisted_smtpd._tls import tlsOptionsFromFiles

__all__ = [
    "AF",
    "PROTO",
    "V2_CMD",
    "ProxyData",
    "ProxyTLV",
    "MISSING",
    "AuthResult",
    "AuthenticatedUser",
    "IAuthenticatedUser",
    "LoginPassword",
    "auth_mechanism",
    "tlsOptionsFromFiles",
    "DATA_SIZE_DEFAULT",
    "LMTP",
    "SMTP",
    "SMTPFactory",
    "Envelope",
    "Session",
    "syntax",
    "__version__",
]
