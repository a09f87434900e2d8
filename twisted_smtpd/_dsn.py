# -*- test-case-name: tests.test_dsn -*-
"""
The MAIL and RCPT parameters of Delivery Status Notifications (RFC 3461:
C{RET}, C{ENVID}, C{NOTIFY}, C{ORCPT}) and of C{REQUIRETLS} (RFC 8689),
and the parameters a handler accepts by name (C{extra_mail_parameters},
C{extra_rcpt_parameters}).

The server only checks and records these parameters; what they promise
(sending the notices, or passing the parameters on when relaying; reaching
the next hop over validated TLS) is the handler's job.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from attrs import frozen

from twisted_smtpd._address import PathRefused
from twisted_smtpd._verbs import Parameter

#: The most characters of an ENVID value (RFC 3461 section 4.4).
ENVID_LIMIT = 100

#: The most characters of an ORCPT value (RFC 3461 section 4.2).
ORCPT_LIMIT = 500

#: The values of NOTIFY other than NEVER (RFC 3461 section 4.1).
NOTIFY_VALUES = ("SUCCESS", "FAILURE", "DELAY")

# xtext (RFC 3461 section 4): characters 33-126 but "+" and "=", and "+XX".
_XTEXT = re.compile(r"(?:[!-*,-<>-~]|\+[0-9A-Fa-f]{2})+")
_HEX = re.compile(r"\+([0-9A-Fa-f]{2})")
# An addr-type is an atom (RFC 3461 section 4.2, RFC 5322 section 3.2.3).
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")
# RFC 6533 section 3: utf-8-addr-unitext, with \x{HEX} escapes.
_UNITEXT = re.compile(r"(?:[!-*,-<>-\[\]-~\x80-\U0010ffff]|\\x\{[0-9A-Fa-f]{2,6}\})+")
_EMBEDDED = re.compile(r"\\x\{([0-9A-Fa-f]{2,6})\}")


@frozen
class RecipientDSN:
    """
    The DSN parameters of one recipient (RFC 3461 sections 4.1 and 4.2).

    @ivar notify: The conditions of C{NOTIFY} in upper case and in the
        order given (C{("NEVER",)} alone, or some of C{"SUCCESS"},
        C{"FAILURE"}, C{"DELAY"}), or C{None} without C{NOTIFY}.
    @ivar orcpt: C{(addr-type, address)} of C{ORCPT}, the address decoded
        from xtext (or from RFC 6533's form for C{utf-8}), or C{None}.
    """

    notify: tuple[str, ...] | None = None
    orcpt: tuple[str, str] | None = None


def _malformed(name: str, reason: str) -> PathRefused:
    return PathRefused(f"501 5.5.4 Error: malformed {name} parameter: {reason}")


def _printable(name: str, decoded: str) -> str:
    """
    Refuse a decoded value with control characters, which a notice would
    carry into its header fields.
    """
    if any(c < " " or c == "\x7f" for c in decoded):
        raise _malformed(name, "control character")
    return decoded


def decodeXtext(name: str, value: str | None) -> str:
    """
    Decode the xtext C{value} of the parameter C{name} (RFC 3461 section
    4), as sent: never from an upper-cased copy.

    @raise PathRefused: With C{501} for a value that is not xtext.
    """
    if not value or _XTEXT.fullmatch(value) is None:
        raise _malformed(name, "not xtext")
    if "+" not in value:
        return value
    return _printable(name, _HEX.sub(lambda m: chr(int(m.group(1), 16)), value))


def xtext(text: str) -> str:
    """
    Encode C{text} as xtext (RFC 3461 section 4), to pass a decoded value
    on.
    """
    return "".join(
        c if "!" <= c <= "~" and c not in "+=" else f"+{ord(c):02X}" for c in text
    )


def utf8AddrXtext(address: str) -> str:
    """
    Encode the address of C{ORCPT=utf-8;} as utf-8-addr-xtext (RFC 6533
    section 3), which any DSN server takes: C{\\x{HEX}} for every
    character but printable ASCII other than C{+}, C{=} and C{\\}.
    """
    return "".join(
        c if "!" <= c <= "~" and c not in "+=\\" else f"\\x{{{ord(c):X}}}"
        for c in address
    )


def _decodeUnitext(value: str, utf8: bool) -> str:
    """
    Decode an address of C{ORCPT=utf-8;} (RFC 6533 section 3): non-ASCII
    characters only in an SMTPUTF8 transaction, C{\\x{HEX}} escapes always.
    """
    if _UNITEXT.fullmatch(value) is None or (not utf8 and not value.isascii()):
        raise _malformed("ORCPT", "not utf-8-addr-xtext")

    def embedded(match: re.Match[str]) -> str:
        point = int(match.group(1), 16)
        if point > 0x10FFFF or 0xD800 <= point <= 0xDFFF:
            raise _malformed("ORCPT", "bad escape")
        return chr(point)

    return _printable("ORCPT", _EMBEDDED.sub(embedded, value))


def parseOrcpt(value: str | None, utf8: bool) -> tuple[str, str]:
    """
    Parse the value of C{ORCPT}: C{addr-type ";" xtext} (RFC 3461 section
    4.2), or C{utf-8;} and RFC 6533's form.

    @param utf8: Whether the transaction is SMTPUTF8.
    @return: The addr-type as sent and the decoded address.
    @raise PathRefused: With C{501} for a malformed value.
    """
    if value is None or len(value) > ORCPT_LIMIT:
        raise _malformed("ORCPT", "missing or too long")
    addrType, semicolon, address = value.partition(";")
    if not semicolon or _ATOM.fullmatch(addrType) is None or not address:
        raise _malformed("ORCPT", "expected addr-type;address")
    if addrType.lower() == "utf-8":
        return addrType, _decodeUnitext(address, utf8)
    return addrType, decodeXtext("ORCPT", address)


def parseNotify(value: str | None) -> tuple[str, ...]:
    """
    Parse the value of C{NOTIFY} (RFC 3461 section 4.1): C{NEVER} alone,
    or a list of C{SUCCESS}, C{FAILURE} and C{DELAY}, in any case.

    @raise PathRefused: With C{501} for a malformed value.
    """
    if not value:
        raise _malformed("NOTIFY", "missing value")
    items = value.upper().split(",")
    if items == ["NEVER"]:
        return ("NEVER",)
    if any(item not in NOTIFY_VALUES for item in items):
        raise _malformed("NOTIFY", "NEVER alone or SUCCESS, FAILURE, DELAY")
    return tuple(dict.fromkeys(items))


def _checkRet(server: Any, value: str | None) -> None:
    if value is None or value.upper() not in ("FULL", "HDRS"):
        raise _malformed("RET", "FULL or HDRS")


def _checkEnvid(server: Any, value: str | None) -> None:
    if value is not None and len(value) > ENVID_LIMIT:
        raise _malformed("ENVID", "longer than 100 characters")
    decodeXtext("ENVID", value)


def _checkNotify(server: Any, value: str | None) -> None:
    parseNotify(value)


def _checkOrcpt(server: Any, value: str | None) -> None:
    parseOrcpt(value, server.envelope.smtp_utf8)


def _checkRequireTLS(server: Any, value: str | None) -> None:
    if value is not None:
        raise PathRefused("501 5.5.4 Error: REQUIRETLS takes no value")
    if not server.tlsActive:
        raise PathRefused("530 5.7.10 REQUIRETLS needs a TLS session")


def _optional(
    name: str, check: Callable[[Any, Any], None], option: str, room: int = 0
) -> Parameter:
    """
    A parameter offered (and given C{room} octets) when the option
    C{option} is on, and given at most once.
    """
    return Parameter(
        name,
        check,
        offered=lambda server: getattr(server.config, option),
        once=True,
        room=lambda server: room if getattr(server.config, option) else 0,
    )


_RET = _optional("RET", _checkRet, "dsn")
# RFC 3461 section 4: MAIL may be 100 characters longer, RCPT 500.
_ENVID = _optional("ENVID", _checkEnvid, "dsn", room=100)
_NOTIFY = _optional("NOTIFY", _checkNotify, "dsn")
_ORCPT = _optional("ORCPT", _checkOrcpt, "dsn", room=500)
# RFC 8689 section 4.
_REQUIRETLS = _optional("REQUIRETLS", _checkRequireTLS, "requiretls", room=11)

MAIL_PARAMETERS = (_RET, _ENVID, _REQUIRETLS)
RCPT_PARAMETERS = (_NOTIFY, _ORCPT)


def mailFacts(envelope: Any, options: list[tuple[str, str | None, Parameter]]) -> None:
    """
    Record on the envelope what the (checked) MAIL parameters say: every
    parameter as sent in C{mail_parameters}, the DSN ones decoded.
    """
    envelope.mail_parameters = {key: value for key, value, _ in options}
    for _, value, parameter in options:
        # The built-in parameters only: a handler may take a name by
        # extra_mail_parameters when its extension is off.
        if parameter is _RET:
            envelope.dsn_ret = value.upper()
        elif parameter is _ENVID:
            envelope.dsn_envid = decodeXtext("ENVID", value)
        elif parameter is _REQUIRETLS:
            envelope.requiretls = True


def forgetMailFacts(envelope: Any) -> None:
    """
    Undo L{mailFacts} for a MAIL that was refused after all.
    """
    for name in ("mail_parameters", "dsn_ret", "dsn_envid", "requiretls"):
        vars(envelope).pop(name, None)


def rcptFacts(
    envelope: Any,
    index: int,
    options: list[tuple[str, str | None, Parameter]],
) -> None:
    """
    Record on the envelope what the (checked) parameters of the recipient
    accepted at C{index} of C{rcpt_tos} say.
    """
    notify = orcpt = None
    for _, value, parameter in options:
        if parameter is _NOTIFY:
            notify = parseNotify(value)
        elif parameter is _ORCPT:
            orcpt = parseOrcpt(value, envelope.smtp_utf8)
    dsn = None
    if notify is not None or orcpt is not None:
        dsn = RecipientDSN(notify=notify, orcpt=orcpt)
    parameters = {key: value for key, value, _ in options}
    envelope.recordRecipient(index, parameters, dsn)


def extraParameters(given: Any) -> dict[str, Parameter]:
    """
    The L{Parameter}s of C{extra_mail_parameters} or
    C{extra_rcpt_parameters}: names, or a mapping of names to checkers.

    A checker is called with the session and the value as sent (C{None}
    for a parameter without one) and returns C{None} to accept it or the
    reply that refuses it.
    """
    if not given:
        return {}
    checkers: Mapping[str, Callable[..., Any] | None]
    if isinstance(given, Mapping):
        checkers = given
    else:
        checkers = dict.fromkeys(given)
    return {
        name.upper(): Parameter(name.upper(), _extraCheck(checker), once=True)
        for name, checker in checkers.items()
    }


def _extraCheck(checker: Callable[..., Any] | None) -> Callable[[Any, Any], None]:
    def check(server: Any, value: str | None) -> None:
        if checker is None:
            return
        refusal = checker(server.session, value)
        if refusal is not None:
            raise PathRefused(str(refusal))

    return check
