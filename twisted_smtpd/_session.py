# -*- test-case-name: tests.test_session -*-
"""
Per-connection L{Session} and per-transaction L{Envelope} state.

Both are plain objects with the attribute names and shapes aiosmtpd 1.4.6
documents, so that handlers written for aiosmtpd read them unchanged.
Handlers may add attributes of their own to either object.
"""

from __future__ import annotations

import warnings
from typing import Any


class Session:
    """
    What the server knows about one client connection.

    A session lives as long as the connection, except that a successful
    STARTTLS replaces it (RFC 3207 section 4.2) while carrying over the
    facts of the connection itself (C{peer}, C{proxy_data}).

    @ivar peer: The client's address as a C{(host, port)} tuple for TCP
        connections (the address from the PROXY header when one was read),
        or the socket path as a C{str} for UNIX connections.
    @ivar ssl: C{None} while the connection is in plaintext; a C{dict} with
        C{"peercert"}, C{"cipher"} and C{"protocol"} once TLS is active.
    @ivar host_name: The argument of the last HELO/EHLO/LHLO, or C{None}
        when the client has not greeted yet.
    @ivar extended_smtp: C{True} after EHLO or LHLO.
    @ivar loop: The asyncio event loop under Twisted's asyncio reactor,
        otherwise the Twisted reactor.
    @ivar proxy_data: The parsed PROXY-protocol header, or C{None}.
    @ivar authenticated: C{None} until AUTH is tried, then C{True} or
        C{False}.
    @ivar auth_data: What the authenticator returned as C{auth_data} (a
        L{LoginPassword} for the built-in mechanisms, or a cred avatar).
    @ivar transport: The Twisted transport of the connection.
    """

    # The attributes' values before they are set: class attributes, so that
    # making a session for every connection costs little.
    peer: Any = None
    ssl: dict[str, Any] | None = None
    host_name: str | None = None
    extended_smtp = False
    proxy_data: Any = None
    authenticated: bool | None = None
    auth_data: Any = None
    _login_data: Any = None
    transport: Any = None

    def __init__(self, loop: Any = None) -> None:
        self.loop = loop

    @property
    def login_data(self) -> Any:
        """
        Deprecated in aiosmtpd; use C{auth_data}.
        """
        warnings.warn(
            "Session.login_data is deprecated; use Session.auth_data",
            DeprecationWarning,
            stacklevel=2,
        )
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        warnings.warn(
            "Session.login_data is deprecated; use Session.auth_data",
            DeprecationWarning,
            stacklevel=2,
        )
        self._login_data = value


class Envelope:
    """
    One mail transaction: the sender, the recipients and the content.

    A fresh envelope is made on HELO/EHLO/LHLO, RSET, STARTTLS, after every
    completed DATA (accepted or refused) and after an error that aborts the
    transaction.

    @ivar mail_from: The reverse-path without angle brackets, C{"<>"} for the
        null reverse-path (as aiosmtpd stores it), or C{None} before MAIL.
    @ivar mail_options: The MAIL parameters as upper-cased C{"KEY=VALUE"} or
        C{"KEY"} strings, in the order given.
    @ivar smtp_utf8: C{True} when MAIL carried the C{SMTPUTF8} parameter.
    @ivar rcpt_tos: The accepted forward-paths, in RCPT order.
    @ivar rcpt_options: The RCPT parameters, as for C{mail_options}.
    @ivar content: The message after dot-unstuffing: C{bytes}, or C{str}
        when the server was made with C{decode_data=True}.
    @ivar original_content: The message as C{bytes}, always.
    """

    def __init__(self) -> None:
        self.mail_from: str | None = None
        self.mail_options: list[str] = []
        self.smtp_utf8 = False
        self.content: bytes | str | None = None
        self.original_content: bytes | None = None
        self.rcpt_tos: list[str] = []
        self.rcpt_options: list[str] = []
