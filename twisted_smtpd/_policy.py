# -*- test-case-name: tests.test_policy -*-
"""
What the server refuses before a command runs, and the limits that end a
session: commands that must wait for TLS or authentication, commands
after C{handle_STARTTLS} said no, C{command_call_limit},
C{max_unknown_commands}, C{hard_error_limit} and C{junk_command_limit};
and C{max_recipients}, which ends no session.

The limits on errors are Postfix's (C{smtpd_hard_error_limit},
C{smtpd_junk_command_limit}, C{smtpd_recipient_limit}): every error reply
to a client's command counts, a message delivered forgives them, and the
server's own trouble never counts.
"""

from __future__ import annotations

from typing import Any
from weakref import ref

from twisted_smtpd._connhooks import LIMIT
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
    @ivar errors: Error replies to the client's commands since the session
        began or a message was last delivered.
    @ivar junk: NOOP, VRFY, RSET and HELP commands over the same time.
    @ivar overshoot: The recipients refused as too many in the transaction
        of the envelope that C{overshootOf} refers to (weakly: an C{id}
        may be reused by the next envelope).
    """

    __slots__ = ("unknown", "calls", "errors", "junk", "overshoot", "overshootOf")

    def __init__(self) -> None:
        self.unknown = 0
        self.calls: dict[str, int] = {}
        self.errors = 0
        self.junk = 0
        self.overshoot = 0
        self.overshootOf: Any = None


def _counts(server: ServerCore) -> _Counts:
    return server.stateOf(_Counts, _Counts)


#: The reply to every command but QUIT after a C{554} greeting, which
#: RFC 5321 section 3.1 requires.
NO_VALID_SESSION = "503 5.5.1 Error: no valid session"


def refusal(server: Any, verb: str) -> str | None:
    """
    The reply refusing C{verb} under the security policy, if any: after
    C{handle_CONNECT} greeted with C{554} (L{NO_VALID_SESSION}), after
    C{handle_STARTTLS} refused the session, before TLS with
    C{require_starttls}, before AUTH with C{auth_required}.
    """
    config = server.config
    if server.securityRefused:
        if verb == "QUIT":
            return None
        if getattr(server, "noValidSession", False):
            return NO_VALID_SESSION
        return "554 Command refused due to lack of security"
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
        server.disconnect(f"421 4.7.0 {verb} sent too many times", LIMIT)
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
        server.disconnect("421 4.7.0 Too many unrecognized commands, goodbye.", LIMIT)
    else:
        server.reply(reply)


def refuseUnknownVerb(server: Any, verb: str) -> None:
    """
    Refuse an unknown command; end the session after too many of them,
    unless the server does not count this verb (LMTP's HELO and EHLO, which
    count as no error at all).
    """
    if len(verb) > 64:
        # A reply line must fit in 512 octets (RFC 5321 4.5.3.1.5).
        verb = verb[:64] + "..."
    reply = f'500 Error: command "{verb}" not recognized'
    if verb in server.uncountedVerbs:
        server.uncounted(server.reply, reply)
    else:
        refuseUnknown(server, reply)


def countError(server: ServerCore) -> None:
    """
    Count an error reply to one of the client's commands; once there have
    been C{hard_error_limit} of them without a message delivered, close the
    connection with C{421}, after the reply that reached the limit.
    """
    config = server.config
    limit = config.hard_error_limit
    if not limit:
        return
    counts = _counts(server)
    counts.errors += 1
    if counts.errors >= limit:
        server.disconnect(f"421 4.7.0 {config.hostname} Error: too many errors", LIMIT)


def junkCommand(server: ServerCore) -> bool:
    """
    Count a NOOP, VRFY, RSET or HELP, which do nothing for the mail.

    @return: Whether it is beyond C{junk_command_limit}, and so counts as an
        error once it is answered (see L{countError}).
    """
    limit = server.config.junk_command_limit
    if not limit:
        return False
    counts = _counts(server)
    counts.junk += 1
    return counts.junk > limit


def forgive(server: ServerCore) -> None:
    """
    A message was delivered: forget the errors and junk commands so far,
    as Postfix does.
    """
    # Nothing to forget on a connection that never counted anything.
    counts = server.stateOf(_Counts, None)
    if counts is not None:
        counts.errors = counts.junk = 0


def dataAnswered(server: ServerCore, codes: str) -> None:
    """
    Judge the end of the data by its reply codes (several, joined by commas,
    for LMTP): a message delivered, to any recipient, forgives the errors
    and junk commands so far, as in Postfix; one refused with a 5yz counts
    as one error; a 4yz only is the server's trouble and does not count.
    """
    classes = codes[:1] if "," not in codes else {c[:1] for c in codes.split(",")}
    if "2" in classes:
        forgive(server)
    elif "5" in classes:
        countError(server)


def refuseRecipient(server: ServerCore, envelope: Any) -> None:
    """
    Refuse a recipient beyond C{max_recipients} with C{452} (RFC 5321
    section 4.5.3.1.10: the client sends the others in another
    transaction), which the transaction survives.

    As with Postfix's C{smtpd_recipient_overshoot_limit}, these refusals do
    not count as errors, so that a client sending many recipients at once
    does not reach C{hard_error_limit}; beyond as many again as the limit,
    they do.
    """
    counts = _counts(server)
    # The transaction is told by its envelope, held weakly so that a
    # delivered message is not kept (an id could be reused by the next).
    if counts.overshootOf is None or counts.overshootOf() is not envelope:
        counts.overshootOf, counts.overshoot = ref(envelope), 0
    counts.overshoot += 1
    if server.enhancedStatusCodes:
        reply = "452 4.5.3 Too many recipients"
    else:
        reply = "452 Too many recipients"
    if counts.overshoot > server.config.max_recipients:
        server.reply(reply)
    else:
        server.uncounted(server.reply, reply)
