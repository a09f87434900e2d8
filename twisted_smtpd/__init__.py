"""
twisted_smtpd: an SMTP and LMTP receiving server for Twisted.

Handlers written for aiosmtpd 1.4.6 run unchanged; hooks may also return
plain values or L{Deferred}s.
"""

__version__ = "0.1.0"

from twisted_smtpd._auth import (  # noqa: E402
    MISSING,
    AuthenticatedUser,
    AuthResult,
    IAuthenticatedUser,
    LoginPassword,
    auth_mechanism,
)
from twisted_smtpd._config import DATA_SIZE_DEFAULT  # noqa: E402
from twisted_smtpd._factory import SMTPFactory  # noqa: E402
from twisted_smtpd._lmtp import LMTP  # noqa: E402
from twisted_smtpd._proxydata import AF, PROTO, V2_CMD, ProxyData, ProxyTLV  # noqa: E402
from twisted_smtpd._session import Envelope, Session  # noqa: E402
from twisted_smtpd._smtp import SMTP  # noqa: E402
from twisted_smtpd._syntax import syntax  # noqa: E402
from twisted_smtpd._tls import tlsOptionsFromFiles  # noqa: E402

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
