# -*- test-case-name: tests.test_connhooks -*-
"""
The handler's hooks on the life of a connection, as go-smtp and Postfix
have them: C{handle_CONNECT} before the greeting, C{handle_TIMEOUT} before
the C{421} of a client that stayed idle too long, C{handle_DISCONNECT}
exactly once when the connection is gone; and the allow-list of the peers
that may send a PROXY header (C{proxy_protocol_trusted}).

Each hook is looked up once per configuration (C{config.hooks}): a handler
without them costs nothing per connection but a dictionary lookup. Like
the other hooks they may return a plain value, a L{Deferred} or a
coroutine; unlike them, an exception in one never becomes a reply of
C{handle_exception}: it is logged, and the connection goes on as if the
hook had said nothing (C{handle_CONNECT}: it is refused with C{421}).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from twisted_smtpd._clientlimit import clientAddress
from twisted_smtpd._handshake import Handshake

log = Logger(namespace="twisted_smtpd.server")

# The reasons C{handle_DISCONNECT} is given.

#: The client sent QUIT.
QUIT = "quit"
#: The client stayed idle longer than C{timeout}.
TIMEOUT = "timeout"
#: The client closed the connection, or the network lost it.
CLIENT_GONE = "client gone"
#: Closed to make room for new clients (C{high_water_mark}).
SHED = "shed"
#: The service is shutting down.
SHUTDOWN = "shutdown"
#: Refused as it opened: C{handle_CONNECT}, a connection limit, a PROXY
#: header from a peer not trusted with one.
REFUSED = "refused"
#: A limit on the client's behaviour was reached (C{hard_error_limit},
#: C{max_unknown_commands}, C{command_call_limit}...).
LIMIT = "limit"
#: Dropped without a reply: a bad or refused PROXY header, a TLS handshake
#: that failed or took too long.
DROPPED = "dropped"
#: Closed by the server for another reason (a subclass's command, say).
CLOSED = "closed"

#: The reply refusing a PROXY header from a peer that is not in
#: C{proxy_protocol_trusted}; a format string for the server's host name.
UNTRUSTED_PROXY = "421 4.7.0 {hostname} Error: PROXY header not accepted from {peer}"

#: The reply that closes a connection whose C{handle_CONNECT} failed.
CONNECT_FAILED = "421 4.3.0 {hostname} Error: local error, try again later"


def callHook(
    server: Any,
    verb: str,
    then: Callable[[Any], Any],
    fallback: Callable[[], Any],
    *args: Any,
) -> Any:
    """
    Call C{handle_<verb>} through L{Connection.hook
    <twisted_smtpd._connection.Connection.hook>}, pass its result to
    C{then}, and log an exception in either instead of answering it.

    @param fallback: What to call, without arguments, after an exception.
    @param args: The hook's arguments after C{server, session, envelope}.
    @return: What C{then} or C{fallback} returned, or a L{Deferred} of it.
    """

    def failed(failure: Failure) -> Any:
        log.failure(
            "{peer} error in handle_{verb}",
            failure,
            peer=server.session.peer,
            verb=verb,
        )
        return fallback()

    try:
        result = server.hook(verb, then, *args)
    except Exception:
        return failed(Failure())
    if isinstance(result, Deferred):
        return result.addErrback(failed)
    return result


def usualGreeting(server: Any) -> bytes:
    """
    The greeting without C{handle_CONNECT}: C{220}, the host name and the
    C{ident} option (or the product), worked out once per configuration.
    """
    config = server.config
    key = ("greeting", type(server))
    greeting = config.memo.get(key)
    if greeting is None:
        ident = config.ident or server.__ident__
        greeting = config.memo[key] = f"220 {config.hostname} {ident}\r\n".encode()
    return greeting


def connect(
    server: Any, greet: Callable[[Any], None], handshake: Handshake | None = None
) -> None:
    """
    Greet at once without C{handle_CONNECT}; with it, run the hook and
    act on its answer, reading nothing
    meanwhile: C{None} greets as usual, a C{220} reply is the greeting, a
    C{554} reply is the greeting after which every command but QUIT gets
    C{503} (RFC 5321 section 3.1), anything else (C{421}...) is the last
    reply before the connection closes.

    Bytes the client sends before the greeting are kept and read as
    commands once it is sent (in the C{554} state, they get C{503}).

    On an implicit-TLS connection the hook runs once the handshake is
    complete, so that it sees C{session.ssl} and its reply goes out over
    TLS.

    @param greet: What sends the greeting: called with C{None} for the
        usual one, or with the reply to send instead.
    @param handshake: The TLS handshake under way, if any.
    """

    def then(status: Any) -> None:
        if server.closing:
            return
        if status is None:
            greet(None)
            return
        code = status[:3]
        if code in ("220", b"220"):
            greet(status)
        elif code in ("554", b"554"):
            server.noValidSession = True
            server.refuseAll()
            greet(status)
        else:
            server.disconnect(status, reason=REFUSED)

    def failed() -> None:
        server.disconnect(
            CONNECT_FAILED.format(hostname=server.config.hostname), reason=REFUSED
        )

    if "CONNECT" not in server.config.hooks:
        greet(None)
        return
    if handshake is None:
        server.run(callHook, server, "CONNECT", then, failed)
        return
    if handshake.waiter is None:
        handshake.waiter = Deferred()

    def afterHandshake(details: Any) -> Any:
        return callHook(server, "CONNECT", then, failed)

    # Read nothing as a command until the hook decides.
    server.run(handshake.waiter.addCallback, afterHandshake)


def timedOut(server: Any, reply: str) -> None:
    """
    Close a connection that stayed idle too long with C{reply}, or with
    the reply C{handle_TIMEOUT} gives instead; the connection closes
    whatever the hook says.
    """

    def then(status: Any) -> None:
        if not server.closing:
            server.disconnect(reply if status is None else status, reason=TIMEOUT)

    if "TIMEOUT" not in server.config.hooks:
        then(None)
        return
    server.run(callHook, server, "TIMEOUT", then, lambda: then(None))


def disconnected(server: Any) -> None:
    """
    Tell C{handle_DISCONNECT} why the connection ended: the server's
    C{closeReason}, or L{CLIENT_GONE} when it did not close it. Its result
    is ignored; an exception is logged.
    """
    callHook(server, "DISCONNECT", _ignore, _ignore, server.closeReason or CLIENT_GONE)


def _ignore(result: Any = None) -> None:
    pass


def untrustedProxy(server: Any) -> str | None:
    """
    The reply refusing a connection that must send a PROXY header from a
    peer not in C{proxy_protocol_trusted} (empty: any peer may), or
    C{None}. A peer that is no IP address (a UNIX socket) is never in it.
    """
    trusted = server.config.proxy_protocol_trusted
    if not trusted:
        return None
    peer = server.session.peer
    address = clientAddress(peer)
    if address is not None and any(address in network for network in trusted):
        return None
    log.warn("{peer} may not send a PROXY header: refused", peer=peer)
    return UNTRUSTED_PROXY.format(
        hostname=server.config.hostname,
        peer="this address" if address is None else address,
    )
