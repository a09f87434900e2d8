# -*- test-case-name: tests.test_config -*-
"""
Small validators of option values, in the form attrs calls them: C{(instance,
attribute, value)}, raising L{TypeError} for a value of the wrong type and
L{ValueError} for a value out of range, with a message that names the
option (the attribute).

L{SMTPOptions <twisted_smtpd._config.SMTPOptions>} declares which of them
checks each option of the server; a validator that compares two options
(L{notAbove}, L{needs}, L{onlyOne}) reads the other from the instance,
which attrs has filled in before it runs any validator.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable, Mapping
from numbers import Real
from typing import Any

from attrs import Attribute
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator

from twisted_smtpd._auth import asPortal
from twisted_smtpd._clientlimit import exceptionNetworks

#: The signature of an attrs validator: the instance being made, the field
#: and its value.
Validator = Callable[[Any, "Attribute[Any]", Any], None]


def checkInt(name: str, value: Any, minimum: int, allowNone: bool = False) -> None:
    """
    Refuse anything but an C{int} (a C{bool} is not one) of at least
    C{minimum}.

    @param name: The option, for the message.
    @param allowNone: Accept C{None} too.
    @raise TypeError: For a value that is not an C{int}.
    @raise ValueError: For an C{int} below C{minimum}.
    """
    if value is None and allowNone:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value!r}")


def checkSeconds(name: str, value: Any) -> None:
    """
    Refuse anything but a finite number (not a C{bool}) of seconds, zero
    or more.

    @param name: The option, for the message.
    @raise TypeError: For a value that is not a number.
    @raise ValueError: For a negative number.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number of seconds, not {value!r}")
    if not 0 <= value < float("inf"):
        raise ValueError(f"{name} must be 0 or more seconds, not {value!r}")


def integer(minimum: int, *, allowNone: bool = False) -> Validator:
    """
    Make a validator that accepts an C{int} of at least C{minimum} (see
    L{checkInt}).
    """

    def check(instance: Any, attribute: Attribute[Any], value: Any) -> None:
        checkInt(attribute.name, value, minimum, allowNone)

    return check


def zeroOrAtLeast(minimum: int, why: str) -> Validator:
    """
    Make a validator that accepts C{0} (no limit) or an C{int} of at least
    C{minimum}.

    @param why: Why smaller limits are refused, for the message.
    """

    def check(instance: Any, attribute: Attribute[Any], value: Any) -> None:
        checkInt(attribute.name, value, 0)
        if 0 < value < minimum:
            raise ValueError(
                f"{attribute.name} must be 0 (no limit) or at least {minimum}"
                f" ({why}), not {value!r}"
            )

    return check


def boolean(instance: Any, attribute: Attribute[Any], value: Any) -> None:
    """
    Accept C{True} or C{False} only: C{1} or C{"yes"} is more likely a
    mistake than a flag.

    @raise TypeError: For anything else.
    """
    if not isinstance(value, bool):
        raise TypeError(f"{attribute.name} must be True or False, not {value!r}")


def seconds(notPositive: str) -> Validator:
    """
    Make a validator that accepts C{None} or a positive number of seconds.

    @param notPositive: The message of the L{ValueError} for zero or less,
        a format string for C{value}.
    """

    def check(instance: Any, attribute: Attribute[Any], value: Any) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, Real):
            raise TypeError(
                f"{attribute.name} must be a number of seconds, not {value!r}"
            )
        if value <= 0:
            raise ValueError(notPositive.format(value=value))

    return check


def required(instance: Any, attribute: Attribute[Any], value: Any) -> None:
    """
    Refuse C{None} for an option that must have a value: a bound that may
    not be turned off, such as C{tls_handshake_timeout}.

    @raise TypeError: For C{None}.
    """
    if value is None:
        raise TypeError(f"{attribute.name} must not be None")


def oneLine(instance: Any, attribute: Attribute[Any], value: Any) -> None:
    """
    Accept C{None} or a C{str} that cannot break the line of a reply it
    goes into.

    @raise TypeError: For anything but a C{str}.
    @raise ValueError: For a C{str} with a CR, LF or NUL.
    """
    if value is None:
        return
    if not isinstance(value, str):
        raise TypeError(f"{attribute.name} must be a str, not {value!r}")
    if any(c in value for c in "\r\n\0"):
        raise ValueError(f"{attribute.name} must not contain CR, LF or NUL")


def domain(instance: Any, attribute: Attribute[Any], value: str | None) -> None:
    """
    Accept C{None} or a host name that can go out in the greeting and the
    EHLO reply, where a space would end it and non-ASCII is not allowed
    (RFC 5321 section 4.1.2).

    @raise ValueError: For an empty name, a space, a control character or
        a letter outside ASCII.
    """
    if value is not None and (
        not value or not value.isascii() or not value.isprintable() or " " in value
    ):
        raise ValueError(
            f"{attribute.name} must be a domain in ASCII without spaces (for a"
            f' name in Unicode, give name.encode("idna").decode()), not {value!r}'
        )


def choice(choices: tuple[str, ...]) -> Validator:
    """
    Make a validator that accepts one of C{choices}.
    """

    def check(instance: Any, attribute: Attribute[Any], value: Any) -> None:
        if value not in choices:
            raise ValueError(
                f"{attribute.name} must be one of {choices}, not {value!r}"
            )

    return check


def notAbove(other: str) -> Validator:
    """
    Make a validator that refuses a value greater than that of the field
    C{other}, checked before.
    """

    def check(instance: Any, attribute: Attribute[Any], value: Any) -> None:
        if value > getattr(instance, other):
            raise ValueError(f"{attribute.name} must not exceed {other}")

    return check


def needs(other: str) -> Validator:
    """
    Make a validator that refuses a true value when the field C{other} is
    C{None}: C{require_starttls} and C{implicit_tls} need a
    C{tls_context}.
    """

    def check(instance: Any, attribute: Attribute[Any], value: Any) -> None:
        if value and getattr(instance, other) is None:
            raise ValueError(f"{attribute.name} needs a {other}")

    return check


def callLimit(instance: Any, attribute: Attribute[Any], value: Any) -> None:
    """
    Accept C{None}, an C{int} of at least 1 (a limit for every command),
    or a C{dict} of such limits by verb (C{"*"} for the others).

    @raise TypeError: For another type, a key that is not a C{str} or a
        limit that is not an C{int}.
    @raise ValueError: For a limit below 1.
    """
    name = attribute.name
    if value is None:
        return
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or a dict of ints")
    if isinstance(value, int):
        checkInt(name, value, 1)
        return
    if not isinstance(value, dict):
        raise TypeError(f"{name} must be an int or a dict of ints, not {value!r}")
    for verb, limit in value.items():
        if not isinstance(verb, str):
            raise TypeError(f"{name} keys must be str, not {verb!r}")
        checkInt(f"{name}[{verb!r}]", limit, 1)


def tlsOptions(instance: Any, attribute: Attribute[Any], value: Any) -> None:
    """
    Accept C{None} or Twisted TLS options: an object with a C{getContext}
    method (such as L{CertificateOptions
    <twisted.internet.ssl.CertificateOptions>}) or an
    L{IOpenSSLServerConnectionCreator} provider.

    @raise TypeError: For anything else, with a hint for the
        L{ssl.SSLContext} that aiosmtpd takes.
    """
    if value is None:
        return
    if isinstance(value, ssl.SSLContext):
        raise TypeError(
            f"{attribute.name} must be Twisted TLS options (e.g. from"
            " twisted_smtpd.tlsOptionsFromFiles or"
            " twisted.internet.ssl.CertificateOptions), not an ssl.SSLContext"
        )
    if not (
        hasattr(value, "getContext")
        or IOpenSSLServerConnectionCreator.providedBy(value)
    ):
        raise TypeError(f"{attribute.name} must be Twisted TLS options, not {value!r}")


def onlyOne(*names: str) -> Validator:
    """
    Make a validator that refuses more than one of the fields C{names}
    being set (not C{None}).
    """

    def check(instance: Any, attribute: Attribute[Any], value: Any) -> None:
        given = [name for name in names if getattr(instance, name) is not None]
        if len(given) > 1:
            raise ValueError(f"give only one of {', '.join(given)}")

    return check


def optionalCallable(instance: Any, attribute: Attribute[Any], value: Any) -> None:
    """
    Accept C{None} or a callable.

    @raise TypeError: For anything else.
    """
    if value is not None and not callable(value):
        raise TypeError(f"{attribute.name} must be callable, not {value!r}")


def credentials(instance: Any, attribute: Attribute[Any], value: Any) -> None:
    """
    Accept C{None}, a L{Portal <twisted.cred.portal.Portal>} or a
    credentials checker (see L{asPortal}).

    @raise TypeError: For anything else.
    """
    if value is not None:
        asPortal(value)


def names(instance: Any, attribute: Attribute[Any], value: Any) -> None:
    """
    Refuse a C{str} where a collection of names is wanted, which would
    otherwise be read one letter at a time.

    @raise TypeError: For a C{str}.
    """
    if isinstance(value, str):
        raise TypeError(f"{attribute.name} must be a list of names, not a str")


def networkList(instance: Any, attribute: Attribute[Any], value: Any) -> None:
    """
    Accept a list of IP addresses and networks, as strings or L{ipaddress}
    objects (see L{exceptionNetworks}).

    @raise TypeError: For a single string or anything but such a list.
    @raise ValueError: For a string that is not an address or network.
    """
    try:
        exceptionNetworks(value)
    except (TypeError, ValueError) as e:
        message = str(e).replace("connection_limit_exceptions", attribute.name)
        raise type(e)(message) from None


_ESMTP_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


def parameterNames(instance: Any, attribute: Attribute[Any], value: Any) -> None:
    """
    Accept C{None}, a collection of ESMTP parameter keywords (RFC 5321
    section 4.1.2), or a mapping of keywords to C{None} or a checker
    callable.

    @raise TypeError: For a C{str}, a name that is not a C{str} or a
        checker that is not callable.
    @raise ValueError: For a name that is not an ESMTP keyword.
    """
    if value is None:
        return
    names(instance, attribute, value)
    items = value.items() if isinstance(value, Mapping) else ((n, None) for n in value)
    for name, checker in items:
        if not isinstance(name, str):
            raise TypeError(f"{attribute.name}: names must be str, not {name!r}")
        if not (name.isascii() and _ESMTP_KEYWORD.fullmatch(name)):
            raise ValueError(f"{attribute.name}: {name!r} is not an ESMTP keyword")
        if checker is not None and not callable(checker):
            raise TypeError(f"{attribute.name}: the checker of {name} must be callable")
