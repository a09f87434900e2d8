# -*- test-case-name: tests.test_channel -*-
"""
What one connection reads: the bytes received, framed by the current input
mode, and reading paused while the server works or the client does not
read its replies.

What a connection reads next is always exactly one L{InputMode
<twisted_smtpd._interfaces.InputMode>}: a command line, the answer to a
challenge, message data, a PROXY header, or nothing while a command or hook
works. The unread bytes are kept here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from twisted_smtpd._hooks import DONE, settle
from twisted_smtpd._interfaces import InputMode
from twisted_smtpd._lines import ANSWER, COMMAND, OVERLONG
from twisted_smtpd._replywriter import ReplyWriter

#: In a mode that reads a stream of bytes rather than lines (message data),
#: the idle clock starts again once for every this many bytes received, not
#: for every chunk: a message flowing at 64 KiB per C{timeout} or faster is
#: never cut, a client trickling bytes or short lines is.
PROGRESS_BYTES = 64 * 1024

#: The modes that skip the rest of a line too long to be read.
_SKIP_COMMAND = COMMAND.skipping
_SKIP_ANSWER = ANSWER.skipping


class _Waiting:
    """
    The mode of a connection that reads nothing while the server works: a
    command or a hook is not done, or C{handle_PROXY} decides.
    """

    reads = False
    timed = False
    streamed = False

    def frame(self, data: bytes, start: int, config: Any) -> tuple[Any, int]:
        return None, start

    def act(self, server: Any, unit: Any) -> None:
        pass


WAITING = _Waiting()


class Channel(ReplyWriter):
    """
    Read through input modes, wait for work in progress, and pause and
    resume the transport.

    A subclass provides C{config} (the options), the idle timer's
    C{timeoutConnection} and C{_failed}, which turns exceptions into
    replies.
    """

    _mode: InputMode = COMMAND
    _unread = b""
    _offset = 0
    _pending = False
    _answer: Deferred | None = None
    _writePaused = False
    _readPaused = False
    # The mode to go back to once the work that stopped reading is done.
    _resumeMode: InputMode = COMMAND
    # Bytes received in a streamed mode since its clock last started.
    _streamed = 0

    # Input.

    def dataReceived(self, data: bytes) -> None:
        """
        Take bytes from the transport and read them in the current mode.

        The idle clock does not start again for every chunk, which would
        let a client hold the connection with a byte now and then
        (slowloris): a command line or an answer must be complete within
        C{timeout} of its first byte, and message data must bring
        L{PROGRESS_BYTES} within each C{timeout}.
        """
        if self._closing:
            # After the last reply (a TLS transport goes on reading until
            # the client's close_notify): nothing more is kept.
            return
        unread = self._unread
        mode = self._mode
        if unread:
            self._unread = unread[self._offset :] + data
            self._offset = 0
        else:
            self._unread = data
        if mode.streamed:
            streamed = self._streamed + len(data)
            if streamed >= PROGRESS_BYTES:
                streamed %= PROGRESS_BYTES
                self._clockStarts()
            self._streamed = streamed
            self._process()
        else:
            # A unit begins unless bytes of one were left, or the rest of a
            # line too long (which leaves none) is being skipped.
            self._process(
                not unread and mode is not _SKIP_COMMAND and mode is not _SKIP_ANSWER
            )

    def _process(self, begun: bool = False) -> None:
        """
        Read the unread bytes, one unit at a time in whatever mode each
        unit leaves the connection, until they are used up or the mode
        reads no more; then write the replies of the whole batch at once.

        @param begun: Whether the bytes just received begin a unit, whose
            time then starts now.
        """
        if self._busy:
            return
        self._busy = True
        config = self.config
        ended = False
        try:
            while not (self._writePaused or self._closing):
                mode = self._mode
                data = self._unread
                start = self._offset
                if not mode.reads or start >= len(data):
                    break
                unit, end = mode.frame(data, start, config)
                # Stored before acting: the act may drop what is unread
                # (STARTTLS), or more may arrive while it runs.
                self._offset = end
                if unit is not None:
                    # The start of a line too long is not the end of a unit.
                    ended = ended or unit is not OVERLONG
                    mode.act(self, unit)
                elif end == start:
                    break
        finally:
            self._busy = False
            if self._closing:
                # After the last reply nothing more is read, nor kept.
                self._unread, self._offset = b"", 0
            else:
                if self._offset:
                    self._unread = self._unread[self._offset :]
                    self._offset = 0
                if ended or begun:
                    # A unit ended, or the first bytes of one arrived: the
                    # time of the next one (or the idle time before it)
                    # starts now. (_clockStarts, inlined: this runs for
                    # every chunk.)
                    idle = config.idle
                    if (
                        idle is not None
                        and self._mode.timed
                        and not self._handshakePending
                    ):
                        idle.touch(self)
            self.flush()

    def _clockStarts(self) -> None:
        """
        Start the idle clock again from now, if it runs in the current mode,
        the connection is open and no TLS handshake (which has its own
        deadline) is under way.
        """
        idle = self.config.idle
        if (
            idle is not None
            and self._mode.timed
            and not (self._handshakePending or self._closing)
        ):
            idle.touch(self)

    def setMode(self, mode: InputMode) -> None:
        """
        Read the following bytes in C{mode}.
        """
        old = self._mode
        self._mode = mode
        self._streamed = 0
        if mode.reads != old.reads or mode.timed != old.timed:
            self._waitingChanged()

    def dropUnread(self) -> None:
        """
        Forget the bytes received and not read yet.
        """
        self._unread, self._offset = b"", 0

    # Flow control: reading pauses while the mode reads nothing (a command
    # or hook works) or while the client does not read our replies.

    def _canRead(self) -> bool:
        return self._mode.reads and not self._writePaused and not self._closing

    def _waitingChanged(self) -> None:
        """
        What the server waits for changed (a hook started or finished, a
        challenge awaits the client's answer): pause or resume reading and
        the idle clock to match.
        """
        self._updateReading()
        # The idle clock runs only while the server waits for the client
        # (RFC 5321 section 4.5.3.2.7): a hook still working is the server's
        # time, and a 421 after the end of the data, while handle_DATA
        # delivers, would make the client send the message again.
        idle = self.config.idle
        if idle is not None and not self._closing:
            if self._mode.timed:
                self._clockStarts()
            else:
                idle.forget(self)

    def _updateReading(self) -> None:
        """
        Pause or resume the transport to match what the state allows.
        """
        # During a TLS handshake the transport must go on reading, even if
        # the TLS layer holds back our greeting until it is done.
        paused = not self._canRead() and not self._handshakePending
        if paused != self._readPaused and not self._closing:
            self._readPaused = paused
            if paused:
                self.transport.pauseProducing()
            else:
                self.transport.resumeProducing()

    def pauseProducing(self) -> None:
        """
        The transport's write buffer is full: stop reading.
        """
        self._writePaused = True
        self._updateReading()

    def resumeProducing(self) -> None:
        """
        The transport's write buffer drained: read again.
        """
        self._writePaused = False
        self._updateReading()
        self._process()

    def stopProducing(self) -> None:
        """
        The transport is going away.
        """
        self._closing = True

    # Waiting for work: reading stops while a command or hook works.

    def run(self, call: Callable[..., Any], *args: Any, errorReplies: int = 1) -> None:
        """
        Run a command or a step of one: an exception becomes a reply (as
        many as C{errorReplies}, for LMTP's one per recipient), and a result
        that is still pending stops reading until it is there.
        """
        try:
            result = call(*args)
            if result is None or result is DONE:
                # Done already: the common case, and the cheapest test
                # (Deferred's isinstance goes through its ABC).
                return
            result = settle(result, self.config.asyncioLoop)
        except Exception:
            result = self._failed(Failure(), errorReplies)
        if isinstance(result, Deferred):
            self._wait(result, errorReplies)

    def _wait(self, pending: Deferred, errorReplies: int) -> None:
        """
        Stop reading until C{pending} fires, unless it waits for the client
        (a challenge's answer); then go on with what is unread, in the mode
        that was left: commands, or a message whose piece a handler takes.
        """
        self._pending = True
        mode = self._mode
        if mode is COMMAND or mode.streamed:
            self._resumeMode = mode
            self.setMode(WAITING)
        pending.addErrback(self._failed, errorReplies).addBoth(self._resume)

    def _resume(self, ignored: Any) -> None:
        self._pending = False
        if self._mode is WAITING:
            self.setMode(self._resumeMode)
        self.flush()
        self._process()

    def _failed(self, failure: Failure, errorReplies: int = 1) -> Any:
        """
        Turn an exception in a command or a hook into C{errorReplies}
        replies; the layer above says how.
        """
        raise NotImplementedError()

    def awaitable(self, d: Deferred) -> Any:
        """
        Make C{d} awaitable where hooks run: as is when Twisted drives
        coroutines, as an asyncio future when they run as asyncio tasks
        (which cannot wait on a L{Deferred}).
        """
        loop = self.config.asyncioLoop
        return d if loop is None else d.asFuture(loop)

    # Waiting for the client's answer to a challenge.

    def readAnswer(self) -> Deferred:
        """
        Send the queued replies (the challenge) and read the client's
        answer: one line, which is not a command (RFC 4954 section 4).

        @return: A L{Deferred} firing with the line without its line end,
            or with C{None} if it was too long (the client got C{500}) or
            the connection was lost.
        """
        self.flush()
        waiter = self._answer = Deferred()
        self.setMode(ANSWER)
        return waiter

    def answerReceived(self, line: bytes | None) -> None:
        """
        Deliver the answer to a challenge; reading stops again if the
        command that asked still works.
        """
        waiter, self._answer = self._answer, None
        if not self._closing:
            self.setMode(WAITING if self._pending else COMMAND)
        if waiter is not None:
            waiter.callback(line)
