"""
Tests for the streaming of L{twisted_smtpd.handlers.Mailbox}
(C{handle_DATA_CHUNK}, C{handle_DATA_END}, C{handle_DATA_ABORT}) and for
L{twisted_smtpd._maildir}: the hooks called directly, with real files in a
temporary Maildir.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import Clock, deferLater
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests._support import listen, rawConnect, readReplies, smtpClient
from tests.test_handlers import transaction
from twisted_smtpd import Envelope, Session, _maildir
from twisted_smtpd._config import findHooks
from twisted_smtpd._headers import withHeaders
from twisted_smtpd.handlers import Mailbox
from twisted_smtpd.testing import Reply, SMTPTester

#: A message with a header section and a body.
SAMPLE = b"From: anne@example.com\r\nSubject: hi\r\n\r\nBody.\r\n\r\nMore.\r\n"

#: The fields added for L{envelope}'s message from L{session}.
FIELDS = (
    b"X-Peer: ('192.0.2.1', 4321)\r\nX-MailFrom: anne@example.com\r\n"
    b"X-RcptTo: bart@example.com, cleo@example.com\r\n"
)


def withFields(data: bytes) -> bytes:
    """
    The CRLF message C{data} with L{FIELDS} at the end of its header section.
    """
    return data.replace(b"\r\n\r\n", b"\r\n" + FIELDS + b"\r\n", 1)


class SyncPool:
    """
    A thread pool that runs each call at once, in the calling thread.
    """

    def callInThreadWithCallback(
        self, onResult: Callable[[bool, Any], None], f: Any, *args: Any
    ) -> None:
        try:
            result = f(*args)
        except BaseException:
            onResult(False, Failure())
        else:
            onResult(True, result)


class ManualPool:
    """
    A thread pool that runs calls only when told, in order.

    @ivar calls: The calls not run yet.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def callInThreadWithCallback(
        self, onResult: Callable[[bool, Any], None], f: Any, *args: Any
    ) -> None:
        self.calls.append((onResult, f, args))

    def runAll(self) -> None:
        """
        Run every call waiting, and those they cause.
        """
        while self.calls:
            onResult, f, args = self.calls.pop(0)
            SyncPool().callInThreadWithCallback(onResult, f, *args)


class FakeReactor:
    """
    Just what C{deferToThreadPool} needs of a reactor.
    """

    def __init__(self, pool: Any = None) -> None:
        self.pool = SyncPool() if pool is None else pool

    def getThreadPool(self) -> Any:
        return self.pool

    def callFromThread(self, f: Callable[..., Any], *args: Any) -> None:
        f(*args)


def session() -> Session:
    """
    A session from a client at 192.0.2.1.
    """
    result = Session()
    result.peer = ("192.0.2.1", 4321)
    return result


def envelope() -> Envelope:
    """
    A transaction from anne@example.com to two recipients.
    """
    result = Envelope()
    result.mail_from = "anne@example.com"
    result.rcpt_tos = ["bart@example.com", "cleo@example.com"]
    return result


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    """
    C{data} cut at the offsets C{cuts} (taken modulo its length).
    """
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False)]


#: Messages made of the bytes that matter to the header section's end and
#: of arbitrary octets, CRLF or LF alike.
MESSAGES = st.lists(
    st.one_of(
        st.sampled_from([b"\r\n", b"\n", b"\r", b"A: b", b"\r\n\r\n", b"\n\n"]),
        st.binary(max_size=30),
    ),
    max_size=30,
).map(b"".join)


class MailboxStreamTests(SynchronousTestCase):
    """
    Tests for the streaming hooks of L{Mailbox}, with a thread pool that runs
    each write at once (or when told), and every piece written as it comes
    (L{_maildir.WRITE_SIZE} of 1).
    """

    def setUp(self) -> None:
        self.patch(_maildir, "WRITE_SIZE", 1)
        self.path = self.mktemp()
        self.pool = ManualPool()
        self.handler = Mailbox(self.path, reactor=FakeReactor())
        self.session = session()

    def files(self, sub: str) -> list[bytes]:
        """
        The contents of the files in C{sub} of the Maildir, sorted.
        """
        folder = os.path.join(self.path, sub)
        result = []
        for name in sorted(os.listdir(folder)):
            with open(os.path.join(folder, name), "rb") as f:
                result.append(f.read())
        return result

    def clear(self) -> None:
        """
        Remove every message of the Maildir.
        """
        for sub in ("tmp", "new"):
            for name in os.listdir(os.path.join(self.path, sub)):
                os.unlink(os.path.join(self.path, sub, name))

    def stream(self, data: list[bytes], env: Envelope | None = None) -> Any:
        """
        Stream the pieces C{data} in and end the message.

        @return: What the Deferred of C{handle_DATA_END} fired with.
        """
        env = envelope() if env is None else env
        size = 0
        for piece in data:
            size += len(piece)
            result = self.handler.handle_DATA_CHUNK(
                None, self.session, env, piece, size
            )
            if result is not None:
                self.assertIsNone(self.successResultOf(result))
        return self.successResultOf(
            self.handler.handle_DATA_END(None, self.session, env, size)
        )

    def buffered(self, data: bytes) -> bytes:
        """
        What the buffered path (C{handle_DATA}) stores for C{data}; the
        Maildir is left empty.
        """
        env = envelope()
        env.original_content = env.content = data
        coroutine = self.handler.handle_DATA(None, self.session, env)
        self.assertEqual(self.successResultOf(ensureDeferred(coroutine)), "250 OK")
        [stored] = self.files("new")
        self.clear()
        return stored

    @settings(
        max_examples=300,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
        deadline=None,
    )
    @given(MESSAGES, st.lists(st.integers(min_value=0), max_size=10))
    def test_sameAsBuffered(self, data: bytes, cuts: list[int]) -> None:
        """
        However the message is cut into pieces, the file in C{new/} holds
        exactly what the buffered path stores, and C{tmp/} is empty.
        """
        expected = self.buffered(data)
        self.assertEqual(self.stream(pieces(data, cuts)), "250 OK")
        self.assertEqual(self.files("new"), [expected])
        self.assertEqual(self.files("tmp"), [])
        self.clear()

    def test_fields(self) -> None:
        """
        The fields go at the end of the header section, with the message's
        line ending, even when its empty line is split across pieces.
        """
        self.stream([SAMPLE[:37], SAMPLE[37:39], SAMPLE[39:]])
        head, body = SAMPLE.split(b"\r\n\r\n", 1)
        self.assertEqual(self.files("new"), [head + b"\r\n" + FIELDS + b"\r\n" + body])
        self.clear()
        lf = SAMPLE.replace(b"\r\n", b"\n")
        self.stream([lf[:35], lf[35:36], lf[36:]])
        head, body = lf.split(b"\n\n", 1)
        fields = FIELDS.replace(b"\r\n", b"\n")
        self.assertEqual(self.files("new"), [head + b"\n" + fields + b"\n" + body])

    def test_emptyMessage(self) -> None:
        """
        A message of no octets (no piece before the end) is stored as the
        three fields alone.
        """
        self.assertEqual(self.buffered(b""), FIELDS)
        self.assertEqual(self.stream([]), "250 OK")
        self.assertEqual(self.files("new"), [FIELDS])

    def test_noEmptyLine(self) -> None:
        """
        A short message without an empty line gets the fields at its end, as
        the buffered path adds them; one without an empty line in its first
        MiB gets them at its start, and is never held whole.
        """
        self.stream([b"Subject: x\r\n", b"A: b"])
        self.assertEqual(self.files("new"), [b"Subject: x\r\nA: b\r\n" + FIELDS])
        self.clear()
        line = b"X-Long: " + b"x" * 1000 + b"\r\n"
        data = [line * 64] * 20
        env = envelope()
        writes = 0
        for piece in data:
            if self.handler.handle_DATA_CHUNK(None, self.session, env, piece, 0):
                writes += 1
        # Held for the first MiB only.
        self.assertEqual(writes, 20 - 16)
        self.successResultOf(self.handler.handle_DATA_END(None, self.session, env, 0))
        self.assertEqual(self.files("new"), [FIELDS + b"".join(data)])

    def test_fileOnFirstWrite(self) -> None:
        """
        The file in C{tmp/} is made by the first write (once the header
        section is complete), with mode 600, and moves to C{new/} at the end.
        """
        env = envelope()
        self.assertIsNone(
            self.handler.handle_DATA_CHUNK(None, self.session, env, b"A: b\r\n", 6)
        )
        self.assertEqual(self.files("tmp"), [])
        d = self.handler.handle_DATA_CHUNK(None, self.session, env, b"\r\nbody", 12)
        self.successResultOf(d)
        self.assertEqual(self.files("tmp"), [b"A: b\r\n" + FIELDS + b"\r\nbody"])
        [name] = os.listdir(os.path.join(self.path, "tmp"))
        self.assertRegex(name, r"^\d+\.M\d+P\d+Q\d+\.[^/:]+$")
        mode = os.stat(os.path.join(self.path, "tmp", name)).st_mode
        self.assertEqual(mode & 0o777, 0o600)
        self.successResultOf(self.handler.handle_DATA_END(None, self.session, env, 12))
        self.assertEqual(os.listdir(os.path.join(self.path, "new")), [name])
        self.assertEqual(self.files("tmp"), [])

    def test_backPressure(self) -> None:
        """
        The Deferred of a piece fires only once it is written; the end
        waits for the writes before it.
        """
        self.handler = Mailbox(self.path, reactor=FakeReactor(self.pool))
        env = envelope()
        d = self.handler.handle_DATA_CHUNK(None, self.session, env, SAMPLE, 10)
        self.assertNoResult(d)
        end = self.handler.handle_DATA_END(None, self.session, env, 10)
        self.assertEqual(len(self.pool.calls), 1)
        self.pool.runAll()
        self.successResultOf(d)
        self.assertEqual(self.successResultOf(end), "250 OK")
        self.assertEqual(len(self.files("new")), 1)

    def test_abort(self) -> None:
        """
        An abort removes the file in C{tmp/} and leaves nothing in
        C{new/}; a later abort or a new message of the same client are
        unaffected.
        """
        env = envelope()
        d = self.handler.handle_DATA_CHUNK(None, self.session, env, SAMPLE, 10)
        self.successResultOf(d)
        self.assertEqual(len(self.files("tmp")), 1)
        self.assertIsNone(
            self.handler.handle_DATA_ABORT(None, self.session, env, "too big")
        )
        self.assertEqual(self.files("tmp"), [])
        self.assertEqual(self.files("new"), [])
        self.handler.handle_DATA_ABORT(None, self.session, env, "client gone")
        self.assertEqual(self.stream([SAMPLE]), "250 OK")
        self.assertEqual(len(self.files("new")), 1)

    def test_abortWhileWriting(self) -> None:
        """
        An abort that comes while a write runs removes the file after it.
        """
        self.handler = Mailbox(self.path, reactor=FakeReactor(self.pool))
        env = envelope()
        d = self.handler.handle_DATA_CHUNK(None, self.session, env, SAMPLE, 10)
        self.handler.handle_DATA_ABORT(None, self.session, env, "client gone")
        self.assertEqual(len(self.pool.calls), 1)
        self.pool.runAll()
        self.successResultOf(d)
        self.assertEqual(self.files("tmp"), [])
        self.assertEqual(self.files("new"), [])

    def test_abortBeforeWrite(self) -> None:
        """
        An abort while the header section is still held writes nothing.
        """
        env = envelope()
        self.handler.handle_DATA_CHUNK(None, self.session, env, b"A: b\r\n", 6)
        self.handler.handle_DATA_ABORT(None, self.session, env, "reset")
        self.assertEqual(self.files("tmp"), [])
        self.assertEqual(self.files("new"), [])

    def test_tmpMissing(self) -> None:
        """
        When C{tmp/} is not a directory, the first write fails with the
        C{OSError}; the abort that follows leaves nothing behind.
        """
        tmp = os.path.join(self.path, "tmp")
        shutil.rmtree(tmp)
        with open(tmp, "wb"):
            pass
        env = envelope()
        d = self.handler.handle_DATA_CHUNK(None, self.session, env, SAMPLE, 10)
        self.failureResultOf(d, NotADirectoryError)
        self.handler.handle_DATA_ABORT(None, self.session, env, "error")
        self.assertEqual(self.files("new"), [])
        # An empty message fails at the end instead.
        d = self.handler.handle_DATA_END(None, self.session, envelope(), 0)
        self.failureResultOf(d, NotADirectoryError)
        self.assertEqual(self.files("new"), [])

    def test_writeFails(self) -> None:
        """
        When a write fails (the disk is full), the piece's Deferred fails
        with the C{OSError} and the file written so far is removed.
        """
        env = envelope()
        self.successResultOf(
            self.handler.handle_DATA_CHUNK(None, self.session, env, SAMPLE, 10)
        )
        self.assertEqual(len(self.files("tmp")), 1)

        def full(fd: int, data: Any) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        self.patch(_maildir.os, "write", full)
        d = self.handler.handle_DATA_CHUNK(None, self.session, env, b"more", 14)
        failure = self.failureResultOf(d, OSError)
        self.assertEqual(failure.value.errno, errno.ENOSPC)
        self.assertEqual(self.files("tmp"), [])
        self.handler.handle_DATA_ABORT(None, self.session, env, "error")
        self.assertEqual(self.files("tmp"), [])
        self.assertEqual(self.files("new"), [])

    def test_placeFails(self) -> None:
        """
        When the message cannot be moved into C{new/}, the end fails with
        the C{OSError} and nothing is left in C{tmp/}.
        """
        new = os.path.join(self.path, "new")
        shutil.rmtree(new)
        with open(new, "wb"):
            pass
        env = envelope()
        self.successResultOf(
            self.handler.handle_DATA_CHUNK(None, self.session, env, SAMPLE, 10)
        )
        d = self.handler.handle_DATA_END(None, self.session, env, 10)
        self.failureResultOf(d, NotADirectoryError)
        self.assertEqual(self.files("tmp"), [])

    def test_interleaved(self) -> None:
        """
        Two messages streaming at once, their pieces interleaved, each get
        their own file with their own bytes.
        """
        first, second = envelope(), envelope()
        second.rcpt_tos = ["dora@example.com"]
        other = b"Subject: two\n\nline\n" * 3
        for a, b in zip(pieces(SAMPLE, [5, 40]), pieces(other, [3, 17]), strict=True):
            for env, piece in ((first, a), (second, b)):
                d = self.handler.handle_DATA_CHUNK(None, self.session, env, piece, 0)
                if d is not None:
                    self.successResultOf(d)
        self.successResultOf(
            self.handler.handle_DATA_END(None, self.session, second, 0)
        )
        self.successResultOf(self.handler.handle_DATA_END(None, self.session, first, 0))
        one = withFields(SAMPLE)
        two = other.replace(
            b"\n\n",
            b"\nX-Peer: ('192.0.2.1', 4321)\nX-MailFrom: anne@example.com\n"
            b"X-RcptTo: dora@example.com\n\n",
            1,
        )
        self.assertEqual(sorted(self.files("new")), sorted([one, two]))


class GatheringTests(SynchronousTestCase):
    """
    L{Mailbox} gathers pieces up to L{_maildir.WRITE_SIZE} octets before it
    writes them.
    """

    def test_gathered(self) -> None:
        """
        Pieces are held until they make L{_maildir.WRITE_SIZE} octets, then
        written in one go; the rest is written at the end. A small message is
        written only at its end.
        """
        path = self.mktemp()
        handler = Mailbox(path, reactor=FakeReactor())
        env, peer = envelope(), session()
        tmp = os.path.join(path, "tmp")
        self.assertIsNone(handler.handle_DATA_CHUNK(None, peer, env, SAMPLE, 0))
        piece = b"x" * (100 * 1024 - 2) + b"\r\n"
        self.assertIsNone(handler.handle_DATA_CHUNK(None, peer, env, piece, 0))
        self.assertIsNone(handler.handle_DATA_CHUNK(None, peer, env, piece, 0))
        self.assertEqual(os.listdir(tmp), [])
        d = handler.handle_DATA_CHUNK(None, peer, env, piece, 0)
        self.successResultOf(d)
        [name] = os.listdir(tmp)
        written = len(FIELDS + SAMPLE) + 3 * len(piece)
        self.assertEqual(os.path.getsize(os.path.join(tmp, name)), written)
        self.assertIsNone(handler.handle_DATA_CHUNK(None, peer, env, piece, 0))
        self.successResultOf(handler.handle_DATA_END(None, peer, env, 0))
        with open(os.path.join(path, "new", name), "rb") as f:
            self.assertEqual(f.read(), withFields(SAMPLE) + 4 * piece)


class ReceivedHeaderTests(SynchronousTestCase):
    """
    With C{received_header}, the streaming L{Mailbox} stores what the
    whole-message path stores.
    """

    def test_sameAsBuffered(self) -> None:
        """
        The stored message has the C{Received:} field in front and the
        added fields at the end of its header section, byte for byte as a
        L{Mailbox} that keeps the whole-message path stores it (but for the
        transaction id).
        """
        stored, handlers = [], []
        for cls in (Counting, Buffered):
            path = self.mktemp()
            handler = cls(path, reactor=FakeReactor())
            tester = SMTPTester(
                handler, reactor=Clock(), timeout=None, received_header=True
            )
            replies = transaction(tester, BIG)
            self.assertEqual(replies[-1], Reply(250, "OK"))
            [name] = os.listdir(os.path.join(path, "new"))
            with open(os.path.join(path, "new", name), "rb") as f:
                stored.append(f.read())
            handlers.append(handler)
        self.assertEqual(handlers[0].contents, [None])
        self.assertTrue(stored[0].startswith(b"Received: from client.example"))
        end = b"X-RcptTo: bart@example.com\r\n\r\n.line 0000000 "
        self.assertIn(end, stored[0][:1000])
        # The transaction id of the Received field is random.
        same = [re.sub(rb"with ESMTP id \w+", b"", data, count=1) for data in stored]
        self.assertTrue(same[0] == same[1], "the two files differ")


class FindHooksTests(SynchronousTestCase):
    """
    What the server finds on a L{Mailbox} and on a subclass that keeps the
    whole-message path.
    """

    def test_mailboxStreams(self) -> None:
        """
        The server finds the three streaming hooks of L{Mailbox}.
        """
        hooks, _ = findHooks(Mailbox(self.mktemp()))
        self.assertLessEqual({"DATA_CHUNK", "DATA_END", "DATA_ABORT"}, set(hooks))

    def test_subclassBuffers(self) -> None:
        """
        The server finds only C{handle_DATA} on a subclass that overrides
        C{handle_message}.
        """

        class Handling(Mailbox):
            def handle_message(self, message: Any) -> Any:
                return super().handle_message(message)

        hooks, _ = findHooks(Handling(self.mktemp()))
        self.assertIn("DATA", hooks)
        self.assertEqual({"DATA_CHUNK", "DATA_END", "DATA_ABORT"} & set(hooks), set())


class SubclassTests(SynchronousTestCase):
    """
    A L{Mailbox} subclass that overrides a method of the buffered path keeps
    it: its streaming hooks are C{None}, which the server takes as absent.
    """

    hooks = ("handle_DATA_CHUNK", "handle_DATA_END", "handle_DATA_ABORT")

    def assertStreams(self, cls: type, streams: bool) -> None:
        """
        Assert that C{cls} has its streaming hooks, or that they are C{None}.
        """
        for name in self.hooks:
            hook = getattr(cls, name)
            self.assertEqual(hook is not None, streams, name)

    def test_plainSubclass(self) -> None:
        """
        A subclass that overrides none of them streams.
        """

        class Plain(Mailbox):
            def reset(self) -> None:
                pass

        self.assertStreams(Mailbox, True)
        self.assertStreams(Plain, True)

    def test_overrides(self) -> None:
        """
        A subclass that overrides C{handle_message}, C{prepare_message} or
        C{handle_DATA}, directly, through a mixin or through a parent, has
        no streaming hooks; Mailbox itself keeps them.
        """

        class Handling(Mailbox):
            def handle_message(self, message: Any) -> Any:
                return super().handle_message(message)

        class Preparing(Mailbox):
            def prepare_message(self, session: Any, envelope: Any) -> Any:
                return super().prepare_message(session, envelope)

        class Wrapping(Mailbox):
            async def handle_DATA(self, server: Any, session: Any, env: Any) -> Any:
                return await super().handle_DATA(server, session, env)

        class Mixin:
            def handle_message(self, message: Any) -> Any:
                return None

        class Mixed(Mixin, Mailbox):
            pass

        class Child(Handling):
            pass

        for cls in (Handling, Preparing, Wrapping, Mixed, Child):
            self.assertStreams(cls, False)
        self.assertStreams(Mailbox, True)

    def test_ownStreamingHooks(self) -> None:
        """
        A subclass that overrides C{handle_message} and defines a streaming
        hook of its own keeps that one.
        """

        class Own(Mailbox):
            def handle_message(self, message: Any) -> Any:
                return None

            def handle_DATA_END(self, *args: Any) -> str:
                return "250 mine"

        self.assertIsNone(Own.handle_DATA_CHUNK)
        self.assertIsNone(Own.handle_DATA_ABORT)
        self.assertEqual(Own.handle_DATA_END(None), "250 mine")


class ThreadPoolTests(TestCase):
    """
    The streaming hooks with the real reactor's thread pool.
    """

    timeout = 15

    async def test_stream(self) -> None:
        """
        Pieces written in threads, one after the other, make the message
        the buffered path would store.
        """
        path = self.mktemp()
        handler = Mailbox(path, reactor=reactor)
        env, peer = envelope(), session()
        data = SAMPLE + b"line of the body\r\n" * 10000
        size = 0
        for piece in pieces(data, list(range(7, len(data), 4096))):
            size += len(piece)
            d = handler.handle_DATA_CHUNK(None, peer, env, piece, size)
            if d is not None:
                self.assertIsInstance(d, Deferred)
                await d
        self.assertEqual(await handler.handle_DATA_END(None, peer, env, size), "250 OK")
        [name] = os.listdir(os.path.join(path, "new"))
        with open(os.path.join(path, "new", name), "rb") as f:
            self.assertEqual(
                f.read(), data.replace(b"\r\n\r\n", b"\r\n" + FIELDS + b"\r\n", 1)
            )
        self.assertEqual(os.listdir(os.path.join(path, "tmp")), [])


#: A message of a few MiB: CRLF lines, one in eight starting with a dot.
BIG = b"From: anne@example.com\r\nSubject: big\r\n\r\n" + b"".join(
    (b"." if i % 8 == 0 else b"") + b"line %07d of the body\r\n" % i
    for i in range(120000)
)


class Counting(Mailbox):
    """
    A streaming L{Mailbox} that counts the pieces it gets and what reached
    C{envelope.content}.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pieces = 0
        self.contents: list[Any] = []
        self.aborts: list[str] = []

    def handle_DATA_CHUNK(self, server: Any, session: Any, env: Any, *args: Any) -> Any:
        self.pieces += 1
        return super().handle_DATA_CHUNK(server, session, env, *args)

    def handle_DATA_END(self, server: Any, session: Any, env: Any, size: int) -> Any:
        self.contents.append(env.content)
        return super().handle_DATA_END(server, session, env, size)

    def handle_DATA_ABORT(
        self, server: Any, session: Any, env: Any, reason: str
    ) -> Any:
        self.aborts.append(reason)
        return super().handle_DATA_ABORT(server, session, env, reason)


class Buffered(Mailbox):
    """
    A L{Mailbox} that keeps the whole-message path, by overriding
    C{handle_DATA}.
    """

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return await super().handle_DATA(server, session, envelope)


class EndToEndTests(TestCase):
    """
    Integration tests: a multi-MiB message sent to a real server on
    127.0.0.1 (real TCP, real reactor) with a L{Mailbox}, over DATA by
    C{smtplib} and over BDAT by a raw socket; the file stored is what the
    whole-message path stores.
    """

    timeout = 60

    def stored(self, path: str) -> bytes:
        """
        The one message in the Maildir C{path}; C{tmp/} is empty.
        """
        self.assertEqual(os.listdir(os.path.join(path, "tmp")), [])
        [name] = os.listdir(os.path.join(path, "new"))
        with open(os.path.join(path, "new", name), "rb") as f:
            return f.read()

    def expected(self, data: bytes, peer: tuple[str, int]) -> bytes:
        """
        What the whole-message path stores for C{data} from C{peer}.
        """
        return withHeaders(
            data,
            [
                f"X-Peer: {peer}".encode(),
                b"X-MailFrom: anne@example.com",
                b"X-RcptTo: bart@example.com",
            ],
        )

    async def sendmail(self, handler: Mailbox) -> tuple[str, int]:
        """
        Send L{BIG} to a server with C{handler} with C{smtplib}.

        @return: The client's address.
        """
        listening = listen(self, handler)

        def client() -> tuple[str, int]:
            with smtpClient(listening.port) as c:
                self.assertEqual(
                    c.sendmail("anne@example.com", ["bart@example.com"], BIG), {}
                )
                return tuple(c.sock.getsockname())

        return await deferToThread(client)

    async def test_data(self) -> None:
        """
        A message sent over DATA streams in many pieces (the envelope never
        has its content) and is stored as the whole-message path stores it,
        and as a L{Mailbox} that keeps that path does.
        """
        path = self.mktemp()
        handler = Counting(path, reactor=reactor)
        peer = await self.sendmail(handler)
        self.assertGreater(handler.pieces, 10)
        self.assertEqual(handler.contents, [None])
        self.assertEqual(self.stored(path), self.expected(BIG, peer))
        path = self.mktemp()
        peer = await self.sendmail(Buffered(path, reactor=reactor))
        self.assertEqual(self.stored(path), self.expected(BIG, peer))

    async def test_bdat(self) -> None:
        """
        A message sent in BDAT chunks of 1 MiB, pipelined, is stored as the
        whole-message path stores it.
        """
        path = self.mktemp()
        handler = Counting(path, reactor=reactor)
        listening = listen(self, handler)
        chunks = [BIG[i : i + 1024 * 1024] for i in range(0, len(BIG), 1024 * 1024)]
        self.assertGreater(len(chunks), 2)

        def client() -> tuple[bytes, tuple[str, int]]:
            sock = rawConnect(listening.port)
            with sock:
                readReplies(sock, 1)
                sock.sendall(b"EHLO client.example\r\n")
                self.assertIn(b"CHUNKING", readReplies(sock, 1))
                sock.sendall(
                    b"MAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\n"
                )
                for chunk in chunks[:-1]:
                    sock.sendall(b"BDAT %d\r\n" % len(chunk) + chunk)
                sock.sendall(b"BDAT %d LAST\r\n" % len(chunks[-1]) + chunks[-1])
                replies = readReplies(sock, 2 + len(chunks))
                sock.sendall(b"QUIT\r\n")
                readReplies(sock, 1)
                return replies, sock.getsockname()

        replies, peer = await deferToThread(client)
        self.assertEqual(
            [line[:3] for line in replies.split(b"\r\n")[:-1]],
            [b"250"] * (2 + len(chunks)),
        )
        self.assertEqual(self.stored(path), self.expected(BIG, tuple(peer)))
        self.assertGreater(handler.pieces, 10)
        self.assertEqual(handler.contents, [None])

    def converse(
        self, port: int, script: list[tuple[bytes, int]]
    ) -> tuple[list[bytes], tuple[str, int]]:
        """
        Send each command of C{script} over a raw socket and read its count
        of replies.

        @return: The reply codes, and the client's address.
        """
        sock = rawConnect(port)
        codes = []
        with sock:
            for data, count in [(b"", 1), *script]:
                sock.sendall(data)
                replies = readReplies(sock, count).split(b"\r\n")[:-1]
                codes += [line[:3] for line in replies if line[3:4] == b" "]
            return codes, sock.getsockname()

    async def test_resetBetweenChunks(self) -> None:
        """
        RSET between BDAT chunks aborts the message: nothing is left in the
        Maildir, and the next message of the connection is stored.
        """
        path = self.mktemp()
        handler = Counting(path, reactor=reactor)
        listening = listen(self, handler)
        envelope = b"MAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\n"
        chunk = BIG[: 300 * 1024]
        script = [
            (b"EHLO client.example\r\n", 1),
            (envelope + b"BDAT %d\r\n" % len(chunk) + chunk, 3),
            (b"RSET\r\n", 1),
            (envelope + b"BDAT %d LAST\r\n" % len(SAMPLE) + SAMPLE, 3),
            (b"QUIT\r\n", 1),
        ]
        codes, peer = await deferToThread(self.converse, listening.port, script)
        self.assertEqual(codes, [b"220"] + [b"250"] * 8 + [b"221"])
        self.assertEqual(handler.aborts, ["reset"])
        await self.tmpEmptied(path)
        self.assertEqual(self.stored(path), self.expected(SAMPLE, tuple(peer)))

    async def test_tooBig(self) -> None:
        """
        A message over the size limit gets 552 and leaves nothing in the
        Maildir.
        """
        path = self.mktemp()
        handler = Counting(path, reactor=reactor)
        listening = listen(self, handler, data_size_limit=1024 * 1024)
        wire = BIG.replace(b"\r\n.", b"\r\n..") + b".\r\n"
        script = [
            (b"EHLO client.example\r\n", 1),
            (b"MAIL FROM:<anne@example.com>\r\nRCPT TO:<bart@example.com>\r\n", 2),
            (b"DATA\r\n", 1),
            (wire, 1),
        ]
        codes, _ = await deferToThread(self.converse, listening.port, script)
        self.assertEqual(codes[-1], b"552")
        self.assertEqual(handler.aborts, ["too big"])
        await self.tmpEmptied(path)
        self.assertEqual(os.listdir(os.path.join(path, "new")), [])

    async def tmpEmptied(self, path: str) -> None:
        """
        Wait until C{tmp/} of the Maildir C{path} is empty: an aborted
        message's file is removed in a thread, maybe after the reply.
        """
        tmp = os.path.join(path, "tmp")
        for _ in range(500):
            if not os.listdir(tmp):
                return
            await deferLater(reactor, 0.01, lambda: None)
        self.assertEqual(os.listdir(tmp), [])
