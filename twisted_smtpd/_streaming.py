# -*- test-case-name: tests.test_streaming -*-
"""
Message bodies streamed to the handler, in bounded memory.

A handler with C{handle_DATA_CHUNK} gets the body of each message in
pieces as it arrives, from DATA (dot-unstuffed) and BDAT alike, instead of
one C{envelope.content} at the end:

    - C{handle_DATA_CHUNK(server, session, envelope, data, size)} for each
      piece, in order, C{size} being the octets so far; while what it
      returns (a L{Deferred} or a coroutine) is pending, the connection
      reads nothing more, so the server holds at most a few pieces of a
      message however fast the client sends;
    - C{handle_DATA_END(server, session, envelope, size)} once after the
      last piece: its result is the reply to the message, as
      C{handle_DATA}'s is;
    - C{handle_DATA_ABORT(server, session, envelope, reason)} at most once,
      when a message that pieces may have reached will not complete: over a
      limit (C{"too big"}, C{"line too long"}, C{"bare newline"}), a
      transaction reset between BDAT chunks (C{"reset"}), a piece the
      handler failed on (C{"error"}), or the connection's end (its close
      reason: C{"timeout"}, C{"shutdown"}, C{"shed"}..., or C{"client
      gone"}).

After C{handle_DATA_END} or C{handle_DATA_ABORT}, no hook of the message is
called any more. A piece the handler fails on ends the pieces: the rest of
the body is read and dropped, and the end of the data is answered as an
exception in C{handle_DATA} would be.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from twisted_smtpd._interfaces import ServerCore
from twisted_smtpd._received import receivedHeader

__all__ = [
    "PIECE_SIZE",
    "STREAMING_HOOKS",
    "abortStream",
    "endStream",
    "sendPiece",
    "streams",
]

log = Logger(namespace="twisted_smtpd.server")

#: How many octets of a message are held before they go to
#: C{handle_DATA_CHUNK} (a piece may be somewhat bigger: what one read
#: brought).
PIECE_SIZE = 65536

#: The hooks of a streaming handler, without their C{handle_} prefix.
STREAMING_HOOKS = ("DATA_CHUNK", "DATA_END", "DATA_ABORT")


class _Stream:
    """
    Where one message's body stands on its way to the handler.

    @ivar size: The octets given to the handler so far.
    @ivar over: Whether C{handle_DATA_END} or C{handle_DATA_ABORT} was
        called: no hook of the message is called any more.
    @ivar failure: The failure of a piece, to answer the end of the data
        with.
    """

    __slots__ = ("size", "over", "failure", "started")

    def __init__(self) -> None:
        self.started = False
        self.size = 0
        self.over = False
        self.failure: Failure | None = None


class _Streams(WeakKeyDictionary):  # type: ignore[type-arg]
    """
    The stream of each transaction of a connection, by envelope: a
    transaction that is forgotten takes its stream along.
    """


def streams(server: ServerCore) -> bool:
    """
    Whether the handler of C{server} takes bodies in pieces.
    """
    return "DATA_CHUNK" in server.config.hooks


def _streamOf(server: ServerCore, envelope: Any) -> _Stream:
    table = server.stateOf(_Streams, _Streams)
    stream = table.get(envelope)
    if stream is None:
        stream = table[envelope] = _Stream()
    return stream


def sendPiece(server: ServerCore, envelope: Any, data: bytes) -> Any:
    """
    Give the next piece of the body of C{envelope} to C{handle_DATA_CHUNK}.

    @return: What to wait for before reading more (a L{Deferred}), or
        C{None}. An exception of the hook never comes out: it ends the
        pieces (see the module docstring).
    """
    stream = _streamOf(server, envelope)
    if not stream.started:
        stream.started = True
        if server.config.received_header:
            data = _withReceived(server, envelope, data)
    if stream.over or not data:
        return None
    stream.size += len(data)
    try:
        result = server.hook("DATA_CHUNK", _ignored, data, stream.size)
    except Exception:
        _pieceFailed(Failure(), server, envelope, stream)
        return None
    if isinstance(result, Deferred):
        return result.addErrback(_pieceFailed, server, envelope, stream)
    return None


def endStream(server: ServerCore, envelope: Any, then: Any) -> Any:
    """
    The body of C{envelope} is complete: call C{handle_DATA_END} and pass
    its result to C{then}, as the reply to the message. If a piece failed,
    raise its exception instead, for the error policy to answer.
    """
    stream = _streamOf(server, envelope)
    stream.over = True
    failure, stream.failure = stream.failure, None
    if failure is not None:
        failure.raiseException()
    return server.hook("DATA_END", then, stream.size)


def abortStream(server: ServerCore, envelope: Any, reason: str | None = None) -> None:
    """
    The message of C{envelope} will not complete: tell C{handle_DATA_ABORT}
    why, unless the message ended already or its handler does not stream.

    @param reason: Why; by default, the connection's close reason when it
        is closing (C{"client gone"} when the client went away), else
        C{"reset"}.
    """
    if not streams(server):
        return
    table = server.stateOf(_Streams, None)
    stream = None if table is None else table.get(envelope)
    if stream is None or stream.over:
        return
    stream.over = True
    if reason is None:
        if server.closing or server.transport is None:
            reason = getattr(server, "closeReason", None) or "client gone"
        else:
            reason = "reset"
    if "DATA_ABORT" not in server.config.hooks:
        return
    try:
        result = server.hook("DATA_ABORT", _ignored, reason)
    except Exception:
        log.failure("handle_DATA_ABORT failed")
        return
    if isinstance(result, Deferred):
        result.addErrback(_abortFailed)


def _pieceFailed(failure: Failure, server: Any, envelope: Any, stream: _Stream) -> None:
    """
    A piece failed: no more pieces, the handler is told to clean up, and the
    end of the data will be answered with the failure.
    """
    if stream.over:
        return
    abortStream(server, envelope, "error")
    stream.failure = failure


def _withReceived(server: Any, envelope: Any, data: bytes) -> bytes:
    """
    The first piece of a message with its C{Received:} field before it,
    ended as the message's first line is (CRLF, or a bare LF).
    """
    field = receivedHeader(
        server, server.session, envelope, server.config.reactor.seconds()
    )
    end = data.find(b"\n")
    if end > 0 and data[end - 1 : end] != b"\r":
        field = field.replace("\r\n", "\n") + "\n"
    else:
        field += "\r\n"
    return field.encode("utf-8") + data


def _abortFailed(failure: Failure) -> None:
    log.failure("handle_DATA_ABORT failed", failure)


def _ignored(result: Any) -> None:
    return None
