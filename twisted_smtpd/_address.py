# -*- test-case-name: tests.test_address -*-
"""
Parsing of the arguments of MAIL FROM and RCPT TO (RFC 5321 section 4.1.2).

The parser is pure and small enough to run on every command: one compiled
regular expression recognises a whole path, and the rare parts (address
literals, mailboxes without a domain) are checked in Python only when they
occur.

The server turns L{PathSyntaxError} into a 501 reply of its own choosing and
sends the reply carried by L{PathRefused} as it is.
"""

from __future__ import annotations

import ipaddress
import re

# atext of RFC 5322 section 3.2.3, written for a regular expression class.
_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"
# qtextSMTP of RFC 5321 section 4.1.2: printable ASCII and space, except the
# double quote and the backslash.
_QTEXT = r"\x20\x21\x23-\x5b\x5d-\x7e"
_LET_DIG = r"A-Za-z0-9"
# UTF8-non-ascii of RFC 6532 section 3.1, less the C1 control characters and
# the surrogates (which a decoder leaves behind only for invalid UTF-8).
_NON_ASCII = "\u00a0-\ud7ff\ue000-\U0010ffff"
# dcontent of RFC 5321 section 4.1.3: printable ASCII except "[", "\", "]".
_DCONTENT = r"\x21-\x5a\x5e-\x7e"

_MALFORMED = "553 5.1.3 Error: malformed address"
_NO_DOMAIN = "553 5.1.3 Error: address must have a domain"
_NULL_REFUSED = "553 5.1.3 Error: null address not allowed here"
_NON_ASCII_REFUSED = "553 5.6.7 Error: non-ASCII address requires SMTPUTF8"
_LOCAL_PART_TOO_LONG = "553 5.1.3 Error: local part too long"

# The longest domain RFC 5321 section 4.5.3.1.2 allows, in octets.
_MAX_DOMAIN = 255


def _localPartPattern(nonAscii: str) -> str:
    """
    Build the regular expression of a Local-part.

    @param nonAscii: The non-ASCII characters allowed beyond ASCII, as the
        body of a character class (empty without SMTPUTF8).
    @return: A pattern matching a Dot-string or a Quoted-string, the latter
        with its loop unrolled so that a failed match stays linear.
    """
    atom = rf"[{_ATEXT}{nonAscii}]+"
    qtext = rf"[{_QTEXT}{nonAscii}]*"
    return rf'(?:{atom}(?:\.{atom})*|"{qtext}(?:\\[\x20-\x7e]{qtext})*")'


def _domainPattern(nonAscii: str) -> str:
    """
    Build the regular expression of a Domain.

    Labels are limited to 63 characters here; for a U-label that is a
    necessary condition only, since its A-label is always longer.

    @param nonAscii: The non-ASCII characters allowed in labels, as the body
        of a character class (empty without SMTPUTF8).
    @return: A pattern matching dot-separated labels that start and end with
        a letter or digit and contain letters, digits and hyphens.
    """
    letDig = f"[{_LET_DIG}{nonAscii}]"
    label = rf"{letDig}(?:[{_LET_DIG}{nonAscii}\-]{{0,61}}{letDig})?"
    return rf"{label}(?:\.{label})*"


def _compilePath(nonAscii: str) -> re.Pattern[str]:
    """
    Compile the regular expression of the inside of a Path.

    @param nonAscii: The non-ASCII characters allowed, as the body of a
        character class (empty without SMTPUTF8).
    @return: A pattern with the groups C{route} (the source route with its
        colon, or C{None}), C{mailbox}, C{local}, and either C{domain} or
        C{literal} (the address literal without its brackets).
    """
    domain = _domainPattern(nonAscii)
    return re.compile(
        rf"(?P<route>@{domain}(?:,@{domain})*:)?"
        rf"(?P<mailbox>(?P<local>{_localPartPattern(nonAscii)})@"
        rf"(?:(?P<domain>{domain})|\[(?P<literal>[{_DCONTENT}]+)\]))"
    )


_ASCII_PATH = _compilePath("")
_UTF8_PATH = _compilePath(_NON_ASCII)
_ASCII_LOCAL_PART = re.compile(_localPartPattern(""))
_UTF8_LOCAL_PART = re.compile(_localPartPattern(_NON_ASCII))
_IPV6_TEXT = re.compile(r"[0-9A-Fa-f:.]+")
_STANDARDIZED_TAG = re.compile(r"[A-Za-z0-9\-]*[A-Za-z0-9]")
_BRACKETED = re.compile(r'<[^">]*(?:"[^"\\]*(?:\\.[^"\\]*)*"[^">]*)*>')
_PARAMETER = re.compile(
    rf"([A-Za-z0-9][A-Za-z0-9\-]*)(?:=([\x21-\x3c\x3e-\x7e{_NON_ASCII}]+))?"
)


class PathSyntaxError(ValueError):
    """
    The argument of MAIL or RCPT does not have the shape of the command.

    The caller answers with a 501 reply of its choosing; the exception's
    message says what was wrong, for logs.
    """


class PathRefused(ValueError):
    """
    A well-formed command whose address or parameter is refused.

    @ivar reply: The complete SMTP reply line to send, code and enhanced
        status code included, without the trailing CRLF.
    """

    def __init__(self, reply: str) -> None:
        """
        @param reply: See L{PathRefused.reply}.
        """
        super().__init__(reply)
        self.reply = reply


def splitArgument(arg: str, keyword: str) -> tuple[str, str]:
    """
    Split the argument of MAIL or RCPT into its path and its parameters.

    The keyword is matched without regard to case and must be followed
    directly by a colon. Like Postfix and aiosmtpd, spaces after the colon
    are tolerated, a path without angle brackets is accepted (it ends at the
    first space), and parameters may follow the closing bracket without a
    space.

    A path in angle brackets ends at its matching C{>}: a quoted local part
    may contain spaces, C{>} and backslash-escaped characters.

    @param arg: What follows the command verb and its space, for instance
        C{'FROM:<a@example.com> SIZE=10'}.
    @param keyword: C{'FROM'} for MAIL, C{'TO'} for RCPT.
    @return: The path as written (brackets included, if any) and the
        parameter string with its surrounding spaces removed (C{''} when
        there are none), ready for L{parsePath} and L{parseParameters}.
    @raise PathSyntaxError: The keyword or its colon is missing, there is no
        path, or a bracketed path (or a quoted string in it) is not closed.
    """
    length = len(keyword)
    head = arg[:length]
    if arg[length : length + 1] != ":" or not (
        head.isascii() and head.upper() == keyword.upper()
    ):
        raise PathSyntaxError(f"expected {keyword}:")
    rest = arg[length + 1 :].lstrip(" ")
    if not rest:
        raise PathSyntaxError("missing path")
    if rest[0] == "<":
        match = _BRACKETED.match(rest)
        if match is None:
            raise PathSyntaxError("path is missing its closing '>'")
        end = match.end()
    else:
        end = rest.find(" ")
        if end < 0:
            return rest, ""
    return rest[:end], rest[end:].strip(" ")


def parsePath(
    path: str,
    *,
    smtputf8: bool = False,
    localPartLimit: int = 0,
    allowNull: bool = False,
    allowPostmaster: bool = False,
) -> str:
    """
    Validate a path as returned by L{splitArgument} and return its mailbox.

    The path is a Mailbox in angle brackets, optionally preceded by an
    RFC 5321 source route, which is accepted and discarded (RFC 5321
    appendix C). A path without brackets is accepted as a bare mailbox,
    without a source route. Quoted local parts and address literals are
    returned as written.

    @param path: The path, for instance C{'<user@example.com>'}.
    @param smtputf8: Whether the client asked for SMTPUTF8 (RFC 6531), which
        allows non-ASCII characters in the local part and U-labels in the
        domain.
    @param localPartLimit: The longest local part accepted, in octets of its
        UTF-8 encoding as written (quotes and backslashes included), or C{0}
        for no limit.
    @param allowNull: Whether the null path C{'<>'} is accepted (a MAIL
        reverse-path).
    @param allowPostmaster: Whether C{postmaster} without a domain, in any
        case, is accepted (an RCPT forward-path, RFC 5321 section 4.5.1).
    @return: The mailbox without brackets or source route, e.g.
        C{'user@example.com'}; C{'<>'} for the null path; the local part as
        written for a domain-less postmaster.
    @raise PathRefused: The address is malformed or not allowed here; its
        C{reply} is a 553 line saying why.
    """
    if path == "<>":
        if allowNull:
            return path
        raise PathRefused(_NULL_REFUSED)
    if smtputf8:
        pattern = _UTF8_PATH
    elif path.isascii():
        pattern = _ASCII_PATH
    else:
        raise PathRefused(_NON_ASCII_REFUSED)
    if path[:1] == "<":
        if path[-1] != ">":
            raise PathRefused(_MALFORMED)
        start, end = 1, len(path) - 1
    else:
        start, end = 0, len(path)
    match = pattern.fullmatch(path, start, end)
    if match is None:
        return _domainlessMailbox(path[start:end], smtputf8, allowPostmaster)
    route, mailbox, local, domain, literal = match.group(
        "route", "mailbox", "local", "domain", "literal"
    )
    if route is not None and start == 0:
        raise PathRefused(_MALFORMED)
    if domain is None:
        if not _isAddressLiteral(literal):
            raise PathRefused(_MALFORMED)
    elif len(domain) > _MAX_DOMAIN:
        raise PathRefused(_MALFORMED)
    if localPartLimit > 0 and len(local.encode("utf-8")) > localPartLimit:
        raise PathRefused(_LOCAL_PART_TOO_LONG)
    return mailbox


def _domainlessMailbox(inner: str, smtputf8: bool, allowPostmaster: bool) -> str:
    """
    Explain why a path that is not a mailbox with a domain is refused, or
    accept it when it is the postmaster.

    @param inner: The path without its angle brackets.
    @param smtputf8: As for L{parsePath}.
    @param allowPostmaster: As for L{parsePath}.
    @return: C{inner} when it is C{postmaster} in any case and
        C{allowPostmaster} is true.
    @raise PathRefused: In every other case: "address must have a domain"
        for a valid local part alone, "malformed address" otherwise.
    """
    pattern = _UTF8_LOCAL_PART if smtputf8 else _ASCII_LOCAL_PART
    if pattern.fullmatch(inner) is None:
        raise PathRefused(_MALFORMED)
    if allowPostmaster and inner.lower() == "postmaster":
        return inner
    raise PathRefused(_NO_DOMAIN)


def _isAddressLiteral(literal: str) -> bool:
    """
    Check the inside of an address literal (RFC 5321 section 4.1.3).

    IPv4 addresses with leading zeros in a component are refused, as
    L{ipaddress} refuses them: their meaning (octal or decimal) depends on
    who reads them.

    @param literal: The text between the brackets, made of dcontent.
    @return: Whether it is an IPv4 address, C{IPv6:} (in any case) followed
        by an IPv6 address without a zone, or a General-address-literal
        (a Standardized-tag, a colon and at least one character).
    """
    tag, colon, content = literal.partition(":")
    if not colon:
        try:
            ipaddress.IPv4Address(literal)
        except ValueError:
            return False
        return True
    if tag.lower() == "ipv6":
        if _IPV6_TEXT.fullmatch(content) is None:
            return False
        try:
            ipaddress.IPv6Address(content)
        except ValueError:
            return False
        return True
    return bool(content) and _STANDARDIZED_TAG.fullmatch(tag) is not None


def parseParameters(text: str) -> list[tuple[str, str | None]]:
    """
    Parse the ESMTP parameters of MAIL or RCPT (RFC 5321 section 4.1.2).

    A keyword starts with a letter or digit and continues with letters,
    digits and hyphens. A value is one or more printable characters other
    than C{=} (and, per RFC 6531, non-ASCII characters). Parameters are
    separated by one or more spaces.

    @param text: The parameter string from L{splitArgument}, e.g.
        C{'SIZE=100 BODY=8BITMIME SMTPUTF8'}.
    @return: The parameters in order, as C{(KEYWORD, value)} pairs with the
        keyword upper-cased and the value unchanged, or C{None} for a
        keyword without a value; C{[]} for an empty string.
    @raise PathSyntaxError: A parameter has a bad keyword, an empty value or
        an C{=} or other forbidden character in its value.
    """
    parameters: list[tuple[str, str | None]] = []
    for word in text.split(" "):
        if not word:
            continue
        match = _PARAMETER.fullmatch(word)
        if match is None:
            raise PathSyntaxError(f"malformed parameter {word!r}")
        keyword = match.group(1).upper()
        parameters.append((keyword, match.group(2)))
    return parameters
