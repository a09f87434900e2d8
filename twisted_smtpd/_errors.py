# -*- test-case-name: tests.test_errors -*-
"""
What the client is told when a command or a hook raises: the handler's
C{handle_exception} reply, or a generic C{451} that gives nothing away.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from twisted_smtpd._hooks import settle

log = Logger(namespace="twisted_smtpd.server")

#: The reply to an error that the handler does not answer itself.
LOCAL_ERROR = "451 Requested action aborted: local error in processing"


def errorReply(handler: Any, error: BaseException, peer: Any, loop: Any) -> Any:
    """
    Find the reply to an exception raised while handling a command.

    @param handler: The handler, whose C{handle_exception(error)} hook, if
        it has one, chooses the reply.
    @param peer: The client, for the log.
    @param loop: The asyncio loop coroutine hooks run on, or C{None}.
    @return: The reply, or a L{Deferred} firing with it; never an
        exception's text, which would tell the client about the server.
    """
    hook = getattr(handler, "handle_exception", None)
    if hook is None:
        return LOCAL_ERROR
    try:
        result = settle(hook(error), loop)
    except Exception:
        log.failure("{peer} error in handle_exception", peer=peer)
        return LOCAL_ERROR
    if isinstance(result, Deferred):
        return result.addCallbacks(_reply, _errorInHook, errbackArgs=(peer,))
    return _reply(result)


def answerError(server: Any, failure: Failure, count: int) -> Any:
    """
    Log an exception raised while handling a command and answer it with
    C{count} replies (one per recipient after LMTP's data), which report
    the server's trouble and so are not the client's errors (see
    L{twisted_smtpd._policy.countError}).

    @param server: The connection.
    @return: C{None}, or a L{Deferred} while C{handle_exception} works.
    """
    peer = server.session.peer
    log.failure("{peer} error while handling a command", failure, peer=peer)
    status = errorReply(
        server.event_handler, failure.value, peer, server.config.asyncioLoop
    )
    if isinstance(status, Deferred):
        return status.addCallback(_replyError, server, count)
    return _replyError(status, server, count)


def _replyError(status: str | bytes, server: Any, count: int) -> None:
    for _ in range(count):
        server.uncounted(server.push, status)


def _reply(status: Any) -> str | bytes:
    """
    The reply C{handle_exception} chose, or L{LOCAL_ERROR} if it chose none.
    """
    return status if isinstance(status, (str, bytes)) else LOCAL_ERROR


def _errorInHook(failure: Failure, peer: Any) -> str:
    log.failure("{peer} error in handle_exception", failure, peer=peer)
    return LOCAL_ERROR
