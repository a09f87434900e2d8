# -*- test-case-name: tests.test_session -*-
"""
Per-connection L{Session} and per-transaction L{Envelope} state.

Both are plain objects with the attribute names and shapes aiosmtpd 1.4.6
documents, so that handlers written for aiosmtpd read them unchanged.
Handlers may add attributes of their own to either object.
"""

from __future__ import annotations

import warnings
from types import MappingProxyType
from typing import Any

_NONE: Any = MappingProxyType({})


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
    @ivar mail_parameters: The MAIL parameters by keyword (upper case),
        with their values as sent (C{None} for a parameter without one):
        unlike C{mail_options}, not upper-cased, and with the parameters a
        handler accepts by name (C{extra_mail_parameters}).
    @ivar dsn_ret: C{"FULL"} or C{"HDRS"} from MAIL's C{RET} (RFC 3461
        section 4.3), or C{None}.
    @ivar dsn_envid: MAIL's C{ENVID} (RFC 3461 section 4.4), decoded from
        xtext, or C{None}.
    @ivar requiretls: C{True} when MAIL carried C{REQUIRETLS} (RFC 8689):
        the message must travel on only over validated TLS.
    """

    # Set only by a transaction that uses them: class attributes, so that
    # a fresh envelope costs no more.
    mail_parameters: Any = _NONE
    dsn_ret: str | None = None
    dsn_envid: str | None = None
    requiretls = False
    _recipientFacts: Any = _NONE

    def __init__(self) -> None:
        self.mail_from: str | None = None
        self.mail_options: list[str] = []
        self.smtp_utf8 = False
        self.content: bytes | str | None = None
        self.original_content: bytes | None = None
        self.rcpt_tos: list[str] = []
        self.rcpt_options: list[str] = []

    def recordRecipient(self, index: int, parameters: Any, dsn: Any) -> None:
        """
        Record the parameters of the recipient at C{index} of C{rcpt_tos}
        (see L{rcpt_parameters} and L{rcpt_dsn}).
        """
        if self._recipientFacts is _NONE:
            self._recipientFacts = {}
        self._recipientFacts[index] = (parameters, dsn)

    @property
    def rcpt_parameters(self) -> list[Any]:
        """
        The RCPT parameters of each recipient, parallel to C{rcpt_tos}: a
        C{dict} of keyword (upper case) to value as sent, empty for a
        recipient without parameters. A new list on each reading.
        """
        facts = self._recipientFacts
        return [facts[i][0] if i in facts else {} for i in range(len(self.rcpt_tos))]

    @property
    def rcpt_dsn(self) -> list[Any]:
        """
        The DSN parameters of each recipient, parallel to C{rcpt_tos}: a
        L{RecipientDSN <twisted_smtpd._dsn.RecipientDSN>} (C{notify},
        C{orcpt}), or C{None} for a recipient without C{NOTIFY} or
        C{ORCPT}. A new list on each reading.
        """
        facts = self._recipientFacts
        return [facts.get(i, (None, None))[1] for i in range(len(self.rcpt_tos))]
