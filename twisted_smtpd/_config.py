# -*- test-case-name: tests.test_config -*-
"""
Validation of the server's options, done once per factory.

Every option of L{SMTP} is checked here, so that a bad value or a bad
combination fails when the server is made, with a L{TypeError} or
L{ValueError} that names the option, and never when a client connects.
"""

from __future__ import annotations

import inspect
import socket
import ssl
import warnings
from numbers import Real
from typing import Any

from twisted.internet.interfaces import IOpenSSLServerConnectionCreator

from twisted_smtpd._auth import asPortal, mechanismName
from twisted_smtpd._hooks import asyncioLoopOf
from twisted_smtpd._idle import IdleTimer

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
)

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


class Config:
    """
    The validated options shared by all connections of one factory.

    Attribute names are those of the options (see L{SMTP}); C{hooks} maps a
    verb to the handler's bound C{handle_<VERB>} method, and C{ehloStyle} is
    C{"new"} or C{"old"} depending on the form of C{handle_EHLO}.
    """

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


def _checkInt(name: str, value: Any, minimum: int, allowNone: bool) -> None:
    if value is None and allowNone:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value!r}")


def _checkBool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, not {value!r}")


def _checkCallLimit(value: Any) -> dict[str, int] | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("command_call_limit must be an int or a dict of ints")
    if isinstance(value, int):
        _checkInt("command_call_limit", value, 1, False)
        return {"*": value}
    if isinstance(value, dict):
        limits = {}
        for verb, limit in value.items():
            if not isinstance(verb, str):
                raise TypeError(f"command_call_limit keys must be str, not {verb!r}")
            _checkInt(f"command_call_limit[{verb!r}]", limit, 1, False)
            limits[verb.upper()] = limit
        limits.setdefault("*", 20)
        return limits
    raise TypeError(
        f"command_call_limit must be an int or a dict of ints, not {value!r}"
    )


def findHooks(handler: Any) -> tuple[dict[str, Any], str]:
    """
    Find the C{handle_<VERB>} methods of C{handler}, once.

    @return: The hooks by verb, and C{"new"} or C{"old"} for the form of
        C{handle_EHLO} (with or without the C{responses} argument).
    """
    hooks = {}
    for verb in HOOK_NAMES:
        hook = getattr(handler, "handle_" + verb, None)
        if hook is not None:
            if not callable(hook):
                raise TypeError(f"handler.handle_{verb} must be callable")
            hooks[verb] = hook
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


def makeConfig(
    handler: Any,
    *,
    data_size_limit: int | None = DATA_SIZE_DEFAULT,
    enable_SMTPUTF8: bool = False,
    decode_data: bool = False,
    hostname: str | None = None,
    ident: str | None = None,
    timeout: float | None = 300,
    command_call_limit: int | dict[str, int] | None = None,
    line_length_limit: int = 1001,
    command_size_limit: int = 512,
    local_part_limit: int = 0,
    bare_newline: str = "reject",
    max_unknown_commands: int = 5,
    tls_context: Any = None,
    require_starttls: bool = False,
    authenticator: Any = None,
    auth_callback: Any = None,
    portal: Any = None,
    auth_required: bool = False,
    auth_require_tls: bool = True,
    auth_exclude_mechanism: Any = None,
    auth_failure_limit: int = 3,
    proxy_protocol_timeout: float | None = None,
    implicit_tls: bool = False,
    reactor: Any = None,
    **unknown: Any,
) -> Config:
    """
    Check the options of L{SMTP} and return them as a L{Config}.

    @raise TypeError: For an option of the wrong type or an unknown option.
    @raise ValueError: For a value out of range or a bad combination.
    """
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
    if handler is None:
        raise TypeError("a handler is required (use handlers.Sink() to discard)")
    _checkInt("data_size_limit", data_size_limit, 0, True)
    _checkBool("enable_SMTPUTF8", enable_SMTPUTF8)
    _checkBool("decode_data", decode_data)
    for name, value in (("hostname", hostname), ("ident", ident)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a str, not {value!r}")
        if value is not None and any(c in value for c in "\r\n\0"):
            raise ValueError(f"{name} must not contain CR, LF or NUL")
    if hostname is not None and (
        not hostname
        or not hostname.isascii()
        or not hostname.isprintable()
        or " " in hostname
    ):
        # It goes out in the greeting and the EHLO reply, where a space
        # would end it and non-ASCII is not allowed (RFC 5321 4.1.2).
        raise ValueError(
            f"hostname must be a domain in ASCII without spaces (for a name"
            f' in Unicode, give name.encode("idna").decode()), not {hostname!r}'
        )
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, Real):
            raise TypeError(f"timeout must be a number of seconds, not {timeout!r}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
    callLimits = _checkCallLimit(command_call_limit)
    _checkInt("line_length_limit", line_length_limit, 100, False)
    _checkInt("command_size_limit", command_size_limit, 64, False)
    if command_size_limit > line_length_limit:
        raise ValueError("command_size_limit must not exceed line_length_limit")
    _checkInt("local_part_limit", local_part_limit, 0, False)
    if bare_newline not in BARE_NEWLINE_POLICIES:
        raise ValueError(
            f"bare_newline must be one of {BARE_NEWLINE_POLICIES}, not {bare_newline!r}"
        )
    _checkInt("max_unknown_commands", max_unknown_commands, 1, False)
    tls = _checkTLS(tls_context, require_starttls)
    _checkBool("implicit_tls", implicit_tls)
    if implicit_tls and tls_context is None:
        raise ValueError("implicit_tls needs a tls_context")
    auth = _checkAuth(
        authenticator,
        auth_callback,
        portal,
        auth_required,
        auth_require_tls,
        auth_exclude_mechanism,
        auth_failure_limit,
    )
    if proxy_protocol_timeout is not None:
        if isinstance(proxy_protocol_timeout, bool) or not isinstance(
            proxy_protocol_timeout, Real
        ):
            raise TypeError(
                "proxy_protocol_timeout must be a number of seconds,"
                f" not {proxy_protocol_timeout!r}"
            )
        if proxy_protocol_timeout <= 0:
            raise ValueError("proxy_protocol_timeout must be positive")
    if reactor is None:
        from twisted.internet import reactor
    hooks, ehloStyle = findHooks(handler)
    handlerMechanisms = {
        mechanismName(name, method): method
        for name in dir(handler)
        if name.startswith("auth_") and callable(method := getattr(handler, name))
    }
    return Config(
        handler=handler,
        hooks=hooks,
        ehloStyle=ehloStyle,
        handlerMechanisms=handlerMechanisms,
        data_size_limit=data_size_limit or None,
        enable_SMTPUTF8=enable_SMTPUTF8,
        decode_data=decode_data,
        hostname=hostname or defaultHostname(),
        ident=ident,
        timeout=timeout,
        idle=IdleTimer(reactor, timeout) if timeout else None,
        callLimits=callLimits,
        line_length_limit=line_length_limit,
        command_size_limit=command_size_limit,
        local_part_limit=local_part_limit,
        allowBareNewline=bare_newline == "allow",
        # RFC 6531 section 3.1: SMTPUTF8 comes with 8BITMIME, decode_data or
        # not (the data is then decoded as UTF-8).
        eightBitMIME=not decode_data or enable_SMTPUTF8,
        max_unknown_commands=max_unknown_commands,
        proxy_protocol_timeout=proxy_protocol_timeout,
        implicit_tls=implicit_tls,
        reactor=reactor,
        asyncioLoop=asyncioLoopOf(reactor),
        gated=require_starttls or auth_required,
        **tls,
        **auth,
    )


def _checkTLS(context: Any, requireStartTLS: bool) -> dict[str, Any]:
    _checkBool("require_starttls", requireStartTLS)
    if context is not None:
        if isinstance(context, ssl.SSLContext):
            raise TypeError(
                "tls_context must be Twisted TLS options (e.g. from"
                " twisted_smtpd.tlsOptionsFromFiles or"
                " twisted.internet.ssl.CertificateOptions), not an ssl.SSLContext"
            )
        if not (
            hasattr(context, "getContext")
            or IOpenSSLServerConnectionCreator.providedBy(context)
        ):
            raise TypeError(f"tls_context must be Twisted TLS options, not {context!r}")
    elif requireStartTLS:
        raise ValueError("require_starttls needs a tls_context")
    return {"tls_context": context, "require_starttls": requireStartTLS}


def _checkAuth(
    authenticator: Any,
    authCallback: Any,
    portal: Any,
    authRequired: bool,
    authRequireTLS: bool,
    exclude: Any,
    failureLimit: int,
) -> dict[str, Any]:
    _checkBool("auth_required", authRequired)
    _checkBool("auth_require_tls", authRequireTLS)
    _checkInt("auth_failure_limit", failureLimit, 1, False)
    given = [
        name
        for name, value in (
            ("authenticator", authenticator),
            ("auth_callback", authCallback),
            ("portal", portal),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise ValueError(f"give only one of {', '.join(given)}")
    for name, value in (
        ("authenticator", authenticator),
        ("auth_callback", authCallback),
    ):
        if value is not None and not callable(value):
            raise TypeError(f"{name} must be callable, not {value!r}")
    if authCallback is not None:
        warnings.warn(
            "auth_callback is deprecated; use authenticator or portal",
            DeprecationWarning,
            stacklevel=4,
        )
    if portal is not None:
        portal = asPortal(portal)
    if exclude is None:
        exclude = ()
    elif isinstance(exclude, str):
        raise TypeError("auth_exclude_mechanism must be a list of names, not a str")
    exclude = frozenset(name.upper() for name in exclude)
    if authRequired and not authRequireTLS:
        warnings.warn(
            "auth_required without auth_require_tls lets passwords travel in plaintext",
            UserWarning,
            stacklevel=4,
        )
    return {
        "authenticator": authenticator,
        "auth_callback": authCallback,
        "portal": portal,
        "auth_required": authRequired,
        "auth_require_tls": authRequireTLS,
        "auth_exclude_mechanism": exclude,
        "auth_failure_limit": failureLimit,
    }
