# -*- test-case-name: tests.test_chunking -*-
"""
CHUNKING and BINARYMIME (RFC 3030) as a command group: C{BDAT <size>
[LAST]} sends the message in chunks of a declared size, read in raw mode
(no dot-stuffing, any octets, no line rules), each answered on its own;
after the chunk marked C{LAST}, the message goes to C{handle_DATA} exactly
as after DATA, through the transaction's end of the message.

The size of a chunk is known before its first octet, so a chunk is always
read to its end, even when the command is refused: no octet of it is ever
taken for a command. Only a size that cannot be parsed leaves the server
without a way to find the end, and closes the connection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from weakref import WeakKeyDictionary

from twisted_smtpd._interfaces import ServerCore
from twisted_smtpd._lines import COMMAND
from twisted_smtpd._policy import refuseUnknownVerb
from twisted_smtpd._streaming import PIECE_SIZE, abortStream, sendPiece
from twisted_smtpd._syntax import syntax
from twisted_smtpd._verbs import CommandGroup, carries, verb

_SYNTAX = "501 5.5.4 Syntax: BDAT <size> [LAST]"

#: The unit of a piece of a chunk to hand on before the chunk's end.
_PIECE = object()
_TOO_BIG = "552 Error: Too much mail data"


def chunkingOffered(server: ServerCore) -> bool:
    """
    Whether the server offers CHUNKING: the C{chunking} option is on and the
    server class runs the built-in DATA, which BDAT shares the end of the
    message with (a subclass's own C{smtp_DATA} would be bypassed).
    """
    config = server.config
    if not config.chunking:
        return False
    key = ("chunking", type(server))
    offered = config.memo.get(key)
    if offered is None:
        data = getattr(type(server), "smtp_DATA", None)
        builtin = getattr(data, "__smtp_command__", None) is not None
        offered = config.memo[key] = builtin
    return offered


class _Chunks:
    """
    The chunks of one transaction received so far.
    """

    __slots__ = ("parts", "size", "__weakref__")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0


def _chunksOf(server: ServerCore, make: bool) -> Any:
    """
    The chunks received by transaction (by envelope) on this connection;
    a transaction that ends or is reset takes its chunks with its envelope.
    """
    return server.stateOf(_Chunks, WeakKeyDictionary if make else None)


def chunksInProgress(server: ServerCore) -> bool:
    """
    Whether BDAT chunks of the current transaction were received and its
    last one is still to come: a shutdown lets the transaction end.
    """
    chunks = _chunksOf(server, False)
    if not chunks or getattr(server.envelope, "mail_from", None) is None:
        return False
    return chunks.get(server.envelope) is not None


def dataRefusal(server: ServerCore, envelope: Any) -> str | None:
    """
    The reply refusing DATA in a transaction that only BDAT may carry: one
    opened with C{BODY=BINARYMIME}, or one that BDAT already began.
    """
    options = envelope.mail_options
    if options and "BODY=BINARYMIME" in options:
        return "503 5.5.1 Error: BODY=BINARYMIME requires BDAT"
    chunks = server.stateOf(_Chunks, None)
    if chunks is not None and envelope in chunks:
        return "503 5.5.1 Error: DATA after BDAT"
    return None


def parseBDAT(arg: str | None) -> tuple[int | None, bool | None]:
    """
    Parse the argument of BDAT (RFC 3030 section 2: C{chunk-size [SP
    "LAST"]}).

    @return: The size, or C{None} if it does not parse; and whether the
        chunk is the last one, or C{None} if what follows the size is not
        C{LAST}.
    """
    words = (arg or "").split()
    if not words or not (words[0].isascii() and words[0].isdigit()):
        return None, None
    size = int(words[0])
    if len(words) == 1:
        return size, False
    if len(words) == 2 and words[1].upper() == "LAST":
        return size, True
    return size, None


class ChunkData:
    """
    The input mode that reads one BDAT chunk: exactly C{size} octets,
    whatever they are, kept or dropped as they come.
    """

    __slots__ = ("_left", "_parts", "_received", "_errorReplies", "_piece")

    reads = True
    timed = True

    #: The idle clock starts again for every
    #: L{PROGRESS_BYTES <twisted_smtpd._channel.PROGRESS_BYTES>}, as for
    #: DATA: a chunk of any size must keep flowing.
    streamed = True

    def __init__(
        self,
        size: int,
        received: Callable[[ServerCore, list[bytes] | None], Any] | None,
        keep: bool = True,
        errorReplies: int = 1,
        piece: Callable[[ServerCore, bytes], Any] | None = None,
    ) -> None:
        """
        @param size: The octets to read, at least one.
        @param received: Called with the connection and the chunk's pieces
            (C{None} if not kept) once it is read, as a command step (see
            C{ServerCore.run}); C{None} to just drop the chunk.
        @param keep: Whether to keep the octets, or drop them as they come.
        @param errorReplies: How many replies an exception in C{received}
            gets: one per recipient after LMTP's last chunk.
        @param piece: For a message handed on in pieces (and a chunk kept):
            called with the connection and each piece of about
            L{PIECE_SIZE} octets as it arrives, as a command step (reading
            waits for what it returns); C{received} gets the rest.
        """
        self._piece = piece
        self._left = size
        self._parts: list[bytes] | None = [] if keep else None
        self._received = received
        self._errorReplies = errorReplies

    def frame(self, data: bytes, start: int, config: Any) -> tuple[Any, int]:
        """
        Take what belongs to the chunk; the unit is this mode once all of
        it is read.
        """
        end = min(len(data), start + self._left)
        parts = self._parts
        if parts is not None:
            parts.append(data if start == 0 and end == len(data) else data[start:end])
        self._left -= end - start
        if self._left:
            if self._piece is not None and parts and sum(map(len, parts)) >= PIECE_SIZE:
                return _PIECE, end
            return None, end
        return self, end

    def act(self, server: ServerCore, unit: Any) -> None:
        """
        Hand a piece on; or read commands again (the bytes after the chunk,
        in the same read too), and hand the chunk on.
        """
        if unit is _PIECE:
            data = b"".join(self._parts)
            self._parts = []
            server.run(self._piece, server, data)
            return
        server.setMode(COMMAND)
        if self._received is not None:
            server.run(
                self._received, server, self._parts, errorReplies=self._errorReplies
            )


def _refusedBeforeRunning(server: ServerCore, arg: str | None, reply: str) -> None:
    """
    Refuse a BDAT that the policy refused before it ran (C{530} before
    STARTTLS, C{554} after a refusal of the session...) with C{reply}, and
    drop its chunk; without a size to tell where the chunk ends, close the
    connection with that reply.
    """
    size, _ = parseBDAT(arg)
    if size is None:
        server.disconnect(reply)
        return
    server.reply(reply)
    if size:
        server.setMode(ChunkData(size, None, keep=False))


class Chunking(CommandGroup):
    """
    BDAT; the EHLO keywords CHUNKING and, when 8-bit data is accepted,
    BINARYMIME (RFC 3030). The message ends through the transaction
    group's C{messageComplete} or C{endMessage}, as with DATA.
    """

    def __init__(self, transaction: Any) -> None:
        """
        @param transaction: The transaction group (a
            L{twisted_smtpd._transaction.Transaction}) of the same server
            class, which ends the message.
        """
        self._transaction = transaction

    def keywords(self, server: ServerCore) -> list[str]:
        if not chunkingOffered(server):
            return []
        if server.config.eightBitMIME:
            return ["CHUNKING", "BINARYMIME"]
        return ["CHUNKING"]

    def _refusal(self, server: ServerCore, last: bool | None) -> str | None:
        """
        The reply refusing a BDAT whose size parses, if it is refused.
        """
        if last is None:
            return _SYNTAX
        if not server.session.host_name:
            return f"503 Error: send {server.helloVerb} first"
        envelope = server.envelope
        if envelope.mail_from is None:
            return "503 Error: need MAIL command"
        if not envelope.rcpt_tos:
            return "503 Error: need RCPT command"
        return None

    @verb("BDAT")
    @carries(_refusedBeforeRunning)
    @syntax("BDAT <size> [LAST]", when=chunkingOffered)
    def bdat(self, server: ServerCore, arg: str | None) -> Any:
        """
        Receive one chunk of the message (RFC 3030 section 2).
        """
        if not chunkingOffered(server):
            refuseUnknownVerb(server, "BDAT")
            return None
        size, last = parseBDAT(arg)
        if size is None:
            # Where the chunk ends is unknown: nothing more can be read.
            server.disconnect(_SYNTAX)
            return None
        refused = self._refusal(server, last)
        if refused is not None:
            server.reply(refused)
            if size:
                server.setMode(ChunkData(size, None, keep=False))
            return None
        chunks = _chunksOf(server, True)
        envelope = server.envelope
        state = chunks.get(envelope)
        if state is None:
            state = chunks[envelope] = _Chunks()
        limit = server.config.data_size_limit
        keep = limit is None or state.size + size <= limit

        def received(server: ServerCore, parts: list[bytes] | None) -> Any:
            return self._chunkReceived(server, state, size, bool(last), parts)

        errorReplies = 1
        if last and self._transaction.repliesPerRecipient:
            errorReplies = len(envelope.rcpt_tos)
        piece = None
        if keep and "DATA_CHUNK" in server.config.hooks:

            def piece(server: ServerCore, data: bytes) -> Any:
                return sendPiece(server, envelope, data)

        if size:
            server.setMode(ChunkData(size, received, keep, errorReplies, piece))
        else:
            # Nothing to read: the chunk is there already.
            server.run(received, server, [], errorReplies=errorReplies)
        return None

    def _chunkReceived(
        self,
        server: ServerCore,
        state: _Chunks,
        size: int,
        last: bool,
        parts: list[bytes] | None,
    ) -> Any:
        """
        Keep a chunk, or refuse it with C{552} and end the transaction if it
        was too big (C{parts} is C{None}); after the last chunk, hand the
        message on.
        """
        state.size += size
        envelope = server.envelope
        if parts is None:
            del state.parts[:]
            abortStream(server, envelope, "too big")
            # After a chunk that is not the last one the client expects one
            # reply, even from LMTP.
            replies = len(envelope.rcpt_tos) if last else 1
            return self._transaction.endMessage(
                server, envelope, state.size, _TOO_BIG, replies
            )
        if "DATA_CHUNK" in server.config.hooks:
            return self._pieceReceived(server, envelope, state, size, last, parts)
        state.parts.extend(parts)
        if not last:
            server.reply(f"250 OK: {size} octets received")
            return None
        content = b"".join(state.parts)
        del state.parts[:]
        return self._transaction.messageComplete(server, content, state.size)

    def _pieceReceived(
        self,
        server: ServerCore,
        envelope: Any,
        state: _Chunks,
        size: int,
        last: bool,
        parts: list[bytes],
    ) -> Any:
        """
        Hand the rest of a chunk to a handler that takes messages in pieces
        (see L{twisted_smtpd._streaming}); reply once it took it, or end the
        message after the last chunk.
        """
        rest = b"".join(parts)
        if last:
            return self._transaction.streamComplete(server, envelope, rest, state.size)

        def reply(ignored: Any = None) -> None:
            server.reply(f"250 OK: {size} octets received")

        pending = sendPiece(server, envelope, rest)
        return reply() if pending is None else pending.addCallback(reply)
