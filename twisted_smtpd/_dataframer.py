# -*- test-case-name: tests.test_dataframer -*-
"""
Pure framing of the SMTP DATA phase.

L{DataReceiver} is fed the raw chunks that arrive after the C{354} reply and
finds the end of the message, undoes dot-stuffing, enforces the size and
line-length limits and the bare CR/LF policy, all while streaming: bytes are
scanned a chunk at a time with C{bytes} methods (C{find}, C{split},
C{translate}…), never a Python call per line.

Only C{<CRLF>.<CRLF>} ends the data (RFC 5321 section 4.1.1.4). The data
stream is treated as if it were preceded by a CRLF, so that a first line
of C{"."} ends an empty message and a first line starting with a dot is
unstuffed like any other.
"""

from __future__ import annotations

import operator
import re

_END = b"\r\n.\r\n"
_STUFFED = b"\r\n."
_CRLF = b"\r\n"

#: A CR that is not followed by an LF, or an LF that does not follow a CR.
_BARE = re.compile(b"\r(?!\n)|(?<!\r)\n")

#: Tables for C{bytes.translate} that turn a chunk into a map of its CRs
#: and of its LFs: 1 where the chunk has one, 0 elsewhere.
_CR_MAP = bytes(octet == 13 for octet in range(256))
_LF_MAP = bytes(octet == 10 for octet in range(256))

#: Tails of a chunk that may be the start of C{_END}, longest first.
_PARTIAL_ENDS = (b"\r\n.\r", b"\r\n.", b"\r\n", b"\r")

#: The size from which a chunk is scanned in the ways that are fastest for
#: big chunks, at the cost of a few more calls: below it (a message of a
#: few KiB in one chunk), those calls would cost more than the scanning.
BIG_CHUNK = 16384

_startsLine = operator.methodcaller("startswith", _CRLF)


def _bigChunkHasBareNewline(chunk: bytes) -> bool:
    """
    Tell whether C{chunk}, a big one, holds a CR or an LF that is not part
    of a CRLF.

    Without a bare CR or LF, the map of LFs is the map of CRs shifted by
    one: two translations and a comparison are faster on a big chunk than
    counting CRs, LFs and CRLFs, the two-octet count being slow.
    """
    crs = chunk.translate(_CR_MAP)
    lfs = chunk.translate(_LF_MAP)
    return crs[-1:] == b"\x01" or lfs[:1] == b"\x01" or crs[:-1] != lfs[1:]


def _mayEnd(pieces: list[bytes]) -> bool:
    """
    Tell whether a chunk split at its CRLF-dots may hold C{<CRLF>.<CRLF>}:
    a piece after the first starts with CRLF, or is empty (the CRLF-dot
    that follows it took the CRLF). False only when it cannot.
    """
    rest = pieces[1:]
    return b"" in rest or any(map(_startsLine, rest))


#: The outcomes of L{DataReceiver.error}.
TOO_BIG = "too big"
LINE_TOO_LONG = "line too long"
BARE_NEWLINE = "bare newline"


class DataReceiver:
    """
    Frame one message of the DATA phase.

    Feed every chunk to L{feed} until it returns the bytes that followed the
    terminating C{<CRLF>.<CRLF>}; then L{error} says whether the message broke
    a limit and, if not, L{content} returns it.

    @ivar size: The size of the message received so far, after dot-unstuffing
        and including its line endings, as RFC 1870 counts it; it keeps
        counting after an error.
    @ivar error: C{None}, or one of L{TOO_BIG}, L{LINE_TOO_LONG} and
        L{BARE_NEWLINE} for the first limit the message broke: the one whose
        first offending octet (a bare CR or LF, the first octet of a line
        beyond the line limit, the first octet beyond the size limit) comes
        first in the stream, a tie going to L{BARE_NEWLINE}, then
        L{LINE_TOO_LONG}. It does not depend on how the stream was split
        into chunks. Once set, nothing more is stored, but the data is still
        read to its end.
    """

    __slots__ = (
        "_parts",
        "_pending",
        "_first",
        "_column",
        "_sizeLimit",
        "_lineLimit",
        "_allowBare",
        "size",
        "error",
    )

    def __init__(
        self,
        sizeLimit: int | None = None,
        lineLimit: int | None = None,
        allowBareNewline: bool = False,
    ) -> None:
        """
        @param sizeLimit: The largest message accepted, in octets after
            unstuffing; C{None} (or C{0}) for no limit.
        @param lineLimit: The longest line accepted, in octets as sent
            (dot-stuffing included) with its CRLF; C{None} (or C{0}) for no
            limit.
        @param allowBareNewline: Accept CR and LF that are not part of a CRLF
            and pass them on unchanged; when false, such a message is
            refused with L{BARE_NEWLINE}.
        """
        self._parts: list[bytes] = []
        # The virtual CRLF before the first line; dropped from the content,
        # and outside any line for the line limit.
        self._pending = _CRLF
        self._first = True
        self._column = -len(_CRLF)
        # None stands for no limit, as in the server's configuration.
        self._sizeLimit = sizeLimit or None
        self._lineLimit = lineLimit or None
        self._allowBare = allowBareNewline
        self.size = 0
        self.error: str | None = None

    def feed(self, data: bytes) -> bytes | None:
        """
        Take the next chunk of the DATA phase.

        @param data: Bytes as received from the transport.
        @return: C{None} while the message goes on; once the terminating
            C{<CRLF>.<CRLF>} was seen, the bytes that followed it (possibly
            empty), which belong to the command phase.
        """
        buf = self._pending + data if self._pending else data
        if len(buf) < BIG_CHUNK:
            pieces = None
            end = buf.find(_END)
        else:
            # The terminator starts like a stuffed line, so the pieces
            # between CRLF-dots, which unstuffing needs anyway, tell whether
            # to look for it: most big chunks have no such piece to look at.
            pieces = buf.split(_STUFFED)
            end = buf.find(_END) if len(pieces) > 1 and _mayEnd(pieces) else -1
        if end >= 0:
            self._pending = b""
            self._commit(buf[: end + 2])
            return buf[end + 5 :]
        for tail in _PARTIAL_ENDS:
            if buf.endswith(tail):
                cut = len(buf) - len(tail)
                self._pending = tail
                if cut:
                    self._commit(buf[:cut])
                return None
        self._pending = b""
        self._commit(buf, pieces)
        return None

    def content(self) -> bytes:
        """
        Return the message held, unstuffed: once L{feed} returned the rest,
        the whole message with its final CRLF.

        Call it once after the end, when L{error} is C{None}; a message
        handed on in pieces calls it for each piece too. What it returns is
        held no more, so that the message exists once in memory, and never
        whole when it goes in pieces.
        """
        parts = self._parts
        self._parts = []
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    def holding(self) -> int:
        """
        How many octets of the message are held, for L{content}.
        """
        return sum(map(len, self._parts))

    def _commit(self, chunk: bytes, pieces: list[bytes] | None = None) -> None:
        """
        Check and store a piece of data that cannot hold a partial
        terminator or a partial CRLF-dot sequence at its end.

        @param pieces: C{chunk} split at its CRLF-dots, if already done (for
            a big chunk).
        """
        skip = 0
        if self._first:
            # The virtual CRLF before the first line.
            self._first = False
            skip = 2
        if self.error is not None:
            stuffed = chunk.count(_STUFFED) if pieces is None else len(pieces) - 1
            self.size += len(chunk) - skip - stuffed
            return
        if pieces is None:
            content = chunk.replace(_STUFFED, _CRLF)
        else:
            # Joining the pieces is twice as fast as bytes.replace when many
            # lines are stuffed, and as fast when none is.
            content = _CRLF.join(pieces)
        before = self.size
        self.size += len(content) - skip
        error = self._firstError(chunk, skip, before)
        if error is not None:
            self.error = error
            self._parts = []
        elif len(content) > skip:
            self._parts.append(content[skip:] if skip else content)

    def _firstError(self, chunk: bytes, skip: int, before: int) -> str | None:
        """
        Find the limit that C{chunk} breaks first, in stream order.

        It is only called until an error is found, so the first limit broken
        in this chunk is the first of the message. Positions are compared as
        indexes into the unstuffed chunk (an offending octet is never a
        removed dot).

        @param chunk: The data, still dot-stuffed.
        @param skip: How many octets at the start of C{chunk} are not data
            (the virtual CRLF before the first line).
        @param before: The size of the message before C{chunk}.
        @return: L{BARE_NEWLINE}, L{LINE_TOO_LONG}, L{TOO_BIG} or C{None}.
        """
        found = []
        if not self._allowBare:
            if len(chunk) < BIG_CHUNK:
                crlf = chunk.count(_CRLF)
                bare = chunk.count(b"\n") != crlf or chunk.count(b"\r") != crlf
            else:
                bare = _bigChunkHasBareNewline(chunk)
            if bare:
                at = _BARE.search(chunk).start()
                found.append((at - chunk.count(_STUFFED, 0, at), 0, BARE_NEWLINE))
        if self._lineLimit is not None:
            at = self._checkLines(chunk)
            if at >= 0:
                found.append((at - chunk.count(_STUFFED, 0, at), 1, LINE_TOO_LONG))
        limit = self._sizeLimit
        if limit is not None and self.size > limit:
            # At the first octet beyond the limit, as an index into the
            # unstuffed chunk.
            found.append((skip + limit - before, 2, TOO_BIG))
        return min(found)[2] if found else None

    def _checkLines(self, chunk: bytes) -> int:
        """
        Find the first octet of C{chunk} beyond the line limit, lines being
        counted from the last line end of earlier chunks.

        Each C{rfind} looks for the last LF within one limit's reach, so a
        chunk costs about one call per C{lineLimit} octets, not one per line.

        @return: The index of that octet, or C{-1}. A line that is exactly at
            the limit at the end of C{chunk} is reported at index 0 of the
            next chunk, where its next octet is.
        """
        limit = self._lineLimit
        pos = 0
        column = self._column
        size = len(chunk)
        while True:
            reach = pos + limit - column
            if reach >= size:
                # The limit lies beyond this chunk: remember where the
                # current line started.
                last = chunk.rfind(b"\n", pos)
                self._column = size - last - 1 if last >= 0 else column + size - pos
                return -1
            last = chunk.rfind(b"\n", pos, reach)
            if last < 0:
                return reach
            pos = last + 1
            column = 0
