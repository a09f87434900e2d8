# -*- test-case-name: tests.test_handlers,tests.test_mailboxstream -*-
"""
Writing messages into a Maildir durably, for
L{Mailbox <twisted_smtpd.handlers.Mailbox>}: whole (L{MaildirFile.write}
then L{MaildirFile.finish}) or piece by piece as the message streams in
(L{MessageStream}).

A message is written to C{tmp/}, flushed to disk, linked into C{new/} and
the directory flushed; if anything fails, nothing of it is left behind.
The file operations block: they run in the reactor's thread pool.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, DeferredLock

from twisted_smtpd._headers import HeaderSplicer

_deliveries = itertools.count(1)


def maildirName() -> str:
    """
    A unique file name for a new Maildir message, in the form the Maildir
    specification suggests: C{<seconds>.M<microseconds>P<pid>Q<count>.<host>}.
    """
    now = time.time()
    seconds = int(now)
    host = socket.gethostname().replace("/", r"\057").replace(":", r"\072")
    return (
        f"{seconds}.M{int((now - seconds) * 1e6)}P{os.getpid()}"
        f"Q{next(_deliveries)}.{host}"
    )


def fsyncDirectory(path: str) -> None:
    """
    Make the directory entries of C{path} durable (where the platform can).
    """
    flags = getattr(os, "O_DIRECTORY", None)
    if flags is None:
        return
    fd = os.open(path, os.O_RDONLY | flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class MaildirFile:
    """
    One message on its way into a Maildir. Its methods block (call them in a
    thread) and are called one at a time; after a failure, or after
    L{discard}, nothing of the message is left in the Maildir.

    @ivar name: The message's file name (its key in C{mailbox.Maildir}).
    """

    def __init__(self, path: str) -> None:
        """
        @param path: The Maildir's directory.
        """
        self.name = maildirName()
        self._tmp = os.path.join(path, "tmp", self.name)
        self._new = os.path.join(path, "new", self.name)
        self._fd: int | None = None
        self._created = False

    def write(self, data: bytes) -> None:
        """
        Append C{data} to the file in C{tmp/}, which the first call makes.

        @raise OSError: When it cannot be written; the file is removed.
        """
        if self._fd is None:
            # A name taken (EEXIST) is someone else's file: left alone.
            self._fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            self._created = True
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
        except BaseException:
            self.discard()
            raise

    def finish(self, data: bytes = b"") -> str:
        """
        Write the end of the message, flush it to disk and move it into
        C{new/}.

        @return: The message's name.
        @raise OSError: When that fails; nothing is left behind.
        """
        self.write(data)
        placed = False
        try:
            fd, self._fd = self._fd, None
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(self._tmp, self._new)
            except OSError as e:
                if e.errno == errno.EEXIST:
                    raise
                # A file system without hard links.
                os.rename(self._tmp, self._new)
                placed = True
            else:
                placed = True
                os.unlink(self._tmp)
            fsyncDirectory(os.path.dirname(self._new))
        except BaseException:
            self.discard()
            if placed:
                _removeQuietly(self._new)
            raise
        self._created = False
        return self.name

    def discard(self) -> None:
        """
        Close and remove the file in C{tmp/}, if there is one.
        """
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
        if self._created:
            self._created = False
            _removeQuietly(self._tmp)


def _removeQuietly(path: str) -> None:
    """
    Remove the file C{path} if it is there.
    """
    try:
        os.unlink(path)
    except OSError:
        pass


#: How many octets L{MessageStream} gathers before it writes them: a thread
#: hop per 256 KiB rather than per piece, and a small message is written
#: in one go at its end, as before streaming.
WRITE_SIZE = 256 * 1024


class MessageStream:
    """
    A message that streams into a Maildir piece by piece: the header fields
    are added as L{HeaderSplicer} does, pieces are gathered up to
    L{WRITE_SIZE} octets, and each write runs in a thread, in order, one at
    a time.
    """

    def __init__(
        self,
        path: str,
        headers: list[bytes],
        inThread: Callable[..., Deferred[Any]],
    ) -> None:
        """
        @param path: The Maildir's directory.
        @param headers: The header fields to add.
        @param inThread: Runs C{f(*args)} in a thread and returns a
            L{Deferred} for its result.
        """
        self._splicer = HeaderSplicer(headers)
        self._file = MaildirFile(path)
        self._inThread = inThread
        self._lock = DeferredLock()
        self._gathered = bytearray()

    def _run(self, f: Callable[..., Any], *args: Any) -> Deferred[Any]:
        """
        Run C{f(*args)} in a thread after every earlier operation.
        """
        return self._lock.run(self._inThread, f, *args)

    def write(self, data: bytes) -> Deferred[None] | None:
        """
        Take the next piece of the message.

        @return: C{None} when it was only held in memory, or a L{Deferred}
            that fires once what was gathered is written (or fails with the
            C{OSError}).
        """
        gathered = self._gathered
        gathered += self._splicer.feed(data)
        if len(gathered) < WRITE_SIZE:
            return None
        data = bytes(gathered)
        gathered.clear()
        return self._run(self._file.write, data)

    def end(self) -> Deferred[str]:
        """
        The message is complete: store it durably.

        @return: A L{Deferred} that fires with its name once it is in
            C{new/}, or fails with the C{OSError} that prevented it.
        """
        data = bytes(self._gathered) + self._splicer.finish()
        self._gathered.clear()
        return self._run(self._file.finish, data)

    def abort(self) -> Deferred[None]:
        """
        The message will not complete: remove what was written (after any
        write still running).
        """
        return self._run(self._file.discard)


#: The header field an L{Inbox <twisted_smtpd.handlers.Inbox>} kept in a
#: Maildir puts first in each file: the envelope as one line of JSON.
ENVELOPE_FIELD = b"X-Inbox-Envelope: "


def envelopeLine(facts: dict[str, Any]) -> bytes:
    """
    The header field that keeps a message's envelope facts in its file: one
    line (JSON with only ASCII, so no line break), ending with CRLF.

    @param facts: Values JSON can write (a peer that is not is written as
        its C{repr}).
    """
    text = json.dumps(facts, ensure_ascii=True, default=repr)
    return ENVELOPE_FIELD + text.encode("ascii") + b"\r\n"


def splitEnvelope(data: bytes) -> tuple[dict[str, Any] | None, bytes]:
    """
    Split a file written with L{envelopeLine} into its envelope facts and
    the message as it was received.

    @return: The facts (C{None} for a file without a readable envelope
        line, which is then the message whole) and the message.
    """
    if not data.startswith(ENVELOPE_FIELD):
        return None, data
    end = data.find(b"\n")
    if end < 0:
        return None, data
    try:
        facts = json.loads(data[len(ENVELOPE_FIELD) : end].rstrip(b"\r"))
    except ValueError:
        return None, data
    if not isinstance(facts, dict):
        return None, data
    return facts, data[end + 1 :]


def maildirMessages(path: str) -> list[tuple[str, float, bytes]]:
    """
    Make C{path} a Maildir if it is not one, and read the messages in its
    C{new/} and C{cur/}, oldest first (by modification time, then name).

    @return: For each message, its path, its modification time and its
        bytes; a file that vanishes or cannot be read is skipped.
    """
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    found = []
    for sub in ("new", "cur"):
        directory = os.path.join(path, sub)
        for name in os.listdir(directory):
            if name.startswith("."):
                continue
            filePath = os.path.join(directory, name)
            try:
                with open(filePath, "rb") as f:
                    mtime = os.fstat(f.fileno()).st_mtime
                    data = f.read()
            except OSError:
                continue
            found.append((mtime, name, filePath, data))
    found.sort(key=lambda entry: (entry[0], entry[1]))
    return [(filePath, mtime, data) for mtime, _, filePath, data in found]


def removeMessage(path: str) -> None:
    """
    Remove a message's file if it is there.
    """
    _removeQuietly(path)
