# -*- test-case-name: tests.test_config -*-
"""
The server's configuration: validated once per factory, then frozen.

Every option of L{SMTP} is checked here, so that a bad value or a bad
combination fails when the server is made, with a L{TypeError} or
L{ValueError} that names the option, and never when a client connects.

Two values, in two steps:

    - L{SMTPOptions} holds the options as given, each with its default and
      its validators (small functions in L{twisted_smtpd._validate});
      making one checks them all, in the order of its fields.
    - L{Config} holds what the connections read: the options normalised
      (C{data_size_limit} C{0} becomes C{None}, C{command_call_limit} a
      mapping...) and what follows from them and from the handler (its
      hooks, the idle timer, whether commands are gated...). L{makeConfig}
      builds it from the keyword arguments of L{SMTP} and L{SMTPFactory}.
"""

from __future__ import annotations

import inspect
import socket
import warnings
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs
from attrs import field, fields_dict, frozen

from twisted_smtpd._auth import asPortal, mechanismName
from twisted_smtpd._clientlimit import exceptionNetworks
from twisted_smtpd._dsn import extraParameters
from twisted_smtpd._hooks import asyncioLoopOf
from twisted_smtpd._idle import IdleTimer
from twisted_smtpd._received import withReceivedHeader
from twisted_smtpd._validate import (
    boolean,
    callLimit,
    choice,
    credentials,
    domain,
    integer,
    names,
    needs,
    networkList,
    notAbove,
    oneLine,
    onlyOne,
    optionalCallable,
    parameterNames,
    required,
    seconds,
    tlsOptions,
    zeroOrAtLeast,
)

if TYPE_CHECKING:
    from twisted.cred.portal import Portal

#: aiosmtpd's default C{data_size_limit}: 32 MiB.
DATA_SIZE_DEFAULT = 33554432

#: The verbs whose hooks the server looks for on a handler.
HOOK_NAMES = (
    "HELO",
    "EHLO",
    "NOOP",
    "QUIT",
    "VRFY",
    "MAIL",
    "RCPT",
    "RSET",
    "DATA",
    "AUTH",
    "STARTTLS",
    "PROXY",
    "CONNECT",
    "DISCONNECT",
    "TIMEOUT",
    "DATA_CHUNK",
    "DATA_END",
    "DATA_ABORT",
)

#: The values of C{bare_newline}: what DATA does with a CR or LF that is
#: not part of a CRLF.
BARE_NEWLINE_POLICIES = ("reject", "allow")

_fqdn: str | None = None


def defaultHostname() -> str:
    """
    Return this machine's fully qualified domain name, looked up once per
    process (it can block on DNS) and then remembered.
    """
    global _fqdn
    if _fqdn is None:
        _fqdn = socket.getfqdn()
    return _fqdn


@frozen(kw_only=True)
class SMTPOptions:
    """
    The options of L{SMTP} as given, with aiosmtpd's defaults; making one
    validates them, field by field in this order (see L{SMTP} for what
    each means).
    """

    data_size_limit: int | None = field(
        default=DATA_SIZE_DEFAULT, validator=integer(0, allowNone=True)
    )
    enable_SMTPUTF8: bool = field(default=False, validator=boolean)
    decode_data: bool = field(default=False, validator=boolean)
    chunking: bool = field(default=True, validator=boolean)
    hostname: str | None = field(default=None, validator=[oneLine, domain])
    ident: str | None = field(default=None, validator=oneLine)
    timeout: float | None = field(
        default=300, validator=seconds("timeout must be positive, not {value!r}")
    )
    command_call_limit: int | dict[str, int] | None = field(
        default=None, validator=callLimit
    )
    line_length_limit: int = field(default=1001, validator=integer(100))
    command_size_limit: int = field(
        default=512, validator=[integer(64), notAbove("line_length_limit")]
    )
    local_part_limit: int = field(default=0, validator=integer(0))
    dsn: bool = field(default=True, validator=boolean)
    requiretls: bool = field(default=False, validator=[boolean, needs("tls_context")])
    extra_mail_parameters: Any = field(default=None, validator=parameterNames)
    extra_rcpt_parameters: Any = field(default=None, validator=parameterNames)
    bare_newline: str = field(default="reject", validator=choice(BARE_NEWLINE_POLICIES))
    max_unknown_commands: int = field(default=5, validator=integer(1))
    max_recipients: int = field(
        default=1000,
        validator=zeroOrAtLeast(
            100, "RFC 5321 section 4.5.3.1.8 requires room for 100 recipients"
        ),
    )
    hard_error_limit: int = field(default=20, validator=integer(0))
    junk_command_limit: int = field(default=100, validator=integer(0))
    enhanced_status_codes: bool = field(default=False, validator=boolean)
    require_starttls: bool = field(
        default=False, validator=[boolean, needs("tls_context")]
    )
    tls_context: Any = field(default=None, validator=tlsOptions)
    implicit_tls: bool = field(default=False, validator=[boolean, needs("tls_context")])
    tls_handshake_timeout: float = field(
        default=60,
        validator=[
            required,
            seconds("tls_handshake_timeout must be positive, not {value!r}"),
        ],
    )
    auth_required: bool = field(default=False, validator=boolean)
    auth_require_tls: bool = field(default=True, validator=boolean)
    auth_failure_limit: int = field(default=3, validator=integer(1))
    authenticator: Callable[..., Any] | None = field(
        default=None,
        validator=[
            onlyOne("authenticator", "auth_callback", "portal"),
            optionalCallable,
        ],
    )
    auth_callback: Callable[..., Any] | None = field(
        default=None, validator=optionalCallable
    )
    portal: Any = field(default=None, validator=credentials)
    auth_exclude_mechanism: Any = field(default=None, validator=names)
    proxy_protocol_timeout: float | None = field(
        default=None, validator=seconds("proxy_protocol_timeout must be positive")
    )
    proxy_protocol_trusted: Any = field(
        default=(), validator=[networkList, needs("proxy_protocol_timeout")]
    )
    received_header: bool = field(default=False, validator=boolean)


#: The names of the options of L{SMTP}.
OPTION_NAMES = frozenset(fields_dict(SMTPOptions))


@frozen(eq=False)
class Config:
    """
    The validated options shared by all connections of one factory, made
    by L{makeConfig}.

    The attributes named as options (C{data_size_limit}, C{hostname}...)
    hold their values, normalised: C{data_size_limit} is C{None} for no
    limit, C{hostname} is this machine's name when none was given,
    C{portal} a L{Portal <twisted.cred.portal.Portal>} even when a
    credentials checker was given, C{auth_exclude_mechanism} a set of
    names in upper case. Two configurations are equal only if they are
    the same object: one belongs to one factory.

    @ivar hooks: The handler's bound C{handle_<VERB>} methods by verb.
    @ivar ehloStyle: C{"new"} or C{"old"}: the form of C{handle_EHLO}
        (with or without the C{responses} argument).
    @ivar handlerMechanisms: The handler's C{auth_<NAME>} methods by
        mechanism name.
    @ivar idle: The one timer of the connections' idle timeouts, or C{None}
        without a C{timeout}.
    @ivar callLimits: The C{command_call_limit} by verb, C{"*"} for the
        other verbs, or C{None} for no limit.
    @ivar allowBareNewline: C{bare_newline} is C{"allow"}.
    @ivar eightBitMIME: Whether EHLO offers 8BITMIME.
    @ivar extraMailParameters: The L{Parameter
        <twisted_smtpd._verbs.Parameter>}s of C{extra_mail_parameters} by
        keyword.
    @ivar extraRcptParameters: The same for C{extra_rcpt_parameters}.
    @ivar chunking: Whether CHUNKING (BDAT, RFC 3030) is offered, unless the
        server class overrides C{smtp_DATA}.
    @ivar reactor: The reactor of the timers.
    @ivar asyncioLoop: The asyncio loop behind C{reactor}, or C{None}.
    @ivar gated: Whether some commands wait for STARTTLS or AUTH.
    @ivar proxy_protocol_trusted: The networks whose peers may send a PROXY
        header; empty for any peer.
    @ivar received_header: Whether a C{Received:} header field is added
        to each message before C{handle_DATA} sees it: the option, or the
        handler's C{received_header} attribute.
    @ivar memo: Values that follow from the configuration and the server
        class, worked out by the first connection that needs them (the
        greeting, the EHLO keywords) and kept for the others.
    """

    handler: Any
    hooks: Mapping[str, Callable[..., Any]]
    ehloStyle: str
    handlerMechanisms: Mapping[str, Callable[..., Any]]
    data_size_limit: int | None
    enable_SMTPUTF8: bool
    decode_data: bool
    hostname: str
    ident: str | None
    timeout: float | None
    idle: IdleTimer | None
    callLimits: Mapping[str, int] | None
    line_length_limit: int
    command_size_limit: int
    local_part_limit: int
    dsn: bool
    requiretls: bool
    extraMailParameters: Mapping[str, Any]
    extraRcptParameters: Mapping[str, Any]
    allowBareNewline: bool
    eightBitMIME: bool
    chunking: bool
    max_unknown_commands: int
    max_recipients: int
    hard_error_limit: int
    junk_command_limit: int
    proxy_protocol_timeout: float | None
    proxy_protocol_trusted: tuple[Any, ...]
    received_header: bool
    implicit_tls: bool
    tls_handshake_timeout: float
    enhanced_status_codes: bool
    reactor: Any
    asyncioLoop: Any
    gated: bool
    tls_context: Any
    require_starttls: bool
    authenticator: Callable[..., Any] | None
    auth_callback: Callable[..., Any] | None
    portal: Portal | None
    auth_required: bool
    auth_require_tls: bool
    auth_exclude_mechanism: frozenset[str]
    auth_failure_limit: int
    memo: dict[Any, Any] = field(factory=dict, repr=False)


#: The options that the configuration keeps as they were given; the others
#: are worked out by L{makeConfig}.
_KEPT_AS_GIVEN = frozenset(
    {field.name for field in attrs.fields(Config)}
    & {field.name for field in attrs.fields(SMTPOptions)}
) - {
    "data_size_limit",
    "hostname",
    "proxy_protocol_trusted",
    "received_header",
    "portal",
    "auth_exclude_mechanism",
}


def findHooks(handler: Any) -> tuple[dict[str, Any], str]:
    """
    Find the C{handle_<VERB>} methods of C{handler}, once.

    @return: The hooks by verb, and C{"new"} or C{"old"} for the form of
        C{handle_EHLO} (with or without the C{responses} argument).
    @raise TypeError: For a C{handle_<VERB>} attribute that is not
        callable.
    """
    hooks = {}
    for verb in HOOK_NAMES:
        hook = getattr(handler, "handle_" + verb, None)
        if hook is not None:
            if not callable(hook):
                raise TypeError(f"handler.handle_{verb} must be callable")
            hooks[verb] = hook
    if "DATA_CHUNK" in hooks and "DATA_END" not in hooks:
        raise TypeError("a handler with handle_DATA_CHUNK needs handle_DATA_END")
    style = "new"
    ehlo = hooks.get("EHLO")
    if ehlo is not None:
        try:
            parameters = inspect.signature(ehlo).parameters.values()
        except (TypeError, ValueError):
            parameters = ()
        positional = [
            p
            for p in parameters
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if len(positional) == 4 and not any(
            p.kind == p.VAR_POSITIONAL for p in parameters
        ):
            style = "old"
    return hooks, style


def findMechanisms(handler: Any) -> dict[str, Any]:
    """
    Find the C{auth_<NAME>} methods of C{handler}, by mechanism name.
    """
    return {
        mechanismName(name, method): method
        for name in dir(handler)
        if name.startswith("auth_") and callable(method := getattr(handler, name))
    }


def callLimits(value: int | dict[str, int] | None) -> Mapping[str, int] | None:
    """
    Normalise a valid C{command_call_limit}: a limit by verb in upper case,
    C{"*"} for the others (20 when a C{dict} does not say).
    """
    if value is None:
        return None
    if isinstance(value, int):
        return MappingProxyType({"*": value})
    limits = {verb.upper(): limit for verb, limit in value.items()}
    limits.setdefault("*", 20)
    return MappingProxyType(limits)


def _warnAboutAuth(options: SMTPOptions) -> None:
    """
    Warn about valid but unwise AUTH options, pointing at the code that
    made the factory (or the protocol).
    """
    if options.auth_callback is not None:
        warnings.warn(
            "auth_callback is deprecated; use authenticator or portal",
            DeprecationWarning,
            stacklevel=4,
        )
    if options.auth_required and not options.auth_require_tls:
        warnings.warn(
            "auth_required without auth_require_tls lets passwords travel in plaintext",
            UserWarning,
            stacklevel=4,
        )


def makeConfig(handler: Any, *, reactor: Any = None, **options: Any) -> Config:
    """
    Check the options of L{SMTP} and return them as a L{Config}.

    @param handler: The handler whose hooks the connections call.
    @param reactor: The reactor of the timers; the global one by default.
    @param options: The options of L{SMTP} (see L{SMTPOptions}).
    @raise TypeError: For an option of the wrong type or an unknown option.
    @raise ValueError: For a value out of range or a bad combination.
    """
    unknown = options.keys() - OPTION_NAMES
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
    if handler is None:
        raise TypeError("a handler is required (use handlers.Sink() to discard)")
    given = SMTPOptions(**options)
    _warnAboutAuth(given)
    if reactor is None:
        from twisted.internet import reactor
    hooks, ehloStyle = findHooks(handler)
    received = given.received_header or getattr(handler, "received_header", 0) is True
    if received and "DATA" in hooks:
        hooks["DATA"] = withReceivedHeader(hooks["DATA"])
    exclude = given.auth_exclude_mechanism or ()
    return Config(
        **{name: getattr(given, name) for name in _KEPT_AS_GIVEN},
        handler=handler,
        hooks=MappingProxyType(hooks),
        ehloStyle=ehloStyle,
        handlerMechanisms=MappingProxyType(findMechanisms(handler)),
        data_size_limit=given.data_size_limit or None,
        hostname=given.hostname or defaultHostname(),
        idle=IdleTimer(reactor, given.timeout) if given.timeout else None,
        callLimits=callLimits(given.command_call_limit),
        extraMailParameters=MappingProxyType(
            extraParameters(given.extra_mail_parameters)
        ),
        extraRcptParameters=MappingProxyType(
            extraParameters(given.extra_rcpt_parameters)
        ),
        allowBareNewline=given.bare_newline == "allow",
        # RFC 6531 section 3.1: SMTPUTF8 comes with 8BITMIME, decode_data or
        # not (the data is then decoded as UTF-8).
        eightBitMIME=not given.decode_data or given.enable_SMTPUTF8,
        proxy_protocol_trusted=exceptionNetworks(given.proxy_protocol_trusted),
        received_header=received,
        reactor=reactor,
        asyncioLoop=asyncioLoopOf(reactor),
        gated=given.require_starttls or given.auth_required,
        portal=None if given.portal is None else asPortal(given.portal),
        auth_exclude_mechanism=frozenset(name.upper() for name in exclude),
    )
