# -*- test-case-name: tests.test_policy -*-
"""
What the server refuses before a command runs, and the limits that end a
session: commands that must wait for TLS or authentication, commands
after C{handle_STARTTLS} said no, C{command_call_limit} and
C{max_unknown_commands}.
"""

from __future__ import annotations

from typing import Any

from twisted_smtpd._interfaces import ServerCore

#: The commands C{auth_required} refuses before authentication.
NEED_AUTH = frozenset(["MAIL", "RCPT", "DATA", "VRFY", "HELP"])

#: The commands that need HELO first; as in aiosmtpd, they get their own
#: 503 before C{auth_required}'s 530.
NEED_HELO = frozenset(["MAIL", "RCPT", "DATA"])


class _Counts:
    """
    The counts of one connection that the limits look at.

    @ivar unknown: Lines that were no command.
    @ivar calls: How many times each verb was sent.
    """

    __slots__ = ("unknown", "calls")

    def __init__(self) -> None:
        self.unknown = 0
        self.calls: dict[str, int] = {}


def _counts(server: ServerCore) -> _Counts:
    return server.stateOf(_Counts, _Counts)


def refusal(server: Any, verb: str) -> str | None:
    """
    The reply refusing C{verb} under the security policy, if any: after
    C{handle_STARTTLS} refused the session, before TLS with
    C{require_starttls}, before AUTH with C{auth_required}.
    """
    config = server.config
    if server.securityRefused:
        return None if verb == "QUIT" else "554 Command refused due to lack of security"
    if (
        config.require_starttls
        and not server.tlsActive
        and verb not in server.beforeTLSVerbs
    ):
        return "530 Must issue a STARTTLS command first"
    session = server.session
    if (
        config.auth_required
        and not session.authenticated
        and verb in NEED_AUTH
        and (session.host_name or verb not in NEED_HELO)
    ):
        return "530 5.7.0 Authentication required"
    return None


def overCallLimit(server: ServerCore, verb: str) -> bool:
    """
    Count a command against C{command_call_limit}; close the connection
    and return C{True} once it is used up.
    """
    calls = _counts(server).calls
    count = calls[verb] = calls.get(verb, 0) + 1
    limits = server.config.callLimits
    if count > limits.get(verb, limits["*"]):
        server.disconnect(f"421 4.7.0 {verb} sent too many times")
        return True
    return False


def refuseUnknown(server: ServerCore, reply: str) -> None:
    """
    Refuse a line that is no command we know with C{reply}, or with 421
    and the end of the session once C{max_unknown_commands} is reached.
    """
    counts = _counts(server)
    counts.unknown += 1
    if counts.unknown >= server.config.max_unknown_commands:
        server.disconnect("421 4.7.0 Too many unrecognized commands, goodbye.")
    else:
        server.reply(reply)


def refuseUnknownVerb(server: Any, verb: str) -> None:
    """
    Refuse an unknown command; end the session after too many of them,
    unless the server does not count this verb (LMTP's HELO and EHLO).
    """
    if len(verb) > 64:
        # A reply line must fit in 512 octets (RFC 5321 4.5.3.1.5).
        verb = verb[:64] + "..."
    reply = f'500 Error: command "{verb}" not recognized'
    if verb in server.uncountedVerbs:
        server.reply(reply)
    else:
        refuseUnknown(server, reply)
